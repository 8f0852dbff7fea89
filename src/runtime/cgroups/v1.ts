/**
 * Manager for cgroup v1, and hybrid (v1 controllers plus the cgroup2 `unified` mount, where the
 * container also gets a directory, as runc does; joining it is best effort).
 */
import path from 'node:path';
import { InvalidArgumentError, SystemError, UnsupportedError } from '../../common/errors.js';
import type { Resources } from '../spec/config.js';
import { BaseCgroupManager, isPermissionError, type ManagerOptions } from './base.js';
import { RESOURCES_FIELD, validateCommon } from './convert.js';
import { findCgroup2Mount } from './detect.js';
import { errnoOf, oomKillCount, parseLimit, sleepMs } from './files.js';
import type { CgroupDescriptor, CgroupStats } from './types.js';
import {
  cpusetInheritFromParent,
  setBlkioV1,
  setCpusetV1,
  setCpuV1,
  setDevicesV1,
  setHugetlbFiles,
  setMemoryV1,
  setNetworkV1,
  setPidsV1,
  setRdma,
} from './v1-resources.js';
import { createV2Path, setHugetlbV2 } from './v2-resources.js';

const FREEZE_ATTEMPTS = 1000;
const STATE_WAIT_MS = 5_000;

/** Named hierarchies (`name=systemd`) and hybrid's unified dir: runc joins them but ignores failures. */
function isBestEffort(key: string): boolean {
  return key.startsWith('name=') || key === 'unified';
}

export class V1CgroupManager extends BaseCgroupManager {
  readonly mode: 'v1' | 'hybrid';

  constructor(descriptor: CgroupDescriptor, options: ManagerOptions) {
    super(descriptor, options);
    if (descriptor.mode === 'v2') throw new InvalidArgumentError('a v2 descriptor cannot drive the v1 manager', 'mode');
    this.mode = descriptor.mode;
  }

  private validate(r: Resources): void {
    validateCommon(r);
    if (r.unified && Object.keys(r.unified).length > 0) {
      throw new InvalidArgumentError('cannot be used with cgroup v1 (runc refuses it too)', `${RESOURCES_FIELD}.unified`);
    }
  }

  create(resources: Resources = {}): void {
    this.validate(resources);
    this.recordCreated([]);
    // cpuset first: its directories need cpus/mems before anything can join (runc's order).
    const keys = Object.keys(this.paths).sort((a, b) => Number(b === 'cpuset') - Number(a === 'cpuset'));
    for (const key of keys) {
      const dir = this.paths[key];
      let created: string[];
      try {
        created = key === 'unified' ? this.createUnified(dir, resources) : this.cg.mkdirs(dir);
      } catch (err) {
        if (isBestEffort(key)) continue;
        // runc: rootless with an id-derived path may lack access; run without that controller,
        // and let a limit that needs it fail below with a clear message.
        if (this.options.rootless && !this.options.explicitPath && isPermissionError(err)) {
          delete this.paths[key];
          continue;
        }
        throw new SystemError(`cannot create cgroup ${dir}: ${errnoOf(err) ?? String(err)}`, { cause: err });
      }
      this.recordCreated(created);
      if (key === 'cpuset') {
        for (const d of created.includes(dir) ? created : [...created, dir]) cpusetInheritFromParent(this.cg, d, path.dirname(d));
      }
    }
    this.apply(resources, false);
  }

  /**
   * Hybrid: the unified directory only groups processes, unless hugetlb is not a v1 controller
   * here but a v2 one (as on this kind of host), in which case it is delegated down for limits.
   */
  private createUnified(dir: string, r: Resources): string[] {
    if (this.usesUnifiedHugetlb(r)) {
      const mount = findCgroup2Mount(dir, this.options.fsRoot);
      if (mount) return createV2Path(this.cg, mount.mountPoint, dir, r, ['hugetlb']);
    }
    return this.cg.mkdirs(dir);
  }

  private usesUnifiedHugetlb(r: Resources): boolean {
    return this.mode === 'hybrid' && (r.hugepageLimits?.length ?? 0) > 0 && this.paths.hugetlb === undefined && this.paths.unified !== undefined;
  }

  update(resources: Resources): void {
    this.validate(resources);
    this.apply(resources, true);
  }

  private apply(r: Resources, isUpdate: boolean): void {
    const p = this.paths;
    setCpusetV1(this.cg, p.cpuset, r);
    // Rootless cannot write the devices whitelist (runc skips it as well).
    if (!this.options.rootless) setDevicesV1(this.cg, p.devices, r);
    setMemoryV1(this.cg, p.memory, r, isUpdate);
    setCpuV1(this.cg, p.cpu, r);
    setPidsV1(this.cg, p.pids, r);
    setBlkioV1(this.cg, p.blkio, r);
    if (p.hugetlb !== undefined) setHugetlbFiles(this.cg, p.hugetlb, r, '.limit_in_bytes');
    else if (this.usesUnifiedHugetlb(r)) setHugetlbV2(this.cg, p.unified!, r);
    else if ((r.hugepageLimits?.length ?? 0) > 0) throw new UnsupportedError(`${RESOURCES_FIELD}.hugepageLimits: the hugetlb cgroup controller is not mounted`);
    setNetworkV1(this.cg, p.net_cls, p.net_prio, r);
    setRdma(this.cg, p.rdma, r);
  }

