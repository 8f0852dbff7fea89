/**
 * Against this machine's real cgroup v1 (or hybrid) hierarchies, as root. Skipped elsewhere.
 * Every test registers its children and managers for cleanup, which runs even when it fails.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { after, test } from 'node:test';

import { exited, RealCgroupFixture } from './real.testutil.js';
import { UnsupportedError } from '../../common/errors.js';
import { detectCgroupMode, openCgroupManager } from './index.js';

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
let mode: string;
try {
  mode = detectCgroupMode();
} catch {
  mode = 'none';
}
const skip = !isRoot ? 'needs root' : mode !== 'v1' && mode !== 'hybrid' ? `needs cgroup v1 (this host: ${mode})` : false;

let counter = 0;
const uniqueName = (): string => `berth-test-${process.pid}-${++counter}`;
const fixture = new RealCgroupFixture();
const managers = fixture.managers;

after(() => {
  fixture.cleanup();
});

function sleeper(): ChildProcess {
  const child = fixture.sleeper();
  assert.ok(child.pid);
  return child;
}

const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();

test('v1: create with limits, join, freeze/thaw, pids, stats, update, signalAll, destroy', { skip }, async () => {
  const name = uniqueName();
  const m = openCgroupManager({ cgroupsPath: `/${name}`, containerId: name });
  managers.push(m);
  assert.equal(m.mode, mode);
  m.create({
    memory: { limit: 64 * MiB, swap: 128 * MiB },
    pids: { limit: 50 },
    cpu: { shares: 512, quota: 20000, period: 100000 },
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    ],
  });
  const { paths } = m.toJSON();
  assert.equal(read(`${paths.memory}/memory.limit_in_bytes`), String(64 * MiB));
  assert.equal(read(`${paths.memory}/memory.memsw.limit_in_bytes`), String(128 * MiB));
  assert.equal(read(`${paths.pids}/pids.max`), '50');
  assert.equal(read(`${paths.cpu}/cpu.shares`), '512');
  assert.equal(read(`${paths.cpu}/cpu.cfs_quota_us`), '20000');
  assert.equal(read(`${paths.devices}/devices.list`), 'c 1:3 rwm');

  const child = sleeper();
  m.addProcess(child.pid!);
  const procCgroup = fs.readFileSync(`/proc/${child.pid}/cgroup`, 'utf8');
  assert.match(procCgroup, new RegExp(`:memory:/${name}$`, 'm'));
  assert.match(procCgroup, new RegExp(`:pids:/${name}$`, 'm'));
  if (mode === 'hybrid') assert.match(procCgroup, new RegExp(`^0::/${name}$`, 'm'));
  assert.deepEqual(m.pids(), [child.pid]);

  m.freeze();
  assert.equal(read(`${paths.freezer}/freezer.state`), 'FROZEN');
  assert.equal(m.isFrozen(), true);
  m.thaw();
  assert.equal(read(`${paths.freezer}/freezer.state`), 'THAWED');
  assert.equal(m.isFrozen(), false);

  const stats = m.stats();
  assert.equal(stats.pidsCurrent, 1);
  assert.equal(stats.pidsLimit, 50);
  assert.equal(stats.memoryLimit, 64 * MiB);
  assert.ok((stats.memoryUsage ?? -1) >= 0);
  assert.ok((stats.cpuUsageNanos ?? -1) >= 0);
  assert.equal(stats.oomKills, 0, 'memory.oom_control has its oom_kill count');

  // Raise (memsw must go first), then lower (limit first); pids 0 = unlimited.
  m.update({ memory: { limit: 256 * MiB, swap: 512 * MiB }, pids: { limit: 0 } });
  assert.equal(read(`${paths.memory}/memory.limit_in_bytes`), String(256 * MiB));
  assert.equal(read(`${paths.memory}/memory.memsw.limit_in_bytes`), String(512 * MiB));
  assert.equal(read(`${paths.pids}/pids.max`), 'max');
  m.update({ memory: { limit: 32 * MiB, swap: 48 * MiB } });
  assert.equal(read(`${paths.memory}/memory.limit_in_bytes`), String(32 * MiB));
  assert.equal(read(`${paths.memory}/memory.memsw.limit_in_bytes`), String(48 * MiB));

  // A value the kernel refuses names the field.
  assert.throws(() => m.update({ cpu: { cpus: '4096' } }), /linux\.resources\.cpu\.cpus/);

  m.signalAll('SIGTERM');
  assert.equal(await exited(child), 'SIGTERM');
  m.destroy();
  for (const dir of new Set(Object.values(paths))) assert.ok(!fs.existsSync(dir), `${dir} removed`);
});

test('v1: kill --all on a paused container, sub-cgroups are listed and removed', { skip }, async () => {
  const name = uniqueName();
  const m = openCgroupManager({ cgroupsPath: `/berth-test-parent-${process.pid}/${name}`, containerId: name });
  managers.push(m);
  m.create({ pids: { limit: 10 } });
  const { paths, createdDirs } = m.toJSON();
  assert.ok(createdDirs?.includes(`/sys/fs/cgroup/pids/berth-test-parent-${process.pid}`));

  const first = sleeper();
  const second = sleeper();
  m.addProcess(first.pid!);
  // A nested cgroup (as a container might create for itself) in the pids hierarchy.
  fs.mkdirSync(`${paths.pids}/nested`);
  fs.writeFileSync(`${paths.pids}/nested/cgroup.procs`, String(second.pid));
  for (const [key, dir] of Object.entries(paths)) if (key !== 'pids' && !key.startsWith('name=') && key !== 'unified') fs.writeFileSync(`${dir}/cgroup.procs`, String(second.pid));
  assert.deepEqual(m.pids().sort(), [first.pid, second.pid].sort());

  m.freeze();
  assert.match(fs.readFileSync(`/proc/${first.pid}/status`, 'utf8'), /^State:\s+D/m, 'v1 freezer shows frozen tasks in D state');
  m.signalAll('SIGKILL');
  assert.equal(await exited(first), 'SIGKILL');
  assert.equal(await exited(second), 'SIGKILL');
  m.destroy();
  for (const dir of [...new Set(Object.values(paths)), ...(createdDirs ?? [])]) assert.ok(!fs.existsSync(dir), `${dir} removed`);
});

test('v1: default cgroupsPath is the container id under our own cgroup (the memory one is nested here)', { skip }, () => {
  const name = uniqueName();
  const m = openCgroupManager({ containerId: name });
  managers.push(m);
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8');
  const ownMemory = /^\d+:memory:(.*)$/m.exec(own)?.[1] ?? '/';
  assert.equal(m.toJSON().paths.memory, `/sys/fs/cgroup/memory${ownMemory === '/' ? '' : ownMemory}/${name}`);
  m.create({ memory: { limit: 16 * MiB } });
  assert.equal(read(`${m.toJSON().paths.memory}/memory.limit_in_bytes`), String(16 * MiB));
  m.destroy();
  assert.ok(!fs.existsSync(m.toJSON().paths.memory));
  assert.ok(fs.existsSync(`/sys/fs/cgroup/memory${ownMemory}`), 'own cgroup untouched');
});

test('hybrid: hugetlb limits land in the unified directory when hugetlb is only a v2 controller', { skip: skip || (mode !== 'hybrid' ? 'needs hybrid' : false) }, (t) => {
  const m = openCgroupManager({ cgroupsPath: `/${uniqueName()}`, containerId: 'x' });
  managers.push(m);
  const { paths } = m.toJSON();
  const unifiedControllers = read(`${paths.unified.slice(0, paths.unified.lastIndexOf("/"))}/cgroup.controllers`).split(/\s+/);
  if (paths.hugetlb !== undefined || !unifiedControllers.includes('hugetlb')) {
    t.skip('hugetlb is a v1 controller here, or absent from the unified hierarchy');
    return;
  }
  // Enabling hugetlb in the unified root is a host-wide change: undo it if it was ours.
  const rootSubtree = '/sys/fs/cgroup/unified/cgroup.subtree_control';
  const hadHugetlb = read(rootSubtree).split(/\s+/).includes('hugetlb');
  try {
    m.create({ hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }] });
    assert.equal(read(`${paths.unified}/hugetlb.2MB.max`), String(4 * MiB));
    m.destroy();
    assert.ok(!fs.existsSync(paths.unified));
  } finally {
    m.destroy();
    if (!hadHugetlb) {
      try {
        fs.writeFileSync(rootSubtree, '-hugetlb');
      } catch {
        // another cgroup uses it now
      }
    }
  }
});

test('v1: a controller that is not mounted is a clear error', { skip }, (t) => {
  const m = openCgroupManager({ cgroupsPath: `/${uniqueName()}`, containerId: 'x' });
  managers.push(m);
  if (m.toJSON().paths.net_cls !== undefined) {
    t.skip('net_cls is mounted here');
    return;
  }
  assert.throws(() => m.create({ network: { classID: 42 } }), (e: unknown) => e instanceof UnsupportedError && /linux\.resources\.network\.classID/.test(e.message));
});
