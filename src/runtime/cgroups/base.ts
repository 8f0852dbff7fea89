/** What the v1 and v2 managers share: bookkeeping of paths and created dirs, joining, kill --all, destroy. */
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, SystemError } from '../../common/errors.js';
import type { Resources } from '../spec/config.js';
import { CgroupFs, errnoOf } from './files.js';
import type { CgroupDescriptor, CgroupManager, CgroupMode, CgroupStats, ProcsFileEntry } from './types.js';

export interface ManagerOptions {
  fsRoot: string;
  rootless: boolean;
  /** The path came from `linux.cgroupsPath` (not derived from the id): permission errors are then never ignored. */
  explicitPath: boolean;
}

export function isPermissionError(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

export function signalNumber(signal: NodeJS.Signals | number): number {
  const signo = typeof signal === 'number' ? signal : os.constants.signals[signal];
  if (signo === undefined || !Number.isInteger(signo) || signo < 0) throw new InvalidArgumentError(`unknown signal ${String(signal)}`, 'signal');
  return signo;
}

function depth(dir: string): number {
  return dir.split('/').filter(Boolean).length;
}

export abstract class BaseCgroupManager implements CgroupManager {
  abstract readonly mode: CgroupMode;
  protected readonly cg: CgroupFs;
  protected readonly paths: Record<string, string>;
  /** Undefined until create() ran (or when rebuilt from a descriptor without it). */
  protected createdDirs: string[] | undefined;

  constructor(descriptor: CgroupDescriptor, protected readonly options: ManagerOptions) {
    this.cg = new CgroupFs(options.fsRoot);
    this.paths = { ...descriptor.paths };
    this.createdDirs = descriptor.createdDirs ? [...descriptor.createdDirs] : undefined;
  }

  abstract create(resources?: Resources): void;
  abstract update(resources: Resources): void;
  abstract freeze(): void;
  abstract thaw(): void;
  abstract isFrozen(): boolean;
  abstract pids(): number[];
  abstract stats(): CgroupStats;
  abstract oomKills(): number | undefined;
  /** The directories a process joins, with whether joining each is mandatory. */
  protected abstract joinTargets(): Array<{ dir: string; required: boolean }>;
  /**
   * SIGKILL through cgroup.kill. Returns true when that alone killed everything (v2); false when
   * unavailable or, in hybrid, when the v1 hierarchies must still be swept.
   */
  protected abstract killThroughCgroupKill(): boolean;

  protected recordCreated(dirs: string[]): void {
    if (!this.createdDirs) this.createdDirs = [];
    for (const dir of dirs) if (!this.createdDirs.includes(dir)) this.createdDirs.push(dir);
  }

  procsFiles(): string[] {
    return this.procsFileEntries().map((entry) => entry.file);
  }

  /** procsFiles() plus which of them may fail (named v1 hierarchies and hybrid's unified, as in runc). */
  procsFileEntries(): ProcsFileEntry[] {
    return this.joinTargets().map(({ dir, required }) => ({ file: this.cg.real(path.join(dir, 'cgroup.procs')), required }));
  }

  addProcess(pid: number): void {
    if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError(`invalid pid ${pid}`, 'pid');
    for (const { dir, required } of this.joinTargets()) {
      try {
        this.cg.addPid(dir, pid);
      } catch (err) {
        if (required) throw err;
      }
    }
  }

  /**
   * kill --all. Without cgroup.kill, freeze first so that nothing forks between listing and
   * signalling (runc does the same), then thaw so the signals get delivered. A container that
   * was paused stays paused, except for SIGKILL which would otherwise never complete.
   */
  signalAll(signal: NodeJS.Signals | number): void {
    const signo = signalNumber(signal);
    if (signo === os.constants.signals.SIGKILL && this.killThroughCgroupKill()) return;
    // An empty cgroup has nothing to signal and nothing that could fork: skip the freeze.
    if (this.pids().length === 0) return;
    let wasFrozen = false;
    try {
      wasFrozen = this.isFrozen();
    } catch {
      // no freezer: signal without it
    }
    let frozeHere = false;
    if (!wasFrozen) {
      try {
        this.freeze();
        frozeHere = true;
      } catch {
        // best effort, as runc
      }
    }
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, signo);
        } catch (err) {
          if (errnoOf(err) !== 'ESRCH') throw new SystemError(`kill ${pid}: ${errnoOf(err) ?? String(err)}`, { cause: err });
        }
      }
    } finally {
      if (frozeHere || (wasFrozen && signo === os.constants.signals.SIGKILL)) {
        try {
          this.thaw();
        } catch {
          // the cgroup may be gone already
        }
      }
    }
  }

  destroy(): void {
    const leaves = [...new Set(Object.values(this.paths))];
    // Without a record of what we created (descriptor from elsewhere), the container's own
    // directories are ours to remove, as in runc; parents are never touched then.
    const candidates = [...new Set(this.createdDirs ?? leaves)].map((dir) => ({ dir, depth: depth(dir) })).sort((a, b) => b.depth - a.depth);
    const failures: string[] = [];
    const left: string[] = [];
    for (const { dir } of candidates) {
      try {
        if (leaves.includes(dir)) this.cg.removeTree(dir);
        else if (!this.removeParentIfUnused(dir)) left.push(dir);
      } catch (err) {
        failures.push(`${dir} (${errnoOf(err) ?? String(err)})`);
        left.push(dir);
      }
    }
    this.createdDirs = this.createdDirs?.filter((dir) => left.includes(dir));
    if (failures.length > 0) throw new SystemError(`cannot remove cgroup directories: ${failures.join(', ')}`);
  }

  /** A parent we created may meanwhile hold another container's cgroup: leave it then (false). */
  private removeParentIfUnused(dir: string): boolean {
    try {
      this.cg.rmdir(dir, false);
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'EBUSY') return false;
      if (code !== 'ENOTEMPTY' || !this.cg.fsRoot) {
        if (code === 'ENOTEMPTY') return false;
        throw err;
      }
      // Fake tree: control files are plain files. Remove them only if no sub-cgroup remains.
      return this.cg.removeFakeControlFiles(dir);
    }
  }

  toJSON(): CgroupDescriptor {
    const descriptor: CgroupDescriptor = { mode: this.mode, paths: { ...this.paths } };
    if (this.createdDirs) descriptor.createdDirs = [...this.createdDirs];
    return descriptor;
  }
}
