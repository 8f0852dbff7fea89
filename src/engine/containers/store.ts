/**
 * The containers the engine knows, one `<root>/<id>/container.json` each. Every save is a
 * temp file and a rename (writeFileAtomicSync), so a daemon killed at any moment leaves
 * either the old record or the new one. Not fsynced: a record changes at every start and exit,
 * an fsync costs several ms here, and what a power loss could roll back (a state change) is
 * what the next boot's reconcile rewrites anyway: after a reboot no container runs. One small file per container rather than a database:
 * records are written one at a time, and a record's directory is also where the container's
 * other files live, so `rm` removes one directory.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { writeFileAtomicSync } from '../../common/fsutil.js';
import { SpareDirs } from '../../common/spare-dirs.js';
import { TreeDeleter } from '../../storage/fsop.js';
import type { ContainerRecord } from './record.js';

const RECORD_FILE = 'container.json';
const TRASH_PREFIX = '.trash-';
const SPARE_PREFIX = '.spare-';
const ID = /^[a-f0-9]{64}$/;
/** Docker's container name rule (daemon/names: RestrictedNamePattern). */
const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/**
 * How long saveSoon() may hold a record back. Replacing a file by rename costs ~0.3 ms on ext4
 * (auto_da_alloc flushes the new file's data), and a container that exits within this time has
 * its "running" record replaced by its exit record before either reaches the disk.
 */
const SAVE_SOON_MS = 20;

