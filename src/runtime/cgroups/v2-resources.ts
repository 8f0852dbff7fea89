/**
 * cgroup v2 writers, following runc's libcontainer/cgroups/fs2, and the directory creation that
 * delegates controllers down the tree (cgroup.subtree_control of every ancestor).
 */
import path from 'node:path';
import { InvalidArgumentError, SystemError, UnsupportedError } from '../../common/errors.js';
import type { Resources } from '../spec/config.js';
import { blkioWeightToIoWeight, cpuSharesToWeight, RESOURCES_FIELD, majorMinor, memorySwapToV2, pidsMaxValue, rdmaLines, validateCommon } from './convert.js';
import { CgroupFs, CgroupWriteError, errnoOf, parseLimit } from './files.js';
import { setHugetlbFiles } from './v1-resources.js';

/** Write a v2 interface file; a missing file means the controller is not enabled here: say so. */
function writeV2(cg: CgroupFs, dir: string, file: string, value: string, field: string): void {
  try {
    cg.writeRaw(dir, file, value);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' && cg.exists(dir)) {
      const controller = file.split('.')[0];
      const available = (cg.tryRead(dir, 'cgroup.controllers') ?? '').trim() || 'none';
      throw new UnsupportedError(`${field}: the ${controller} controller is not available in ${dir} (enabled: ${available})`);
    }
    throw new CgroupWriteError(field, `${dir}/${file}`, value, err);
  }
}

/** 0 = unset (write nothing), -1 = unlimited. */
function limitString(value: number): string {
  return value === -1 ? 'max' : value === 0 ? '' : String(value);
}

export function validateV2(r: Resources): void {
  validateCommon(r);
  if (r.memory) memorySwapToV2(r.memory.swap ?? 0, r.memory.limit ?? 0);
  if (r.cpu?.realtimePeriod || r.cpu?.realtimeRuntime) {
    throw new UnsupportedError(`${RESOURCES_FIELD}.cpu.realtimeRuntime: realtime CPU scheduling limits do not exist in cgroup v2`);
  }
  if (r.network && (r.network.classID || (r.network.priorities?.length ?? 0) > 0)) {
    throw new UnsupportedError(`${RESOURCES_FIELD}.network: net_cls/net_prio do not exist in cgroup v2`);
  }
  for (const key of Object.keys(r.unified ?? {})) {
    if (key === '' || key.includes('/') || key === '.' || key === '..') {
      throw new InvalidArgumentError(`${JSON.stringify(key)} must be a file name in the cgroup directory`, `${RESOURCES_FIELD}.unified`);
    }
    if (!key.includes('.')) throw new InvalidArgumentError(`${JSON.stringify(key)} must be CONTROLLER.PARAMETER`, `${RESOURCES_FIELD}.unified`);
  }
}

/** Controllers a Resources object needs; used to decide if a cgroup in "domain invalid" state can still be used. */
function needsDomainControllers(r: Resources): boolean {
  const m = r.memory;
  const c = r.cpu;
  const b = r.blockIO;
  return (
    (!!m && (!!m.limit || !!m.swap || !!m.reservation)) ||
    (!!c && (!!c.shares || !!c.quota || !!c.period || c.idle !== undefined || c.burst !== undefined)) ||
    (!!b && Object.values(b).some((v) => (Array.isArray(v) ? v.length > 0 : !!v))) ||
    (r.hugepageLimits?.length ?? 0) > 0
  );
}

/** Whether any resource requires a controller (runc: rootless without cgroup access is fine if not). */
export function needsAnyController(r: Resources): boolean {
  return needsDomainControllers(r) || !!r.pids || !!r.cpu?.cpus || !!r.cpu?.mems || Object.keys(r.unified ?? {}).length > 0 || Object.keys(r.rdma ?? {}).length > 0;
}

/** Enable `controllers` in `dir`'s subtree_control, all at once, else one by one, ignoring refusals (checked later by the writes). */
export function enableSubtreeControllers(cg: CgroupFs, dir: string, controllers: string[]): void {
  if (controllers.length === 0) return;
  try {
    cg.writeRaw(dir, 'cgroup.subtree_control', controllers.map((c) => `+${c}`).join(' '));
  } catch {
    for (const controller of controllers) {
      try {
        cg.writeRaw(dir, 'cgroup.subtree_control', `+${controller}`);
      } catch {
        // e.g. EBUSY (the cgroup holds processes) or not delegated to us
      }
    }
  }
}

