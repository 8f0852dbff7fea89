/**
 * Carrying out the mounts a snapshotter returns (it describes them, containerd-style; the engine
 * mounts). mount(8) rather than a binding of mount(2): Node has none, and one fork per container
 * start is cheap next to the rest of it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

import { SystemError } from '../common/errors.js';
import { parseMountinfo } from '../common/mountinfo.js';
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
