import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../common/errors.js';
import { blkioWeightToIoWeight, cpuSharesToWeight, memorySwapToV2, normalizeDeviceRules } from './convert.js';
import { layoutFromMountinfo, parseMountinfo, parseProcCgroup } from './detect.js';
import { resolveCgroupPaths, resolveInnerPath } from './path.js';

const SPLIT_HYBRID = `
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

const COMOUNTED_V1 = `
25 20 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
27 25 0:24 /docker/abc /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory
`;

const PURE_V2 = `
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
`;

test('mountinfo: modes and controllers (split, co-mounted, v2)', () => {
  const hybrid = layoutFromMountinfo(parseMountinfo(SPLIT_HYBRID));
  assert.equal(hybrid.mode, 'hybrid');
  assert.deepEqual([...hybrid.v1.keys()].sort(), ['cpu', 'cpuacct', 'memory', 'name=systemd']);
  assert.equal(hybrid.v1.get('cpuacct')?.mountPoint, '/sys/fs/cgroup/cpuacct');
  assert.equal(hybrid.unified?.mountPoint, '/sys/fs/cgroup/unified');

  const v1 = layoutFromMountinfo(parseMountinfo(COMOUNTED_V1));
  assert.equal(v1.mode, 'v1');
  assert.equal(v1.v1.get('cpu'), v1.v1.get('cpuacct'));
  assert.equal(v1.v1.get('cpu')?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  assert.equal(v1.v1.get('memory')?.root, '/docker/abc');

  const v2 = layoutFromMountinfo(parseMountinfo(PURE_V2));
  assert.equal(v2.mode, 'v2');
  assert.equal(v2.unified?.mountPoint, '/sys/fs/cgroup');
});

test('mountinfo: octal escapes in mount points', () => {
  const [entry] = parseMountinfo('50 1 0:40 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\n');
  assert.equal(entry.mountPoint, '/mnt/with space');
});

test('/proc/self/cgroup parsing', () => {
  const own = parseProcCgroup('4:memory:/process_api/x\n2:cpu,cpuacct:/\n1:name=systemd:/init.scope\n0::/\n');
  assert.equal(own.get('memory'), '/process_api/x');
  assert.equal(own.get('cpuacct'), '/');
  assert.equal(own.get('name=systemd'), '/init.scope');
  assert.equal(own.get(''), '/');
});

test('cgroupsPath: absolute, relative, default from id', () => {
  assert.deepEqual(resolveInnerPath('/berth/c1', 'c1'), { inner: '/berth/c1', absolute: true, explicit: true });
  assert.deepEqual(resolveInnerPath('berth//c1/', 'c1'), { inner: 'berth/c1', absolute: false, explicit: true });
  assert.deepEqual(resolveInnerPath(undefined, 'c1'), { inner: 'c1', absolute: false, explicit: false });
  assert.deepEqual(resolveInnerPath('', 'c1'), { inner: 'c1', absolute: false, explicit: false });
});

test('cgroupsPath: rejects .., systemd syntax, root, bad ids', () => {
  for (const bad of ['/a/../../etc', '../x', 'a/..', 'system.slice:docker:abc', '/', '.']) {
    assert.throws(() => resolveInnerPath(bad, 'c1'), (err: unknown) => err instanceof InvalidArgumentError && err.field === 'linux.cgroupsPath', bad);
  }
  assert.throws(() => resolveInnerPath(undefined, '../x'), InvalidArgumentError);
});

test('paths: absolute from each mount, relative under own cgroup (minus the mount root), v2 relative under the parent', () => {
  const hybrid = layoutFromMountinfo(parseMountinfo(SPLIT_HYBRID));
  const own = parseProcCgroup('4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n9:name=systemd:/\n0::/\n');
  assert.deepEqual(resolveCgroupPaths(hybrid, resolveInnerPath('/berth/c1', 'c1'), own), {
    cpu: '/sys/fs/cgroup/cpu/berth/c1',
    cpuacct: '/sys/fs/cgroup/cpuacct/berth/c1',
    memory: '/sys/fs/cgroup/memory/berth/c1',
    'name=systemd': '/sys/fs/cgroup/systemd/berth/c1',
    unified: '/sys/fs/cgroup/unified/berth/c1',
  });
  assert.deepEqual(resolveCgroupPaths(hybrid, resolveInnerPath(undefined, 'c1'), own), {
    cpu: '/sys/fs/cgroup/cpu/c1',
    cpuacct: '/sys/fs/cgroup/cpuacct/c1',
    memory: '/sys/fs/cgroup/memory/process_api/x/c1',
    'name=systemd': '/sys/fs/cgroup/systemd/c1',
    unified: '/sys/fs/cgroup/unified/c1',
  });

  // A mount showing /docker/abc as its root: our /docker/abc/sub is /sub inside it.
  const nested = layoutFromMountinfo(parseMountinfo(COMOUNTED_V1));
  const nestedOwn = parseProcCgroup('3:memory:/docker/abc/sub\n2:cpu,cpuacct:/\n');
  assert.equal(resolveCgroupPaths(nested, resolveInnerPath('c1', 'c1'), nestedOwn).memory, '/sys/fs/cgroup/memory/sub/c1');

  const v2 = layoutFromMountinfo(parseMountinfo(PURE_V2));
  const v2Own = parseProcCgroup('0::/user.slice/session-1.scope\n');
  assert.deepEqual(resolveCgroupPaths(v2, resolveInnerPath('berth/c1', 'c1'), v2Own), { unified: '/sys/fs/cgroup/user.slice/berth/c1' });
  assert.deepEqual(resolveCgroupPaths(v2, resolveInnerPath('/berth/c1', 'c1'), v2Own), { unified: '/sys/fs/cgroup/berth/c1' });
});

test('conversions match runc', () => {
  assert.equal(cpuSharesToWeight(0), 0);
  assert.equal(cpuSharesToWeight(2), 1);
  assert.equal(cpuSharesToWeight(1024), 100);
  assert.equal(cpuSharesToWeight(512), 59);
  assert.equal(cpuSharesToWeight(262144), 10000);
  assert.equal(blkioWeightToIoWeight(10), 1);
  assert.equal(blkioWeightToIoWeight(1000), 10000);
  assert.equal(memorySwapToV2(0, -1), -1);
  assert.equal(memorySwapToV2(300, 100), 200);
  assert.equal(memorySwapToV2(100, 100), 0);
  assert.equal(memorySwapToV2(-1, 100), -1);
  assert.throws(() => memorySwapToV2(50, 100), /memory\.swap/);
  assert.throws(() => memorySwapToV2(50, 0), /needs a memory limit/);
});

test('device rules: kernel syntax and validation', () => {
  const rules = normalizeDeviceRules([
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 136, minor: null, access: 'rw' },
  ]);
  assert.deepEqual(rules.map((r) => r.line), ['a *:* rwm', 'c 1:3 rwm', 'c 136:* rw']);
  assert.throws(() => normalizeDeviceRules([{ allow: true, access: '' }]), /devices\[0\]\.access/);
  assert.throws(() => normalizeDeviceRules([{ allow: true, type: 'x', access: 'r' }]), /devices\[0\]\.type/);
});
