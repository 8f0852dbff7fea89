/**
 * Docker's multiplexed stream (attach, logs, exec without a TTY): frames of an 8-byte header
 * `[stream, 0, 0, 0, len32be]` then `len` bytes; stream 0 stdin, 1 stdout, 2 stderr, 3 a
 * systemerr from the daemon. Frames may be split across or packed into chunks in any way.
 */
export type FrameSink = (stream: number, payload: Buffer) => void;

export class FrameDemuxer {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly sink: FrameSink) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      const stream = this.buf[0];
      const payload = this.buf.subarray(8, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      if (len > 0) this.sink(stream, payload);
    }
  }

  /** Bytes of an incomplete frame still held. */
  get pending(): number {
    return this.buf.length;
  }
}

/** One frame, as a daemon writes it (for tests and fakes). */
export function frame(stream: number, payload: Buffer | string): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(p.length, 4);
  return Buffer.concat([h, p]);
}

/**
 * Detach keys ("ctrl-p,ctrl-q" by default): docker's syntax, a comma-separated list of
 * `ctrl-<x>` or single characters. Returns the byte sequence.
 */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const p = part.trim();
    if (/^ctrl-[a-z@\[\\\]^_]$/i.test(p)) {
      const c = p.slice(5);
      const code = c.toLowerCase() === '@' ? 0 : /[a-z]/i.test(c) ? c.toLowerCase().charCodeAt(0) - 96 : c.charCodeAt(0) - 64;
      out.push(code);
    } else if (p.length === 1) out.push(p.charCodeAt(0));
    else throw new Error(`Invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(out);
}

/**
 * Watches typed input for the detach sequence. feed() returns the bytes to forward and
 * whether the sequence completed; a partial match is held back until it completes or breaks.
 */
export class DetachWatcher {
  private matched = 0;

  constructor(private readonly keys: Buffer) {}

  feed(chunk: Buffer): { forward: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      if (this.matched) {
        for (let i = 0; i < this.matched; i++) out.push(this.keys[i]);
        this.matched = 0;
        if (b === this.keys[0]) {
          this.matched = 1;
          continue;
        }
      }
      out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
