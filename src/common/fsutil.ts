/** Small file-system helpers shared by the stores: crash-safe writes, stale-owner checks, reads with a fallback. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { decodeName, fsPath } from './bytenames.js';

/**
 * temp file + fsync + rename + fsync of the directory; the temp file is removed on failure.
 *
 * `durable: false` skips both fsyncs: the rename alone is atomic for every process (a reader, or
 * the next daemon after a SIGKILL, sees the old file or the new one, never a part), and only a
 * power loss or kernel crash could lose the latest version. Use it for state that the next boot
 * rebuilds anyway (container runtime state), where an fsync per state change (several ms here)
 * would dominate the container's start time.
 */
export function writeFileAtomicSync(file: string, text: string, opts: { durable?: boolean } = {}): void {
  const durable = opts.durable ?? true;
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o600);
    const bytes = Buffer.from(text);
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    if (durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (!durable) return;
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}


/** As writeFileAtomicSync, asynchronous, with a file mode. */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  if (durable) await syncDirectory(dir);
}

/** Makes a rename in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A text file's content, or `fallback` when it cannot be read (missing, unreadable). */
export function readFileOr(file: string, fallback = ''): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Writes a text file only when its content differs (a read is cheaper than a write on most file systems). */
export function writeFileIfChanged(file: string, text: string, mode = 0o644): void {
  let current: string | undefined;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    /* not there yet */
  }
  if (current !== text) fs.writeFileSync(file, text, { mode });
}

/**
 * A directory's entry names, for walks whose names go into an archive or a list: read as bytes,
 * as byte names (common/bytenames), so that a name that is not UTF-8 is kept, not turned into
 * U+FFFD (a name no file has, which vanished from `docker export` and failed `docker commit`).
 * Pass the names to fs through fsPath().
 */
export async function readNames(dir: string): Promise<string[]> {
  return (await fsp.readdir(fsPath(dir), { encoding: 'buffer' })).map(decodeName);
}

export function readNamesSync(dir: string): string[] {
  return fs.readdirSync(fsPath(dir), { encoding: 'buffer' }).map(decodeName);
}

/** A symlink's target as a byte name (see readNames); `p` a byte name, or a path as fs takes it. */
export function readLinkSync(p: string | Buffer): string {
  return decodeName(fs.readlinkSync(typeof p === 'string' ? fsPath(p) : p, { encoding: 'buffer' }));
}
