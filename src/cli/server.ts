/**
 * The berth CLI server: one Node process of a user that runs the `berth` command lines of its
 * native client (native/client/berth.c) with the client's working directory, environment and
 * output, so that a command costs no Node start and no loading of the CLI (see
 * src/common/command-server.ts for the socket, the protocol and the idle exit). It runs only
 * what served.ts allows; the rest gets "fallback" and runs in Node in the client's process.
 *
 * Request fields: cwd, identity (ownIdentity(true): the same namespaces, root, user and
 * groups), the client's stdout and stderr as "<isatty> <columns>", the number of environment
 * entries, the entries, then argv.
 */
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';

import { ClientConnection, ownIdentity, requestFields, serveCommands } from '../common/command-server.js';
import type { CliIo } from './context.js';
import { servable } from './served.js';

/** How long the server stays without connections before it exits. */
const IDLE_MS = Number(process.env.BERTH_CLI_SERVER_IDLE_MS) || 10 * 60_000;

/** A stand-in for the client's stdout or stderr: what is written goes to it as messages, with back pressure. */
function clientStream(socket: Socket, conn: ClientConnection, kind: 'out' | 'err', terminal: string | undefined): CliIo['stdout'] {
  const [tty, columns] = (terminal ?? '0 0').split(' ').map(Number);
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (socket.destroyed) return done(); // the client went away: its output goes nowhere
      conn.out(kind, chunk);
      if (socket.writableNeedDrain) socket.once('drain', () => done());
      else done();
    },
  });
  return Object.assign(stream, { isTTY: tty === 1, columns: columns || undefined });
}

function ended(stream: Writable): Promise<void> {
  return new Promise((resolve) => stream.end(() => resolve()));
}

type Main = (argv: string[], io: CliIo) => Promise<number>;

/** Serves on `args[0]` until idle; `main` and `isGroup` are main.ts's (passed in: this module is loaded by it). */
export async function serve(args: string[], main: Main, isGroup: (word: string) => boolean): Promise<number> {
  const socketPath = args[0];
  if (!socketPath) throw new Error('usage: berth.cjs --berth-cli-serve SOCKET');
  const identity = ownIdentity(true);
  return serveCommands({
    socketPath,
    idleMs: IDLE_MS,
    onConnection: async (sock, { payload }) => {
      if (!payload) throw new Error('a connection without a request');
      const conn = new ClientConnection(sock);
      const fields = requestFields(payload);
      const [cwd, clientIdentity, outTerminal, errTerminal, envCount] = fields;
      const n = Number(envCount);
      if (clientIdentity !== identity || !cwd || !Number.isInteger(n) || n < 0) return conn.fallback('identity');
      const argv = fields.slice(5 + n);
      if (!servable(argv, isGroup)) return conn.fallback('command');
      const env: NodeJS.ProcessEnv = {};
      for (const entry of fields.slice(5, 5 + n)) {
        const eq = entry.indexOf('=');
        if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      conn.send('ok\n');
      // A client that goes away (Ctrl-C) ends its command's connections to the daemon, as the
      // end of its own process would have.
      const given = new AbortController();
      let finished = false;
      sock.once('close', () => finished || given.abort());
      const stdout = clientStream(sock, conn, 'out', outTerminal);
      const stderr = clientStream(sock, conn, 'err', errTerminal);
      // With -D (docker's --debug), say where the command ran.
      if (argv.slice(0, argv.indexOf(argv.find((a) => !a.startsWith('-')) ?? '')).some((a) => a === '-D' || a === '--debug')) {
        stderr.write(`berth: run by the berth CLI server, pid ${process.pid}\n`);
      }
      let code: number;
      try {
        // The client ends itself on Ctrl-C with that status; its going away then aborts the command.
        const exitOnInterrupt = (status: number): void => conn.send(`interrupt-exit ${status}\n`);
        code = await main(argv, { stdout, stderr, env, cwd, signal: given.signal, exitOnInterrupt });
      } catch (err) {
        stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
        code = 1;
      }
      await Promise.all([ended(stdout as Writable), ended(stderr as Writable)]);
      finished = true;
      conn.exit(code);
    },
  });
}
