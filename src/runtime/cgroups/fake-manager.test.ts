/** Managers against fake trees (no root needed): exact files and values written, descriptors, destroy. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { afterEach, test } from 'node:test';
import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { Resources } from '../spec/config.js';
import { existsFake, makeFakeRoot, precreate, readFake, type FakeRoot } from './fake-tree.testutil.js';
import { cgroupTestHooks } from './files.js';
import { cgroupManagerFromDescriptor, detectCgroupMode, normalizeDeviceRules, openCgroupManager, V2CgroupManager } from './index.js';
import { effectiveDeviceRules } from './v1-resources.js';

const MiB = 1024 * 1024;

const RESOURCES: Resources = {
  devices: [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 136, access: 'rwm' },
  ],
  memory: { limit: 256 * MiB, reservation: 128 * MiB, swap: 512 * MiB, swappiness: 10, disableOOMKiller: true },
  cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1', mems: '0' },
  pids: { limit: 100 },
  blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: MiB }] },
  hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }],
};

let fake: FakeRoot | undefined;
afterEach(() => {
  fake?.cleanup();
  fake = undefined;
});

function writes(): Array<[string, string]> {
  return (cgroupTestHooks.writes ?? []).map(({ file, value }) => [file, value]);
}

test('detectCgroupMode on fake roots', () => {
  for (const [layout, mode] of [['v1-split', 'v1'], ['v1-comounted', 'v1'], ['hybrid', 'hybrid'], ['v2', 'v2']] as const) {
    const f = makeFakeRoot(layout);
    try {
      assert.equal(detectCgroupMode(f.root), mode, layout);
    } finally {
      f.cleanup();
    }
  }
});

test('v1 (cpu,cpuacct co-mounted): exact writes for a representative Resources', () => {
  fake = makeFakeRoot('v1-comounted');
  const m = openCgroupManager({ cgroupsPath: '/berth/c1', containerId: 'c1', fsRoot: fake.root });
  assert.equal(m.mode, 'v1');
  m.create(RESOURCES);
  const cg = (c: string): string => `/sys/fs/cgroup/${c}/berth/c1`;
  assert.deepEqual(writes(), [
    // new cpuset cgroups inherit cpus/mems, parents first
    ['/sys/fs/cgroup/cpuset/berth/cpuset.cpus', '0-3'],
    ['/sys/fs/cgroup/cpuset/berth/cpuset.mems', '0'],
    [`${cg('cpuset')}/cpuset.cpus`, '0-3'],
    [`${cg('cpuset')}/cpuset.mems`, '0'],
    [`${cg('cpuset')}/cpuset.cpus`, '0-1'],
    [`${cg('cpuset')}/cpuset.mems`, '0'],
    // the config's own "deny all" repeats ours: not written again
    [`${cg('devices')}/devices.deny`, 'a'],
    [`${cg('devices')}/devices.allow`, 'c 1:3 rwm'],
    [`${cg('devices')}/devices.allow`, 'c 136:* rwm'],
    // lowering from "unlimited": limit before memsw
    [`${cg('memory')}/memory.limit_in_bytes`, String(256 * MiB)],
    [`${cg('memory')}/memory.memsw.limit_in_bytes`, String(512 * MiB)],
    [`${cg('memory')}/memory.soft_limit_in_bytes`, String(128 * MiB)],
    [`${cg('memory')}/memory.oom_control`, '1'],
    [`${cg('memory')}/memory.swappiness`, '10'],
    [`${cg('cpu,cpuacct')}/cpu.shares`, '512'],
    [`${cg('cpu,cpuacct')}/cpu.cfs_period_us`, '100000'],
    [`${cg('cpu,cpuacct')}/cpu.cfs_quota_us`, '50000'],
    [`${cg('pids')}/pids.max`, '100'],
    [`${cg('blkio')}/blkio.bfq.weight`, '500'],
    [`${cg('blkio')}/blkio.throttle.read_bps_device`, `8:0 ${MiB}`],
    [`${cg('hugetlb')}/hugetlb.2MB.limit_in_bytes`, String(4 * MiB)],
    [`${cg('hugetlb')}/hugetlb.2MB.rsvd.limit_in_bytes`, String(4 * MiB)],
  ]);
  // One procs file per hierarchy: cpu and cpuacct share one; name=systemd comes last (best effort).
  assert.deepEqual(
    m.procsFiles().map((f) => f.slice(fake!.root.length)),
    ['cpu,cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'hugetlb', 'systemd'].map((d) => `/sys/fs/cgroup/${d}/berth/c1/cgroup.procs`),
  );
});

test('v1 device rules: repeats and a second deny of all are not written, changes are', () => {
  const rules = normalizeDeviceRules([
    { allow: false, access: 'rwm' }, // 0: all denied already
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // 1
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, // 2: allowed already
    { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }, // 3: takes w away
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // 4: gives it back
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' }, // 5: a deny is always written
    { allow: true, type: 'c', access: 'm' }, // 6: c *:* is an entry of its own
    { allow: true, type: 'c', major: 1, minor: 3, access: 'm' }, // 7: allowed already
    { allow: true, type: 'a', access: 'rwm' }, // 8: allow all
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // 9: kept after an allow of all
    { allow: false, access: 'rwm' }, // 10: deny all again: written
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // 11: the list was reset
  ]);
  assert.deepEqual(effectiveDeviceRules(rules), [1, 3, 4, 5, 6, 8, 9, 10, 11]);
});

test('v1: raising memory writes memsw first; swap -1 with memory -1; pids 0 means max', () => {
  fake = makeFakeRoot('v1-comounted');
  const m = openCgroupManager({ cgroupsPath: '/c2', containerId: 'c2', fsRoot: fake.root });
  m.create({ memory: { limit: 64 * MiB, swap: 128 * MiB } });
  cgroupTestHooks.writes = [];
  m.update({ memory: { limit: 256 * MiB, swap: 512 * MiB }, pids: { limit: 0 } });
  assert.deepEqual(writes(), [
    ['/sys/fs/cgroup/memory/c2/memory.memsw.limit_in_bytes', String(512 * MiB)],
    ['/sys/fs/cgroup/memory/c2/memory.limit_in_bytes', String(256 * MiB)],
    ['/sys/fs/cgroup/pids/c2/pids.max', 'max'],
  ]);
  cgroupTestHooks.writes = [];
  m.update({ memory: { limit: -1 } });
  assert.deepEqual(writes(), [
    ['/sys/fs/cgroup/memory/c2/memory.memsw.limit_in_bytes', '-1'],
    ['/sys/fs/cgroup/memory/c2/memory.limit_in_bytes', '-1'],
  ]);
});

test('v1: without swap accounting, only swap == limit or -1 is accepted', () => {
  fake = makeFakeRoot('v1-comounted');
  const m = openCgroupManager({ cgroupsPath: '/c3', containerId: 'c3', fsRoot: fake.root });
  m.create({});
  fs.rmSync(`${fake.root}/sys/fs/cgroup/memory/c3/memory.memsw.limit_in_bytes`);
  m.update({ memory: { limit: 64 * MiB, swap: 64 * MiB } });
  m.update({ memory: { limit: 64 * MiB, swap: -1 } });
  assert.throws(
    () => m.update({ memory: { limit: 64 * MiB, swap: 128 * MiB } }),
    (err: unknown) => err instanceof UnsupportedError && /linux\.resources\.memory\.swap/.test(err.message),
  );
});

test('v1: invalid values name the field; unified is refused', () => {
  fake = makeFakeRoot('v1-comounted');
  const m = openCgroupManager({ cgroupsPath: '/c4', containerId: 'c4', fsRoot: fake.root });
  assert.throws(() => m.create({ memory: { swappiness: 101 } }), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'linux.resources.memory.swappiness');
  assert.throws(() => m.create({ unified: { 'memory.high': '1' } }), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'linux.resources.unified');
  assert.throws(() => m.create({ pids: { limit: 1.5 } }), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'linux.resources.pids.limit');
});

test('v1 split mounts, default path: relative to own cgroup per hierarchy; hugetlb unmounted is an error', () => {
  fake = makeFakeRoot('v1-split', { memory: '/process_api/abc' });
  precreate(fake, '/sys/fs/cgroup/memory/process_api');
  precreate(fake, '/sys/fs/cgroup/memory/process_api/abc');
  const m = openCgroupManager({ containerId: 'ctr', fsRoot: fake.root });
  const d = m.toJSON();
  assert.equal(d.paths.memory, '/sys/fs/cgroup/memory/process_api/abc/ctr');
  assert.equal(d.paths.cpu, '/sys/fs/cgroup/cpu/ctr');
  assert.equal(d.paths.cpuacct, '/sys/fs/cgroup/cpuacct/ctr');
  assert.equal(d.paths.hugetlb, undefined);
  m.create({ memory: { limit: 32 * MiB } });
  assert.equal(readFake(fake, '/sys/fs/cgroup/memory/process_api/abc/ctr/memory.limit_in_bytes'), String(32 * MiB));
  assert.throws(() => m.update({ hugepageLimits: [{ pageSize: '2MB', limit: 0 }] }), /hugepageLimits.*not mounted/);
  // Only the leaf dirs were created; the own memory cgroup survives destroy.
  m.destroy();
  assert.ok(!existsFake(fake, '/sys/fs/cgroup/memory/process_api/abc/ctr'));
  assert.ok(!existsFake(fake, '/sys/fs/cgroup/cpu/ctr'));
  assert.ok(existsFake(fake, '/sys/fs/cgroup/memory/process_api/abc'));
});

test('hybrid: unified dir is created and joined best effort; hugetlb goes to unified when not a v1 controller', () => {
  fake = makeFakeRoot('hybrid');
  const m = openCgroupManager({ cgroupsPath: '/berth/h1', containerId: 'h1', fsRoot: fake.root });
  assert.equal(m.mode, 'hybrid');
  m.create({ hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }] });
  const files = m.procsFiles().map((f) => f.slice(fake!.root.length));
  assert.equal(files[files.length - 1], '/sys/fs/cgroup/unified/berth/h1/cgroup.procs');
  assert.deepEqual(
    writes().filter(([f]) => f.includes('/unified/')),
    [
      ['/sys/fs/cgroup/unified/cgroup.subtree_control', '+hugetlb'],
      ['/sys/fs/cgroup/unified/berth/cgroup.subtree_control', '+hugetlb'],
      ['/sys/fs/cgroup/unified/berth/h1/hugetlb.2MB.max', String(2 * MiB)],
      ['/sys/fs/cgroup/unified/berth/h1/hugetlb.2MB.rsvd.max', String(2 * MiB)],
    ],
  );
});

test('v2: exact writes for a representative Resources (devices only exposed)', () => {
  fake = makeFakeRoot('v2', { '': '/user.slice/s1.scope' });
  const m = openCgroupManager({ cgroupsPath: '/berth/c1', containerId: 'c1', fsRoot: fake.root });
  assert.equal(m.mode, 'v2');
  m.create({ ...RESOURCES, unified: { 'memory.high': String(300 * MiB) } });
  const dir = '/sys/fs/cgroup/berth/c1';
  const all = '+cpuset +cpu +io +memory +hugetlb +pids';
  assert.deepEqual(writes(), [
    ['/sys/fs/cgroup/cgroup.subtree_control', all],
    ['/sys/fs/cgroup/berth/cgroup.subtree_control', all],
    [`${dir}/pids.max`, '100'],
    [`${dir}/memory.swap.max`, String(256 * MiB)], // swap alone = (memory+swap) - memory
    [`${dir}/memory.max`, String(256 * MiB)],
    [`${dir}/memory.low`, String(128 * MiB)],
    [`${dir}/io.weight`, '4950'],
    [`${dir}/io.max`, `8:0 rbps=${MiB}`],
    [`${dir}/cpu.weight`, '59'],
    [`${dir}/cpu.max`, '50000 100000'],
    [`${dir}/cpuset.cpus`, '0-1'],
    [`${dir}/cpuset.mems`, '0'],
    [`${dir}/hugetlb.2MB.max`, String(4 * MiB)],
    [`${dir}/hugetlb.2MB.rsvd.max`, String(4 * MiB)],
    [`${dir}/memory.high`, String(300 * MiB)],
  ]);
  assert.ok(m instanceof V2CgroupManager);
  assert.deepEqual((m as V2CgroupManager).deviceRules().map((r) => r.line), ['a *:* rwm', 'c 1:3 rwm', 'c 136:* rwm']);
  assert.deepEqual(m.procsFiles(), [`${fake.root}${dir}/cgroup.procs`]);
  assert.deepEqual(m.stats(), { memoryUsage: 8192, cpuUsageNanos: 42000, pidsCurrent: 0, memoryLimit: 256 * MiB, pidsLimit: 100 });
});

test('v2: relative path goes under the parent of our own cgroup; unified keys are checked', () => {
  fake = makeFakeRoot('v2', { '': '/user.slice/s1.scope' });
  const m = openCgroupManager({ containerId: 'c9', fsRoot: fake.root });
  assert.deepEqual(m.toJSON().paths, { unified: '/sys/fs/cgroup/user.slice/c9' });
  assert.throws(() => m.create({ unified: { '../x': '1' } }), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'linux.resources.unified');
  assert.throws(() => m.create({ memory: { limit: 100, swap: 50 } }), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'linux.resources.memory.swap');
});

test('descriptor round trip: same files, destroy removes only what was created', () => {
  fake = makeFakeRoot('v1-comounted');
  precreate(fake, '/sys/fs/cgroup/memory/shared'); // a parent that existed before (only in memory)
  const m = openCgroupManager({ cgroupsPath: '/shared/c5', containerId: 'c5', fsRoot: fake.root });
  m.create({ pids: { limit: 7 } });
  const json = JSON.parse(JSON.stringify(m)) as ReturnType<typeof m.toJSON>;
  assert.deepEqual(json, m.toJSON());
  assert.ok(json.createdDirs!.includes('/sys/fs/cgroup/pids/shared'));
  assert.ok(!json.createdDirs!.includes('/sys/fs/cgroup/memory/shared'));

  const again = cgroupManagerFromDescriptor(json, { fsRoot: fake.root });
  assert.equal(again.mode, 'v1');
  assert.deepEqual(again.procsFiles(), m.procsFiles());
  assert.deepEqual(again.toJSON(), json);
  assert.equal(again.stats().pidsLimit, 7);
  again.freeze();
  assert.equal(readFake(fake, '/sys/fs/cgroup/freezer/shared/c5/freezer.state'), 'FROZEN');
  again.thaw();
  assert.equal(again.isFrozen(), false);

  again.destroy();
  assert.ok(!existsFake(fake, '/sys/fs/cgroup/pids/shared'), 'created parent removed');
  assert.ok(!existsFake(fake, '/sys/fs/cgroup/memory/shared/c5'));
  assert.ok(existsFake(fake, '/sys/fs/cgroup/memory/shared'), 'pre-existing parent kept');
  again.destroy(); // already gone: no error
  assert.throws(() => cgroupManagerFromDescriptor({ mode: 'v1', paths: { memory: '/sys/fs/cgroup/memory/../x' } }), InvalidArgumentError);
});
