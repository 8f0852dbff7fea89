/**
 * The TypeScript side of berth-shim (native/shim/berth-shim.c), the small process that stays
 * with a container: starting it (through the runtime's launch protocol, which passes through
 * the shim to berth-nsexec unchanged), talking to its socket, and reading what it writes.
 *
 * The shim's directory holds:
 *   shim.sock  its control socket (while it runs)     shim.pid  its pid (while it runs)
 *   log.json   the output, Docker json-file lines     exit.json {"status","signal","finished"}
 *   log.json.1 ... older output, after rotation       console.sock  where the pty master comes (tty)
 * (the log files elsewhere if ShimLogOptions.file says so).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Transform, type TransformCallback } from 'node:stream';

import { SystemError } from '../common/errors.js';
import { needsState, speakLaunchProtocol, type Launched, type ProtocolOptions } from '../runtime/launch.js';
import { encodePlan, type PlanOp } from '../runtime/plan/plan.js';
import { spawnShim, type ShimProcess } from './spawner.js';

/** Docker's json-file max-size and max-file. */
export interface ShimLogOptions {
  /** The log file, absolute (default: log.json in the shim's directory). */
  file?: string;
  /** Rotate log.json once it holds this many bytes (default: never). */
  maxSize?: number;
  /** How many files to keep, log.json included: log.json.1 ... log.json.(maxFiles-1) (default 1: truncate). */
  maxFiles?: number;
  /** Carried by every line as "attrs" (json-file's labels, env and tag). */
  attrs?: Record<string, string>;
}

/** What the caller of Runtime.create/exec chooses for the shim. */
export interface ShimOptions {
  /** The shim's directory (created if missing). Keep it short: its sockets must fit a socket address. */
  dir: string;
  /** How long the shim serves its socket after the process exits (default 10 s). */
  lingerMs?: number;
  /** Without a terminal: stdin is a pipe that `stream({ stdin: true })` clients write to (else /dev/null). */
  stdin?: boolean;
  /**
   * Read no output until the first `stream` client (or `shutdown`), and then only as fast as
   * the stream clients take it, none dropped for being slow: for exec, whose client attaches
   * just after the process starts. The exit is reported only once its output was streamed.
   */
  hold?: boolean;
  /**
   * Read no output until the first `stream` client (or `release`, `shutdown`), at most this
   * many ms after the launch; not paced. For a container started at once while an attach
   * client is on its way (docker run): it gets the first output without a start step.
   */
  holdMs?: number;
  /** log.json rotation; false: no log file (the default for exec). */
  log?: ShimLogOptions | false;
}

export interface StartedShim extends Launched {
  /** `stage0` is the shim itself here; it outlives us if we exit. */
  shimPid: number;
}

export interface ExitInfo {
  /** The exit code, or 128 + the signal. */
  status: number;
  /** The signal that ended the container's PID 1, or 0. */
  signal: number;
  finished: string;
}

export interface ShimState {
  shim: number;
  /** The container's PID 1 (0 while it is being set up). */
  pid: number;
  status: 'creating' | 'running' | 'stopped';
  exit?: ExitInfo;
}

export interface LogEntry {
  /** The text; a complete line ends with "\n", a part of one does not. */
  log: string;
  stream: 'stdout' | 'stderr';
  /** json-file's extra attributes (labels, env, tag), when the container has some. */
  attrs?: Record<string, string>;
  /** RFC 3339 with nanoseconds, UTC. */
  time: string;
}

/** One frame of Docker's multiplexed stream: 0 stdin, 1 stdout, 2 stderr. */
export interface Frame {
  stream: 0 | 1 | 2;
  data: Buffer;
}

/** Where the shim of `dir` takes the pty master: the plan's console socket for a terminal. */
export function shimConsoleSocket(dir: string): string {
  return path.join(path.resolve(dir), 'console.sock');
}

