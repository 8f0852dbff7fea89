/**
 * Value conversions and validations shared by the v1 and v2 writers. The OCI resources are
 * shaped after cgroup v1; v2 needs the same conversions runc applies.
 */
import { InvalidArgumentError } from '../../common/errors.js';
import type { DeviceCgroupRule, Resources } from '../spec/config.js';

export const RESOURCES_FIELD = 'linux.resources';

export function requireInteger(value: number, field: string, min = -Infinity): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`must be an integer${min > -Infinity ? ` >= ${min}` : ''}, got ${value}`, field);
  }
  return value;
}

/** runc ConvertCPUSharesToCgroupV2Value: a quadratic in log2 mapping [2, 262144] onto [1, 10000], 1024 → 100. */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612 - 7 / 34;
  return Math.ceil(Math.pow(10, exponent));
}

/** runc ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000] linearly. */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * runc ConvertMemorySwapToCgroupV2Value: OCI swap is memory+swap, v2 memory.swap.max is swap
 * alone. 0 = unset, -1 = unlimited.
 */
export function memorySwapToV2(swap: number, memory: number): number {
  const field = `${RESOURCES_FIELD}.memory.swap`;
  if (memory === -1 && swap === 0) return -1; // "memory unlimited" implies swap unlimited (v1 compat)
  if (swap === -1 || swap === 0) return swap;
  if (memory === -1) return swap;
  if (memory === 0) throw new InvalidArgumentError('a swap limit needs a memory limit', field);
  if (memory < 0) throw new InvalidArgumentError(`invalid memory value ${memory}`, `${RESOURCES_FIELD}.memory.limit`);
  if (swap < memory) throw new InvalidArgumentError(`memory+swap (${swap}) must be >= memory (${memory})`, field);
  return swap - memory;
}

/** A device rule in the kernel's v1 syntax, also what a v2 eBPF program must implement. */
export interface NormalizedDeviceRule {
  allow: boolean;
  type: 'a' | 'c' | 'b';
  /** -1 = any */
  major: number;
  minor: number;
  access: string;
  /** `c 1:3 rwm` */
  line: string;
}

export function normalizeDeviceRules(rules: DeviceCgroupRule[]): NormalizedDeviceRule[] {
  return rules.map((rule, index) => {
    const field = `${RESOURCES_FIELD}.devices[${index}]`;
    const type = rule.type ?? 'a';
    if (type !== 'a' && type !== 'c' && type !== 'b') throw new InvalidArgumentError(`type must be a, c or b, got ${JSON.stringify(type)}`, `${field}.type`);
    const access = rule.access ?? '';
    // runc refuses an empty access: it would silently mean "nothing", never what was meant.
    if (access === '' || !/^[rwm]+$/.test(access) || new Set(access).size !== access.length) {
      throw new InvalidArgumentError(`access must be a non-empty combination of r, w, m, got ${JSON.stringify(access)}`, `${field}.access`);
    }
    const number = (value: number | null | undefined, name: string): number => {
      if (value === undefined || value === null || value === -1) return -1;
      return requireInteger(value, `${field}.${name}`, 0);
    };
    const major = number(rule.major, 'major');
    const minor = number(rule.minor, 'minor');
    const show = (n: number): string => (n === -1 ? '*' : String(n));
    return { allow: rule.allow, type, major, minor, access, line: `${type} ${show(major)}:${show(minor)} ${access}` };
  });
}

