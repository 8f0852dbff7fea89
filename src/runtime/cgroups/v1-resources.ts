/**
 * cgroup v1 writers, one per controller, following runc's libcontainer/cgroups/fs. Each takes the
 * controller's directory (undefined when the controller is not mounted or could not be created)
 * and does nothing when its part of the resources is absent.
 */
import { SystemError, UnsupportedError } from '../../common/errors.js';
import type { Resources } from '../spec/config.js';
import { RESOURCES_FIELD, majorMinor, normalizeDeviceRules, pidsMaxValue, rdmaLines, type NormalizedDeviceRule } from './convert.js';
import { CgroupFs, CgroupWriteError, errnoOf, parseLimit } from './files.js';

/** The directory of a controller that a requested limit needs, or an error naming the field. */
function need(dir: string | undefined, controller: string, field: string): string {
  if (dir === undefined) {
    throw new UnsupportedError(`${field}: cannot set this limit: the ${controller} cgroup controller is not mounted or the cgroup could not be created`);
  }
  return dir;
}

function readNumber(cg: CgroupFs, dir: string, file: string): number | undefined {
  return parseLimit(cg.tryRead(dir, file));
}

const MEMORY_LIMIT = 'memory.limit_in_bytes';
const MEMSW_LIMIT = 'memory.memsw.limit_in_bytes';

export function setMemoryV1(cg: CgroupFs, memoryDir: string | undefined, r: Resources, isUpdate: boolean): void {
  const m = r.memory;
  if (!m) return;
  const anythingSet = Object.values(m).some((v) => v !== undefined);
  if (!anythingSet) return;
  const dir = need(memoryDir, 'memory', `${RESOURCES_FIELD}.memory`);
  const limit = m.limit ?? 0; // 0 = leave alone
  let swap = m.swap ?? 0;
  const swapAccounting = cg.exists(dir, MEMSW_LIMIT);

  // "Memory unlimited" without an explicit swap means both unlimited (runc).
  if (limit === -1 && swap === 0 && swapAccounting) swap = -1;
  if (!swapAccounting && swap !== 0) {
    // Without swap accounting the kernel cannot cap memory+swap. "Unlimited" and "no more than
    // the memory limit" are the docker defaults and harmless to drop; a real swap cap is not.
    if (swap === -1 || swap === limit) swap = 0;
    else throw new UnsupportedError(`${RESOURCES_FIELD}.memory.swap: swap accounting is disabled on this kernel (no ${MEMSW_LIMIT}); cannot limit memory+swap to ${swap}`);
  }

  if (isUpdate && m.checkBeforeUpdate) {
    const usage = readNumber(cg, dir, 'memory.usage_in_bytes') ?? 0;
    if (limit > 0 && limit <= usage) throw new UnsupportedError(`${RESOURCES_FIELD}.memory.limit: rejecting limit ${limit} <= current usage ${usage}`);
    const swapUsage = readNumber(cg, dir, 'memory.memsw.usage_in_bytes') ?? 0;
    if (swap > 0 && swap <= swapUsage) throw new UnsupportedError(`${RESOURCES_FIELD}.memory.swap: rejecting memory+swap limit ${swap} <= current usage ${swapUsage}`);
  }

  const writeLimit = (): void => {
    if (limit === 0) return;
    try {
      cg.writeRaw(dir, MEMORY_LIMIT, String(limit));
    } catch (err) {
      if (errnoOf(err) === 'EBUSY') {
        // The kernel could not reclaim down to the new limit.
        const usage = readNumber(cg, dir, 'memory.usage_in_bytes');
        const peak = readNumber(cg, dir, 'memory.max_usage_in_bytes');
        throw new SystemError(`${RESOURCES_FIELD}.memory.limit: cannot set memory limit to ${limit} (current usage ${usage}, peak ${peak})`, { cause: err });
      }
      throw new CgroupWriteError(`${RESOURCES_FIELD}.memory.limit`, `${dir}/${MEMORY_LIMIT}`, String(limit), err);
    }
  };
  const writeSwap = (): void => {
    if (swap !== 0) cg.write(dir, MEMSW_LIMIT, String(swap), `${RESOURCES_FIELD}.memory.swap`);
  };

  // The kernel keeps memsw >= limit at every step: when the new memsw is above the current
  // limit (raising) it must go first, otherwise the limit goes first (lowering).
  if (limit !== 0 && swap !== 0) {
    const currentLimit = readNumber(cg, dir, MEMORY_LIMIT) ?? Number.MAX_SAFE_INTEGER;
    if (swap === -1 || currentLimit < swap) {
      writeSwap();
      writeLimit();
    } else {
      writeLimit();
      writeSwap();
    }
  } else {
    writeLimit();
    writeSwap();
  }

  // kernel / kernelTCP: deprecated and refused by recent kernels; ignored, as runc does.
  if (m.reservation !== undefined && m.reservation !== 0) {
    cg.write(dir, 'memory.soft_limit_in_bytes', String(m.reservation), `${RESOURCES_FIELD}.memory.reservation`);
  }
  if (m.disableOOMKiller) cg.write(dir, 'memory.oom_control', '1', `${RESOURCES_FIELD}.memory.disableOOMKiller`);
  if (m.swappiness !== undefined && m.swappiness !== -1) {
    cg.write(dir, 'memory.swappiness', String(m.swappiness), `${RESOURCES_FIELD}.memory.swappiness`);
  }
}

