/**
 * The client of native/shim/berth-spawner.c: one small long-lived process per daemon that forks
 * and executes each berth-shim, so that Node does not fork itself for every container (Node's
 * spawn blocks the event loop ~3 ms while it forks the daemon and waits for the exec).
 *
 * `spawnShim(dir, env)` resolves once the shim listens on `<dir>/shim.sock`, with a
 * ShimProcess: the shim's pid, and an 'exit' event when the spawner reaps it. The spawner
 * starts with the first shim, is unref'd (it never keeps us running), and ends with us; the
 * shims do not (see berth-spawner.c).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';

import { SystemError } from '../common/errors.js';
import { splitLines } from '../common/lines.js';
import { nativeBinary } from '../common/paths.js';
import { encodePlan } from '../runtime/plan/plan.js';
import type { NetnsSource, TakenNetns } from '../runtime/netns.js';

/** A shim started through the spawner: what tests and callers use of a ChildProcess. */
export class ShimProcess extends EventEmitter {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;

  constructor(readonly pid: number) {
    super();
  }

  /** The spawner keeps nothing of ours alive: nothing to do. */
  unref(): void {}

  /** @internal the spawner reaped it: `status` is the code, or 128 + the signal. */
  exited(status: number): void {
    if (status > 128) this.signalCode = (Object.entries(os.constants.signals).find(([, n]) => n === status - 128)?.[0] as NodeJS.Signals | undefined) ?? null;
    this.exitCode = this.signalCode ? null : status;
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

interface Pending {
  shim?: ShimProcess;
  resolve(shim: ShimProcess): void;
  reject(err: Error): void;
}

/** A netns request waiting for its "pid" line, then for "netns-ready PID". */
interface PendingNetns {
  netns: true;
  resolve(pid: number): void;
  reject(err: Error): void;
}

class Spawner {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  /** Spawn requests waiting for their "pid" line, in order. */
  private readonly queue: Array<Pending | PendingNetns> = [];
  /** Network namespace holders by pid, until they are ready. */
  private readonly netns = new Map<number, PendingNetns>();
  /** Shims by pid, until they exit; `pending` until they listen. */
  private readonly shims = new Map<number, { process: ShimProcess; pending?: Pending }>();
  /** "listening"/"failed" lines that came before the spawner's "pid" line for that shim. */
  private readonly early = new Map<number, string>();
  private dead: Error | undefined;

  constructor() {
    this.child = spawn(nativeBinary('berth-spawner'), [nativeBinary('berth-shim'), nativeBinary('berth-nsexec')], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.unref();
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (s: string) => {
      this.onData(s);
      this.idle();
    });
    this.child.stdin.on('error', () => undefined); // reported through 'exit'
    this.child.on('error', (err) => this.die(new SystemError(`cannot start berth-spawner: ${err.message}`, { cause: err })));
    this.child.on('exit', (code, signal) => this.die(new SystemError(`berth-spawner exited (${signal ?? code})`)));
    this.idle();
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Its pipes keep the event loop alive only while a spawn waits for an answer. */
  private idle(): void {
    const busy = this.queue.length > 0 || this.netns.size > 0 || [...this.shims.values()].some((s) => s.pending);
    const handles = [this.child.stdout, this.child.stdin] as unknown as Array<{ ref?(): void; unref?(): void }>;
    for (const h of handles) (busy ? h.ref : h.unref)?.call(h);
  }

  private die(err: Error): void {
    this.dead ??= err;
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const s of this.shims.values()) s.pending?.reject(err);
    this.shims.clear();
    for (const n of this.netns.values()) n.reject(err);
    this.netns.clear();
  }

  private readonly onData = splitLines((line) => this.onLine(line));

  private onLine(line: string): void {
    const [verb, pidText, ...rest] = line.split(' ');
    const pid = Number(pidText);
    if (verb === 'pid') {
      const pending = this.queue.shift();
      if (!pending) return;
      if (!pid) return pending.reject(new SystemError(`cannot start berth-shim: ${rest.join(' ')}`));
      if ('netns' in pending) {
        this.netns.set(pid, pending);
        const early = this.early.get(pid);
        this.early.delete(pid);
        if (early) this.onLine(early);
        return;
      }
      const entry = { process: new ShimProcess(pid), pending };
      this.shims.set(pid, entry);
      const early = this.early.get(pid);
      this.early.delete(pid);
      if (early) this.onLine(early);
    } else if (verb === 'netns-ready' || verb === 'netns-failed') {
      const pending = this.netns.get(pid);
      if (!pending) return void this.early.set(pid, line);
      this.netns.delete(pid);
      if (verb === 'netns-ready') pending.resolve(pid);
      else pending.reject(new SystemError(`cannot make a network namespace: ${rest.join(' ')}`));
    } else if (verb === 'listening' || verb === 'failed') {
      const entry = this.shims.get(pid);
      if (!entry) return void this.early.set(pid, line);
      const pending = entry.pending;
      entry.pending = undefined;
      if (verb === 'listening') pending?.resolve(entry.process);
      else pending?.reject(new SystemError(`berth-shim: ${rest.join(' ')}`));
    } else if (verb === 'exit') {
      const holder = this.netns.get(pid);
      if (holder) {
        this.netns.delete(pid);
        holder.reject(new SystemError(`the network namespace holder exited (status ${rest[0]}) before it was ready`));
      }
      const entry = this.shims.get(pid);
      if (!entry) return;
      this.shims.delete(pid);
      entry.pending?.reject(new SystemError(`berth-shim exited (status ${rest[0]}) before it was ready`));
      entry.process.exited(Number(rest[0]));
    }
  }

  spawn(dir: string, env: Record<string, string>): Promise<ShimProcess> {
    if (this.dead) return Promise.reject(this.dead);
    const request = encodePlan([['spawn', dir, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)]]);
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.idle();
      this.child.stdin.write(request);
    });
  }

  /** Forks a process that makes a network namespace and waits to be killed; resolves with its pid once the namespace exists. */
  netnsHolder(): Promise<number> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.queue.push({ netns: true, resolve, reject });
      this.idle();
      this.child.stdin.write('netns 0\n');
    });
  }
}

