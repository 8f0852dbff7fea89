/**
 * The berth-oci server: one Node process that runs berth-oci command lines for the native
 * client (native/runtime/berth-oci.c), so that a command costs the client's exec and a
 * round trip instead of a Node start of its own (~40 ms here, longer than runc's whole `run`).
 * The client starts it on first use (detached, in the root cgroups) and it exits after
 * IDLE_MS without connections; BERTH_OCI_SERVER=0 in the client's environment keeps every
 * command in a Node process of its own.
 *
 * What runs where. Everything that needs the caller's process tree runs in the client: it
 * forks berth-nsexec (stage 0) when told to, so the container descends from the process that
 * ran `berth-oci`, as with runc (a containerd shim or conmon, subreapers, must be its
 * ancestor), keeps the caller's stdio and preserved fds, forwards signals and reports stage 0's
 * exit. Everything else (config, plan, cgroups, state) runs here, in the same library code as
 * the command line. Not served (the client runs them itself, told by "fallback"): a
 * container with hooks (a hook may call berth-oci, which would wait on the server that waits
 * on the hook), `update` (it may read the caller's stdin), and a client in other namespaces
 * or under another root than the server's (its paths and pids would mean other things here).
 *
 * Protocol, on a unix stream socket in a directory only root may enter. A connection starts
 * with one of:
 *   "request <n>\n" + n bytes: NUL-terminated fields: cwd, identity (see ownIdentity), argv...
 *   "plan <token>\n"  it is the plan fd of the berth-nsexec of spawn <token>; we write the plan
 *   "sync <token>\n"  it is that berth-nsexec's sync socket (launch.ts's protocol follows)
 * On a request connection, server -> client:
 *   "fallback <reason>\n"   run it yourself: nothing was done
 *   "ok\n"                  accepted
 *   "out <n>\n" | "err <n>\n" + n bytes   for the client's stdout or stderr
 *   "spawn <token> <planFd> <syncFd> <path>\n"   connect twice (plan, sync), fork, exec <path>
 *                           with those sockets as planFd and syncFd (after the preserved fds)
 *   "exit <code>\n"         done
 * client -> server, after "ok":
 *   "pid <n>\n"             the berth-nsexec it started;  "spawnerror <message>\n" if it could not
 *   "status <code> <signal>\n"   that berth-nsexec exited (signal number, or 0)
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

import { SystemError } from '../../common/errors.js';
import { nativeBinary } from '../../common/paths.js';
import type { Stage0Starter, StartingStage0 } from '../launch.js';
import { HooksNotRunHereError } from '../runtime.js';
import { parseGlobal, runCli } from './cli.js';
import type { CliIo } from './context.js';

/** How long the server stays without connections before it exits. */
const IDLE_MS = Number(process.env.BERTH_OCI_SERVER_IDLE_MS) || 60_000;
/** Limits on what a connection may send before it is known. */
const MAX_HEADER = 256;
const MAX_REQUEST = 1 << 20;
/** How long a spawn may take to connect its plan and sync sockets. */
const SPAWN_CONNECT_MS = 10_000;

/** Verbs that are not served (see above). */
const NOT_SERVED = new Set(['update']);

/**
 * What must be the same for a client's paths and pids to mean here what they mean there: its
 * mount, pid, user, cgroup and network namespaces and its root directory. The client sends the
 * same string (berth-oci.c, identity()).
 */
export function ownIdentity(): string {
  const ns = (name: string): string => fs.statSync(`/proc/self/ns/${name}`, { bigint: true }).ino.toString();
  const root = fs.statSync('/', { bigint: true });
  return `mnt:${ns('mnt')} pid:${ns('pid')} user:${ns('user')} cgroup:${ns('cgroup')} net:${ns('net')} root:${root.dev}:${root.ino}`;
}

/** A connection's first line (and, for a request, its payload); the rest goes back to the socket. */
export function readHeader(sock: net.Socket): Promise<{ line: string; payload?: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const done = (err: Error | null, result?: { line: string; payload?: Buffer }, rest?: Buffer): void => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.pause();
      if (rest?.length) sock.unshift(rest);
      if (err) reject(err);
      else resolve(result!);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const nl = buffered.indexOf(0x0a);
      if (nl < 0) {
        if (buffered.length > MAX_HEADER) done(new Error('header too long'));
        return;
      }
      const line = buffered.subarray(0, nl).toString('utf8');
      const match = /^request (\d+)$/.exec(line);
      if (!match) return done(null, { line }, buffered.subarray(nl + 1));
      const length = Number(match[1]);
      if (length > MAX_REQUEST) return done(new Error('request too large'));
      if (buffered.length < nl + 1 + length) return;
      done(null, { line, payload: buffered.subarray(nl + 1, nl + 1 + length) }, buffered.subarray(nl + 1 + length));
    };
    const onEnd = (): void => done(new Error('connection ended before its header'));
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

