import assert from 'node:assert/strict';
import { test } from 'node:test';

import { canPrepareAhead, PreparedStarts, startFingerprint, type PreparedStart } from './prepared.js';
import { newState, type ContainerRecord, type MountPoint } from './record.js';

function record(over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id: 'a'.repeat(64),
    name: '/web',
    created: '2026-11-30T00:00:00Z',
    image: 'sha256:' + 'b'.repeat(64),
    imageRef: 'busybox',
    path: 'true',
    args: [],
    config: { Image: 'busybox' },
    hostConfig: { NetworkMode: 'none' },
    state: newState(),
    restartCount: 0,
    stoppedByUser: false,
    mounts: [],
    snapshotKey: 'a'.repeat(64),
    ...over,
  };
}

const volume: MountPoint = { Type: 'volume', Name: 'data', Source: '/v/data', Destination: '/data', Mode: '', RW: true, Propagation: '' };

test('only a created container whose start touches nothing but its own files is prepared ahead', () => {
  assert.equal(canPrepareAhead(record()), true);
  assert.equal(canPrepareAhead(record({ hostConfig: { NetworkMode: 'bridge' } })), true);
  assert.equal(canPrepareAhead(record({ state: { ...newState(), status: 'exited' } })), false);
  assert.equal(canPrepareAhead(record({ mounts: [volume] })), false, 'volumes are mounted and announced at start');
  for (const key of ['NetworkMode', 'PidMode', 'IpcMode'] as const) {
    assert.equal(canPrepareAhead(record({ hostConfig: { [key]: 'container:other' } })), false, key);
  }
  assert.equal(canPrepareAhead(record({ hostConfig: { IpcMode: 'shareable' } })), false);
});

test('the fingerprint changes with what a start is made of, not with the state', () => {
  const base = startFingerprint(record());
  assert.equal(startFingerprint(record({ state: { ...newState(), status: 'running', pid: 7 } })), base);
  assert.equal(startFingerprint(record({ restartCount: 3 })), base);
  assert.notEqual(startFingerprint(record({ name: '/other' })), base);
  assert.notEqual(startFingerprint(record({ hostConfig: { NetworkMode: 'none', Memory: 1 << 20 } })), base);
  assert.notEqual(startFingerprint(record({ endpoints: { bridge: {} } })), base);
});

test('a preparation is taken once; one left too long is handed to expire', async () => {
  const expired: string[] = [];
  const starts = new PreparedStarts((id) => expired.push(id), 20);
  const start: PreparedStart = { startNow: true, launch: async () => ({ pid: 1, stage0: undefined as never }), abort: async () => undefined };
  starts.put('x', 'fp', start);
  assert.equal(starts.has('x'), true);
  assert.deepEqual(starts.take('x'), { fingerprint: 'fp', start });
  assert.equal(starts.take('x'), undefined);
  starts.put('y', 'fp', start);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(expired, ['y'], 'taken ones never expire');
  assert.deepEqual(starts.ids(), ['y'], 'expire decides what to do with it');
});

test('no more than the limit at a time', () => {
  const starts = new PreparedStarts(() => undefined, 60_000, 2);
  const start: PreparedStart = { startNow: true, launch: async () => ({ pid: 1, stage0: undefined as never }), abort: async () => undefined };
  starts.put('a', 'fp', start);
  assert.equal(starts.full, false);
  starts.put('b', 'fp', start);
  assert.equal(starts.full, true);
  starts.take('a');
  assert.equal(starts.full, false);
  starts.take('b');
});
