/**
 * Low-level access to cgroup files. Every path the managers keep is "logical" (as seen on the
 * host, e.g. `/sys/fs/cgroup/memory/x`); `CgroupFs.real()` prefixes `fsRoot`, which unit tests
 * point at a temp dir holding a fake tree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SystemError } from '../../common/errors.js';

/**
 * Test seams. `afterMkdir` plays the kernel's part in a fake tree (populating a new cgroup
 * directory with its control files); `writes`, when set, records every write in order, which a
 * plain file cannot show (e.g. successive `devices.allow` lines).
 */
export const cgroupTestHooks: {
  afterMkdir?: (realDir: string) => void;
  writes?: Array<{ file: string; value: string }>;
} = {};

/** The kernel refused a value. `field` names the OCI field, `errno` the error code (EINVAL, …). */
export class CgroupWriteError extends SystemError {
  readonly field: string;
  readonly errno: string | undefined;
  constructor(field: string, file: string, value: string, cause: unknown) {
    const errno = errnoOf(cause);
    super(`${field}: cannot write ${JSON.stringify(value)} to ${file}: ${errno ?? String(cause)}`, { cause });
    this.field = field;
    this.errno = errno;
  }
}

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Synchronous sleep: the runtime CLI is short-lived and these waits are a few milliseconds. */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class CgroupFs {
  constructor(readonly fsRoot: string = '') {}

  real(logicalPath: string): string {
    return this.fsRoot ? path.join(this.fsRoot, logicalPath) : logicalPath;
  }

  exists(dir: string, file = ''): boolean {
    return fs.existsSync(this.real(path.join(dir, file)));
  }

  read(dir: string, file: string): string {
    return fs.readFileSync(this.real(path.join(dir, file)), 'utf8');
  }

  /** Undefined when the file (or the cgroup) is gone or the controller is absent. */
  tryRead(dir: string, file: string): string | undefined {
    try {
      return this.read(dir, file);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /**
   * One write(2) of `value`, with O_TRUNC as runc but never O_CREAT (a missing file means a missing
   * controller, which must not be papered over by creating a regular file). Throws the raw errno
   * error so callers can react to EINVAL/EBUSY/ENOENT.
   */
  writeRaw(dir: string, file: string, value: string): void {
    const target = path.join(dir, file);
    const fd = fs.openSync(this.real(target), fs.constants.O_WRONLY | fs.constants.O_TRUNC);
    try {
      fs.writeSync(fd, value);
    } finally {
      fs.closeSync(fd);
    }
    cgroupTestHooks.writes?.push({ file: target, value });
  }

  /** Write, turning a refusal into a CgroupWriteError naming `field`. */
  write(dir: string, file: string, value: string, field: string): void {
    try {
      this.writeRaw(dir, file, value);
    } catch (err) {
      throw new CgroupWriteError(field, path.join(dir, file), value, err);
    }
  }

  /**
   * Writes to files of one directory, each opened once: a cgroup v1 file takes one value per
   * write(2), and a container's device rules are ~20 writes (an open and a close less each).
   * close() when done. A refusal throws a CgroupWriteError naming `field`, as write() does.
   */
  writer(dir: string): { write(file: string, value: string, field: string): void; close(): void } {
    const fds = new Map<string, number>();
    return {
      write: (file, value, field) => {
        const target = path.join(dir, file);
        try {
          let fd = fds.get(file);
          if (fd === undefined) {
            fd = fs.openSync(this.real(target), fs.constants.O_WRONLY | fs.constants.O_TRUNC);
            fds.set(file, fd);
          }
          fs.writeSync(fd, value);
        } catch (err) {
          throw new CgroupWriteError(field, target, value, err);
        }
        cgroupTestHooks.writes?.push({ file: target, value });
      },
      close: () => {
        for (const fd of fds.values()) fs.closeSync(fd);
        fds.clear();
      },
    };
  }

  /**
   * mkdir -p that returns the directories it created, outermost first, so that destroy() removes
   * exactly those and leaves pre-existing (possibly shared) parents alone.
   */
  mkdirs(dir: string): string[] {
    // The usual case, a container's directory under an existing parent: one mkdir, no lookups.
    try {
      fs.mkdirSync(this.real(dir), { mode: 0o755 });
      cgroupTestHooks.afterMkdir?.(this.real(dir));
      return [dir];
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') return [];
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    const missing: string[] = [];
    for (let current = dir; !this.exists(current); current = path.dirname(current)) {
      missing.unshift(current);
      if (current === '/') break;
    }
    const created: string[] = [];
    for (const d of missing) {
      try {
        fs.mkdirSync(this.real(d), { mode: 0o755 });
      } catch (err) {
        if (errnoOf(err) === 'EEXIST') continue; // a concurrent creator won the race
        throw err;
      }
      created.push(d);
      cgroupTestHooks.afterMkdir?.(this.real(d));
    }
    return created;
  }

  /** rmdir, retrying on EBUSY (exiting processes linger briefly). Missing is success. */
  rmdir(dir: string, retryOnBusy: boolean): void {
    let delay = 1;
    for (let tries = 10; ; tries--) {
      try {
        fs.rmdirSync(this.real(dir));
        return;
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'ENOENT') return;
        if (code === 'EBUSY' && retryOnBusy && tries > 0) {
          sleepMs(delay);
          delay *= 2;
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Remove a cgroup and its sub-cgroups, leaf first. In a real cgroupfs the control files vanish
   * with the directory; in a fake tree they are plain files, so remove those too.
   */
  removeTree(dir: string): void {
    try {
      fs.rmdirSync(this.real(dir));
      return;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
    }
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.real(dir), { withFileTypes: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) this.removeTree(path.join(dir, entry.name));
      else if (this.fsRoot) fs.rmSync(this.real(path.join(dir, entry.name)), { force: true });
    }
    this.rmdir(dir, true);
  }

  /** Fake trees only: remove a directory's plain files and the directory, unless a sub-cgroup remains. */
  removeFakeControlFiles(dir: string): boolean {
    const entries = fs.readdirSync(this.real(dir), { withFileTypes: true });
    if (entries.some((entry) => entry.isDirectory())) return false;
    for (const entry of entries) fs.rmSync(this.real(path.join(dir, entry.name)), { force: true });
    fs.rmdirSync(this.real(dir));
    return true;
  }

  /** Pids listed in one cgroup's cgroup.procs (not its children). */
  readProcs(dir: string): number[] {
    const text = this.tryRead(dir, 'cgroup.procs') ?? '';
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => Number.parseInt(line, 10));
  }

  /** Pids of a cgroup and all its descendants; sub-cgroups vanishing meanwhile are skipped. */
  readProcsRecursive(dir: string): number[] {
    const pids = this.readProcs(dir);
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(this.real(dir), { withFileTypes: true });
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) pids.push(...this.readProcsRecursive(path.join(dir, entry.name)));
    }
    return pids;
  }

  /** Write a pid into cgroup.procs. EINVAL can mean the task is still TASK_NEW: retry (as runc). */
  addPid(dir: string, pid: number): void {
    for (let attempt = 1; ; attempt++) {
      try {
        this.writeRaw(dir, 'cgroup.procs', String(pid));
        return;
      } catch (err) {
        if (errnoOf(err) === 'EINVAL' && attempt < 5) {
          sleepMs(30);
          continue;
        }
        throw new SystemError(`cannot add pid ${pid} to cgroup ${dir}: ${errnoOf(err) ?? String(err)}`, { cause: err });
      }
    }
  }
}

/** Parse a cgroup number file: `max` (and values near 2^63, the v1 "unlimited") become undefined. */
export function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'max') return undefined;
  const value = Number(trimmed);
  if (!Number.isFinite(value) || value >= 2 ** 62) return undefined;
  return value;
}

/** The `oom_kill N` line of v1's memory.oom_control or v2's memory.events (kernel 4.13+); undefined without one. */
export function oomKillCount(text: string | undefined): number | undefined {
  const m = /^oom_kill (\d+)$/m.exec(text ?? '');
  return m ? Number(m[1]) : undefined;
}
