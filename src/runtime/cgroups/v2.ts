/** Manager for the cgroup v2 unified hierarchy: one directory, key `unified`. */
import { SystemError, UnsupportedError } from '../../common/errors.js';
import type { Resources } from '../spec/config.js';
import { BaseCgroupManager, isPermissionError } from './base.js';
import { normalizeDeviceRules, type NormalizedDeviceRule } from './convert.js';
import { findCgroup2Mount } from './detect.js';
import { errnoOf, oomKillCount, parseLimit, sleepMs } from './files.js';
import type { CgroupStats } from './types.js';
import {
  createV2Path,
  needsAnyController,
  setCpusetV2,
  setCpuV2,
  setHugetlbV2,
  setIoV2,
  setMemoryV2,
  setPidsV2,
  setRdmaV2,
  setUnified,
  validateV2,
} from './v2-resources.js';

const FREEZE_POLL_MS = 10;
const FREEZE_TIMEOUT_MS = 10_000;

export class V2CgroupManager extends BaseCgroupManager {
  readonly mode = 'v2' as const;
  private pendingDevices: NormalizedDeviceRule[] = [];

  private get dir(): string | undefined {
    return this.paths.unified;
  }

  private requireDir(what: string): string {
    const dir = this.dir;
    if (dir === undefined) throw new UnsupportedError(`cannot ${what}: the container has no cgroup (rootless without cgroup access)`);
    return dir;
  }

  create(resources: Resources = {}): void {
    validateV2(resources);
    const dir = this.requireDir('create the cgroup');
    const mount = findCgroup2Mount(dir, this.options.fsRoot);
    if (!mount) throw new SystemError(`${dir} is not inside a mounted cgroup2 hierarchy`);
    try {
      this.recordCreated(createV2Path(this.cg, mount.mountPoint, dir, resources));
    } catch (err) {
      // runc: rootless without a delegated cgroup can run without one, provided nothing needs a controller.
      if (this.options.rootless && !this.options.explicitPath && isPermissionError(err) && !needsAnyController(resources)) {
        delete this.paths.unified;
        return;
      }
      throw err instanceof SystemError || err instanceof UnsupportedError ? err : new SystemError(`cannot create cgroup ${dir}: ${errnoOf(err) ?? String(err)}`, { cause: err });
    }
    this.recordCreated([]);
    this.apply(resources, false);
  }

  update(resources: Resources): void {
    validateV2(resources);
    this.apply(resources, true);
  }

  private apply(r: Resources, isUpdate: boolean): void {
    const dir = this.requireDir('set limits');
    setPidsV2(this.cg, dir, r);
    setMemoryV2(this.cg, dir, r, isUpdate);
    setIoV2(this.cg, dir, r);
    setCpuV2(this.cg, dir, r);
    // cgroup v2 has no devices files: the rules are kept for deviceRules(), and the runtime
    // compiles them into an eBPF device filter (devices-bpf.ts) that the C stage attaches.
    if (r.devices) this.pendingDevices = normalizeDeviceRules(r.devices);
    setCpusetV2(this.cg, dir, r);
    setHugetlbV2(this.cg, dir, r);
    setRdmaV2(this.cg, dir, r);
    setUnified(this.cg, dir, r);
  }

  /** The device rules of the last create()/update(), in order, for an eBPF device filter. */
  deviceRules(): NormalizedDeviceRule[] {
    return [...this.pendingDevices];
  }

  protected joinTargets(): Array<{ dir: string; required: boolean }> {
    return this.dir === undefined ? [] : [{ dir: this.dir, required: true }];
  }

  freeze(): void {
    const dir = this.requireDir('freeze');
    if (!this.cg.exists(dir, 'cgroup.freeze')) throw new UnsupportedError('cannot freeze: this kernel has no cgroup.freeze (needs Linux 5.2)');
    this.cg.write(dir, 'cgroup.freeze', '1', 'freezer');
    // Writing 1 only requests the freeze; cgroup.events says when every task is stopped.
    for (let waited = 0; ; waited += FREEZE_POLL_MS) {
      if (this.eventsFrozen(dir)) return;
      if (waited >= FREEZE_TIMEOUT_MS) {
        this.cg.write(dir, 'cgroup.freeze', '0', 'freezer');
        throw new SystemError(`cgroup ${dir} did not freeze within ${FREEZE_TIMEOUT_MS} ms`);
      }
      sleepMs(FREEZE_POLL_MS);
    }
  }

  thaw(): void {
    const dir = this.requireDir('thaw');
    if (!this.cg.exists(dir, 'cgroup.freeze')) return; // nothing can be frozen without it
    this.cg.write(dir, 'cgroup.freeze', '0', 'freezer');
  }

  private eventsFrozen(dir: string): boolean {
    const events = this.cg.tryRead(dir, 'cgroup.events') ?? '';
    return /^frozen 1$/m.test(events);
  }

  isFrozen(): boolean {
    const dir = this.dir;
    if (dir === undefined) return false;
    const requested = (this.cg.tryRead(dir, 'cgroup.freeze') ?? '0').trim() === '1';
    if (!requested) return false;
    // A freeze in progress counts as frozen once it completes (runc waits likewise).
    for (let waited = 0; waited < FREEZE_TIMEOUT_MS; waited += FREEZE_POLL_MS) {
      if (this.eventsFrozen(dir)) return true;
      sleepMs(FREEZE_POLL_MS);
    }
    return false;
  }

  pids(): number[] {
    return this.dir === undefined ? [] : this.cg.readProcsRecursive(this.dir);
  }

  protected killThroughCgroupKill(): boolean {
    const dir = this.dir;
    if (dir === undefined || !this.cg.exists(dir, 'cgroup.kill')) return false;
    this.cg.write(dir, 'cgroup.kill', '1', 'signal');
    return true;
  }

  oomKills(): number | undefined {
    return this.dir === undefined ? undefined : oomKillCount(this.cg.tryRead(this.dir, 'memory.events'));
  }

  stats(): CgroupStats {
    const dir = this.dir;
    if (dir === undefined) return {};
    const stats: CgroupStats = {};
    const usageUsec = /^usage_usec (\d+)$/m.exec(this.cg.tryRead(dir, 'cpu.stat') ?? '');
    const values: Array<[keyof CgroupStats, number | undefined]> = [
      ['memoryUsage', parseLimit(this.cg.tryRead(dir, 'memory.current'))],
      ['memoryLimit', parseLimit(this.cg.tryRead(dir, 'memory.max'))],
      ['cpuUsageNanos', usageUsec ? Number(usageUsec[1]) * 1000 : undefined],
      ['pidsCurrent', parseLimit(this.cg.tryRead(dir, 'pids.current'))],
      ['pidsLimit', parseLimit(this.cg.tryRead(dir, 'pids.max'))],
      ['oomKills', this.oomKills()],
    ];
    for (const [key, value] of values) if (value !== undefined) stats[key] = value;
    return stats;
  }
}