/** Checks that do not depend on the cgroup version. */
export function validateCommon(r: Resources): void {
  const m = r.memory;
  if (m) {
    for (const key of ['limit', 'reservation', 'swap'] as const) {
      if (m[key] !== undefined) requireInteger(m[key]!, `${RESOURCES_FIELD}.memory.${key}`, -1);
    }
    if (m.swappiness !== undefined && m.swappiness !== -1) {
      requireInteger(m.swappiness, `${RESOURCES_FIELD}.memory.swappiness`, 0);
      if (m.swappiness > 100) throw new InvalidArgumentError(`must be 0..100, got ${m.swappiness}`, `${RESOURCES_FIELD}.memory.swappiness`);
    }
  }
  const c = r.cpu;
  if (c) {
    if (c.shares !== undefined) requireInteger(c.shares, `${RESOURCES_FIELD}.cpu.shares`, 0);
    if (c.quota !== undefined) requireInteger(c.quota, `${RESOURCES_FIELD}.cpu.quota`, -1);
    if (c.period !== undefined) requireInteger(c.period, `${RESOURCES_FIELD}.cpu.period`, 0);
    if (c.burst !== undefined) requireInteger(c.burst, `${RESOURCES_FIELD}.cpu.burst`, 0);
    if (c.idle !== undefined) requireInteger(c.idle, `${RESOURCES_FIELD}.cpu.idle`);
    if (c.realtimeRuntime !== undefined) requireInteger(c.realtimeRuntime, `${RESOURCES_FIELD}.cpu.realtimeRuntime`, -1);
    if (c.realtimePeriod !== undefined) requireInteger(c.realtimePeriod, `${RESOURCES_FIELD}.cpu.realtimePeriod`, 0);
  }
  if (r.pids) requireInteger(r.pids.limit, `${RESOURCES_FIELD}.pids.limit`);
  const b = r.blockIO;
  if (b) {
    if (b.weight !== undefined) requireInteger(b.weight, `${RESOURCES_FIELD}.blockIO.weight`, 0);
    if (b.leafWeight !== undefined) requireInteger(b.leafWeight, `${RESOURCES_FIELD}.blockIO.leafWeight`, 0);
    for (const key of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'] as const) {
      (b[key] ?? []).forEach((d, i) => {
        requireInteger(d.major, `${RESOURCES_FIELD}.blockIO.${key}[${i}].major`, 0);
        requireInteger(d.minor, `${RESOURCES_FIELD}.blockIO.${key}[${i}].minor`, 0);
        requireInteger(d.rate, `${RESOURCES_FIELD}.blockIO.${key}[${i}].rate`, 0);
      });
    }
  }
  (r.hugepageLimits ?? []).forEach((h, i) => {
    if (!/^\d+[KMG]B$/.test(h.pageSize)) throw new InvalidArgumentError(`page size like "2MB" expected, got ${JSON.stringify(h.pageSize)}`, `${RESOURCES_FIELD}.hugepageLimits[${i}].pageSize`);
    requireInteger(h.limit, `${RESOURCES_FIELD}.hugepageLimits[${i}].limit`, 0);
  });
  if (r.devices) normalizeDeviceRules(r.devices);
}

/** `pids.max` value: 0 and negative mean unlimited. */
export function pidsMaxValue(limit: number): string {
  return limit > 0 ? String(limit) : 'max';
}

/** Throttle/weight device lines, shared by v1 blkio and v2 io. */
export function majorMinor(d: { major: number; minor: number }): string {
  return `${d.major}:${d.minor}`;
}

/** rdma.max line: `mlx4_0 hca_handle=2 hca_object=2000` (v1 and v2 use the same syntax). */
export function rdmaLines(rdma: NonNullable<Resources['rdma']>): string[] {
  return Object.entries(rdma).map(([device, limits]) => {
    if (/\s/.test(device) || device === '') throw new InvalidArgumentError(`bad device name ${JSON.stringify(device)}`, `${RESOURCES_FIELD}.rdma`);
    let line = device;
    if (limits.hcaHandles !== undefined) line += ` hca_handle=${requireInteger(limits.hcaHandles, `${RESOURCES_FIELD}.rdma.${device}.hcaHandles`, 0)}`;
    if (limits.hcaObjects !== undefined) line += ` hca_object=${requireInteger(limits.hcaObjects, `${RESOURCES_FIELD}.rdma.${device}.hcaObjects`, 0)}`;
    return line;
  });
}
