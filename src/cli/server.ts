/**
 * The berth CLI server: one Node process of a user that runs the `berth` command lines of its
 * native client (native/client/berth.c) with the client's working directory, environment and
 * output, so that a command costs no Node start and no loading of the CLI (see
 * src/common/command-server.ts for the socket, the protocol and the idle exit). It runs only
 * what served.ts allows; the rest gets "fallback" and runs in Node in the client's process.
 *
 * Request fields: cwd, identity (ownIdentity(true): the same namespaces, root, user and
 * groups), whether the client's stdin is a terminal ("0" or "1"), its stdout and stderr as
 * "<isatty> <columns> <rows>", the number of environment entries, the entries, then argv.
 *
 * A command that reads input gets the client's (ClientInput): the server asks for it with
 * "stdin" (and "stdin-pause"/"stdin-resume" for back pressure), the client sends "in <n>" and
 * the bytes, then "in-end". setRawMode() on it sends "raw 1"/"raw 0", and the client's
 * "size <rows> <columns>" (on SIGWINCH) resizes the stand-in for its stdout ('resize').
 */
import os from 'node:os';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';

import { ClientConnection, ownIdentity, requestFields, serveCommands } from '../common/command-server.js';
import type { CliInput, CliIo, CliOutput } from './context.js';
import { servable } from './served.js';

/** How long the server stays without connections before it exits. */
const IDLE_MS = Number(process.env.BERTH_CLI_SERVER_IDLE_MS) || 10 * 60_000;

/** A stand-in for the client's stdout or stderr: what is written goes to it as messages, with back pressure. */
function clientStream(socket: Socket, conn: ClientConnection, kind: 'out' | 'err', terminal: string | undefined): CliOutput & Writable & { resized(rows: number, columns: number): void } {
  const [tty, columns, rows] = (terminal ?? '0 0 0').split(' ').map(Number);
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (socket.destroyed) return done(); // the client went away: its output goes nowhere
      conn.out(kind, chunk);
      if (socket.writableNeedDrain) socket.once('drain', () => done());
      else done();
    },
  });
  const size = { columns: columns || 0, rows: rows || 0 };
  return Object.assign(stream, {
    isTTY: tty === 1,
    get columns() {
      return size.columns || undefined;
    },
    getWindowSize: (): [number, number] => [size.columns, size.rows],
    /** The client's terminal changed size: as tty.WriteStream does on SIGWINCH. */
    resized(newRows: number, newColumns: number) {
      size.rows = newRows;
      size.columns = newColumns;
      stream.emit('resize');
    },
  });
}

/** Input past this much, not yet read by the command, pauses the client's sending. */
const INPUT_HIGH_WATER = 256 * 1024;

/** A stand-in for the client's stdin: asked for once read, with back pressure. */
class ClientInput extends Readable implements CliInput {
  private asked = false;
  private paused_ = false;

  constructor(
    private readonly conn: ClientConnection,
    readonly isTTY: boolean,
  ) {
    super({ highWaterMark: INPUT_HIGH_WATER });
  }

  override _read(): void {
    if (!this.asked) this.conn.send('stdin\n');
    else if (this.paused_) this.conn.send('stdin-resume\n');
    this.asked = true;
    this.paused_ = false;
  }

  /** Bytes from the client ("in <n>"). */
  feed(data: Buffer): void {
    if (!this.push(data) && !this.paused_) {
      this.paused_ = true;
      this.conn.send('stdin-pause\n');
    }
  }

  setRawMode(raw: boolean): this {
    if (this.isTTY) this.conn.send(`raw ${raw ? 1 : 0}\n`);
    return this;
  }
}

