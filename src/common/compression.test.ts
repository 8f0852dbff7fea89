import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';

import { decompressed, detectCompression } from './compression.js';
import { InvalidArgumentError, UnsupportedError } from './errors.js';

/** Some bytes worth compressing, larger than one pipe buffer and one bzip2 block's worth of input to a child. */
const plain = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 'abc')]);

function compress(kind: string): Buffer {
  if (kind === 'gzip') return zlib.gzipSync(plain);
  const r = spawnSync(kind, ['-c', '-q'], { input: plain, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${kind} -c: ${r.stderr}`);
  return r.stdout;
}

/** The bytes `decompressed` yields for `input`, fed in small pieces. */
async function collect(input: Buffer, field?: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += 4096) pieces.push(input.subarray(i, i + 4096));
  const out: Buffer[] = [];
  for await (const chunk of decompressed(Readable.from(pieces), field)) out.push(chunk);
  return Buffer.concat(out);
}

const kinds = ['gzip', 'zstd', 'xz', 'bzip2'] as const;
const installed = (kind: string) => kind === 'gzip' || spawnSync(kind, ['--version']).status === 0;

describe('compression', () => {
  it('tells the kinds apart by their magic bytes, not by anything else', () => {
    for (const kind of kinds.filter(installed)) assert.equal(detectCompression(compress(kind).subarray(0, 6)), kind);
    assert.equal(detectCompression(Buffer.from('ustar')), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
    assert.equal(detectCompression(Buffer.from([0x1f])), 'none'); // too short to be gzip
    assert.equal(detectCompression(Buffer.from('BZ')), 'none');
  });

  for (const kind of kinds) {
    it(`decompresses ${kind}; refuses it truncated or corrupt, naming the kind and the field`, { skip: installed(kind) ? false : `${kind} not installed` }, async () => {
      const packed = compress(kind);
      assert.ok((await collect(packed)).equals(plain));
      const corrupt = Buffer.from(packed);
      corrupt.fill(0x55, 30, 200);
      for (const bad of [packed.subarray(0, packed.length - 20), corrupt]) {
        await assert.rejects(collect(bad, 'rootfs'), (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, String(e));
          assert.ok(e.message.startsWith(`rootfs: not a valid ${kind} stream: `), e.message);
          return true;
        });
      }
    });
  }

  it('passes bytes that are not compressed through unchanged, short ones too', async () => {
    assert.ok((await collect(plain)).equals(plain));
    assert.ok((await collect(Buffer.from('abc'))).equals(Buffer.from('abc')));
    assert.equal((await collect(Buffer.alloc(0))).length, 0);
  });

  it('refuses what decompresses past maxBytes (a bomb), gzip and through a program alike; uncompressed input is not bounded here', async () => {
    const zeros = Buffer.alloc(8 << 20);
    const bombs: Array<[string, Buffer]> = [['gzip', zlib.gzipSync(zeros, { level: 9 })]];
    if (installed('xz')) bombs.push(['xz', spawnSync('xz', ['-c', '-q'], { input: zeros, maxBuffer: 1 << 26 }).stdout]);
    for (const [kind, bomb] of bombs) {
      assert.ok(bomb.length < 1 << 20, `${kind}: ${bomb.length} bytes`);
      const out: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const chunk of decompressed(Readable.from([bomb]), 'archive', 1 << 20)) out.push(chunk);
        })(),
        (e: unknown) => e instanceof InvalidArgumentError && e.message === 'archive: decompressed data exceeds the limit of 1048576 bytes (a decompression bomb?)',
        kind,
      );
      assert.ok(Buffer.concat(out).length <= 1 << 20, `${kind}: nothing past the limit was handed on`);
    }
    let plainBytes = 0;
    for await (const chunk of decompressed(Readable.from([zeros]), 'archive', 1 << 20)) plainBytes += chunk.length;
    assert.equal(plainBytes, zeros.length);
  });

  it('a missing program is UnsupportedError, naming it', async () => {
    const xz = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]);
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await assert.rejects(collect(xz), (e: unknown) => e instanceof UnsupportedError && /the xz program is not installed/.test(e.message));
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('a consumer that stops early stops the program', async () => {
    const gen = decompressed(Readable.from([compress('xz')]));
    const first = await gen.next();
    assert.equal(first.done, false);
    await gen.return(undefined); // must not hang
    const xzChildren = () =>
      fs.readdirSync('/proc').filter((pid) => {
        try {
          const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
          return stat.includes(' (xz) ') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
        } catch {
          return false;
        }
      });
    for (let i = 0; i < 100 && xzChildren().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(xzChildren(), [], 'the xz child is gone');
  });
});
