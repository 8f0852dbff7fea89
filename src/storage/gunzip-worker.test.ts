import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';

import { gunzipOnWorker } from './gunzip-worker.js';

/** 24 MiB, half random (so the gzip stream is large too), in 64 KiB pieces. */
function sample(): { plain: Buffer; pieces: Buffer[] } {
  const plain = Buffer.concat([randomBytes(12 << 20), Buffer.alloc(12 << 20, 'berth ')]);
  const gz = zlib.gzipSync(plain, { level: 1 });
  const pieces: Buffer[] = [];
  for (let i = 0; i < gz.length; i += 64 << 10) pieces.push(gz.subarray(i, i + (64 << 10)));
  return { plain, pieces };
}

describe('gunzipOnWorker', () => {
  it('gunzips byte for byte (and hashes it), holding the input back while a slow reader holds the output back', async () => {
    const { plain, pieces } = sample();
    let sent = 0;
    let pausedOnce = false;
    const input = new Readable({
      read() {
        if (sent < pieces.length) this.push(pieces[sent++]);
        else this.push(null);
      },
    });
    input.on('pause', () => (pausedOnce = true));
    const { output, digest } = gunzipOnWorker(input);
    const got: Buffer[] = [];
    for await (const chunk of output as AsyncIterable<Buffer>) {
      got.push(chunk);
      if (got.length % 8 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(Buffer.concat(got).equals(plain));
    assert.equal(digest(), 'sha256:' + createHash('sha256').update(plain).digest('hex'));
    assert.ok(pausedOnce, 'the input was paused at least once');
  });

  it('reports a corrupt or truncated stream with zlib error codes', async () => {
    const gz = zlib.gzipSync(Buffer.alloc(1 << 20, 'x'));
    const corrupt = Buffer.from(gz);
    corrupt.fill(0x55, 20, 60);
    const drain = async (b: Buffer) => {
      for await (const _ of gunzipOnWorker(Readable.from([b])).output);
    };
    await assert.rejects(drain(corrupt), (e: NodeJS.ErrnoException) => e.code === 'Z_DATA_ERROR');
    await assert.rejects(drain(gz.subarray(0, gz.length - 100)), (e: NodeJS.ErrnoException) => e.code === 'Z_BUF_ERROR' && /unexpected end/.test(e.message));
  });

  it('a reader that stops early ends the worker and the input', async () => {
    const { pieces } = sample();
    const input = Readable.from(pieces);
    const { output } = gunzipOnWorker(input);
    for await (const _ of output) break; // destroys the output
    assert.ok(input.destroyed);
    // A worker still running would keep this test's process alive: node --test would time out.
  });
});
