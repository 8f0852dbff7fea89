/**
 * Image names and tags → ImageRecord, persisted in `<root>/images.json`. Every change builds
 * the next state, writes it to a temp file, fsyncs and renames it over the old file, and only
 * then becomes the in-memory state: a failed or interrupted write leaves both the file and the
 * store as they were.
 *
 * An image is identified by its config digest (its ID, as Docker defines it). Names are stored
 * fully qualified ("docker.io/library/busybox:latest"); a name points at one image at a time.
 * Blobs are never deleted here: after `remove`, the caller runs `garbageCollect()`.
 */
import fs from 'node:fs';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, NotFoundError, SystemError } from '../common/errors.js';
import { processAlive, writeFileAtomicSync } from '../common/fsutil.js';
import { assertDigest, isDigest, shortDigest } from './digest.js';
import { dockerReference, formatReference, parseReference, repositoryName } from './reference.js';
import type { ContentStore, Digest, ImageRecord } from './types.js';

const FILE_NAME = 'images.json';
const FORMAT_VERSION = 1;
/**
 * An image ID prefix: any number of hex digits after "sha256:" (dockerd takes any prefix), at
 * least 4 bare (1-3 digits are more likely a mistyped name). A name wins over a prefix, and a
 * prefix of two images is refused as ambiguous.
 */
const ID_PREFIX = /^(?:sha256:([a-f0-9]{1,64})|([a-f0-9]{4,64}))$/;

/** The hex digits of an ID prefix, or undefined when `ref` is none. */
function idPrefixHex(ref: string): string | undefined {
  const m = ID_PREFIX.exec(ref);
  return m ? (m[1] ?? m[2]) : undefined;
}

export interface RemoveResult {
  /** Names and repo digests removed, fully qualified. */
  untagged: string[];
  /** Image IDs (config digests) whose record was deleted. */
  deleted: Digest[];
}

interface StoreFile {
  version: number;
  images: ImageRecord[];
}

export class ImageStore {
  readonly root: string;
  private readonly file: string;
  private readonly content: ContentStore;
  /** By image ID (config digest). */
  private images: Map<Digest, ImageRecord>;

  constructor(root: string, content: ContentStore) {
    this.root = path.resolve(root);
    this.file = path.join(this.root, FILE_NAME);
    this.content = content;
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    this.removeStaleTempFiles();
    this.images = this.load();
  }

  /**
   * Adds an image, or merges into the one with the same config: names and repo digests are
   * joined, the manifest, index and created time replaced. Its names move here from any image
   * that had them. The manifest and config (and index) must be in the content store.
   */
  put(record: ImageRecord): ImageRecord {
    const incoming = checkRecord(record);
    for (const digest of [incoming.manifest, incoming.config, incoming.index]) {
      if (digest !== undefined && !this.content.has(digest)) throw new NotFoundError(`blob ${digest} of image ${shortDigest(incoming.config)} is not in the content store`);
    }
    const next = this.cloneImages();
    const existing = next.get(incoming.config);
    const merged: ImageRecord = { ...incoming };
    if (merged.parent === undefined && existing?.parent !== undefined) merged.parent = existing.parent;
    if (merged.lastTagTime === undefined && existing?.lastTagTime !== undefined) merged.lastTagTime = existing.lastTagTime;
    merged.names = union(existing?.names ?? [], incoming.names);
    const repoDigests = union(existing?.repoDigests ?? [], incoming.repoDigests ?? []);
    if (repoDigests.length > 0) merged.repoDigests = repoDigests;
    else delete merged.repoDigests;
    takeNames(next, merged.names, merged.config);
    next.set(merged.config, merged);
    this.commit(next);
    return structuredClone(merged);
  }

  /** Points `name` (tagged; "latest" if none) at the image whose config or manifest is `target`. */
  tag(name: string, target: Digest): ImageRecord {
    assertDigest(target, 'target');
    const ref = dockerReference(name);
    if (ref.digest !== undefined) throw new InvalidArgumentError(`cannot tag with a digest reference: ${name}`);
    const fullName = formatReference(ref);
    const next = this.cloneImages();
    const image = next.get(target) ?? [...next.values()].find((r) => r.manifest === target);
    if (!image) throw new NotFoundError(`no such image: ${target}`);
    takeNames(next, [fullName], image.config);
    image.names = union(image.names, [fullName]);
    image.lastTagTime = new Date().toISOString();
    this.commit(next);
    return structuredClone(image);
  }

  /**
   * Removes a name ("busybox" means docker.io/library/busybox:latest) or a repo digest
   * ("busybox@sha256:…") from its image; the image stays, possibly without names.
   */
  untag(name: string): ImageRecord {
    const next = this.cloneImages();
    const { image } = untagIn(next, name);
    if (!image) throw new NotFoundError(`no such image: ${name}`);
    this.commit(next);
    return structuredClone(image);
  }

