/** Shared by the real-hierarchy cgroup tests: child processes and managers that must go, even when a test fails. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

import type { CgroupManager } from './types.js';

export class RealCgroupFixture {
  readonly children: ChildProcess[] = [];
  readonly managers: CgroupManager[] = [];

  /** A `sleep 30` child, killed at cleanup. */
  sleeper(): ChildProcess {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    this.children.push(child);
    return child;
  }

  /** Kills the children, waits briefly for the kernel to reap them, then thaws and destroys every manager. */
  cleanup(): void {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const deadline = Date.now() + 2000;
    while (this.children.some((c) => c.exitCode === null && c.signalCode === null && isAlive(c.pid!)) && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
    for (const m of this.managers) {
      try {
        m.thaw();
      } catch {
        // not frozen, or no freezer
      }
      try {
        m.destroy();
      } catch (err) {
        console.error('cleanup:', err);
      }
    }
  }
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export function exited(child: ChildProcess): Promise<string | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}