/**
 * Writes `first`; if the kernel says EINVAL and `retryAfter` is true, returns the value so it is
 * written again after its companion (period before quota, etc.: the pair may only be valid together).
 */
function writeOrPostpone(cg: CgroupFs, dir: string, file: string, value: string, field: string, retryAfter: boolean): string | undefined {
  try {
    cg.writeRaw(dir, file, value);
    return undefined;
  } catch (err) {
    if (errnoOf(err) === 'EINVAL' && retryAfter) return value;
    throw new CgroupWriteError(field, `${dir}/${file}`, value, err);
  }
}

export function setCpuV1(cg: CgroupFs, cpuDir: string | undefined, r: Resources): void {
  const c = r.cpu;
  if (!c) return;
  const touchesCpu = [c.shares, c.quota, c.period, c.burst, c.idle, c.realtimeRuntime, c.realtimePeriod].some((v) => v !== undefined && v !== 0);
  if (!touchesCpu) return;
  const dir = need(cpuDir, 'cpu', `${RESOURCES_FIELD}.cpu`);

  if (c.shares) {
    cg.write(dir, 'cpu.shares', String(c.shares), `${RESOURCES_FIELD}.cpu.shares`);
    // The kernel clamps shares silently; report it like runc instead of running with another value.
    const effective = readNumber(cg, dir, 'cpu.shares');
    if (effective !== undefined && effective !== c.shares) {
      const bound = c.shares > effective ? 'maximum' : 'minimum';
      throw new CgroupWriteError(`${RESOURCES_FIELD}.cpu.shares`, `${dir}/cpu.shares`, String(c.shares), new Error(`the ${bound} allowed cpu-shares is ${effective}`));
    }
  }

  const quota = c.quota ?? 0;
  let pendingPeriod: string | undefined;
  if (c.period) pendingPeriod = writeOrPostpone(cg, dir, 'cpu.cfs_period_us', String(c.period), `${RESOURCES_FIELD}.cpu.period`, quota !== 0);
  let pendingBurst: string | undefined;
  if (c.burst !== undefined) {
    try {
      pendingBurst = writeOrPostpone(cg, dir, 'cpu.cfs_burst_us', String(c.burst), `${RESOURCES_FIELD}.cpu.burst`, quota !== 0);
    } catch (err) {
      // Kernels before 5.14 have no burst; runc ignores it there.
      if (!(err instanceof CgroupWriteError && err.errno === 'ENOENT')) throw err;
    }
  }
  if (quota !== 0) {
    cg.write(dir, 'cpu.cfs_quota_us', String(quota), `${RESOURCES_FIELD}.cpu.quota`);
    if (pendingPeriod !== undefined) cg.write(dir, 'cpu.cfs_period_us', pendingPeriod, `${RESOURCES_FIELD}.cpu.period`);
    if (pendingBurst !== undefined) cg.write(dir, 'cpu.cfs_burst_us', pendingBurst, `${RESOURCES_FIELD}.cpu.burst`);
  }
  if (c.idle !== undefined) cg.write(dir, 'cpu.idle', String(c.idle), `${RESOURCES_FIELD}.cpu.idle`);
  setRealtimeV1(cg, dir, r);
}

function setRealtimeV1(cg: CgroupFs, dir: string, r: Resources): void {
  const runtime = r.cpu?.realtimeRuntime ?? 0;
  const period = r.cpu?.realtimePeriod ?? 0;
  let pendingPeriod: string | undefined;
  if (period !== 0) pendingPeriod = writeOrPostpone(cg, dir, 'cpu.rt_period_us', String(period), `${RESOURCES_FIELD}.cpu.realtimePeriod`, runtime !== 0);
  if (runtime !== 0) {
    cg.write(dir, 'cpu.rt_runtime_us', String(runtime), `${RESOURCES_FIELD}.cpu.realtimeRuntime`);
    if (pendingPeriod !== undefined) cg.write(dir, 'cpu.rt_period_us', pendingPeriod, `${RESOURCES_FIELD}.cpu.realtimePeriod`);
  }
}