function shimEnv(opts: ShimOptions & { tty?: boolean }): Record<string, string> {
  const env: Record<string, string> = {};
  if (opts.lingerMs !== undefined) env.BERTH_SHIM_LINGER_MS = String(opts.lingerMs);
  if (opts.tty) env.BERTH_SHIM_TTY = '1';
  if (opts.stdin) env.BERTH_SHIM_STDIN = '1';
  if (opts.hold) env.BERTH_SHIM_HOLD = '1';
  if (opts.holdMs) env.BERTH_SHIM_HOLD_MS = String(Math.max(1, Math.trunc(opts.holdMs)));
  if (opts.log === false) env.BERTH_SHIM_NO_LOG = '1';
  if (opts.log && opts.log.file) env.BERTH_SHIM_LOG_PATH = path.resolve(opts.log.file);
  if (opts.log && opts.log.maxSize) env.BERTH_SHIM_LOG_MAX_SIZE = String(opts.log.maxSize);
  if (opts.log && opts.log.maxFiles) env.BERTH_SHIM_LOG_MAX_FILES = String(opts.log.maxFiles);
  if (opts.log && opts.log.attrs && Object.keys(opts.log.attrs).length) env.BERTH_SHIM_LOG_ATTRS = JSON.stringify(opts.log.attrs);
  if (process.env.BERTH_NSEXEC_TRACE) env.BERTH_NSEXEC_TRACE = '1';
  return env;
}

/**
 * A shim started ahead of its plan: the spawner forks it at once, and the caller launches the
 * container through it when the plan is ready (Runtime.create makes the cgroups meanwhile), or
 * aborts.
 */
export class PreparedShim {
  private readonly started: Promise<ShimProcess>;
  private launched = false;

  constructor(private readonly opts: ShimOptions & { tty?: boolean }) {
    // The shim makes its directory and removes what an earlier run left there.
    this.started = spawnShim(path.resolve(opts.dir), shimEnv(opts));
    this.started.catch(() => undefined); // reported by launch(); abort() needs nothing then
  }

  /**
   * Sends the plan to the shim, which starts berth-nsexec with it; speaks the launch protocol
   * through it. Resolves like launch() once the container is set up (waiting for `start`) and
   * the shim knows its PID 1, so that kill and state work as soon as we return. `holdMs`: as
   * ShimOptions.holdMs, decided after the shim was started.
   */
  async launch(opts: ProtocolOptions & { ops: PlanOp[]; holdMs?: number }): Promise<StartedShim> {
    this.launched = true;
    const shim = await this.started;
    try {
      const plan = encodePlan(opts.ops);
      // Written at once: the socket sends it when connected, an event loop turn sooner.
      const socket = net.connect(path.join(this.opts.dir, 'shim.sock'));
      const hold = opts.holdMs ? ` ${Math.max(1, Math.trunc(opts.holdMs))}` : '';
      socket.write(Buffer.concat([Buffer.from(`launch ${plan.length}${hold}\n`), plan]));
      const pid = await speakLaunchProtocol(socket, needsState(opts.ops), { ...opts, shimInit: true });
      return { pid, stage0: shim, shimPid: shim.pid };
    } catch (err) {
      // The container process was killed if there was one; the shim need not linger.
      await new ShimClient(this.opts.dir).shutdown().catch(() => undefined);
      throw err;
    }
  }

