/**
 * The entry of berth-oci (dist/berth-oci.cjs): a command line run in this process (cli.ts), or,
 * given SERVE_FLAG first, the berth-oci server (server.ts) that the native client
 * (native/runtime/berth-oci.c) starts so that later commands need no Node start of their own.
 */
import { runCli, SERVE_FLAG } from './cli.js';

const argv = process.argv.slice(2);
const done = argv[0] === SERVE_FLAG ? import('./server.js').then((server) => server.serve(argv.slice(1))) : runCli(argv);
done.then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`berth-oci: ${String((err as Error)?.stack ?? err)}\n`);
    process.exitCode = 1;
  },
);
