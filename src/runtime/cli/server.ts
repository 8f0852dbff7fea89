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
 * Protocol: src/common/command-server.ts's (a request's fields: cwd, identity, argv), and:
 * a connection may start instead with
 *   "plan <token>\n"  it is the plan fd of the berth-nsexec of spawn <token>; we write the plan
 *   "sync <token>\n"  it is that berth-nsexec's sync socket (launch.ts's protocol follows)
 * on a request connection, server -> client, besides output, "ok", "fallback" and "exit":
 *   "spawn <token> <planFd> <syncFd> <path>\n"   connect twice (plan, sync), fork, exec <path>
 *                           with those sockets as planFd and syncFd (after the preserved fds)
 * client -> server, after "ok":
 *   "pid <n>\n"             the berth-nsexec it started;  "spawnerror <message>\n" if it could not
 *   "status <code> <signal>\n"   that berth-nsexec exited (signal number, or 0)
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import os from 'node:os';

import { ClientConnection, ownIdentity, requestFields, serveCommands } from '../../common/command-server.js';
import { SystemError } from '../../common/errors.js';
import { splitLines } from '../../common/lines.js';
import { nativeBinary } from '../../common/paths.js';
import type { Stage0Starter, StartingStage0 } from '../launch.js';
import { HooksNotRunHereError } from '../runtime.js';
import { parseGlobal, runCli } from './cli.js';
import type { CliIo } from './context.js';

/** How long the server stays without connections before it exits. */
const IDLE_MS = Number(process.env.BERTH_OCI_SERVER_IDLE_MS) || 60_000;
/** How long a spawn may take to connect its plan and sync sockets. */
const SPAWN_CONNECT_MS = 10_000;

/** Verbs that are not served (see above). */
const NOT_SERVED = new Set(['update']);

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

  constructor(private readonly conn: ClientConnection) {}

  private readonly io: CliIo = {
    cwd: '/',
    out: (text) => this.conn.out('out', text),
    err: (text) => this.conn.out('err', text),
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
    this.conn.send(`spawn ${token} ${planFd} ${planFd + 1} ${nativeBinary('berth-nsexec')}\n`);
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
    const [cwd, clientIdentity, ...argv] = requestFields(payload);
    if (cwd === undefined || clientIdentity !== identity) return this.conn.fallback('namespaces');
    let verb: string | undefined;
    try {
      verb = parseGlobal(argv).rest[0];
    } catch {
      /* runCli reports it */
    }
    if (verb && NOT_SERVED.has(verb)) return this.conn.fallback(verb);
    this.io.cwd = cwd;
    this.conn.send('ok\n');
    let code: number;
    try {
      code = await runCli(argv, this.io);
    } catch (err) {
      if (err instanceof HooksNotRunHereError) return this.conn.fallback('hooks');
      this.io.err(`berth-oci: ${String((err as Error)?.stack ?? err)}\n`);
      code = 1;
    }
    this.conn.exit(code);
  }
}

/** Serves on `args[0]` until idle (src/common/command-server.ts). */
export async function serve(args: string[]): Promise<number> {
  const socketPath = args[0];
  if (!socketPath) throw new Error('usage: berth-oci.cjs --berth-oci-serve SOCKET');
  const identity = ownIdentity();
  return serveCommands({
    socketPath,
    idleMs: IDLE_MS,
    onConnection: async (sock, { line, payload }) => {
      const [kind, token] = line.split(' ');
      if (payload) {
        const request = new ServedRequest(new ClientConnection(sock));
        sock.setEncoding('utf8');
        sock.on('data', splitLines((l) => request.onLine(l)));
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
    },
  });
}