/** A HostConfig.Links entry as the engine records it, "/target:/parent/alias". */
export function recordedLinkParts(entry: unknown): { target: string; linkName: string } | undefined {
  if (typeof entry !== 'string') return undefined;
  const colon = entry.indexOf(':');
  return colon > 0 ? { target: entry.slice(0, colon), linkName: entry.slice(colon + 1) } : undefined;
}

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly byName = new Map<string, string>();
  /** Deletes renamed-away directories off the event loop. */
  private readonly deleter: TreeDeleter;
  /** Records saveSoon() holds back, by id. */
  private readonly pending = new Map<string, NodeJS.Timeout>();
  /** A new container's directory, made ahead from the first create on (see SpareDirs). */
  private readonly spares: SpareDirs;

  constructor(readonly root: string) {
    this.deleter = new TreeDeleter(root);
    // 0711 and the records 0600: containers in their own user namespace bind-mount their /etc files from here.
    fs.mkdirSync(root, { recursive: true, mode: 0o711 });
    fs.chmodSync(root, 0o711);
    for (const id of fs.readdirSync(root)) {
      // What a daemon that died during a background removal left.
      if (id.startsWith(TRASH_PREFIX)) void this.deleter.remove(path.join(root, id)).catch(() => undefined);
      if (id.startsWith(SPARE_PREFIX)) fs.rmSync(path.join(root, id), { recursive: true, force: true });
      if (!ID.test(id)) continue;
      try {
        const record = JSON.parse(fs.readFileSync(path.join(root, id, RECORD_FILE), 'utf8')) as ContainerRecord;
        this.byId.set(id, record);
        this.byName.set(record.name, id);
      } catch {
        // A directory without a record: a create that died before its first save. Nothing
        // refers to it; remove it.
        fs.rmSync(path.join(root, id), { recursive: true, force: true });
      }
    }
    this.spares = new SpareDirs({ name: () => path.join(root, SPARE_PREFIX + crypto.randomBytes(8).toString('hex')), mode: 0o711 });
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  newId(): string {
    for (;;) {
      const id = crypto.randomBytes(32).toString('hex');
      // Docker avoids all-numeric short IDs (they look like numbers to some tools).
      if (/^\d+$/.test(id.slice(0, 12)) || this.byId.has(id)) continue;
      return id;
    }
  }

  /** Checks a requested name and returns it with the leading slash; throws if it is taken. */
  claimableName(name: string, forId?: string): string {
    if (!NAME.test(name)) throw new InvalidArgumentError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`); // dockerd's words, which name the field
    const full = name.startsWith('/') ? name : `/${name}`;
    const owner = this.byName.get(full);
    if (owner && owner !== forId) {
      throw new ConflictError(`Conflict. The container name "${full}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    return full;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** By full ID, name (with or without "/") or unique ID prefix, as Docker resolves them. */
  find(ref: string): ContainerRecord | undefined {
    if (!ref) return undefined;
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const full = ref.startsWith('/') ? ref : `/${ref}`;
    const named = this.byName.get(full);
    if (named) return this.byId.get(named);
    if (full.indexOf('/', 1) > 0) return this.findByLinkName(full);
    if (!/^[a-f0-9]+$/.test(ref)) return undefined;
    const matches = [...this.byId.keys()].filter((id) => id.startsWith(ref));
    if (matches.length > 1) throw new InvalidArgumentError(`multiple IDs found with provided prefix: ${ref}`);
    return matches.length === 1 ? this.byId.get(matches[0]!) : undefined;
  }

  /**
   * A legacy link's name, "/parent/alias", which dockerd reserves for each link and resolves to
   * the container linked to (`docker inspect parent/alias`, `docker rm --link parent/alias`).
   * The parent's HostConfig.Links keeps each link as "/target:/parent/alias".
   */
  private findByLinkName(linkName: string): ContainerRecord | undefined {
    const parentId = this.byName.get(linkName.slice(0, linkName.lastIndexOf('/')));
    const links = (parentId && this.byId.get(parentId)?.hostConfig.Links) || [];
    const link = (links as unknown[]).map(recordedLinkParts).find((l) => l?.linkName === linkName);
    const target = link && this.byName.get(link.target);
    return target ? this.byId.get(target) : undefined;
  }

  /** The link names ("/parent/alias") of the containers other containers link to, by target name. */
  linkNames(): Map<string, string[]> {
    const names = new Map<string, string[]>();
    for (const record of this.byId.values()) {
      for (const entry of (record.hostConfig.Links as unknown[] | undefined) ?? []) {
        const link = recordedLinkParts(entry);
        if (link) names.set(link.target, [...(names.get(link.target) ?? []), link.linkName]);
      }
    }
    return names;
  }

  get(ref: string): ContainerRecord {
    const record = this.find(ref);
    if (!record) throw new NotFoundError(`No such container: ${ref}`);
    return record;
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  /**
   * As save(), but the file is written within SAVE_SOON_MS, unless a save or remove comes first:
   * for a change that a daemon killed meanwhile can do without, because its start-up finds it out
   * anyway (a container that runs while its record says "created" is adopted by reconcile).
   */
  saveSoon(record: ContainerRecord): void {
    this.remember(record);
    if (this.pending.has(record.id)) return;
    const timer = setTimeout(() => {
      this.pending.delete(record.id);
      const latest = this.byId.get(record.id);
      if (latest) this.save(latest);
    }, SAVE_SOON_MS);
    timer.unref();
    this.pending.set(record.id, timer);
  }

  /** Writes what saveSoon() holds back (at the daemon's exit). */
  flush(): void {
    for (const id of [...this.pending.keys()]) {
      const record = this.byId.get(id);
      if (record) this.save(record);
    }
  }

  /** Drops what saveSoon() holds back for id: a save or remove supersedes it. */
  private cancelPending(id: string): void {
    clearTimeout(this.pending.get(id));
    this.pending.delete(id);
  }

  private remember(record: ContainerRecord): void {
    const previous = this.byId.get(record.id);
    if (previous && previous.name !== record.name) this.byName.delete(previous.name);
    this.byId.set(record.id, record);
    this.byName.set(record.name, record.id);
  }

  save(record: ContainerRecord): void {
    this.cancelPending(record.id);
    const dir = this.dir(record.id);
    // A container we hold has its directory (only remove() takes it away); a mkdir that finds
    // it costs as much as the write here (~0.2 ms on this VM's ext4).
    const text = JSON.stringify(record);
    if (!this.byId.has(record.id)) {
      if (this.saveInSpare(dir, text)) return this.remember(record);
      fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    }
    try {
      writeFileAtomicSync(path.join(dir, RECORD_FILE), text, { durable: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(dir, { recursive: true, mode: 0o711 }); // removed behind our back
      writeFileAtomicSync(path.join(dir, RECORD_FILE), text, { durable: false });
    }
    this.remember(record);
  }

  /** A new container's first record, in a spare directory renamed into place; false if none was ready (or the directory exists). */
  private saveInSpare(dir: string, text: string): boolean {
    const spare = this.spares.take();
    if (!spare) return false;
    try {
      fs.writeFileSync(path.join(spare, RECORD_FILE), text, { mode: 0o600, flag: 'wx' });
      fs.renameSync(spare, dir); // the directory appears with its record
      return true;
    } catch {
      fs.rmSync(spare, { recursive: true, force: true });
      return false;
    }
  }

  /** Gives a container a new name (already checked with claimableName); the old one is free again. */
  rename(record: ContainerRecord, name: string): void {
    const old = record.name;
    this.byName.delete(old);
    record.name = name;
    this.save(record);
    // Legacy links follow the rename, as dockerd's link index does: links to the container name
    // it anew, and its own links are named after it ("/target:/parent/alias").
    for (const other of this.byId.values()) {
      const links = other.hostConfig.Links as unknown[] | undefined;
      if (!Array.isArray(links) || links.length === 0) continue;
      const renamed = links.map((entry) => {
        const link = recordedLinkParts(entry);
        if (!link) return entry;
        return `${link.target === old ? name : link.target}:${link.linkName.startsWith(`${old}/`) ? name + link.linkName.slice(old.length) : link.linkName}`;
      });
      if (renamed.some((entry, i) => entry !== links[i])) {
        other.hostConfig.Links = renamed as string[];
        this.save(other);
      }
    }
  }

  /**
   * Forgets the container and removes its directory: renamed away at once (the record goes with
   * it, atomically: a crash leaves the record or a `.trash-` directory, which the next start-up
   * deletes), and its files (/etc files, the log) deleted in the background, as `rm` need not
   * wait for them (a directory's removal costs 0.2–5 ms on this VM's disk; a rename ~0.03 ms).
   */
  remove(id: string): void {
    this.cancelPending(id);
    const record = this.byId.get(id);
    const dir = this.dir(id);
    const trashed = path.join(this.root, `${TRASH_PREFIX}${id}-${process.pid}-${Date.now()}`);
    try {
      fs.renameSync(dir, trashed);
      void this.deleter.remove(trashed).catch(() => undefined); // else the next start-up's
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fs.rmSync(dir, { recursive: true, force: true });
    }
    if (record) this.byName.delete(record.name);
    this.byId.delete(id);
  }
}