let spawner: Spawner | undefined;

/** Starts berth-shim in `dir` with exactly `env` (plus what the spawner adds); resolves once it listens. */
export function spawnShim(dir: string, env: Record<string, string>): Promise<ShimProcess> {
  if (!spawner?.alive) spawner = new Spawner();
  return spawner.spawn(dir, env);
}

/**
 * Network namespaces made ahead of time, for containers that want a new one (Runtime's
 * `netns` option): a new network namespace is ~0.6 ms of the ~1 ms that clone() takes here, and
 * the pool makes the next one while no container waits. Each is a descriptor of ours on the
 * namespace (its maker, forked by the spawner, is gone). A namespace made ahead is as new as one
 * made by clone(): made by root of the host's user namespace, from the host's network namespace.
 */
export class NetnsPool implements NetnsSource {
  private readonly ready: number[] = [];
  private filling = 0;
  private disabled = false;

  constructor(private readonly size = 2) {}

  /** How many are ready to be taken. */
  get available(): number {
    return this.ready.length;
  }

  take(): TakenNetns | undefined {
    const fd = this.ready.shift();
    // The next is made while the daemon waits for this container's setup (a CPU is free then;
    // after a delete, the daemon and the kernel's cleanup of the last namespace want both):
    // asked for at the next turn, once the container's plan is sent.
    setImmediate(() => this.fill());
    if (fd === undefined) return undefined;
    let released = false;
    return {
      path: `/proc/${process.pid}/fd/${fd}`,
      // The container holds the namespace once its process is in it: ours goes.
      release: () => {
        if (released) return;
        released = true;
        fs.closeSync(fd);
      },
    };
  }

  /** Makes namespaces until the pool is full (in the background). */
  fill(): void {
    while (!this.disabled && this.ready.length + this.filling < this.size) {
      this.filling++;
      if (!spawner?.alive) spawner = new Spawner();
      spawner
        .netnsHolder()
        .then((pid) => {
          try {
            const fd = fs.openSync(`/proc/${pid}/ns/net`, 'r');
            if (this.disabled) fs.closeSync(fd); // closed meanwhile
            else this.ready.push(fd);
          } finally {
            process.kill(pid, 'SIGKILL');
          }
        })
        .catch(() => {
          this.disabled = true; // not allowed here (e.g. no CAP_SYS_ADMIN): clone() makes them
        })
        .finally(() => this.filling--);
    }
  }

  close(): void {
    this.disabled = true;
    for (const fd of this.ready.splice(0)) fs.closeSync(fd);
  }
}