/** Stage 0 as the client runs it: its pid and exit come as messages. */
class RemoteStage0 extends EventEmitter {
  pid: number | undefined;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private pendingSignal: NodeJS.Signals | undefined;

  started(pid: number): void {
    this.pid = pid;
    if (this.pendingSignal) this.kill(this.pendingSignal);
  }

  exited(code: number, signal: number): void {
    const name = signal ? (Object.entries(os.constants.signals).find(([, n]) => n === signal)?.[0] as NodeJS.Signals | undefined) : undefined;
    this.exitCode = signal ? null : code;
    this.signalCode = signal ? (name ?? 'SIGKILL') : null;
    this.emit('exit', this.exitCode, this.signalCode);
  }

  kill(signal: NodeJS.Signals): boolean {
    if (this.pid === undefined) {
      this.pendingSignal = signal;
      return true;
    }
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  unref(): void {}
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined); // the reader may have gone (an aborted launch)
  return { promise, resolve, reject };
}

/** Spawns waiting for their plan and sync connections, by token. */
const awaitingSockets = new Map<string, { plan: Deferred<net.Socket>; sync: Deferred<net.Socket> }>();

/** One request connection: the command line it runs, and the stage 0 its client starts for it. */
class ServedRequest {
  private stage0: RemoteStage0 | undefined;
  private spawnFailed: Deferred<never> | undefined;

  constructor(private readonly conn: net.Socket) {}

  private send(text: string, data?: string): void {
    if (this.conn.destroyed || this.conn.writableEnded) return;
    this.conn.write(text);
    if (data !== undefined) this.conn.write(data);
  }

  private readonly io: CliIo = {
    cwd: '/',
    out: (text) => this.send(`out ${Buffer.byteLength(text)}\n`, text),
    err: (text) => this.send(`err ${Buffer.byteLength(text)}\n`, text),
    forwardsSignals: false,
    starter: (opts) => this.startStage0(opts),
  };

  private readonly startStage0: Stage0Starter = ({ stdio, preserveFds }): StartingStage0 => {
    if (stdio.some((s) => s !== 'inherit')) throw new SystemError('the berth-oci server starts stage 0 only with its client\'s stdio');
    if (this.stage0 && this.stage0.exitCode === null && this.stage0.signalCode === null) throw new SystemError('one stage 0 at a time per client');
    const token = randomBytes(16).toString('hex');
    const sockets = { plan: deferred<net.Socket>(), sync: deferred<net.Socket>() };
    awaitingSockets.set(token, sockets);
    const timer = setTimeout(() => {
      if (awaitingSockets.delete(token)) for (const d of Object.values(sockets)) d.reject(new SystemError('the client did not connect berth-nsexec'));
    }, SPAWN_CONNECT_MS);
    const clear = (): void => {
      clearTimeout(timer);
    };
    void Promise.all([sockets.plan.promise, sockets.sync.promise]).then(clear, clear);
    this.stage0 = new RemoteStage0();
    this.spawnFailed = deferred<never>();
    const planFd = 3 + preserveFds.length;
    this.send(`spawn ${token} ${planFd} ${planFd + 1} ${nativeBinary('berth-nsexec')}\n`);
    return { stage0: this.stage0, plan: sockets.plan.promise, sync: sockets.sync.promise, failed: this.spawnFailed.promise };
  };

  /** A line from the client after its request. */
  onLine(line: string): void {
    const [verb, ...rest] = line.split(' ');
    if (verb === 'pid') this.stage0?.started(Number(rest[0]));
    else if (verb === 'status') this.stage0?.exited(Number(rest[0]), Number(rest[1]));
    else if (verb === 'spawnerror') this.spawnFailed?.reject(new SystemError(`cannot start berth-nsexec: ${rest.join(' ')}`));
  }

  /** The client went away: a launch still waiting for it fails (and is undone). */
  onClose(): void {
    this.spawnFailed?.reject(new SystemError('the berth-oci client went away'));
  }