  /** The image `ref` names; throws NotFoundError. See `find`. */
  get(ref: string): ImageRecord {
    const image = this.lookup(ref);
    if (!image) throw new NotFoundError(`no such image: ${ref}`);
    return structuredClone(image);
  }

  /**
   * The image `ref` names, as Docker resolves one: a full image ID ("sha256:<hex>" or
   * "<hex>"), a name ("busybox", "host:5000/x:tag"), a repo digest ("busybox@sha256:…"), or
   * an ID prefix (see ID_PREFIX). An ambiguous prefix is an InvalidArgumentError.
   */
  find(ref: string): ImageRecord | undefined {
    const image = this.lookup(ref);
    return image ? structuredClone(image) : undefined;
  }

  list(): ImageRecord[] {
    return [...this.images.values()].map((r) => structuredClone(r));
  }

  /**
   * Removes as `docker rmi` does. By name: untags it, and deletes the image when no name is
   * left (with its repo digests). By ID: deletes the image with all its names, unless they are
   * in more than one repository (ConflictError, unless `force`).
   */
  remove(idOrName: string, options: { force?: boolean } = {}): RemoveResult {
    const found = this.lookup(idOrName);
    if (!found) throw new NotFoundError(`no such image: ${idOrName}`);
    const next = this.cloneImages();
    const image = next.get(found.config)!;
    const result: RemoveResult = { untagged: [], deleted: [] };

    if (isIdReference(idOrName, image)) {
      const repositories = new Set(image.names.map((n) => repositoryName(parseReference(n))));
      if (repositories.size > 1 && !options.force) {
        throw new ConflictError(`conflict: unable to delete ${shortDigest(image.config)} (must be forced) - image is referenced in multiple repositories`);
      }
    } else {
      result.untagged.push(...untagIn(next, idOrName).removed);
      if (image.names.length > 0) {
        this.commit(next);
        return result;
      }
    }
    result.untagged.push(...image.names, ...(image.repoDigests ?? []));
    result.deleted.push(image.config);
    next.delete(image.config);
    this.commit(next);
    return result;
  }

  /** Every manifest, index and config an image refers to: the roots for content GC. */
  roots(): Digest[] {
    const roots = new Set<Digest>();
    for (const image of this.images.values()) {
      roots.add(image.manifest);
      roots.add(image.config);
      if (image.index) roots.add(image.index);
      for (const repoDigest of image.repoDigests ?? []) roots.add(repoDigest.slice(repoDigest.lastIndexOf('@') + 1));
    }
    return [...roots].sort();
  }

  /** Deletes the blobs no image reaches; returns their digests. */
  garbageCollect(): Digest[] {
    return this.content.garbageCollect(this.roots());
  }

  // ---------------------------------------------------------------- lookup

  private lookup(ref: string): ImageRecord | undefined {
    if (typeof ref !== 'string' || ref === '') throw new InvalidArgumentError('empty image reference');
    const full = /^(?:sha256:)?([a-f0-9]{64})$/.exec(ref);
    if (full) return this.images.get('sha256:' + full[1]);

    const byName = this.lookupName(ref);
    if (byName) return byName;

    const prefix = idPrefixHex(ref);
    if (prefix !== undefined) {
      const matches = [...this.images.values()].filter((r) => r.config.startsWith('sha256:' + prefix));
      if (matches.length > 1) throw new InvalidArgumentError(`image ID prefix ${ref} is ambiguous: it matches ${matches.length} images`);
      return matches[0];
    }
    return undefined;
  }

  private lookupName(ref: string): ImageRecord | undefined {
    let parsed;
    try {
      parsed = dockerReference(ref);
    } catch (err) {
      // Not a name: an ID prefix such as "sha256:0123…" may still match.
      if (err instanceof InvalidArgumentError && ID_PREFIX.test(ref)) return undefined;
      throw err;
    }
    if (parsed.digest !== undefined) {
      const repository = repositoryName(parsed);
      const repoDigest = `${repository}@${parsed.digest}`;
      const images = [...this.images.values()];
      return (
        images.find((r) => r.repoDigests?.includes(repoDigest)) ??
        images.find((r) => (r.manifest === parsed.digest || r.index === parsed.digest) && r.names.some((n) => repositoryName(parseReference(n)) === repository))
      );
    }
    const name = formatReference(parsed);
    return [...this.images.values()].find((r) => r.names.includes(name));
  }

  // ---------------------------------------------------------------- persistence

  private cloneImages(): Map<Digest, ImageRecord> {
    return new Map([...this.images].map(([id, r]) => [id, structuredClone(r)]));
  }

  /** Writes `next` durably, then makes it the current state. */
  private commit(next: Map<Digest, ImageRecord>): void {
    const data: StoreFile = { version: FORMAT_VERSION, images: [...next.values()] };
    writeFileAtomicSync(this.file, JSON.stringify(data, null, 2) + '\n');
    this.images = next;
  }

