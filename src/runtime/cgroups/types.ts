import type { Resources } from '../spec/config.js';

export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface CgroupStats {
  memoryUsage?: number;
  memoryLimit?: number;
  cpuUsageNanos?: number;
  pidsCurrent?: number;
  pidsLimit?: number;
  /** Processes the kernel's OOM killer killed in the cgroup (v1 memory.oom_control, v2 memory.events: oom_kill). */
  oomKills?: number;
}

export interface CgroupManager {
  readonly mode: CgroupMode;
  /** Create the cgroup directories (and parents) and write the resources. Throws on a value the kernel refuses, naming the resource field (e.g. `linux.resources.memory.limit`). Does not add processes. */
  create(resources?: Resources): void;
  /** Files a process writes its pid into to join this cgroup: one per v1 hierarchy (plus unified in hybrid), one in v2. */
  procsFiles(): string[];
  /** The same files, each marked whether joining it must succeed. */
  procsFileEntries(): ProcsFileEntry[];
  /** Add a process (used for exec'd processes when the C stage did not join itself). */
  addProcess(pid: number): void;
  update(resources: Resources): void;
  /** Waits until really FROZEN (v1 freezer.state / v2 cgroup.freeze + cgroup.events frozen 1). */
  freeze(): void;
  thaw(): void;
  isFrozen(): boolean;
  /** All pids in the container's cgroup, recursively. */
  pids(): number[];
  /** Signal every process (kill --all). Uses cgroup.kill on v2 for SIGKILL when available. */
  signalAll(signal: NodeJS.Signals | number): void;
  stats(): CgroupStats;
  /** Processes the OOM killer killed in the cgroup: one file read (at every exit); undefined without the count. */
  oomKills(): number | undefined;
  /** Remove the directories (leaf first), retrying briefly on EBUSY; never throws for already-missing dirs. Removes only what this manager created (not shared parents that existed before). */
  destroy(): void;
  /** JSON-serializable description so a later process can rebuild the same manager. */
  toJSON(): CgroupDescriptor;
}

/**
 * `paths` keys: v1 controller names (`memory`, `cpu`, …, `name=systemd`) and `unified` for the
 * cgroup2 directory (the only key in v2; the extra hierarchy in hybrid). Paths are as seen on
 * the host, without any test `fsRoot`.
 */
export interface CgroupDescriptor {
  mode: CgroupMode;
  paths: Record<string, string>;
  createdDirs?: string[];
}

/** A procs file and whether failing to join it must fail the container (runc: named + unified hierarchies are best effort). */
export interface ProcsFileEntry {
  file: string;
  required: boolean;
}
