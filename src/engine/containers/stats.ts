/**
 * `docker stats`: Docker's stats JSON (moby's container.StatsResponse) from the container's
 * cgroup files, read as dockerd does through containerd's cgroups packages: cgroup v1 (cpuacct,
 * cpu, memory, pids, blkio; also the hybrid layout) and v2 (cpu.stat, memory.*, pids.*,
 * io.stat); system_cpu_usage and online_cpus from /proc/stat. Reading is separate from the
 * formatting so that unit tests run on a fake tree (`fsRoot`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { CgroupDescriptor } from '../../runtime/cgroups/index.js';
import { ZERO_TIME } from './record.js';

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface MemoryStats {
  usage?: number;
  max_usage?: number;
  stats?: Record<string, number>;
  failcnt?: number;
  limit?: number;
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface BlkioStats {
  io_service_bytes_recursive: BlkioEntry[] | null;
  io_serviced_recursive: BlkioEntry[] | null;
  io_queue_recursive: BlkioEntry[] | null;
  io_service_time_recursive: BlkioEntry[] | null;
  io_wait_time_recursive: BlkioEntry[] | null;
  io_merged_recursive: BlkioEntry[] | null;
  io_time_recursive: BlkioEntry[] | null;
  sectors_recursive: BlkioEntry[] | null;
}

/** One reading of a cgroup. */
export interface CgroupSample {
  cpu: CpuStats;
  memory: MemoryStats;
  pids: { current?: number; limit?: number };
  blkio: BlkioStats;
}

export interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

export interface StatsJson {
  name: string;
  id: string;
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: BlkioStats;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: MemoryStats;
  /** Per interface of the container's own network namespace, but lo; absent when there is none. */
  networks?: Record<string, NetworkStats>;
}

/** /proc/<pid>/net/dev: the counters of each interface but lo (Docker's "networks"). */
export function parseNetDev(text: string | undefined): Record<string, NetworkStats> {
  const out: Record<string, NetworkStats> = {};
  for (const line of (text ?? '').split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const n = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (name === 'lo' || n.length < 16 || n.some((x) => !Number.isFinite(x))) continue;
    out[name] = { rx_bytes: n[0]!, rx_packets: n[1]!, rx_errors: n[2]!, rx_dropped: n[3]!, tx_bytes: n[8]!, tx_packets: n[9]!, tx_errors: n[10]!, tx_dropped: n[11]! };
  }
  return out;
}

/** USER_HZ: cpuacct.stat and /proc/stat count in these ticks. */
const CLOCK_TICKS = 100;
const NS_PER_TICK = 1e9 / CLOCK_TICKS;

function emptyBlkio(): BlkioStats {
  return {
    io_service_bytes_recursive: null,
    io_serviced_recursive: null,
    io_queue_recursive: null,
    io_service_time_recursive: null,
    io_wait_time_recursive: null,
    io_merged_recursive: null,
    io_time_recursive: null,
    sectors_recursive: null,
  };
}

function emptyCpu(): CpuStats {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
}

/** "key value" lines (memory.stat, cpu.stat, cpuacct.stat) → numbers. */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) out[key] = Number(value);
  }
  return out;
}

function num(text: string | undefined): number | undefined {
  const t = text?.trim();
  return t && /^\d+$/.test(t) ? Number(t) : undefined;
}

/** v1 blkio files: "8:0 Read 4096" lines (the "Total" line skipped). */
export function parseBlkioV1(text: string | undefined): BlkioEntry[] | null {
  if (text === undefined) return null;
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):(\d+)\s+(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: Number(m[4]) });
  }
  return out;
}

/** v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." → bytes and ops, as moby words them. */
export function parseIoStatV2(text: string | undefined): { bytes: BlkioEntry[]; ios: BlkioEntry[] } {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, ...fields] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    const kv = Object.fromEntries(fields.map((f) => f.split('=')).map(([k, v]) => [k, Number(v)]));
    const major = Number(m[1]);
    const minor = Number(m[2]);
    bytes.push({ major, minor, op: 'read', value: kv.rbytes ?? 0 }, { major, minor, op: 'write', value: kv.wbytes ?? 0 });
    ios.push({ major, minor, op: 'read', value: kv.rios ?? 0 }, { major, minor, op: 'write', value: kv.wios ?? 0 });
  }
  return { bytes, ios };
}

/** The host's total CPU time in nanoseconds (moby: user..softirq of the "cpu" line) and its CPUs. */
export function systemCpu(procStat: string): { usage: number; onlineCpus: number } {
  let usage = 0;
  let cpus = 0;
  for (const line of procStat.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === 'cpu') usage = parts.slice(1, 8).reduce((sum, v) => sum + Number(v || 0), 0) * NS_PER_TICK;
    else if (/^cpu\d+$/.test(parts[0] ?? '')) cpus++;
  }
  return { usage, onlineCpus: cpus };
}

/** The limit Docker reports: an unlimited cgroup shows the machine's memory. */
function memoryLimit(limit: number | undefined, machine: number): number | undefined {
  if (limit === undefined) return machine;
  return limit > machine && machine > 0 ? machine : limit;
}