/** What the client sends once its request is taken: "in <n>" and the bytes, "in-end", "size <rows> <columns>". */
function readClientMessages(sock: Socket, on: { input(data: Buffer): void; inputEnd(): void; size(rows: number, columns: number): void; signal(num: number): void }): void {
  let buffered: Buffer = Buffer.alloc(0);
  let want = 0; // bytes of an "in" message still to come
  sock.on('data', (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length) {
      if (want > 0) {
        const piece = buffered.subarray(0, want);
        want -= piece.length;
        buffered = buffered.subarray(piece.length);
        on.input(piece);
        continue;
      }
      const nl = buffered.indexOf(0x0a);
      if (nl < 0) {
        if (buffered.length > 256) sock.destroy(); // no message of ours is that long
        return;
      }
      const line = buffered.subarray(0, nl).toString('latin1');
      buffered = buffered.subarray(nl + 1);
      let m: RegExpExecArray | null;
      if ((m = /^in (\d+)$/.exec(line))) want = Number(m[1]);
      else if (line === 'in-end') on.inputEnd();
      else if ((m = /^size (\d+) (\d+)$/.exec(line))) on.size(Number(m[1]), Number(m[2]));
      else if ((m = /^signal (\d+)$/.exec(line))) on.signal(Number(m[1]));
    }
  });
}

/** Signal numbers to names ("SIGINT"), for the client's "signal <n>". */
const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, num]) => [num, name]));

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
      const [cwd, clientIdentity, inTerminal, outTerminal, errTerminal, envCount] = fields;
      const n = Number(envCount);
      if (clientIdentity !== identity || !cwd || !Number.isInteger(n) || n < 0) return conn.fallback('identity');
      const argv = fields.slice(6 + n);
      if (!servable(argv, isGroup)) return conn.fallback('command');
      const env: NodeJS.ProcessEnv = {};
      for (const entry of fields.slice(6, 6 + n)) {
        const eq = entry.indexOf('=');
        if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      conn.send('ok\n');
      // A client that goes away (Ctrl-C) ends its command's connections to the daemon, as the
      // end of its own process would have.
      const given = new AbortController();
      let finished = false;
      sock.once('close', () => finished || given.abort());
      const stdin = new ClientInput(conn, inTerminal === '1');
      const stdout = clientStream(sock, conn, 'out', outTerminal);
      const stderr = clientStream(sock, conn, 'err', errTerminal);
      // The client passes on the signals sent to it while the command proxies them ("sig-proxy 1").
      let forwardSignal: ((signal: string) => void) | undefined;
      readClientMessages(sock, {
        input: (data) => stdin.feed(data),
        inputEnd: () => stdin.push(null),
        size: (rows, columns) => stdout.resized(rows, columns),
        signal: (num) => {
          const name = SIGNAL_NAMES.get(num);
          if (name && forwardSignal) forwardSignal(name.slice(3));
        },
      });
      const proxySignals = (forward: (signal: string) => void): (() => void) => {
        forwardSignal = forward;
        conn.send('sig-proxy 1\n');
        return () => {
          forwardSignal = undefined;
          if (!sock.destroyed) conn.send('sig-proxy 0\n');
        };
      };
      sock.resume(); // readHeader left it paused
      // With -D (docker's --debug), say where the command ran.
      const firstWord = argv.findIndex((a) => !a.startsWith('-'));
      if (argv.slice(0, firstWord < 0 ? argv.length : firstWord).some((a) => a === '-D' || a === '--debug')) {
        stderr.write(`berth: run by the berth CLI server, pid ${process.pid}\n`);
      }
      let code: number;
      try {
        // The client ends itself on Ctrl-C with that status; its going away then aborts the command.
        const exitOnInterrupt = (status: number): void => conn.send(`interrupt-exit ${status}\n`);
        code = await main(argv, { stdin, stdout, stderr, env, cwd, signal: given.signal, exitOnInterrupt, proxySignals });
      } catch (err) {
        stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
        code = 1;
      }
      await Promise.all([ended(stdout), ended(stderr)]);
      finished = true;
      conn.exit(code);
    },
  });
}
