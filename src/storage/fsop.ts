/**
 * A client for native/storage/berth-fsop: the file system operations Node cannot do (mknod,
 * xattrs, mounts), resolved beneath one directory with openat2(RESOLVE_BENEATH). Requests are
 * answered in order: each call waits for the helper's "ok" (with what it reports) or "error"
 * line.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { encodeName } from '../common/bytenames.js';
import { SystemError } from '../common/errors.js';
import { nativeBinary } from '../common/paths.js';

type Arg = string | Buffer | number;
export type FsOpName = 'mknod' | 'setxattr' | 'mount' | 'fsmount' | 'umount' | 'fdxattrs' | 'rmtree';

export class FsOp {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly waiting: { resolve: (answer: string) => void; reject: (e: Error) => void; what: string }[] = [];
  private buffered = '';
  private stderr = '';
  private dead: Error | null = null;

  /** `background`: the helper keeps this process alive only while a request waits for its answer. */
  constructor(
    layerDir: string,
    private readonly opts: { background?: boolean } = {},
  ) {
    this.child = spawn(nativeBinary('berth-fsop'), [layerDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    if (opts.background) this.child.unref();
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (s: string) => this.onData(s));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => (this.stderr += s));
    this.child.stdin.on('error', () => {
      /* reported through 'exit' */
    });
    this.child.on('error', (err) => this.die(new SystemError(`cannot start berth-fsop: ${err.message}`, { cause: err })));
    this.child.on('exit', (code, signal) => {
      if (code !== 0 || this.waiting.length) {
        this.die(new SystemError(`berth-fsop exited (${signal ?? code})${this.stderr ? ': ' + this.stderr.trim() : ''}`));
      }
    });
  }

  private onData(s: string): void {
    this.buffered += s;
    let nl;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const w = this.waiting.shift();
      this.idle();
      if (!w) continue;
      if (line === 'ok') w.resolve('');
      else if (line.startsWith('ok ')) w.resolve(line.slice(3));
      else w.reject(new SystemError(`berth-fsop: ${line.replace(/^error /, '')}`));
    }
  }

  private die(err: Error): void {
    this.dead ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  /** Sends one request and waits for its answer. */
  async call(op: FsOpName, args: Arg[]): Promise<void> {
    await this.query(op, args);
  }

  /** Sends one request; resolves with what follows "ok " in the answer ('' for a bare "ok"). */
  query(op: FsOpName, args: Arg[]): Promise<string> {
    if (this.dead) return Promise.reject(this.dead);
    const parts: Buffer[] = [Buffer.from(`${op} ${args.length}\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : encodeName(String(a)); // a name's own bytes (common/bytenames)
      parts.push(Buffer.from(`${b.length}\n`), b, Buffer.from('\n'));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, what: op });
      this.idle();
      this.child.stdin.write(Buffer.concat(parts));
    });
  }

  /** In the background: the pipes hold the event loop only while an answer is awaited. */
  private idle(): void {
    if (!this.opts.background) return;
    const busy = this.waiting.length > 0;
    for (const h of [this.child.stdin, this.child.stdout, this.child.stderr] as unknown as Array<{ ref?(): void; unref?(): void }>) (busy ? h.ref : h.unref)?.call(h);
  }

  /** Ends the helper (stdin EOF) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }

  get exited(): boolean {
    return this.dead !== null || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * Deletes directory trees beneath one root through berth-fsop (`rmtree`): the walk and its
 * system calls run in that process, so a container's writable layer of any size costs this
 * process's event loop one request, where fs.rm runs a callback per file here (~1 ms of the
 * daemon's thread per container directory, and seconds for a large layer). Never across a mount
 * point. The helper starts at the first deletion and never holds this process alive.
 */
export class TreeDeleter {
  private helper: FsOp | undefined;

  constructor(private readonly root: string) {}

  /** Removes dir (beneath the root; else with fs.rm); rejects naming what could not go. */
  async remove(dir: string): Promise<void> {
    const rel = path.relative(this.root, dir);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return fsp.rm(dir, { recursive: true, force: true });
    this.helper ??= new FsOp(this.root, { background: true });
    const helper = this.helper;
    try {
      await helper.call('rmtree', [rel]);
    } catch (err) {
      if (helper.exited) this.helper = undefined; // the next deletion starts another
      throw err;
    }
  }

  close(): void {
    this.helper?.kill();
    this.helper = undefined;
  }
}