  async run(payload: Buffer, identity: string): Promise<void> {
    const fields = payload.toString('utf8').split('\0');
    fields.pop(); // each field ends with a NUL
    const [cwd, clientIdentity, ...argv] = fields;
    if (cwd === undefined || clientIdentity !== identity) return this.fallback('namespaces');
    let verb: string | undefined;
    try {
      verb = parseGlobal(argv).rest[0];
    } catch {
      /* runCli reports it */
    }
    if (verb && NOT_SERVED.has(verb)) return this.fallback(verb);
    this.io.cwd = cwd;
    this.send('ok\n');
    let code: number;
    try {
      code = await runCli(argv, this.io);
    } catch (err) {
      if (err instanceof HooksNotRunHereError) return this.fallback('hooks');
      this.io.err(`berth-oci: ${String((err as Error)?.stack ?? err)}\n`);
      code = 1;
    }
    this.send(`exit ${code}\n`);
    this.conn.end();
  }

  private fallback(reason: string): void {
    this.send(`fallback ${reason}\n`);
    this.conn.end();
  }
}

/** Serves on `args[0]` until idle. Resolves with the exit code. */
export async function serve(args: string[]): Promise<number> {
  const socketPath = args[0];
  if (!socketPath) throw new Error('usage: berth-oci.cjs --berth-oci-serve SOCKET');
  const identity = ownIdentity();
  let connections = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let socketIno: bigint | undefined;

  const server = net.createServer((sock) => {
    connections++;
    clearTimeout(idleTimer);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (--connections === 0) idleTimer = setTimeout(stop, IDLE_MS);
    });
    void handle(sock).catch((err: unknown) => {
      log(`connection: ${(err as Error).message}`);
      sock.destroy();
    });
  });

  const handle = async (sock: net.Socket): Promise<void> => {
    const { line, payload } = await readHeader(sock);
    const [kind, token] = line.split(' ');
    if (payload) {
      const request = new ServedRequest(sock);
      sock.setEncoding('utf8');
      let partial = '';
      sock.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const l of lines) request.onLine(l);
      });
      sock.on('close', () => request.onClose());
      sock.resume();
      return request.run(payload, identity);
    }
    const waiting = token ? awaitingSockets.get(token) : undefined;
    if ((kind !== 'plan' && kind !== 'sync') || !waiting) throw new Error(`unexpected first line ${JSON.stringify(line.slice(0, 64))}`);
    // The plan's socket is only written to; reading it (nothing comes) lets its end close it.
    // The sync socket stays paused until speakLaunchProtocol listens (and resumes it).
    if (kind === 'plan') sock.resume();
    waiting[kind].resolve(sock);
    if (kind === 'sync') awaitingSockets.delete(token);
  };

  const stop = (): void => {
    server.close();
    try {
      if (socketIno !== undefined && fs.statSync(socketPath, { bigint: true }).ino === socketIno) {
        fs.unlinkSync(socketPath);
        // The client made the log (our stderr); one with nothing but our start goes with us.
        if (!problemsLogged) fs.rmSync(`${socketPath}.log`, { force: true });
      }
    } catch {
      /* gone already */
    }
    process.exit(0);
  };

  await listenExclusively(server, socketPath);
  fs.chmodSync(socketPath, 0o600);
  socketIno = fs.statSync(socketPath, { bigint: true }).ino;
  idleTimer = setTimeout(stop, IDLE_MS);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('uncaughtException', (err) => {
    log(`uncaught: ${err.stack ?? err.message}`);
    stop();
  });
  process.on('unhandledRejection', (err) => log(`unhandled rejection: ${String((err as Error)?.stack ?? err)}`));
  log(`serving on ${socketPath}`);
  problemsLogged = false;
  return new Promise<number>(() => undefined); // until stop()
}

/** Listens on path; if a server already answers there, exits (another client started one first). */
async function listenExclusively(server: net.Server, path: string): Promise<void> {
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const alive = await new Promise<boolean>((resolve) => {
      const probe = net.connect(path, () => (probe.destroy(), resolve(true)));
      probe.on('error', () => resolve(false));
    });
    if (alive) process.exit(0);
    fs.rmSync(path, { force: true }); // a server that died: its socket file stayed
    await listen();
  }
}

/** Whether log() said more than that the server started. */
let problemsLogged = false;

function log(message: string): void {
  problemsLogged = true;
  process.stderr.write(`${new Date().toISOString()} berth-oci-server[${process.pid}]: ${message}\n`);
}
