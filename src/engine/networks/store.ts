/**
 * Networks, one `<root>/<id>.json` each, written atomically (as container records are). Names
 * are unique; lookups take a full ID, a name, or an unambiguous ID prefix, as Docker's do.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { writeFileAtomicSync } from '../../common/fsutil.js';
import type { NetworkRecord } from './record.js';

const ID = /^[a-f0-9]{64}$/;

export class NetworkStore {
  private readonly byId = new Map<string, NetworkRecord>();

  constructor(private readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    for (const file of fs.readdirSync(root)) {
      const id = file.replace(/\.json$/, '');
      if (!ID.test(id) || !file.endsWith('.json')) continue;
      try {
        this.byId.set(id, JSON.parse(fs.readFileSync(path.join(root, file), 'utf8')) as NetworkRecord);
      } catch {
        fs.rmSync(path.join(root, file), { force: true }); // a torn write cannot happen; a hand-edited file can
      }
    }
  }

  newId(): string {
    for (;;) {
      const id = crypto.randomBytes(32).toString('hex');
      if (!/^\d+$/.test(id.slice(0, 12)) && !this.byId.has(id)) return id;
    }
  }

  list(): NetworkRecord[] {
    return [...this.byId.values()];
  }

  save(record: NetworkRecord): void {
    writeFileAtomicSync(path.join(this.root, `${record.id}.json`), JSON.stringify(record));
    this.byId.set(record.id, record);
  }

  delete(id: string): void {
    fs.rmSync(path.join(this.root, `${id}.json`), { force: true });
    this.byId.delete(id);
  }

  byName(name: string): NetworkRecord | undefined {
    return this.list().find((n) => n.name === name);
  }

  /** By full ID, name, or ID prefix (Docker's order). */
  find(ref: string): NetworkRecord | undefined {
    if (typeof ref !== 'string' || ref === '') return undefined;
    const exact = this.byId.get(ref) ?? this.byName(ref);
    if (exact) return exact;
    const matches = this.list().filter((n) => n.id.startsWith(ref));
    if (matches.length > 1) throw new InvalidArgumentError(`network ${ref} is ambiguous (${matches.length} matches found)`);
    return matches[0];
  }

  get(ref: string): NetworkRecord {
    const n = this.find(ref);
    if (!n) throw new NotFoundError(`network ${ref} not found`);
    return n;
  }
}
