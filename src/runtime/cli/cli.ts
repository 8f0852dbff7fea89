/**
 * berth-oci: a runc-compatible command line over the runtime library.
 * Global flags come before the verb (`berth-oci --root R --log L --log-format json create ...`),
 * as containerd, dockerd and podman pass them. Each verb lives in its own file and is
 * loaded only when used, to keep start-up short. The entry is main.ts.
 */
import { BerthError, InvalidArgumentError } from '../../common/errors.js';
import { HooksNotRunHereError } from '../runtime.js';
import { CliContext, processIo, type CliIo, type GlobalOptions, type VerbMain } from './context.js';

/** The hidden first argument that makes this bundle the berth-oci server (server.ts). */
export const SERVE_FLAG = '--berth-oci-serve';

const VERBS: Record<string, () => Promise<{ default: VerbMain }>> = {
  create: () => import('./create.js'),
  start: () => import('./start.js'),
  run: () => import('./run.js'),
  state: () => import('./state.js'),
  kill: () => import('./kill.js'),
  delete: () => import('./delete.js'),
  exec: () => import('./exec.js'),
  list: () => import('./list.js'),
  ps: () => import('./ps.js'),
  pause: () => import('./pause.js'),
  resume: () => import('./resume.js'),
  spec: () => import('./spec.js'),
  features: () => import('./features.js'),
  update: () => import('./update.js'),
};

const VERSION = '0.1.0';
const USAGE = `usage: berth-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [ARGS]
commands: ${Object.keys(VERBS).join(', ')}`;

/** Global flags take a value unless listed as boolean; unknown global flags are errors. */
const GLOBAL_BOOLEAN = new Set(['--debug', '--systemd-cgroup', '--no-new-keyring']);
const GLOBAL_VALUE = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);

export function parseGlobal(argv: string[]): { global: GlobalOptions; rest: string[] } {
  const global: GlobalOptions = { logFormat: 'text', debug: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-')) break;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (GLOBAL_BOOLEAN.has(flag)) {
      if (flag === '--debug') global.debug = true;
      continue;
    }
    if (!GLOBAL_VALUE.has(flag)) {
      if (flag === '--version' || flag === '-v') return { global, rest: ['--version'] };
      if (flag === '--help' || flag === '-h') return { global, rest: ['--help'] };
      throw new InvalidArgumentError(`unknown global flag ${flag}`, flag);
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new InvalidArgumentError('needs a value', flag);
    if (flag === '--root') global.root = value;
    else if (flag === '--log') global.log = value;
    else if (flag === '--log-format') {
      if (value !== 'text' && value !== 'json') throw new InvalidArgumentError(`must be text or json, got ${value}`, '--log-format');
      global.logFormat = value;
    }
  }
  return { global, rest: argv.slice(i) };
}

/** Runs one berth-oci command line; resolves with its exit code. `io`: see CliIo (the server passes its client's). */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  let ctx = new CliContext({ logFormat: 'text', debug: false }, io);
  try {
    const { global, rest } = parseGlobal(argv);
    ctx = new CliContext(global, io);
    const [verb, ...args] = rest;
    if (verb === '--version') {
      ctx.out(`berth-oci version ${VERSION}\nspec: 1.2.0\n`);
      return 0;
    }
    if (!verb || verb === '--help' || verb === 'help') {
      ctx.out(USAGE + '\n');
      return verb ? 0 : 1;
    }
    if (io !== processIo) ctx.log('debug', `run by the berth-oci server, pid ${process.pid}`);
    const load = VERBS[verb];
    if (!load) throw new InvalidArgumentError(`unknown command ${JSON.stringify(verb)}\n${USAGE}`);
    return await (await load()).default(args, ctx);
  } catch (err) {
    if (io !== processIo && err instanceof HooksNotRunHereError) {
      ctx.log('debug', 'the berth-oci server hands the command back to its client: the container has hooks');
      throw err; // the client runs it in Node
    }
    ctx.log('error', err instanceof BerthError ? err.message : String((err as Error)?.stack ?? err));
    return 1;
  }
}