/** Reads the cgroup a container's runtime record describes; `fsRoot` prefixes every path (tests). */
export function readCgroupSample(desc: CgroupDescriptor, opts: { fsRoot?: string; machineMemory?: number } = {}): CgroupSample {
  const fsRoot = opts.fsRoot ?? '';
  const machine = opts.machineMemory ?? os.totalmem();
  const read = (dir: string | undefined, file: string): string | undefined => {
    if (dir === undefined) return undefined;
    try {
      return fs.readFileSync(path.join(fsRoot || '/', dir, file), 'utf8');
    } catch {
      return undefined;
    }
  };
  const cpu = emptyCpu();
  const memory: MemoryStats = {};
  const pids: CgroupSample['pids'] = {};
  const blkio = emptyBlkio();

  if (desc.mode === 'v2') {
    const dir = desc.paths.unified;
    const cpuStat = parseFlatKeyed(read(dir, 'cpu.stat'));
    cpu.cpu_usage.total_usage = (cpuStat.usage_usec ?? 0) * 1000;
    cpu.cpu_usage.usage_in_kernelmode = (cpuStat.system_usec ?? 0) * 1000;
    cpu.cpu_usage.usage_in_usermode = (cpuStat.user_usec ?? 0) * 1000;
    cpu.throttling_data = { periods: cpuStat.nr_periods ?? 0, throttled_periods: cpuStat.nr_throttled ?? 0, throttled_time: (cpuStat.throttled_usec ?? 0) * 1000 };
    memory.usage = num(read(dir, 'memory.current'));
    const peak = num(read(dir, 'memory.peak'));
    if (peak !== undefined) memory.max_usage = peak;
    memory.stats = parseFlatKeyed(read(dir, 'memory.stat'));
    memory.limit = memoryLimit(num(read(dir, 'memory.max')), machine);
    pids.current = num(read(dir, 'pids.current'));
    pids.limit = num(read(dir, 'pids.max'));
    const io = parseIoStatV2(read(dir, 'io.stat'));
    blkio.io_service_bytes_recursive = io.bytes;
    blkio.io_serviced_recursive = io.ios;
  } else {
    const p = desc.paths;
    const cpuacct = p.cpuacct ?? p.cpu;
    cpu.cpu_usage.total_usage = num(read(cpuacct, 'cpuacct.usage')) ?? 0;
    const percpu = read(cpuacct, 'cpuacct.usage_percpu')?.trim();
    if (percpu) cpu.cpu_usage.percpu_usage = percpu.split(/\s+/).map(Number);
    const ticks = parseFlatKeyed(read(cpuacct, 'cpuacct.stat'));
    cpu.cpu_usage.usage_in_kernelmode = (ticks.system ?? 0) * NS_PER_TICK;
    cpu.cpu_usage.usage_in_usermode = (ticks.user ?? 0) * NS_PER_TICK;
    const throttle = parseFlatKeyed(read(p.cpu ?? cpuacct, 'cpu.stat'));
    cpu.throttling_data = { periods: throttle.nr_periods ?? 0, throttled_periods: throttle.nr_throttled ?? 0, throttled_time: throttle.throttled_time ?? 0 };
    memory.usage = num(read(p.memory, 'memory.usage_in_bytes'));
    memory.max_usage = num(read(p.memory, 'memory.max_usage_in_bytes'));
    // omitempty in moby's MemoryStats: a count of 0 is left out.
    memory.failcnt = num(read(p.memory, 'memory.failcnt')) || undefined;
    memory.stats = parseFlatKeyed(read(p.memory, 'memory.stat'));
    memory.limit = memoryLimit(num(read(p.memory, 'memory.limit_in_bytes')), machine);
    pids.current = num(read(p.pids, 'pids.current'));
    pids.limit = num(read(p.pids, 'pids.max'));
    const bytes = read(p.blkio, 'blkio.io_service_bytes_recursive')?.trim() ? read(p.blkio, 'blkio.io_service_bytes_recursive') : read(p.blkio, 'blkio.throttle.io_service_bytes_recursive');
    const ios = read(p.blkio, 'blkio.io_serviced_recursive')?.trim() ? read(p.blkio, 'blkio.io_serviced_recursive') : read(p.blkio, 'blkio.throttle.io_serviced_recursive');
    blkio.io_service_bytes_recursive = parseBlkioV1(bytes);
    blkio.io_serviced_recursive = parseBlkioV1(ios);
    // The CFQ-only files (absent under other schedulers): lists, empty without them, as dockerd
    // gives them on cgroup v1 (v2 has none: null).
    blkio.io_queue_recursive = parseBlkioV1(read(p.blkio, 'blkio.io_queued_recursive')) ?? [];
    blkio.io_service_time_recursive = parseBlkioV1(read(p.blkio, 'blkio.io_service_time_recursive')) ?? [];
    blkio.io_wait_time_recursive = parseBlkioV1(read(p.blkio, 'blkio.io_wait_time_recursive')) ?? [];
    blkio.io_merged_recursive = parseBlkioV1(read(p.blkio, 'blkio.io_merged_recursive')) ?? [];
    blkio.io_time_recursive = parseBlkioV1(read(p.blkio, 'blkio.time_recursive')) ?? [];
    blkio.sectors_recursive = parseBlkioV1(read(p.blkio, 'blkio.sectors_recursive')) ?? [];
  }
  for (const key of Object.keys(memory) as Array<keyof MemoryStats>) if (memory[key] === undefined) delete memory[key];
  for (const key of Object.keys(pids) as Array<keyof typeof pids>) if (pids[key] === undefined) delete pids[key];
  return { cpu, memory, pids, blkio };
}

