import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DetachWatcher, frame, FrameDemuxer, parseDetachKeys } from './demux.js';

test('frames split anywhere and packed together come out whole and in order', () => {
  const wire = Buffer.concat([frame(1, 'hello '), frame(2, 'oops\n'), frame(1, ''), frame(1, 'world\n')]);
  for (let step = 1; step <= wire.length; step++) {
    const got: [number, string][] = [];
    const d = new FrameDemuxer((s, p) => got.push([s, p.toString()]));
    for (let i = 0; i < wire.length; i += step) d.push(wire.subarray(i, i + step));
    assert.deepEqual(got, [[1, 'hello '], [2, 'oops\n'], [1, 'world\n']], `chunks of ${step}`);
    assert.equal(d.pending, 0);
  }
});

test('a large frame and an incomplete tail', () => {
  const big = Buffer.alloc(100_000, 7);
  const got: Buffer[] = [];
  const d = new FrameDemuxer((_s, p) => got.push(p));
  const wire = Buffer.concat([frame(1, big), frame(2, 'tail')]);
  d.push(wire.subarray(0, wire.length - 2));
  assert.equal(got.length, 1);
  assert.equal(got[0].length, 100_000);
  assert.equal(d.pending, 10);
});

test('detach keys: parsing and watching typed input', () => {
  assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
  assert.deepEqual([...parseDetachKeys('ctrl-a,x')], [1, 120]);
  assert.throws(() => parseDetachKeys('ctrl-ab'));
  const w = new DetachWatcher(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual(w.feed(Buffer.from('ab')), { forward: Buffer.from('ab'), detach: false });
  // ctrl-p alone is held back, then released when the next key breaks the sequence.
  assert.deepEqual(w.feed(Buffer.from([16])), { forward: Buffer.alloc(0), detach: false });
  assert.deepEqual(w.feed(Buffer.from('x')), { forward: Buffer.from([16, 120]), detach: false });
  assert.deepEqual(w.feed(Buffer.from([97, 16, 17, 98])), { forward: Buffer.from('a'), detach: true });
});
