import assert from 'node:assert/strict';
import { test } from 'node:test';

import tar from 'tar-stream';

import { tarExtract } from './tar-extract.js';

async function packed(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, text] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, text);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every entry's name and text, or the error, with the reader keeping up with each entry. */
async function read(bytes: Buffer): Promise<string[] | Error> {
  const ex = tarExtract();
  const seen: string[] = [];
  const done = new Promise<string[] | Error>((resolve) => {
    ex.on('entry', (header, stream, next) => {
      let text = '';
      stream.on('error', () => undefined); // the extractor reports it too
      stream.on('data', (c: unknown) => (text += (c as Buffer).toString()));
      stream.on('end', () => {
        seen.push(`${header.name}=${text}`);
        next();
      });
    });
    ex.on('finish', () => resolve(seen));
    ex.on('error', (err) => resolve(err));
  });
  // In 512-byte pieces, as a network would bring it, so that the reader is never behind.
  for (let i = 0; i < bytes.length && !ex.destroyed; i += 512) {
    ex.write(bytes.subarray(i, i + 512));
    await new Promise((r) => setImmediate(r));
  }
  if (!ex.destroyed) (ex as unknown as { end(): void }).end();
  return done;
}

test("tarExtract ends an archive where Go's archive/tar does: after the last entry's data, padding and end blocks optional", async () => {
  const whole = await packed({ a: 'one', Dockerfile: 'FROM busybox\n' });
  assert.deepEqual(await read(whole), ['a=one', 'Dockerfile=FROM busybox\n']);
  // What the docker CLI sends for `build -f - DIR`: no padding after the last data, no end blocks.
  const unterminated = whole.subarray(0, 512 * 3 + 'FROM busybox\n'.length);
  assert.deepEqual(await read(unterminated), ['a=one', 'Dockerfile=FROM busybox\n']);
  // Cut at a header boundary (no end blocks) is a clean end too.
  assert.deepEqual(await read(whole.subarray(0, 512 * 4)), ['a=one', 'Dockerfile=FROM busybox\n']);
  // Cut inside the last entry's data, or inside a header: still refused.
  assert.match(String(await read(unterminated.subarray(0, unterminated.length - 3))), /Unexpected end of data/);
  assert.match(String(await read(whole.subarray(0, 512 * 2 + 100))), /Unexpected end of data/);
});
