/**
 * Compressed streams read as dockerd reads them (moby pkg/archive DecompressStream): gzip, zstd,
 * xz and bzip2, told apart by their first bytes whatever a media type or a file name says.
 * Used for layers, `docker load` and `docker import` tarballs, and archives a build ADDs.
 *
 * gzip is decompressed in this process (zlib). zstd, xz and bzip2 go through their Debian
 * programs: Node 20 has no decoder for any of them (zstd arrived in Node 22.15), and the npm
 * ones are native addons to build or WASM ports slower than the programs.
 */
import { spawn } from 'node:child_process';
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';

import { type BerthError, InvalidArgumentError, SystemError, UnsupportedError } from './errors.js';

export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

/** How many first bytes detectCompression needs to tell every kind. */
export const MAGIC_BYTES = 6;

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** The compression, from a stream's first bytes (at least MAGIC_BYTES of them unless it is shorter). */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(XZ_MAGIC)) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** The program and arguments that write a stream of each kind decompressed to stdout. */
const PROGRAMS: Record<'zstd' | 'xz' | 'bzip2', [string, string[]]> = {
  // --long=31: a window as large as any zstd writer may use (containerd passes the same bound).
  zstd: ['zstd', ['-d', '-c', '-q', '--long=31']],
  xz: ['xz', ['-d', '-c', '-q']],
  bzip2: ['bzip2', ['-d', '-c', '-q']],
};

export interface Decompression {
  /** The decompressed bytes. A corrupt gzip stream errors here, with a `Z_` code. */
  output: Readable;
  /**
   * To call once output has ended: throws what a program reported (InvalidArgumentError for a
   * corrupt or truncated stream, UnsupportedError when the program is not installed).
   */
  check(): Promise<void>;
  /** Stops early: destroys output and kills a program still running. */
  kill(): void;
}

/** Starts decompressing `input`, a stream of the given (compressed) kind. */
export function startDecompression(input: Readable, kind: Exclude<Compression, 'none'>, opts: { gzip?: zlib.ZlibOptions; field?: string } = {}): Decompression {
  if (kind === 'gzip') {
    const gunzip = zlib.createGunzip(opts.gzip);
    pipeline(input, gunzip, () => {
      /* errors surface on gunzip, which the reader reads */
    });
    return { output: gunzip, check: async () => {}, kill: () => gunzip.destroy() };
  }
  const [program, args] = PROGRAMS[kind];
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let spawnError: BerthError | null = null;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s; // the first words say what is wrong
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError =
        e.code === 'ENOENT'
          ? new UnsupportedError(`${kind}-compressed data, but the ${program} program is not installed`)
          : new SystemError(`cannot run ${program}: ${e.message}`, { cause: e });
      child.stdout.destroy(spawnError); // the reader learns why, not just that the output closed
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  pipeline(input, child.stdin, () => {
    /* EPIPE when the program stops early: its exit status tells */
  });
  return {
    output: child.stdout,
    check: async () => {
      const code = await exited;
      if (spawnError) throw spawnError;
      if (code !== 0) throw new InvalidArgumentError(`not a valid ${kind} stream: ${stderr.trim() || `${program} exited with ${code}`}`, opts.field);
    },
    kill: () => {
      child.stdout.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * The bytes of `input`, decompressed when they start with a compression's magic bytes, as they
 * come. A corrupt or truncated stream ends in an InvalidArgumentError ("not a valid xz stream:
 * ...", prefixed by `field` when given); a stream whose program is missing in an UnsupportedError.
 * `maxBytes` bounds what decompression may turn it into (a decompression bomb is refused, not
 * written out); uncompressed input is as large as it came.
 */
export async function* decompressed(input: AsyncIterable<Buffer | string>, field?: string, maxBytes = Infinity): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < MAGIC_BYTES) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head = Buffer.concat([head, typeof r.value === 'string' ? Buffer.from(r.value) : r.value]);
  }
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
  }
  const kind = detectCompression(head);
  if (kind === 'none') {
    yield* all();
    return;
  }
  const source = Readable.from(all());
  const dec = startDecompression(source, kind, { field });
  let ended = false;
  try {
    try {
      let total = 0;
      for await (const chunk of dec.output) {
        total += (chunk as Buffer).length;
        if (total > maxBytes) throw new InvalidArgumentError(`decompressed data exceeds the limit of ${maxBytes} bytes (a decompression bomb?)`, field);
        yield chunk as Buffer;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (kind === 'gzip' && code.startsWith('Z_')) throw new InvalidArgumentError(`not a valid gzip stream: ${(err as Error).message}`, field);
      throw err;
    }
    ended = true;
    await dec.check();
  } finally {
    if (!ended) dec.kill();
    source.destroy();
  }
}
