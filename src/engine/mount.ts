/**
 * Carrying out the mounts a snapshotter returns (it describes them, containerd-style; the engine
 * mounts). mount(8) rather than a binding of mount(2): Node has none, and one fork per container
 * start is cheap next to the rest of it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { SystemError } from '../common/errors.js';
import { parseMountinfo } from '../common/mountinfo.js';
import { FsOp } from '../storage/fsop.js';
import type { Mount } from '../storage/snapshotter.js';

export function mountAll(mounts: Mount[], target: string): void {
  fs.mkdirSync(target, { recursive: true });
  for (const m of mounts) {
    const args = m.type === 'bind' ? ['--bind', m.source, target] : ['-t', m.type, m.source, '-o', m.options.join(','), target];
    run(args);
    if (m.type === 'bind' && m.options.includes('ro')) run(['-o', 'remount,bind,ro', target]);
  }
}

function run(args: string[]): void {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new SystemError(`mount ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
}

export function isMountPoint(target: string): boolean {
  try {
    return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === target);
  } catch {
    return false;
  }
}

/** Unmounts target (all stacked mounts), lazily if it is busy; no error if nothing is mounted. */
export function unmount(target: string): void {
  for (let i = 0; i < 8 && isMountPoint(target); i++) {
    const r = spawnSync('umount', [target], { stdio: 'ignore' });
    if (r.status !== 0) spawnSync('umount', ['-l', target], { stdio: 'ignore' });
  }
}

/**
 * Mounts and unmounts beneath one directory (the exec root) through a long-lived berth-fsop:
 * microseconds a request instead of a mount(8) process (~3-5 ms each, twice per container run).
 * Targets outside the directory, and anything the helper refuses, fall back to mount(8).
 */
export class Mounter {
  private fsop: FsOp | undefined;

  constructor(private readonly root: string) {}

  private helper(): FsOp {
    if (!this.fsop) {
      // Its pipes keep the event loop alive: close() ends it (Engine.close, the daemon's exit).
      this.fsop = new FsOp(this.root);
    }
    return this.fsop;
  }

  private relative(target: string): string | undefined {
    const rel = path.relative(this.root, target);
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : undefined;
  }

  async mountAll(mounts: Mount[], target: string): Promise<void> {
    fs.mkdirSync(target, { recursive: true });
    const rel = this.relative(target);
    if (!rel) return mountAll(mounts, target);
    for (const m of mounts) {
      if (m.type === 'bind') await this.helper().call('mount', ['bind', m.source, rel, m.options.includes('ro') ? 'ro' : '']);
      else await this.helper().call('mount', [m.type, m.source, rel, m.options.join(',')]);
    }
  }

  async unmount(target: string): Promise<void> {
    const rel = this.relative(target);
    if (!rel) return unmount(target);
    await this.helper().call('umount', [rel]);
  }

  close(): void {
    this.fsop?.kill();
    this.fsop = undefined;
  }
}