/** Old kernels mounted with `noprefix` name the files `cpus`/`mems`. */
export function cpusetFile(cg: CgroupFs, dir: string, name: 'cpus' | 'mems'): string {
  return cg.exists(dir, `cpuset.${name}`) || !cg.exists(dir, name) ? `cpuset.${name}` : name;
}

/** A cpuset file's name and value, read without looking the file up first (see cpusetFile). */
function readCpuset(cg: CgroupFs, dir: string, name: 'cpus' | 'mems'): { file: string; value: string } {
  const value = cg.tryRead(dir, `cpuset.${name}`);
  if (value !== undefined) return { file: `cpuset.${name}`, value: value.trim() };
  const file = cpusetFile(cg, dir, name);
  return { file, value: (cg.tryRead(dir, file) ?? '').trim() };
}

export function setCpusetV1(cg: CgroupFs, cpusetDir: string | undefined, r: Resources): void {
  const cpus = r.cpu?.cpus;
  const mems = r.cpu?.mems;
  if (!cpus && !mems) return;
  const dir = need(cpusetDir, 'cpuset', `${RESOURCES_FIELD}.cpu.${cpus ? 'cpus' : 'mems'}`);
  if (cpus) cg.write(dir, cpusetFile(cg, dir, 'cpus'), cpus, `${RESOURCES_FIELD}.cpu.cpus`);
  if (mems) cg.write(dir, cpusetFile(cg, dir, 'mems'), mems, `${RESOURCES_FIELD}.cpu.mems`);
}

/** A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: inherit the parent's. */
export function cpusetInheritFromParent(cg: CgroupFs, dir: string, parent: string): void {
  for (const name of ['cpus', 'mems'] as const) {
    const { file, value } = readCpuset(cg, dir, name);
    if (value !== '') continue;
    const inherited = readCpuset(cg, parent, name).value;
    if (inherited !== '') cg.write(dir, file, inherited, `${RESOURCES_FIELD}.cpu.${name}`);
  }
}

export function setPidsV1(cg: CgroupFs, pidsDir: string | undefined, r: Resources): void {
  if (!r.pids) return;
  const dir = need(pidsDir, 'pids', `${RESOURCES_FIELD}.pids.limit`);
  cg.write(dir, 'pids.max', pidsMaxValue(r.pids.limit), `${RESOURCES_FIELD}.pids.limit`);
}

export function setBlkioV1(cg: CgroupFs, blkioDir: string | undefined, r: Resources): void {
  const b = r.blockIO;
  if (!b) return;
  const throttles = [
    ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
    ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
    ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
    ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
  ] as const;
  const anything = !!b.weight || !!b.leafWeight || (b.weightDevice?.length ?? 0) > 0 || throttles.some(([key]) => (b[key]?.length ?? 0) > 0);
  if (!anything) return;
  const dir = need(blkioDir, 'blkio', `${RESOURCES_FIELD}.blockIO`);
  // CFQ is gone from recent kernels; BFQ exposes the weights under blkio.bfq.*.
  const cfq = cg.exists(dir, 'blkio.weight');
  const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
  const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
  if (b.weight) cg.write(dir, weightFile, String(b.weight), `${RESOURCES_FIELD}.blockIO.weight`);
  if (b.leafWeight) cg.write(dir, 'blkio.leaf_weight', String(b.leafWeight), `${RESOURCES_FIELD}.blockIO.leafWeight`);
  (b.weightDevice ?? []).forEach((d, i) => {
    if (d.weight) cg.write(dir, weightDeviceFile, `${majorMinor(d)} ${d.weight}`, `${RESOURCES_FIELD}.blockIO.weightDevice[${i}].weight`);
    if (d.leafWeight) cg.write(dir, 'blkio.leaf_weight_device', `${majorMinor(d)} ${d.leafWeight}`, `${RESOURCES_FIELD}.blockIO.weightDevice[${i}].leafWeight`);
  });
  for (const [key, file] of throttles) {
    (b[key] ?? []).forEach((d, i) => cg.write(dir, file, `${majorMinor(d)} ${d.rate}`, `${RESOURCES_FIELD}.blockIO.${key}[${i}]`));
  }
}