function controllersOf(cg: CgroupFs, dir: string): string[] {
  return (cg.tryRead(dir, 'cgroup.controllers') ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Create `leaf` below the cgroup2 mount `mountPoint`, enabling at every level, from the mount
 * down to the leaf's parent, the controllers available there (runc enables all). Returns the
 * directories created; on failure removes them again.
 * `onlyControllers` restricts what is enabled (hybrid mode uses the unified tree for hugetlb only).
 */
export function createV2Path(cg: CgroupFs, mountPoint: string, leaf: string, r: Resources, onlyControllers?: string[]): string[] {
  const relative = path.posix.relative(mountPoint, leaf);
  if (relative.startsWith('..') || path.posix.isAbsolute(relative)) throw new SystemError(`cgroup ${leaf} is not below the cgroup2 mount ${mountPoint}`);
  const levels = [mountPoint];
  for (const segment of relative.split('/').filter(Boolean)) levels.push(path.posix.join(levels[levels.length - 1], segment));
  const created: string[] = [];
  try {
    levels.forEach((dir, i) => {
      if (i > 0) {
        created.push(...cg.mkdirs(dir));
        checkCgroupType(cg, dir, r);
      }
      if (i < levels.length - 1) {
        let controllers = controllersOf(cg, dir);
        if (onlyControllers) controllers = controllers.filter((c) => onlyControllers.includes(c));
        enableSubtreeControllers(cg, dir, controllers);
      }
    });
  } catch (err) {
    for (const dir of [...created].reverse()) {
      try {
        cg.rmdir(dir, false);
      } catch {
        // leave it; the original error matters more
      }
    }
    throw err;
  }
  return created;
}

function checkCgroupType(cg: CgroupFs, dir: string, r: Resources): void {
  const type = (cg.tryRead(dir, 'cgroup.type') ?? '').trim();
  if (type === 'domain invalid') {
    // Created under a cgroup that holds processes: only threaded controllers can work here.
    if (needsDomainControllers(r)) throw new SystemError(`cannot use cgroup ${dir} with memory/io/cpu/hugetlb limits: it is in "domain invalid" state`);
    try {
      cg.writeRaw(dir, 'cgroup.type', 'threaded');
    } catch {
      // as runc: better than failing
    }
  } else if ((type === 'threaded' || type === 'domain threaded') && needsDomainControllers(r)) {
    throw new SystemError(`cannot use cgroup ${dir} with memory/io/cpu/hugetlb limits: it is in "${type}" mode`);
  }
}

export function setPidsV2(cg: CgroupFs, dir: string, r: Resources): void {
  if (r.pids) writeV2(cg, dir, 'pids.max', pidsMaxValue(r.pids.limit), `${RESOURCES_FIELD}.pids.limit`);
}

export function setMemoryV2(cg: CgroupFs, dir: string, r: Resources, isUpdate: boolean): void {
  const m = r.memory;
  if (!m) return;
  const limit = m.limit ?? 0;
  const ociSwap = m.swap ?? 0;
  const reservation = m.reservation ?? 0;
  if (limit === 0 && ociSwap === 0 && reservation === 0) return;
  if (isUpdate && m.checkBeforeUpdate && (limit > 0 || ociSwap > 0)) {
    const usage = parseLimit(cg.tryRead(dir, 'memory.current'));
    if (usage !== undefined && ociSwap > 0 && ociSwap <= usage) throw new UnsupportedError(`${RESOURCES_FIELD}.memory.swap: rejecting memory+swap limit ${ociSwap} <= usage ${usage}`);
    if (usage !== undefined && limit > 0 && limit <= usage) throw new UnsupportedError(`${RESOURCES_FIELD}.memory.limit: rejecting memory limit ${limit} <= usage ${usage}`);
  }
  const swap = memorySwapToV2(ociSwap, limit);
  let swapValue = limitString(swap);
  if (swap === 0 && ociSwap > 0) swapValue = '0'; // memory == memory+swap: no swap at all
  if (swapValue !== '') {
    try {
      cg.writeRaw(dir, 'memory.swap.max', swapValue);
    } catch (err) {
      // No swap on this kernel: "unlimited" and "none" are already the truth.
      const ignorable = errnoOf(err) === 'ENOENT' && (swapValue === 'max' || swapValue === '0') && cg.exists(dir, 'memory.max');
      if (!ignorable) writeV2(cg, dir, 'memory.swap.max', swapValue, `${RESOURCES_FIELD}.memory.swap`);
    }
  }
  const limitValue = limitString(limit);
  if (limitValue !== '') writeV2(cg, dir, 'memory.max', limitValue, `${RESOURCES_FIELD}.memory.limit`);
  const reservationValue = limitString(reservation);
  if (reservationValue !== '') writeV2(cg, dir, 'memory.low', reservationValue, `${RESOURCES_FIELD}.memory.reservation`);
  // swappiness, kernel, kernelTCP, disableOOMKiller have no v2 file; runc ignores them too.
}

export function setIoV2(cg: CgroupFs, dir: string, r: Resources): void {
  const b = r.blockIO;
  if (!b) return;
  const throttles = [
    ['throttleReadBpsDevice', 'rbps'],
    ['throttleWriteBpsDevice', 'wbps'],
    ['throttleReadIOPSDevice', 'riops'],
    ['throttleWriteIOPSDevice', 'wiops'],
  ] as const;
  const weightDevices = (b.weightDevice ?? []).filter((d) => d.weight);
  if (b.weight || weightDevices.length > 0) {
    // With the BFQ scheduler io.bfq.weight takes the v1 scale directly; else io.weight (converted).
    const bfq = cg.tryRead(dir, 'io.bfq.weight');
    if (b.weight) {
      if (bfq !== undefined) writeV2(cg, dir, 'io.bfq.weight', String(b.weight), `${RESOURCES_FIELD}.blockIO.weight`);
      else writeV2(cg, dir, 'io.weight', String(blkioWeightToIoWeight(b.weight)), `${RESOURCES_FIELD}.blockIO.weight`);
    }
    // Per-device BFQ weights exist when io.bfq.weight reads "default N" rather than a number.
    if (bfq !== undefined && !/^\d+$/.test(bfq.trim())) {
      weightDevices.forEach((d, i) => writeV2(cg, dir, 'io.bfq.weight', `${majorMinor(d)} ${d.weight}`, `${RESOURCES_FIELD}.blockIO.weightDevice[${i}]`));
    }
  }
  for (const [key, name] of throttles) {
    (b[key] ?? []).forEach((d, i) => writeV2(cg, dir, 'io.max', `${majorMinor(d)} ${name}=${d.rate}`, `${RESOURCES_FIELD}.blockIO.${key}[${i}]`));
  }
}

export function setCpuV2(cg: CgroupFs, dir: string, r: Resources): void {
  const c = r.cpu;
  if (!c) return;
  if (c.idle !== undefined) writeV2(cg, dir, 'cpu.idle', String(c.idle), `${RESOURCES_FIELD}.cpu.idle`);
  if (c.shares) writeV2(cg, dir, 'cpu.weight', String(cpuSharesToWeight(c.shares)), `${RESOURCES_FIELD}.cpu.shares`);
  const quota = c.quota ?? 0;
  const period = c.period ?? 0;
  let pendingBurst: string | undefined;
  if (c.burst !== undefined) {
    try {
      cg.writeRaw(dir, 'cpu.max.burst', String(c.burst));
    } catch (err) {
      // The burst may exceed the current quota: retry once the new quota is in.
      if (errnoOf(err) === 'EINVAL' && quota !== 0) pendingBurst = String(c.burst);
      else writeV2(cg, dir, 'cpu.max.burst', String(c.burst), `${RESOURCES_FIELD}.cpu.burst`);
    }
  }
  if (quota !== 0 || period !== 0) {
    const value = `${quota > 0 ? quota : 'max'} ${period || 100000}`;
    writeV2(cg, dir, 'cpu.max', value, quota !== 0 ? `${RESOURCES_FIELD}.cpu.quota` : `${RESOURCES_FIELD}.cpu.period`);
    if (pendingBurst !== undefined) writeV2(cg, dir, 'cpu.max.burst', pendingBurst, `${RESOURCES_FIELD}.cpu.burst`);
  }
}

export function setCpusetV2(cg: CgroupFs, dir: string, r: Resources): void {
  if (r.cpu?.cpus) writeV2(cg, dir, 'cpuset.cpus', r.cpu.cpus, `${RESOURCES_FIELD}.cpu.cpus`);
  if (r.cpu?.mems) writeV2(cg, dir, 'cpuset.mems', r.cpu.mems, `${RESOURCES_FIELD}.cpu.mems`);
}

export function setHugetlbV2(cg: CgroupFs, dir: string, r: Resources): void {
  if ((r.hugepageLimits?.length ?? 0) === 0) return;
  if (!cg.exists(dir, `hugetlb.${r.hugepageLimits![0].pageSize}.max`) && !controllersOf(cg, dir).includes('hugetlb')) {
    throw new UnsupportedError(`${RESOURCES_FIELD}.hugepageLimits: the hugetlb controller is not available in ${dir}`);
  }
  setHugetlbFiles(cg, dir, r, '.max');
}

export function setRdmaV2(cg: CgroupFs, dir: string, r: Resources): void {
  if (!r.rdma) return;
  for (const line of rdmaLines(r.rdma)) writeV2(cg, dir, 'rdma.max', line, `${RESOURCES_FIELD}.rdma`);
}

/** `unified` overrides: written last, one line per write (runc WriteFileByLine). */
export function setUnified(cg: CgroupFs, dir: string, r: Resources): void {
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    for (const line of value.split('\n')) {
      if (line === '' && value !== '') continue;
      writeV2(cg, dir, key, line, `${RESOURCES_FIELD}.unified.${key}`);
    }
  }
}
