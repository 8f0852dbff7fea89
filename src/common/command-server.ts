/**
 * A command server: one Node process that runs the command lines of a program for its native
 * clients (native/client/served.c), so that a command costs the client's exec and a round
 * trip instead of a Node start. The berth-oci server (src/runtime/cli/server.ts) and the berth
 * CLI server (src/cli/server.ts) are two; this is what they share: the socket (one server per
 * path: a second one started meanwhile leaves), the first line of each connection, the
 * identity a client must share, the exit when idle, the log.
 *
 * A connection starts with "request <n>\n" and n bytes of NUL-terminated fields (or, for the
 * runtime's, another first line); the server answers "fallback <reason>\n" (the client runs
 * the command itself: nothing was done) or "ok\n", then "out <n>\n"/"err <n>\n" + n bytes
 * for the client's stdout and stderr, and "exit <code>\n".
 */
import fs from 'node:fs';
import net from 'node:net';

/** Limits on what a connection may send before it is known. */
const MAX_HEADER = 256;
const MAX_REQUEST = 1 << 20;

/**
 * What must be the same for a client's paths and pids to mean here what they mean there: its
 * mount, pid, user, cgroup and network namespaces and its root directory. The client sends the
 * same string (native/client/served.c, served_identity()).
 */
export function ownIdentity(withUser = false): string {
  const ns = (name: string): string => fs.statSync(`/proc/self/ns/${name}`, { bigint: true }).ino.toString();
  const root = fs.statSync('/', { bigint: true });
  const id = `mnt:${ns('mnt')} pid:${ns('pid')} user:${ns('user')} cgroup:${ns('cgroup')} net:${ns('net')} root:${root.dev}:${root.ino}`;
  if (!withUser) return id;
  // A server of another user, or with other groups, would act with rights the client lacks or has not.
  const groups = [...new Set(process.getgroups?.() ?? [])].sort((a, b) => a - b);
  return `${id} uid:${process.geteuid?.()} gid:${process.getegid?.()} groups:${groups.join(',')}`;
}

/** A connection that ended before its first line; `empty` if it sent nothing at all (a probe). */
export class EndedBeforeHeaderError extends Error {
  constructor(readonly empty: boolean) {
    super('connection ended before its header');
  }
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
    const onEnd = (): void => done(new EndedBeforeHeaderError(buffered.length === 0));
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

/** A request's fields (each ended by a NUL). */
export function requestFields(payload: Buffer): string[] {
  const fields = payload.toString('utf8').split('\0');
  fields.pop();
  return fields;
}

/** What a served command's output and end go through. */
export class ClientConnection {
  constructor(readonly socket: net.Socket) {}

  send(text: string, data?: string | Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(text);
    if (data !== undefined) this.socket.write(data);
  }

  out(kind: 'out' | 'err', data: string | Buffer): void {
    this.send(`${kind} ${typeof data === 'string' ? Buffer.byteLength(data) : data.length}\n`, data);
  }

  fallback(reason: string): void {
    this.send(`fallback ${reason}\n`);
    this.socket.end();
  }

  exit(code: number): void {
    this.send(`exit ${code}\n`);
    this.socket.end();
  }
}

/**
 * Serves on socketPath until no connection has been open for idleMs; `onConnection` gets each
 * one with its first line. Never resolves (the process exits).
 */
export async function serveCommands(opts: { socketPath: string; idleMs: number; onConnection(sock: net.Socket, header: { line: string; payload?: Buffer }): Promise<void> }): Promise<never> {
  const { socketPath } = opts;
  let connections = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let socketIno: bigint | undefined;

  const server = net.createServer((sock) => {
    connections++;
    clearTimeout(idleTimer);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (--connections === 0) idleTimer = setTimeout(stop, opts.idleMs);
    });
    void readHeader(sock)
      .then((header) => opts.onConnection(sock, header))
      .catch((err: unknown) => {
        // A server starting beside us checks whether one answers here: not a problem of ours.
        if (!(err instanceof EndedBeforeHeaderError && err.empty)) log(`connection: ${(err as Error).message}`);
        sock.destroy();
      });
  });

  // Not server.close(): libuv would unlink the socket's path, which may be another server's by now.
  const stop = (): void => {
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
  idleTimer = setTimeout(stop, opts.idleMs);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Node would open its inspector on 127.0.0.1:9229 at SIGUSR1, a debugger of this server (as
  // its user) that any local user may connect to: a listener keeps it shut.
  process.on('SIGUSR1', () => log('SIGUSR1 ignored'));
  process.on('uncaughtException', (err) => {
    log(`uncaught: ${err.stack ?? err.message}`);
    stop();
  });
  process.on('unhandledRejection', (err) => log(`unhandled rejection: ${String((err as Error)?.stack ?? err)}`));
  log(`serving on ${socketPath}`);
  problemsLogged = false;
  return new Promise<never>(() => undefined); // until stop()
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

export function log(message: string): void {
  problemsLogged = true;
  process.stderr.write(`${new Date().toISOString()} ${process.argv[2]?.replace(/^--/, '') ?? 'server'}[${process.pid}]: ${message}\n`);
}
