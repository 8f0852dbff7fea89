/**
 * The TypeScript side of berth-shim (native/shim/berth-shim.c), the small process that stays
 * with a container: starting it (through the runtime's launch protocol, which passes through
 * the shim to berth-nsexec unchanged), talking to its socket, and reading what it writes.
 *
 * The shim's directory holds:
 *   shim.sock  its control socket (while it runs)     shim.pid  its pid (while it runs)
 *   log.json   the output, Docker json-file lines     exit.json {"status","signal","finished"}
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import { SystemError } from '../common/errors.js';
import { nativeBinary } from '../common/paths.js';
import { launch, type Launched } from '../runtime/launch.js';
import type { PlanOp } from '../runtime/plan/plan.js';

export interface StartShimOptions {
  /** The shim's directory (created if missing). Keep it short: shim.sock must fit a socket address. */
  dir: string;
  /** A create plan (compileCreatePlan, not foreground, no console socket, no preserved fds). */
  ops: PlanOp[];
  stateFor(pid: number): object;
  onSync?(name: string, pid: number): Promise<void> | void;
  /** How long the shim serves its socket after the container exits (default 10 s). */
  lingerMs?: number;
}

export interface StartedShim extends Launched {
  /** `stage0` is the shim itself here; it is unref'd, and outlives us if we exit. */
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
  /** RFC 3339 with nanoseconds, UTC. */
  time: string;
}

/**
 * Starts berth-shim, which starts berth-nsexec with the plan. Resolves like launch() once the
 * container is set up (waiting for `start`), with its pid.
 */
export async function startShim(opts: StartShimOptions): Promise<StartedShim> {
  fs.mkdirSync(opts.dir, { recursive: true });
  for (const stale of ['exit.json', 'shim.sock', 'shim.pid']) fs.rmSync(path.join(opts.dir, stale), { force: true });
  let launched: Launched;
  try {
    launched = await launch({
      ops: opts.ops,
      stdio: ['ignore', 'ignore', 'ignore'],
      stateFor: opts.stateFor,
      onSync: opts.onSync,
      binary: nativeBinary('berth-shim'),
      args: [opts.dir],
      env: { BERTH_NSEXEC: nativeBinary('berth-nsexec'), ...(opts.lingerMs !== undefined ? { BERTH_SHIM_LINGER_MS: String(opts.lingerMs) } : {}) },
    });
  } catch (err) {
    // launch() killed the container process if there was one; the shim need not linger.
    await new ShimClient(opts.dir).shutdown().catch(() => undefined);
    throw err;
  }
  launched.stage0.unref();
  // The container reports "ready" before the shim may have reaped stage 0 and so learnt its
  // PID 1: wait for that, so that kill and state work as soon as we return.
  const client = new ShimClient(opts.dir);
  for (const deadline = Date.now() + 5000; ; ) {
    const state = await client.state();
    if (state.pid === launched.pid) break;
    if (state.pid || Date.now() > deadline) throw new SystemError(`the shim did not find the container's process (it has ${state.pid || 'none'}, not ${launched.pid})`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return { ...launched, shimPid: launched.stage0.pid ?? 0 };
}

/** Talks to a running shim over `<dir>/shim.sock`: one command per connection. */
export class ShimClient {
  readonly socketPath: string;

  constructor(readonly dir: string) {
    this.socketPath = path.join(dir, 'shim.sock');
  }

  private connect(command: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.socketPath);
      const failed = (err: Error): void => reject(new SystemError(`cannot reach the shim at ${this.socketPath}: ${err.message}`, { cause: err }));
      socket.once('error', failed);
      socket.once('connect', () => {
        socket.off('error', failed);
        socket.write(`${command}\n`);
        resolve(socket);
      });
    });
  }

  /** Sends a command and returns the shim's whole answer (it closes after answering). */
  private async request(command: string): Promise<string> {
    const socket = await this.connect(command);
    return new Promise((resolve, reject) => {
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('error', (err) => reject(new SystemError(`shim ${command}: ${err.message}`, { cause: err })));
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

  /** Lets the shim exit as soon as the container has exited (or now, if it has). */
  async shutdown(): Promise<void> {
    await this.request('shutdown');
  }

  /**
   * The log entries written from now on, until the container exits. Resolves once the shim
   * has taken the request, so nothing logged after that is missed.
   */
  async attach(): Promise<AsyncGenerator<LogEntry>> {
    const socket = await this.connect('attach');
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

/** The entries of `<dir>/log.json`: those at or after `since`, and of those the last `tail`. */
export function readLog(dir: string, opts: { since?: Date | string; tail?: number } = {}): LogEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'log.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
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