  /** The start was given up before launch(): the shim goes (it removes its files). */
  async abort(): Promise<void> {
    if (this.launched) return;
    this.launched = true;
    const shim = await this.started.catch(() => undefined);
    if (!shim) return;
    await new ShimClient(this.opts.dir).shutdown().catch(() => {
      try {
        process.kill(shim.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
  }
}

/** Talks to a running shim over `<dir>/shim.sock`: one command per connection. */
export class ShimClient {
  readonly socketPath: string;

  constructor(readonly dir: string) {
    this.socketPath = path.join(dir, 'shim.sock');
  }

  private open(command: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.socketPath);
      const failed = (err: Error): void => reject(new SystemError(`cannot reach the shim at ${this.socketPath}: ${err.message}`, { cause: err }));
      socket.once('error', failed);
      socket.once('connect', () => {
        socket.off('error', failed);
        // The command's write can fail before the caller listens (a shim exiting meanwhile:
        // EPIPE): that must not be an unhandled error. The caller finds it in socket.errored.
        socket.on('error', () => undefined);
        socket.write(`${command}\n`);
        resolve(socket);
      });
    });
  }

  /** Sends a command and returns the shim's whole answer (it closes after answering). */
  private async request(command: string): Promise<string> {
    const socket = await this.open(command);
    return new Promise((resolve, reject) => {
      const failed = (err: Error): void => reject(new SystemError(`shim ${command}: ${err.message}`, { cause: err }));
      if (socket.errored) return failed(socket.errored);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('error', failed);
      socket.on('close', () => reject(new SystemError(`shim ${command}: no answer`))); // after an error, or an end (answered then)
      socket.on('end', () => {
        socket.destroy();
        if (text.startsWith('error ')) reject(new SystemError(`shim ${command}: ${text.slice(6).trim()}`));
        else if (!text) reject(new SystemError(`shim ${command}: no answer`));
        else resolve(text.trim());
      });
    });
  }

  async state(): Promise<ShimState> {
    return JSON.parse(await this.request('state')) as ShimState;
  }

  /** Signals the container's PID 1. */
  async kill(signal: number | NodeJS.Signals): Promise<void> {
    const number = typeof signal === 'number' ? signal : os.constants.signals[signal];
    if (!number) throw new SystemError(`unknown signal ${signal}`);
    await this.request(`kill ${number}`);
  }

  /** Resolves with the exit status once the container's PID 1 has exited. */
  async wait(): Promise<ExitInfo> {
    return JSON.parse(await this.request('wait')) as ExitInfo;
  }

  /** Ends a hold (holdMs) without a stream client: the one it waited for is not coming. */
  async release(): Promise<void> {
    await this.request('release');
  }

  /** Lets the shim exit as soon as the container has exited (or now, if it has); releases a hold. */
  async shutdown(): Promise<void> {
    await this.request('shutdown');
  }

  /**
   * As shutdown, and resolves once the shim's process is gone (its pid file, which it removes
   * last, is; at most timeoutMs): another shim may then take the directory.
   */
  async shutdownAndWait(timeoutMs = 2000): Promise<void> {
    const pid = shimPid(this.dir);
    await this.shutdown();
    for (const deadline = Date.now() + timeoutMs; pid !== undefined && Date.now() < deadline; ) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      if (!fs.existsSync(path.join(this.dir, 'shim.pid'))) return;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Sets the terminal's size (rejects if the process has no terminal). */
  async resize(rows: number, cols: number): Promise<void> {
    await this.request(`resize ${Math.trunc(rows)} ${Math.trunc(cols)}`);
  }

  /**
   * The output from now on, as Docker's multiplexed frames (see FrameParser; a terminal's is
   * all stream 1), until the process exits and the shim ends the socket. With `stdin`, what is
   * written to the socket goes to the process's stdin; with `once` too, ending the socket's
   * writable side (socket.end()) closes that stdin (a terminal gets ^D). Resolves once the
   * shim has taken the request, with the socket positioned at the first frame and not
   * flowing: pipe it, iterate it, or add a 'data' listener and resume() it.
   */
  async stream(opts: { stdin?: boolean; once?: boolean } = {}): Promise<net.Socket> {
    const command = ['stream', ...(opts.stdin ? ['stdin'] : []), ...(opts.once ? ['once'] : [])].join(' ');
    const socket = await this.open(command);
    const answer = await new Promise<string>((resolve, reject) => {
      let head = Buffer.alloc(0);
      const finish = (err: Error | undefined, line = ''): void => {
        socket.off('readable', onReadable).off('end', onEnd).off('error', finish).off('close', onEnd);
        if (err) {
          socket.destroy();
          reject(new SystemError(`shim ${command}: ${err.message}`, { cause: err }));
        } else {
          resolve(line);
        }
      };
      const onEnd = (): void => finish(new Error(head.length ? head.toString() : 'no answer'));
      const onReadable = (): void => {
        for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) {
          const nl = chunk.indexOf(10);
          head = Buffer.concat([head, nl < 0 ? chunk : chunk.subarray(0, nl)]);
          if (nl < 0) continue;
          if (nl + 1 < chunk.length) socket.unshift(chunk.subarray(nl + 1));
          return finish(undefined, head.toString());
        }
      };
      if (socket.errored) return finish(socket.errored);
      socket.on('readable', onReadable).on('end', onEnd).on('error', finish).once('close', onEnd);
    });
    if (answer !== 'ok') {
      socket.destroy();
      throw new SystemError(`shim ${command}: ${answer.replace(/^error /, '')}`);
    }
    return socket; // with open()'s listener: an error before the caller listens is not an unhandled one
  }

  /**
   * The log entries written from now on, until the container exits. Resolves once the shim
   * has taken the request, so nothing logged after that is missed.
   */
  async attach(): Promise<AsyncGenerator<LogEntry>> {
    const socket = await this.open('attach');
    const lines = readline.createInterface({ input: socket, crlfDelay: Infinity });
    const it = lines[Symbol.asyncIterator]();
    const close = (): void => {
      lines.close();
      socket.destroy();
    };
    const first = await it.next();
    if (first.done || first.value !== 'ok') {
      close();
      throw new SystemError(`shim attach: ${first.done ? 'no answer' : String(first.value).replace(/^error /, '')}`);
    }
    return (async function* entries(): AsyncGenerator<LogEntry> {
      try {
        for (let next = await it.next(); !next.done; next = await it.next()) yield JSON.parse(next.value) as LogEntry;
      } finally {
        close();
      }
    })();
  }
}

/** The shim's pid from `<dir>/shim.pid`, if it still runs. */
export function shimPid(dir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'shim.pid'), 'utf8'));
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** The container's exit status from `<dir>/exit.json`, once the shim has written it. */
export function readExit(dir: string): ExitInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'exit.json'), 'utf8')) as ExitInfo;
  } catch {
    return undefined;
  }
}

