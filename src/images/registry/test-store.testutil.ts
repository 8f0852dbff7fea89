/**
 * A tiny ContentStore for the registry client's tests (a directory of blobs named by hex,
 * verified on write), so they do not depend on the real store. Every store made in a temporary
 * directory is removed when the test process exits, also one a test forgot.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { digestHex, sha256Digest } from '../digest.js';
import type { BlobInfo, BlobWriter, ContentStore } from '../types.js';

const temporary = new Set<string>();
process.on('exit', () => temporary.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

export class TestStore implements ContentStore {
  readonly root: string;
  writes = 0;
  constructor(root?: string) {
    if (root === undefined) temporary.add((root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-store-'))));
    this.root = root;
  }
  private file(d: string): string {
    return path.join(this.root, digestHex(d));
  }
  has(d: string): boolean {
    return fs.existsSync(this.file(d));
  }
  info(d: string): BlobInfo {
    if (!this.has(d)) throw new NotFoundError(`blob ${d} not found`);
    return { digest: d, size: fs.statSync(this.file(d)).size };
  }
  path(d: string): string {
    return this.file(d);
  }
  readBlob(d: string): Buffer {
    return fs.readFileSync(this.file(d));
  }
  createReadStream(d: string): Readable {
    return fs.createReadStream(this.file(d));
  }
  async writeBlob(data: Readable | Buffer, expected?: Partial<BlobInfo>): Promise<BlobInfo> {
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(data)) chunks.push(data);
    else for await (const c of data) chunks.push(Buffer.from(c as Buffer));
    const buf = Buffer.concat(chunks);
    const digest = sha256Digest(buf);
    if (expected?.size !== undefined && expected.size !== buf.length) throw new InvalidArgumentError(`size ${buf.length}, expected ${expected.size}`, `blob ${expected.digest ?? digest}`);
    if (expected?.digest !== undefined && expected.digest !== digest) throw new InvalidArgumentError(`content has digest ${digest}`, `blob ${expected.digest}`);
    const tmp = this.file(digest) + '.tmp' + process.pid + Math.random();
    fs.writeFileSync(tmp, buf);
    fs.renameSync(tmp, this.file(digest));
    this.writes++;
    return { digest, size: buf.length };
  }
  /** Gathers the chunks and stores them through writeBlob at commit. */
  async openBlobWriter(expected?: Partial<BlobInfo>, opts?: { onVerified?: () => void }): Promise<BlobWriter> {
    const chunks: Buffer[] = [];
    let size = 0;
    return {
      write: (chunk) => {
        size += chunk.length;
        if (expected?.size !== undefined && size > expected.size) throw new InvalidArgumentError(`more than ${expected.size} bytes`, `blob ${expected.digest ?? ''}`);
        chunks.push(Buffer.from(chunk));
        return undefined;
      },
      commit: async () => {
        const info = await this.writeBlob(Buffer.concat(chunks), expected);
        opts?.onVerified?.();
        return info;
      },
      abort: async () => undefined,
    };
  }
  delete(d: string): void {
    fs.rmSync(this.file(d), { force: true });
  }
  list(): string[] {
    return fs.readdirSync(this.root).filter((f) => /^[a-f0-9]{64}$/.test(f)).map((f) => 'sha256:' + f);
  }
  garbageCollect(): string[] {
    return [];
  }
  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
    temporary.delete(this.root);
  }
}
