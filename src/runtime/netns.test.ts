import assert from 'node:assert/strict';
import { test } from 'node:test';

import { wantsFreshNetns, withNetnsPath } from './netns.js';
import type { Spec } from './spec/config.js';

const spec = (namespaces: Array<{ type: string; path?: string }>): Spec => ({ ociVersion: '1.2.0', root: { path: 'rootfs' }, linux: { namespaces } }) as Spec;

test('wantsFreshNetns: a new network namespace, without a user namespace', () => {
  assert.equal(wantsFreshNetns(spec([{ type: 'pid' }, { type: 'network' }, { type: 'mount' }])), true);
  assert.equal(wantsFreshNetns(spec([{ type: 'pid' }, { type: 'mount' }])), false, 'the host network');
  assert.equal(wantsFreshNetns(spec([{ type: 'network', path: '/proc/1/ns/net' }])), false, 'another namespace joined');
  assert.equal(wantsFreshNetns(spec([{ type: 'network' }, { type: 'user' }])), false, 'owned by the container user namespace');
  assert.equal(wantsFreshNetns(spec([{ type: 'network' }, { type: 'user', path: '/proc/1/ns/user' }])), false);
  assert.equal(wantsFreshNetns({ ociVersion: '1.2.0', root: { path: 'rootfs' } } as Spec), false);
});

test('withNetnsPath: the network namespace joined at the path, the rest and the original untouched', () => {
  const original = spec([{ type: 'pid' }, { type: 'network' }, { type: 'mount' }]);
  const copy = withNetnsPath(original, '/proc/9/fd/7');
  assert.deepEqual(copy.linux?.namespaces, [{ type: 'pid' }, { type: 'network', path: '/proc/9/fd/7' }, { type: 'mount' }]);
  assert.deepEqual(original.linux?.namespaces, [{ type: 'pid' }, { type: 'network' }, { type: 'mount' }]);
});