/** Milliseconds since the epoch of an RFC 3339 time with up to nanoseconds (Date takes milliseconds). */
function timeMs(time: string): number {
  return Date.parse(time.replace(/(\.\d{3})\d+/, '$1'));
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Where a shim started without ShimLogOptions.file writes its log. */
export function shimLogFile(dir: string): string {
  return path.join(dir, 'log.json');
}

/**
 * The entries of the log `file` (a shim's log.json) and its rotated files (oldest first): those at or after
 * `since`, and of those the last `tail`. A rotation while reading may repeat or skip entries.
 */
export function readLog(file: string, opts: { since?: Date | string; tail?: number; current?: string } = {}): LogEntry[] {
  let rotated = 0;
  while (fs.existsSync(`${file}.${rotated + 1}`)) rotated++;
  const texts: string[] = [];
  for (let n = rotated; n >= 1; n--) texts.push(readIfExists(`${file}.${n}`));
  // `current`: the caller read the file itself (through a descriptor it goes on following).
  texts.push(opts.current ?? readIfExists(file));
  let entries: LogEntry[] = [];
  for (const line of texts.join('\n').split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      /* an entry being written */
    }
  }
  if (opts.since !== undefined) {
    const since = typeof opts.since === 'string' ? timeMs(opts.since) : opts.since.getTime();
    entries = entries.filter((e) => timeMs(e.time) >= since);
  }
  if (opts.tail !== undefined) entries = opts.tail > 0 ? entries.slice(-opts.tail) : [];
  return entries;
}

/**
 * Splits Docker's multiplexed stream ([stream, 0, 0, 0, length u32 BE] + payload) into
 * frames: those complete in `buffer`, and the bytes of an incomplete one left over.
 */
export function parseFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  while (buffer.length - at >= 8) {
    const stream = buffer[at];
    if (stream > 2 || buffer[at + 1] || buffer[at + 2] || buffer[at + 3]) throw new SystemError(`not a multiplexed stream: header ${buffer.subarray(at, at + 8).toString('hex')}`);
    const length = buffer.readUInt32BE(at + 4);
    if (buffer.length - at - 8 < length) break;
    frames.push({ stream: stream as Frame['stream'], data: buffer.subarray(at + 8, at + 8 + length) });
    at += 8 + length;
  }
  return { frames, rest: buffer.subarray(at) };
}

/** Bytes of a multiplexed stream in, Frame objects out: `(await client.stream()).pipe(new FrameParser())`. */
export class FrameParser extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  constructor() {
    super({ readableObjectMode: true });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      const { frames, rest } = parseFrames(this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk);
      // A copy, so that a small rest does not keep a large chunk alive.
      this.pending = Buffer.from(rest);
      for (const frame of frames) this.push(frame);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    done(this.pending.length ? new SystemError(`the multiplexed stream ended inside a frame (${this.pending.length} bytes)`) : undefined);
  }
}