/** The stats of a container that is not running: Docker's zero value. */
export function zeroStats(name: string, id: string): StatsJson {
  return {
    name,
    id,
    read: ZERO_TIME,
    preread: ZERO_TIME,
    pids_stats: {},
    blkio_stats: emptyBlkio(),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: emptyCpu(),
    precpu_stats: emptyCpu(),
    memory_stats: {},
  };
}

/** One stats answer: this sample, with the previous one (if any) as precpu. */
export function statsJson(meta: { name: string; id: string }, now: { at: Date; sample: CgroupSample; system: { usage: number; onlineCpus: number } }, previous?: StatsJson): StatsJson {
  return {
    name: meta.name,
    id: meta.id,
    read: now.at.toISOString(),
    preread: previous?.read ?? ZERO_TIME,
    pids_stats: now.sample.pids,
    blkio_stats: now.sample.blkio,
    num_procs: 0,
    storage_stats: {},
    cpu_stats: { ...now.sample.cpu, system_cpu_usage: now.system.usage, online_cpus: now.system.onlineCpus },
    precpu_stats: previous?.cpu_stats ?? emptyCpu(),
    memory_stats: now.sample.memory,
  };
}

/**
 * Samples a live cgroup now (with the host's /proc/stat), and the interfaces of the network
 * namespace of `netPid` (the container's PID 1, when the namespace is its own).
 */
export function sampleNow(desc: CgroupDescriptor, meta: { name: string; id: string }, previous?: StatsJson, netPid?: number): StatsJson {
  let procStat = '';
  try {
    procStat = fs.readFileSync('/proc/stat', 'utf8');
  } catch {
    /* no /proc: zeros */
  }
  const json = statsJson(meta, { at: new Date(), sample: readCgroupSample(desc), system: systemCpu(procStat) }, previous);
  if (netPid) {
    let netDev: string | undefined;
    try {
      netDev = fs.readFileSync(`/proc/${netPid}/net/dev`, 'utf8');
    } catch {
      /* gone meanwhile */
    }
    const networks = parseNetDev(netDev);
    if (Object.keys(networks).length) json.networks = networks;
  }
  return json;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Where a container's cgroup is: the runtime's record of it, while the container runs. */
export type CgroupLookup = (id: string) => CgroupDescriptor | undefined;

/**
 * GET /containers/{id}/stats: one answer (stream false: two samples a second apart so that
 * precpu_stats is filled, as `docker stats --no-stream` needs for its CPU %; one-shot: a single
 * sample), or one per second until the signal aborts. A container that is not running gives
 * Docker's zero value.
 */
export async function* containerStats(
  lookup: { record: (ref: string) => { id: string; name: string; state: { status: string; pid?: number }; hostConfig?: { NetworkMode?: unknown } }; cgroup: CgroupLookup },
  ref: string,
  opts: { stream: boolean; oneShot?: boolean; signal?: AbortSignal; intervalMs?: number },
): AsyncGenerator<StatsJson> {
  const first = lookup.record(ref);
  const meta = { name: first.name, id: first.id };
  const interval = opts.intervalMs ?? 1000;
  const live = (): CgroupDescriptor | undefined => {
    const status = lookup.record(first.id).state.status;
    return status === 'running' || status === 'paused' ? lookup.cgroup(first.id) : undefined;
  };
  // The network namespace's counters when it is the container's own (not the host's or another's).
  const netPid = (): number | undefined => {
    const r = lookup.record(first.id);
    const mode = typeof r.hostConfig?.NetworkMode === 'string' ? r.hostConfig.NetworkMode : '';
    return mode === 'host' || mode.startsWith('container:') ? undefined : r.state.pid || undefined;
  };
  if (!opts.stream) {
    const desc = live();
    if (!desc) {
      yield zeroStats(meta.name, meta.id);
      return;
    }
    const one = sampleNow(desc, meta, undefined, netPid());
    if (opts.oneShot) {
      yield one;
      return;
    }
    await sleep(interval, opts.signal);
    yield sampleNow(desc, meta, one, netPid());
    return;
  }
  let previous: StatsJson | undefined;
  while (!opts.signal?.aborted) {
    let desc: CgroupDescriptor | undefined;
    try {
      desc = live();
    } catch {
      return; // removed
    }
    if (desc) {
      previous = sampleNow(desc, meta, previous, netPid());
      yield previous;
    } else {
      previous = undefined;
      yield zeroStats(meta.name, meta.id);
    }
    await sleep(interval, opts.signal);
  }
}