  private load(): Map<Digest, ImageRecord> {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    let data: StoreFile;
    try {
      data = JSON.parse(text) as StoreFile;
      if (data.version !== FORMAT_VERSION || !Array.isArray(data.images)) throw new Error(`unknown format version ${String(data.version)}`);
      return new Map(data.images.map((r) => [r.config, checkRecord(r)]));
    } catch (err) {
      // Never start empty over a damaged file: that would lose every image name.
      throw new SystemError(`image store ${this.file} is damaged: ${(err as Error).message}`, { cause: err });
    }
  }

  private removeStaleTempFiles(): void {
    for (const name of fs.readdirSync(this.root)) {
      const match = new RegExp(`^${FILE_NAME.replace('.', '\\.')}\\.(\\d+)\\.[a-f0-9]+\\.tmp$`).exec(name);
      if (match && !processAlive(Number(match[1]))) fs.rmSync(path.join(this.root, name), { force: true });
    }
  }
}

// ---------------------------------------------------------------- records

/** A validated copy with names and repo digests in canonical form. */
function checkRecord(record: ImageRecord): ImageRecord {
  if (typeof record !== 'object' || record === null) throw new InvalidArgumentError('must be an object', 'record');
  assertDigest(record.manifest, 'record.manifest');
  assertDigest(record.config, 'record.config');
  if (record.index !== undefined) assertDigest(record.index, 'record.index');
  if (typeof record.created !== 'string') throw new InvalidArgumentError('must be a string', 'record.created');
  if (!Array.isArray(record.names)) throw new InvalidArgumentError('must be an array', 'record.names');
  const names = record.names.map((name, i) => {
    const ref = dockerReference(String(name));
    if (ref.digest !== undefined) throw new InvalidArgumentError(`a name has a tag, not a digest (${name}); put it in repoDigests`, `record.names[${i}]`);
    return formatReference(ref);
  });
  const out: ImageRecord = { names: union([], names), manifest: record.manifest, config: record.config, created: record.created };
  if (record.index !== undefined) out.index = record.index;
  if (record.parent !== undefined) {
    if (record.parent !== '') assertDigest(record.parent, 'record.parent');
    out.parent = record.parent;
  }
  if (record.lastTagTime !== undefined) {
    if (typeof record.lastTagTime !== 'string' || Number.isNaN(Date.parse(record.lastTagTime))) throw new InvalidArgumentError('must be a time', 'record.lastTagTime');
    out.lastTagTime = record.lastTagTime;
  }
  if (record.repoDigests !== undefined) {
    if (!Array.isArray(record.repoDigests)) throw new InvalidArgumentError('must be an array', 'record.repoDigests');
    out.repoDigests = union(
      [],
      record.repoDigests.map((value, i) => {
        const ref = parseReference(String(value));
        if (ref.digest === undefined || !isDigest(ref.digest)) throw new InvalidArgumentError(`not a repo digest (repository@sha256:…): ${value}`, `record.repoDigests[${i}]`);
        return `${repositoryName(ref)}@${ref.digest}`;
      }),
    );
  }
  return out;
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}

/** Moves `names` to image `owner`: removes them from every other image. */
function takeNames(images: Map<Digest, ImageRecord>, names: string[], owner: Digest): void {
  for (const image of images.values()) {
    if (image.config !== owner) image.names = image.names.filter((n) => !names.includes(n));
  }
}

/** Removes a name or repo digest from the image holding it (in `images`); returns that image. */
function untagIn(images: Map<Digest, ImageRecord>, name: string): { image?: ImageRecord; removed: string[] } {
  const ref = dockerReference(name);
  if (ref.digest !== undefined) {
    const repoDigest = `${repositoryName(ref)}@${ref.digest}`;
    const image = [...images.values()].find((r) => r.repoDigests?.includes(repoDigest));
    if (!image) return { removed: [] };
    image.repoDigests = image.repoDigests!.filter((d) => d !== repoDigest);
    if (image.repoDigests.length === 0) delete image.repoDigests;
    return { image, removed: [repoDigest] };
  }
  const fullName = formatReference(ref);
  const image = [...images.values()].find((r) => r.names.includes(fullName));
  if (!image) return { removed: [] };
  image.names = image.names.filter((n) => n !== fullName);
  return { image, removed: [fullName] };
}

/** Whether `ref` named the image by its ID (full or prefix) rather than by a name. */
function isIdReference(ref: string, image: ImageRecord): boolean {
  const prefix = idPrefixHex(ref);
  if (prefix === undefined || !image.config.startsWith('sha256:' + prefix)) return false;
  // A 12+ hex string is also a valid name; a name that is in use wins, as in lookup().
  try {
    const name = dockerReference(ref);
    return !image.names.includes(formatReference(name));
  } catch {
    return true;
  }
}
