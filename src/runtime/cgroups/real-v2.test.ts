/**
 * The v2 manager against a real cgroup2 hierarchy, as root. On a hybrid host there is no
 * separate cgroup2 to mount, but the `unified` mount IS a cgroup2 hierarchy (with few or no
 * controllers): a v2 manager is pointed at it through a descriptor,
 * `cgroupManagerFromDescriptor({ mode: 'v2', paths: { unified: '<mount>/berth-test-…' } })`,
 * which exercises create/join/freeze/thaw/pids/cgroup.kill/destroy for real. On a pure v2 host
 * the same test runs under /sys/fs/cgroup.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { after, test } from 'node:test';

import { exited, RealCgroupFixture } from './real.testutil.js';
import { UnsupportedError } from '../../common/errors.js';
import { parseMountinfo } from './detect.js';
import { cgroupManagerFromDescriptor } from './index.js';

const isRoot = process.getuid?.() === 0;
const cgroup2Mount = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.fsType === 'cgroup2')?.mountPoint;
const skip = !isRoot ? 'needs root' : !cgroup2Mount ? 'no cgroup2 mount' : false;

const fixture = new RealCgroupFixture();
const managers = fixture.managers;
let rootSubtreeBefore: string | undefined;

after(() => {
  fixture.cleanup();
  // create() enables controllers in the hierarchy root (as runc does); undo what we added.
  if (cgroup2Mount && rootSubtreeBefore !== undefined) {
    const before = new Set(rootSubtreeBefore.split(/\s+/).filter(Boolean));
    const now = fs.readFileSync(`${cgroup2Mount}/cgroup.subtree_control`, 'utf8').split(/\s+/).filter(Boolean);
    for (const controller of now.filter((c) => !before.has(c))) {
      try {
        fs.writeFileSync(`${cgroup2Mount}/cgroup.subtree_control`, `-${controller}`);
      } catch {
        // in use by someone else's cgroup by now
      }
    }
  }
});

function sleeper(): ChildProcess {
  const child = fixture.sleeper();
  assert.ok(child.pid);
  return child;
}

test('v2 on a real cgroup2 hierarchy: create, join, freeze/thaw, recursive pids, cgroup.kill, destroy', { skip }, async () => {
  rootSubtreeBefore = fs.readFileSync(`${cgroup2Mount}/cgroup.subtree_control`, 'utf8');
  const base = `berth-test-${process.pid}-v2`;
  const dir = `${cgroup2Mount}/${base}/ctr`;
  const m = cgroupManagerFromDescriptor({ mode: 'v2', paths: { unified: dir } });
  managers.push(m);
  const available = fs.readFileSync(`${cgroup2Mount}/cgroup.controllers`, 'utf8').split(/\s+/);

  // A limit whose controller this hierarchy lacks fails with the field named, and leaves nothing behind.
  if (!available.includes('pids')) {
    assert.throws(() => m.create({ pids: { limit: 10 } }), (e: unknown) => e instanceof UnsupportedError && /linux\.resources\.pids\.limit.*pids controller is not available/.test(e.message));
    m.destroy();
    assert.ok(!fs.existsSync(`${cgroup2Mount}/${base}`));
  }
  const hugetlb = available.includes('hugetlb') ? { hugepageLimits: [{ pageSize: '2MB', limit: 2 * 1024 * 1024 }] } : {};
  m.create(hugetlb);
  assert.deepEqual(m.toJSON().createdDirs, [`${cgroup2Mount}/${base}`, dir]);
  if (available.includes('hugetlb')) assert.equal(fs.readFileSync(`${dir}/hugetlb.2MB.max`, 'utf8').trim(), String(2 * 1024 * 1024));

  const first = sleeper();
  const second = sleeper();
  assert.deepEqual(m.procsFiles(), [`${dir}/cgroup.procs`]);
  m.addProcess(first.pid!);
  assert.match(fs.readFileSync(`/proc/${first.pid}/cgroup`, 'utf8'), new RegExp(`^0::/${base}/ctr$`, 'm'));
  // The container's own sub-cgroup: pids() and destroy() must see into it.
  fs.mkdirSync(`${dir}/inner`);
  fs.writeFileSync(`${dir}/inner/cgroup.procs`, String(second.pid));
  assert.deepEqual(m.pids().sort(), [first.pid, second.pid].sort());

  m.freeze();
  assert.match(fs.readFileSync(`${dir}/cgroup.events`, 'utf8'), /^frozen 1$/m);
  assert.equal(m.isFrozen(), true);
  m.thaw();
  assert.equal(m.isFrozen(), false);
  // The kernel thaws after the write returns (a thaw is not waited for, as runc's is not):
  // cgroup.events says so a moment later.
  const thawed = (): boolean => /^frozen 0$/m.test(fs.readFileSync(`${dir}/cgroup.events`, 'utf8'));
  for (let i = 0; i < 100 && !thawed(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(thawed(), fs.readFileSync(`${dir}/cgroup.events`, 'utf8'));

  m.signalAll('SIGKILL'); // via cgroup.kill
  assert.equal(await exited(first), 'SIGKILL');
  assert.equal(await exited(second), 'SIGKILL');
  m.destroy();
  assert.ok(!fs.existsSync(dir));
  assert.ok(!fs.existsSync(`${cgroup2Mount}/${base}`));
  m.destroy(); // idempotent
});

test('v2 on a real cgroup2 hierarchy: signalAll with a catchable signal uses freeze + kill', { skip }, async () => {
  const dir = `${cgroup2Mount}/berth-test-${process.pid}-v2b`;
  const m = cgroupManagerFromDescriptor({ mode: 'v2', paths: { unified: dir } });
  managers.push(m);
  m.create();
  const child = sleeper();
  m.addProcess(child.pid!);
  m.signalAll('SIGTERM');
  assert.equal(await exited(child), 'SIGTERM');
  assert.equal(m.isFrozen(), false, 'thawed again after signalling');
  m.destroy();
  assert.ok(!fs.existsSync(dir));
});