  protected joinTargets(): Array<{ dir: string; required: boolean }> {
    const targets: Array<{ dir: string; required: boolean }> = [];
    // Controllers first so a failing best-effort join never hides a required one.
    const keys = Object.keys(this.paths).sort((a, b) => Number(isBestEffort(a)) - Number(isBestEffort(b)));
    for (const key of keys) {
      const dir = this.paths[key];
      const existing = targets.find((t) => t.dir === dir); // co-mounted controllers share a dir
      if (existing) existing.required ||= !isBestEffort(key);
      else targets.push({ dir, required: !isBestEffort(key) });
    }
    return targets;
  }

  private freezerDir(what: string): string {
    const dir = this.paths.freezer;
    if (dir === undefined) throw new UnsupportedError(`cannot ${what}: the freezer cgroup controller is not available`);
    return dir;
  }

  /**
   * runc's loop: FROZEN may need several writes while tasks are forking or in
   * uninterruptible sleep; every 50 tries thaw briefly to let stragglers make progress.
   */
  freeze(): void {
    const dir = this.freezerDir('freeze');
    try {
      for (let i = 0; i < FREEZE_ATTEMPTS; i++) {
        if (i % 50 === 49) {
          this.cg.write(dir, 'freezer.state', 'THAWED', 'freezer');
          sleepMs(10);
        }
        this.cg.write(dir, 'freezer.state', 'FROZEN', 'freezer');
        if (i % 25 === 24) sleepMs(1);
        const state = (this.cg.tryRead(dir, 'freezer.state') ?? '').trim();
        if (state === 'FROZEN') return;
        if (state !== 'FREEZING') throw new SystemError(`unexpected freezer state ${JSON.stringify(state)} while freezing ${dir}`);
      }
      throw new SystemError(`cgroup ${dir} did not freeze`);
    } catch (err) {
      try {
        this.cg.write(dir, 'freezer.state', 'THAWED', 'freezer');
      } catch {
        // keep the original error
      }
      throw err;
    }
  }

  thaw(): void {
    this.cg.write(this.freezerDir('thaw'), 'freezer.state', 'THAWED', 'freezer');
  }

  isFrozen(): boolean {
    const dir = this.paths.freezer;
    if (dir === undefined) return false;
    for (let waited = 0; waited < STATE_WAIT_MS; waited++) {
      const state = (this.cg.tryRead(dir, 'freezer.state') ?? 'THAWED').trim();
      if (state === 'THAWED') return false;
      if (state === 'FROZEN') {
        // FROZEN only because an ancestor is: this container was not paused itself (runc).
        const self = this.cg.tryRead(dir, 'freezer.self_freezing');
        return self === undefined || self.trim() === '1';
      }
      sleepMs(1); // FREEZING: wait for it to settle
    }
    return false;
  }

  pids(): number[] {
    const p = this.paths;
    const dir = p.pids ?? p.freezer ?? p.devices ?? p.memory ?? p.cpu ?? Object.values(p)[0];
    return dir === undefined ? [] : this.cg.readProcsRecursive(dir);
  }

  protected killThroughCgroupKill(): boolean {
    // Hybrid: the unified dir has cgroup.kill (runc uses it), but joining it was best effort,
    // so the v1 sweep still runs afterwards.
    const dir = this.paths.unified;
    if (this.mode === 'hybrid' && dir !== undefined && this.cg.exists(dir, 'cgroup.kill')) {
      try {
        this.cg.writeRaw(dir, 'cgroup.kill', '1');
      } catch {
        // fall through to the sweep
      }
    }
    return false;
  }

  oomKills(): number | undefined {
    const dir = this.paths.memory;
    return dir === undefined ? undefined : oomKillCount(this.cg.tryRead(dir, 'memory.oom_control'));
  }

  stats(): CgroupStats {
    const p = this.paths;
    const stats: CgroupStats = {};
    const read = (dir: string | undefined, file: string): number | undefined => (dir === undefined ? undefined : parseLimit(this.cg.tryRead(dir, file)));
    const values: Array<[keyof CgroupStats, number | undefined]> = [
      ['memoryUsage', read(p.memory, 'memory.usage_in_bytes')],
      ['memoryLimit', read(p.memory, 'memory.limit_in_bytes')],
      ['cpuUsageNanos', read(p.cpuacct, 'cpuacct.usage')],
      ['pidsCurrent', read(p.pids, 'pids.current')],
      ['pidsLimit', read(p.pids, 'pids.max')],
      ['oomKills', this.oomKills()],
    ];
    for (const [key, value] of values) if (value !== undefined) stats[key] = value;
    return stats;
  }
}