/** Writes `<prefix>.limit_in_bytes` and, when the kernel has it, the reservation twin `.rsvd.` (runc). */
export function setHugetlbFiles(cg: CgroupFs, dir: string, r: Resources, suffix: '.limit_in_bytes' | '.max'): void {
  let reservationsSupported = true;
  (r.hugepageLimits ?? []).forEach((h, i) => {
    const field = `${RESOURCES_FIELD}.hugepageLimits[${i}]`;
    const prefix = `hugetlb.${h.pageSize}`;
    cg.write(dir, prefix + suffix, String(h.limit), field);
    if (!reservationsSupported) return;
    try {
      cg.writeRaw(dir, `${prefix}.rsvd${suffix}`, String(h.limit));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw new CgroupWriteError(field, `${dir}/${prefix}.rsvd${suffix}`, String(h.limit), err);
      reservationsSupported = false;
    }
  });
}

export function setNetworkV1(cg: CgroupFs, netClsDir: string | undefined, netPrioDir: string | undefined, r: Resources): void {
  const n = r.network;
  if (!n) return;
  if (n.classID !== undefined && n.classID !== 0) {
    const dir = need(netClsDir, 'net_cls', `${RESOURCES_FIELD}.network.classID`);
    cg.write(dir, 'net_cls.classid', String(n.classID), `${RESOURCES_FIELD}.network.classID`);
  }
  (n.priorities ?? []).forEach((p, i) => {
    const dir = need(netPrioDir, 'net_prio', `${RESOURCES_FIELD}.network.priorities`);
    cg.write(dir, 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `${RESOURCES_FIELD}.network.priorities[${i}]`);
  });
}

export function setRdma(cg: CgroupFs, rdmaDir: string | undefined, r: Resources): void {
  if (!r.rdma || Object.keys(r.rdma).length === 0) return;
  const lines = rdmaLines(r.rdma);
  const dir = need(rdmaDir, 'rdma', `${RESOURCES_FIELD}.rdma`);
  for (const line of lines) cg.write(dir, 'rdma.max', line, `${RESOURCES_FIELD}.rdma`);
}

/**
 * v1 devices: deny everything, then replay the rules in order (each `a` rule resets the whole
 * list in the kernel, so the order is the semantics). runc computes a minimal transition with an
 * emulator instead; the difference is a brief deny-all window during `update` of a running
 * container.
 */
export function setDevicesV1(cg: CgroupFs, devicesDir: string | undefined, r: Resources): void {
  if (!r.devices) return; // absent = leave the inherited list alone; [] = deny all
  const rules = normalizeDeviceRules(r.devices);
  const dir = need(devicesDir, 'devices', `${RESOURCES_FIELD}.devices`);
  const writer = cg.writer(dir);
  try {
    writer.write('devices.deny', 'a', `${RESOURCES_FIELD}.devices`);
    for (const i of effectiveDeviceRules(rules)) {
      writer.write(rules[i].allow ? 'devices.allow' : 'devices.deny', rules[i].line, `${RESOURCES_FIELD}.devices[${i}]`);
    }
  } finally {
    writer.close();
  }
}

/**
 * The indexes of the rules that change the list, after a "deny all" (the kernel's v1 semantics:
 * in deny-all mode an allow adds access to the entry of exactly that type and major:minor, a
 * deny takes access from it, and "a" resets the list). Engines repeat rules (Docker's defaults
 * and runc's allowed devices overlap, and the config starts with a deny of all): each write
 * costs a system call at every container start, and a repeated one changes nothing.
 */
export function effectiveDeviceRules(rules: NormalizedDeviceRule[]): number[] {
  const kept: number[] = [];
  let allowAll = false; // after an "allow a": the kernel's allow-all mode, where we keep every rule
  const entries = new Map<string, Set<string>>(); // type major:minor -> access, in deny-all mode
  rules.forEach((rule, i) => {
    if (rule.type === 'a') {
      if (!rule.allow && !allowAll && entries.size === 0) return; // denying all again
      allowAll = rule.allow;
      entries.clear();
      kept.push(i);
      return;
    }
    kept.push(i);
    if (allowAll) return;
    const key = `${rule.type} ${rule.major}:${rule.minor}`;
    const access = entries.get(key) ?? new Set<string>();
    if (rule.allow) {
      if ([...rule.access].every((a) => access.has(a))) kept.pop(); // allowed already
      for (const a of rule.access) access.add(a);
      entries.set(key, access);
    } else {
      for (const a of rule.access) access.delete(a);
      if (access.size === 0) entries.delete(key);
    }
  });
  return kept;
}
