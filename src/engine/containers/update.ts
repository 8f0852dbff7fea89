/**
 * `docker update` (POST /containers/{id}/update): new resource limits and restart policy.
 * Checked as dockerd does (the same rules as at create, through the spec's `resources()`),
 * applied to a running container's cgroup through the runtime's cgroup manager, and kept in
 * the record's HostConfig so the next start uses them too.
 */
import { ConflictError, InvalidArgumentError, SystemError } from '../../common/errors.js';
import { cgroupManagerFromDescriptor, type CgroupDescriptor } from '../../runtime/cgroups/index.js';
import type { Resources } from '../../runtime/spec/config.js';
import { resources, type HostFacts } from '../spec/container-spec.js';
import type { ContainerHostConfig, ContainerRecord, RestartPolicy } from './record.js';
import { checkRestartPolicy } from './service.js';

/** The body of an update: Docker's container.UpdateConfig (Resources plus RestartPolicy). */
export interface UpdateRequest {
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  PidsLimit?: number | null;
  BlkioWeight?: number;
  /** Ignored, with dockerd's warning. */
  KernelMemory?: number;
  RestartPolicy?: RestartPolicy;
  [key: string]: unknown;
}

const RESOURCE_KEYS = ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems', 'BlkioWeight'] as const;
const CPU_KEYS = new Set(['NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems']);

/** Bad input that dockerd words as a failed update ("Cannot update container <id>: …"). */
class RefusedUpdateError extends InvalidArgumentError {}

/**
 * The HostConfig after the update and the cgroup changes it needs. Pure. As dockerd, zero
 * (or empty) values leave a setting as it is; PidsLimit 0 or less means unlimited.
 */
export function planUpdate(
  host: ContainerHostConfig,
  req: UpdateRequest,
  facts: Pick<HostFacts, 'cpuCount' | 'blkioWeight'> = {},
): { hostConfig: ContainerHostConfig; cgroup: Resources; changed: boolean; warnings: string[] } {
  if (!req || typeof req !== 'object' || Array.isArray(req)) throw new InvalidArgumentError('must be a JSON object', 'body');
  const next: ContainerHostConfig = { ...host };
  const given = new Set<string>();
  // dockerd's verifyPlatformContainerResources for an update: what the host cannot do is
  // discarded with a warning (the docker CLI prints them), kernel memory always.
  const warnings: string[] = [];
  if (typeof req.KernelMemory === 'number' && req.KernelMemory > 0) warnings.push('Specifying a kernel memory limit is deprecated and will be removed in a future release.');
  const blkioUnsupported = !facts.blkioWeight && typeof req.BlkioWeight === 'number' && req.BlkioWeight > 0;
  if (blkioUnsupported) warnings.push('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
  for (const key of RESOURCE_KEYS) {
    const v = req[key];
    if (v === undefined || v === null || v === 0 || v === '') continue;
    if (key === 'BlkioWeight' && blkioUnsupported) continue;
    if (key.startsWith('Cpuset') ? typeof v !== 'string' : typeof v !== 'number') throw new InvalidArgumentError(`must be a ${key.startsWith('Cpuset') ? 'string' : 'number'}`, key);
    (next as Record<string, unknown>)[key] = v;
    given.add(key);
  }
  if (req.PidsLimit !== undefined && req.PidsLimit !== null) {
    if (typeof req.PidsLimit !== 'number') throw new InvalidArgumentError('must be a number', 'PidsLimit');
    next.PidsLimit = req.PidsLimit;
    given.add('PidsLimit');
  }
  // As dockerd: the given values on their own first (verifyContainerSettings), then against
  // what is set, then all together.
  resources(Object.fromEntries([...given].map((k) => [k, (next as Record<string, unknown>)[k]])) as ContainerHostConfig, facts);
  // dockerd's rule (container.UpdateContainer), after those checks: a memory limit above the
  // swap limit already set needs a new swap limit in the same update. With none set (0) or an
  // unlimited one (-1) every limit is above it: Docker 20.10 to 29 refuse `docker update
  // --memory 64m` on a container made without limits, and so do we.
  if (given.has('Memory') && !given.has('MemorySwap') && (req.Memory as number) > (host.MemorySwap ?? 0)) {
    throw new ConflictError('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
  }
  const full = resources(next, facts); // the create-time checks, field names included
  const cgroup: Resources = {};
  if (given.has('Memory') || given.has('MemorySwap') || given.has('MemoryReservation')) {
    cgroup.memory = {};
    if (given.has('Memory')) cgroup.memory.limit = full.memory?.limit ?? next.Memory;
    if (given.has('MemorySwap')) cgroup.memory.swap = full.memory?.swap ?? next.MemorySwap;
    if (given.has('MemoryReservation')) cgroup.memory.reservation = req.MemoryReservation as number;
  }
  if ([...given].some((k) => CPU_KEYS.has(k))) {
    cgroup.cpu = { ...full.cpu };
    if (given.has('CpusetMems')) cgroup.cpu.mems = req.CpusetMems as string;
  }
  if (given.has('PidsLimit')) cgroup.pids = full.pids ?? { limit: -1 };
  if (given.has('BlkioWeight')) cgroup.blockIO = { weight: req.BlkioWeight as number };

  // As dockerd: a policy without a name leaves the container's as it is (the docker CLI sends
  // RestartPolicy {Name: ""} with every update that has no --restart).
  if (req.RestartPolicy !== undefined && req.RestartPolicy !== null && !(typeof req.RestartPolicy === 'object' && !req.RestartPolicy.Name)) {
    const policy = req.RestartPolicy;
    checkRestartPolicy({ RestartPolicy: policy });
    if (host.AutoRemove && policy.Name && policy.Name !== 'no') {
      throw new RefusedUpdateError('Restart policy cannot be updated because AutoRemove is enabled for the container');
    }
    next.RestartPolicy = policy;
    given.add('RestartPolicy');
  }
  return { hostConfig: next, cgroup, changed: given.size > 0, warnings };
}

/** Applies an update; `cgroupOf` gives a running container's cgroup. */
export function updateContainer(
  record: ContainerRecord,
  req: UpdateRequest,
  deps: { cgroupOf: (id: string) => CgroupDescriptor | undefined; save: (record: ContainerRecord) => void; facts?: Pick<HostFacts, 'cpuCount' | 'blkioWeight'> },
): { Warnings: string[] } {
  if (record.state.status === 'removing' || record.state.status === 'dead') throw new ConflictError(`Cannot update container ${record.id}: container is marked for removal`);
  let plan;
  try {
    plan = planUpdate(record.hostConfig, req, deps.facts);
  } catch (err) {
    // dockerd words what conflicts with the container's settings as it words a failed update.
    if (err instanceof ConflictError || err instanceof RefusedUpdateError) err.message = `Cannot update container ${record.id}: ${err.message}`;
    throw err;
  }
  if (!plan.changed) return { Warnings: plan.warnings };
  const running = record.state.status === 'running' || record.state.status === 'paused';
  const desc = running ? deps.cgroupOf(record.id) : undefined;
  if (desc && Object.keys(plan.cgroup).length > 0) {
    try {
      cgroupManagerFromDescriptor(desc).update(plan.cgroup);
    } catch (err) {
      throw new SystemError(`Cannot update container ${record.id}: ${(err as Error).message}`, { cause: err });
    }
  }
  // In place: the service holds the same record object.
  Object.assign(record.hostConfig, plan.hostConfig);
  deps.save(record);
  return { Warnings: plan.warnings };
}
