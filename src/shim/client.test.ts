import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';

import { FrameParser, parseFrames, type Frame } from './client.js';

const frame = (stream: number, text: string): Buffer => {
  const head = Buffer.from([stream, 0, 0, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(Buffer.byteLength(text), 4);
  return Buffer.concat([head, Buffer.from(text)]);
};
const plain = (frames: Frame[]): Array<[number, string]> => frames.map((f) => [f.stream, f.data.toString()]);

test('parseFrames splits complete frames and keeps the rest', () => {
  const bytes = Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, ''), frame(1, 'partial')]);
  const whole = parseFrames(bytes);
  assert.deepEqual(plain(whole.frames), [[1, 'out\n'], [2, 'err\n'], [1, ''], [1, 'partial']]);
  assert.equal(whole.rest.length, 0);

  const cutInPayload = parseFrames(bytes.subarray(0, bytes.length - 3));
  assert.deepEqual(plain(cutInPayload.frames), [[1, 'out\n'], [2, 'err\n'], [1, '']]);
  assert.equal(cutInPayload.rest.toString('latin1').slice(8), 'part');

  const cutInHeader = parseFrames(bytes.subarray(0, 12 + 5));
  assert.deepEqual(plain(cutInHeader.frames), [[1, 'out\n']]);
  assert.equal(cutInHeader.rest.length, 5);
});

test('parseFrames reads the length as big-endian u32', () => {
  const big = Buffer.alloc(70_000, 'x');
  const { frames, rest } = parseFrames(Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 1, 0x11, 0x70]), big]));
  assert.equal(frames.length, 1);
  assert.equal(frames[0].stream, 2);
  assert.equal(frames[0].data.length, 70_000);
  assert.equal(rest.length, 0);
});

test('parseFrames refuses bytes that are not a multiplexed stream', () => {
  assert.throws(() => parseFrames(Buffer.from('{"message":"x"}\n')), /not a multiplexed stream/);
  assert.throws(() => parseFrames(Buffer.from([3, 0, 0, 0, 0, 0, 0, 0])), /not a multiplexed stream/);
  assert.throws(() => parseFrames(Buffer.from([1, 0, 1, 0, 0, 0, 0, 0])), /not a multiplexed stream/);
});

test('FrameParser yields the same frames however the bytes are cut', async () => {
  const bytes = Buffer.concat([frame(1, 'hello '), frame(2, 'warning\n'), frame(1, 'world\n'), frame(2, '')]);
  for (const size of [1, 3, 8, 9, 13, bytes.length]) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
    const frames: Frame[] = [];
    for await (const f of Readable.from(chunks).pipe(new FrameParser())) frames.push(f as Frame);
    assert.deepEqual(plain(frames), [[1, 'hello '], [2, 'warning\n'], [1, 'world\n'], [2, '']], `chunks of ${size}`);
  }
});

test('FrameParser fails on a stream that ends inside a frame, or is not framed', async () => {
  const collect = async (chunks: Buffer[]): Promise<Frame[]> => {
    const frames: Frame[] = [];
    for await (const f of Readable.from(chunks).pipe(new FrameParser())) frames.push(f as Frame);
    return frames;
  };
  await assert.rejects(collect([frame(1, 'ok'), frame(1, 'cut').subarray(0, 9)]), /ended inside a frame/);
  await assert.rejects(collect([Buffer.from('HTTP/1.1 200 OK\r\n')]), /not a multiplexed stream/);
});
