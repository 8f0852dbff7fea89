import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { StateStore, type ContainerRecord } from './state.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-state-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function record(id: string, pid: number): ContainerRecord {
  return { id, bundle: '/b', rootfs: '/b/rootfs', pid, pidStartTime: pid ? '42' : '', created: '2026-11-30T00:00:00Z', config: { ociVersion: '1.2.0' }, owner: 'root' };
}

test('a staged record replaces state.json only when committed', () => {
  const store = new StateStore(root);
  store.reserve('c1');
  store.save(record('c1', 0));
  const commit = store.stage(record('c1', 1234));
  // Another reader (a `state` in another process) still sees the create in progress.
  assert.equal(new StateStore(root).load('c1').pid, 0);
  assert.equal(store.load('c1').pid, 0);
  commit();
  assert.equal(new StateStore(root).load('c1').pid, 1234);
  assert.equal(store.load('c1').pid, 1234);
  assert.deepEqual(fs.readdirSync(store.dir('c1')), ['state.json']);
});

test('a record staged and never committed goes with the container', () => {
  const store = new StateStore(root);
  store.reserve('c2');
  store.save(record('c2', 0));
  store.stage(record('c2', 99));
  assert.ok(store.has('c2'));
  store.remove('c2');
  assert.equal(store.has('c2'), false);
  assert.equal(fs.existsSync(store.dir('c2')), false);
});
