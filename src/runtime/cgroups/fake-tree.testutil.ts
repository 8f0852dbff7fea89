/**
 * A fake "/" for unit tests: proc/self/mountinfo, proc/self/cgroup and sys/fs/cgroup trees made
 * of plain files. `cgroupTestHooks.afterMkdir` plays the kernel, filling new cgroup directories
 * with their control files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroupTestHooks } from './files.js';

export type FakeLayout = 'v1-split' | 'v1-comounted' | 'hybrid' | 'v2';

const UNLIMITED = '9223372036854771712';

/** Control files of a new (child) cgroup, per controller, with kernel defaults. */
const V1_FILES: Record<string, Record<string, string>> = {
  cpu: { 'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1', 'cpu.cfs_burst_us': '0', 'cpu.idle': '0' },
  cpuacct: { 'cpuacct.usage': '123456' },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  memory: {
    'memory.limit_in_bytes': UNLIMITED,
    'memory.memsw.limit_in_bytes': UNLIMITED,
    'memory.soft_limit_in_bytes': UNLIMITED,
    'memory.usage_in_bytes': '4096',
    'memory.oom_control': 'oom_kill_disable 0',
    'memory.swappiness': '60',
  },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm' },
  freezer: { 'freezer.state': 'THAWED', 'freezer.self_freezing': '0' },
  blkio: { 'blkio.bfq.weight': '100', 'blkio.throttle.read_bps_device': '' },
  pids: { 'pids.max': 'max', 'pids.current': '0' },
  hugetlb: { 'hugetlb.2MB.limit_in_bytes': UNLIMITED, 'hugetlb.2MB.rsvd.limit_in_bytes': UNLIMITED },
  'name=systemd': {},
};

const V2_FILES: Record<string, string> = {
  'cgroup.controllers': 'cpuset cpu io memory hugetlb pids',
  'cgroup.subtree_control': '',
  'cgroup.type': 'domain',
  'cgroup.freeze': '0',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.kill': '',
  'memory.max': 'max',
  'memory.low': '0',
  'memory.high': 'max',
  'memory.swap.max': 'max',
  'memory.current': '8192',
  'cpu.weight': '100',
  'cpu.max': 'max 100000',
  'cpu.max.burst': '0',
  'cpu.stat': 'usage_usec 42\nuser_usec 40\n',
  'cpuset.cpus': '',
  'cpuset.mems': '',
  'io.weight': 'default 100',
  'io.max': '',
  'pids.max': 'max',
  'pids.current': '0',
  'hugetlb.2MB.max': 'max',
  'hugetlb.2MB.rsvd.max': 'max',
};

function writeFiles(dir: string, files: Record<string, string>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), '');
}

export interface FakeRoot {
  root: string;
  /** Restore hooks and delete the tree. */
  cleanup(): void;
}

/**
 * @param ownCgroups lines of proc/self/cgroup beyond the defaults (`/` everywhere), e.g.
 *   `{ memory: '/process_api/abc' }`.
 */
export function makeFakeRoot(layout: FakeLayout, ownCgroups: Record<string, string> = {}): FakeRoot {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cgroups-'));
  const cgroupRoot = path.join(root, 'sys/fs/cgroup');
  const mounts: string[] = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  ];
  const procCgroup: string[] = [];
  // mount dir → controllers in it
  const v1Mounts: Array<[string, string[]]> =
    layout === 'v1-comounted'
      ? [['cpu,cpuacct', ['cpu', 'cpuacct']], ['cpuset', ['cpuset']], ['memory', ['memory']], ['devices', ['devices']], ['freezer', ['freezer']], ['blkio', ['blkio']], ['pids', ['pids']], ['hugetlb', ['hugetlb']], ['systemd', ['name=systemd']]]
      : layout === 'v2'
        ? []
        : [['cpu', ['cpu']], ['cpuacct', ['cpuacct']], ['cpuset', ['cpuset']], ['memory', ['memory']], ['devices', ['devices']], ['freezer', ['freezer']], ['blkio', ['blkio']], ['pids', ['pids']], ['systemd', ['name=systemd']]];
  const mountDirOf = new Map<string, string[]>(); // real mount dir → controllers
  v1Mounts.forEach(([dirName, controllers], i) => {
    const mountPoint = `/sys/fs/cgroup/${dirName}`;
    mounts.push(`${40 + i} 31 0:${40 + i} / ${mountPoint} rw,relatime - cgroup cgroup rw,${controllers.join(',')}`);
    procCgroup.push(`${i + 1}:${controllers.join(',')}:${ownCgroups[controllers[0]] ?? '/'}`);
    const real = path.join(root, mountPoint);
    mountDirOf.set(real, controllers);
    const files: Record<string, string> = {};
    for (const c of controllers) Object.assign(files, V1_FILES[c]);
    // Roots have full cpusets; children start empty (the manager must copy).
    if (controllers.includes('cpuset')) Object.assign(files, { 'cpuset.cpus': '0-3', 'cpuset.mems': '0' });
    writeFiles(real, files);
    if (layout === 'v1-comounted') {
      for (const c of controllers) if (c !== dirName) fs.symlinkSync(dirName, path.join(cgroupRoot, c));
    }
  });
  let v2Real: string | undefined;
  if (layout === 'hybrid' || layout === 'v2') {
    const mountPoint = layout === 'v2' ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
    mounts.push(`60 31 0:60 / ${mountPoint} rw,relatime - cgroup2 cgroup2 rw`);
    procCgroup.push(`0::${ownCgroups[''] ?? '/'}`);
    v2Real = path.join(root, mountPoint);
    writeFiles(v2Real, { 'cgroup.controllers': layout === 'v2' ? V2_FILES['cgroup.controllers'] : 'hugetlb', 'cgroup.subtree_control': '' });
  }
  // Directories that the test pre-creates for "own" cgroups must look like cgroups too.
  fs.mkdirSync(path.join(root, 'proc/self'), { recursive: true });
  fs.writeFileSync(path.join(root, 'proc/self/mountinfo'), mounts.join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'proc/self/cgroup'), procCgroup.join('\n') + '\n');

  cgroupTestHooks.afterMkdir = (realDir: string) => {
    if (v2Real && (realDir === v2Real || realDir.startsWith(v2Real + '/'))) {
      writeFiles(realDir, layout === 'v2' ? V2_FILES : { ...V2_FILES, 'cgroup.controllers': 'hugetlb' });
      return;
    }
    for (const [mountReal, controllers] of mountDirOf) {
      if (realDir.startsWith(mountReal + '/')) {
        const files: Record<string, string> = {};
        for (const c of controllers) Object.assign(files, V1_FILES[c]);
        writeFiles(realDir, files);
        return;
      }
    }
  };
  cgroupTestHooks.writes = [];
  return {
    root,
    cleanup() {
      cgroupTestHooks.afterMkdir = undefined;
      cgroupTestHooks.writes = undefined;
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Pre-create a cgroup directory as if it existed before the manager ran (e.g. own cgroup). */
export function precreate(fake: FakeRoot, logicalDir: string): void {
  const real = path.join(fake.root, logicalDir);
  fs.mkdirSync(path.dirname(real), { recursive: true });
  fs.mkdirSync(real, { recursive: true });
  cgroupTestHooks.afterMkdir?.(real);
}

export function readFake(fake: FakeRoot, logicalFile: string): string {
  return fs.readFileSync(path.join(fake.root, logicalFile), 'utf8');
}

export function existsFake(fake: FakeRoot, logicalPath: string): boolean {
  return fs.existsSync(path.join(fake.root, logicalPath));
}
