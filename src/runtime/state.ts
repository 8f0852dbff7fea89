/**
 * The runtime's record of each container: <root>/<id>/state.json, plus the exec fifo
 * while the container is created but not started. Written atomically (write + rename),
 * so a crash never leaves a half-written record.
 */
import fs from 'node:fs';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import type { CgroupDescriptor } from './cgroups/types.js';
import type { Spec, State, Status } from './spec/config.js';

export const DEFAULT_ROOT = '/run/berth-oci';

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  /** Start time of pid (field 22 of /proc/<pid>/stat): tells a reused pid from ours. */
  pidStartTime: string;
  created: string;
  config: Spec;
  cgroup?: CgroupDescriptor;
  owner: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

export function validateId(id: string | undefined): string {
  if (!id) throw new InvalidArgumentError('container id cannot be empty', 'container-id');
  if (!ID_PATTERN.test(id) || id.length > 1024) throw new InvalidArgumentError(`invalid container id: ${JSON.stringify(id)}`, 'container-id');
  return id;
}

/** Freezes a parsed record, so that a caller changing a cached one fails loudly. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export class StateStore {
  /**
   * The records this process wrote or read, by id, with the identity of the file they came
   * from (each save is a new file, renamed over the old). A daemon loads a record several times
   * per container run (start, state, delete); a stat instead of reading and parsing ~10 KB of
   * spec each time. Another process's save is a new inode: that is read anew.
   */
  private readonly cache = new Map<string, { ino: bigint; mtimeNs: bigint; size: bigint; text: string; record?: ContainerRecord }>(); // text: until parsed

  constructor(readonly root: string = DEFAULT_ROOT) {}

  dir(id: string): string {
    return path.join(this.root, validateId(id));
  }

  fifoPath(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /** Claims the id: fails if a container with it exists. */
  reserve(id: string): string {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = this.dir(id);
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ConflictError(`container with id ${id} already exists`);
      throw err;
    }
    return dir;
  }

  save(record: ContainerRecord): void {
    this.stage(record, '.tmp')();
  }

  /**
   * Writes the record beside its state.json and returns the rename that puts it in place: the
   * writing (~0.3 ms with a spec) done while the container's process sets up, the switch at
   * the end of the create a rename (~0.03 ms). Until then, state.json says what it said.
   */
  stage(record: ContainerRecord, suffix = '.next'): () => void {
    const file = path.join(this.dir(record.id), 'state.json');
    const tmp = file + suffix;
    const text = JSON.stringify(record);
    const fd = fs.openSync(tmp, 'w');
    let stat: fs.BigIntStats;
    try {
      fs.writeSync(fd, text);
      stat = fs.fstatSync(fd, { bigint: true });
    } finally {
      fs.closeSync(fd);
    }
    return () => {
      fs.renameSync(tmp, file);
      this.cache.set(record.id, { ino: stat.ino, mtimeNs: stat.mtimeNs, size: stat.size, text });
    };
  }

  /** Whether a container with this id has a state directory (made by reserve). */
  has(id: string): boolean {
    return fs.existsSync(this.dir(id));
  }

  /** The record (frozen: callers copy what they change). */
  load(id: string): ContainerRecord {
    const file = path.join(this.dir(id), 'state.json');
    try {
      const stat = fs.statSync(file, { bigint: true });
      let cached = this.cache.get(id);
      if (!cached || cached.ino !== stat.ino || cached.mtimeNs !== stat.mtimeNs || cached.size !== stat.size) {
        cached = { ino: stat.ino, mtimeNs: stat.mtimeNs, size: stat.size, text: fs.readFileSync(file, 'utf8') };
        this.cache.set(id, cached);
      }
      if (!cached.record) {
        cached.record = deepFreeze(JSON.parse(cached.text) as ContainerRecord);
        cached.text = '';
      }
      return cached.record;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.cache.delete(id);
        throw new NotFoundError(`container ${id} does not exist`);
      }
      throw err;
    }
  }

  list(): string[] {
    try {
      return fs
        .readdirSync(this.root)
        .filter((name) => ID_PATTERN.test(name) && fs.existsSync(path.join(this.root, name, 'state.json')))
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  remove(id: string): void {
    const dir = this.dir(id);
    this.cache.delete(id);
    // The files we know of, then the directory: cheaper than a recursive walk at every delete.
    for (const name of ['state.json', 'exec.fifo']) fs.rmSync(path.join(dir, name), { force: true });
    try {
      fs.rmdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') fs.rmSync(dir, { recursive: true, force: true });
      else if (code !== 'ENOENT') throw err;
    }
  }
}

/** Field 22 (starttime) and field 3 (state) of /proc/<pid>/stat, or undefined if gone. */
export function readProcStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], startTime: fields[19] };
}

/** Whether the container's init is alive (a zombie or a reused pid counts as dead). */
export function initAlive(record: ContainerRecord): boolean {
  if (!record.pid) return false;
  const stat = readProcStat(record.pid);
  return !!stat && stat.state !== 'Z' && stat.state !== 'X' && stat.startTime === record.pidStartTime;
}

export function statusOf(record: ContainerRecord, fifoExists: boolean, frozen: () => boolean): Status {
  // No pid yet: a create in progress, or one whose runtime process died (delete --force cleans up).
  if (!record.pid) return 'creating';
  if (!initAlive(record)) return 'stopped';
  if (fifoExists) return 'created';
  return frozen() ? 'paused' : 'running';
}

export function toOciState(record: ContainerRecord, status: Status): State {
  const state: State = { ociVersion: record.config.ociVersion, id: record.id, status, bundle: record.bundle };
  if (status !== 'stopped') state.pid = record.pid;
  else state.pid = 0;
  if (record.config.annotations) state.annotations = record.config.annotations;
  return state;
}
