/**
 * A client for native/storage/berth-fsop: the file system operations Node cannot do (mknod,
 * xattrs, mounts), resolved beneath one directory with openat2(RESOLVE_BENEATH). Requests are
 * answered in order: each call waits for the helper's "ok" (with what it reports) or "error"
 * line.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

import { SystemError } from '../common/errors.js';
import { nativeBinary } from '../common/paths.js';

type Arg = string | Buffer | number;
export type FsOpName = 'mknod' | 'setxattr' | 'mount' | 'fsmount' | 'umount' | 'fdxattrs';

export class FsOp {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly waiting: { resolve: (answer: string) => void; reject: (e: Error) => void; what: string }[] = [];
  private buffered = '';
  private stderr = '';
  private dead: Error | null = null;

  constructor(layerDir: string) {
    this.child = spawn(nativeBinary('berth-fsop'), [layerDir], { stdio: ['pipe', 'pipe', 'pipe'] });
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
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`${b.length}\n`), b, Buffer.from('\n'));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, what: op });
      this.child.stdin.write(Buffer.concat(parts));
    });
  }

  /** Ends the helper (stdin EOF) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
