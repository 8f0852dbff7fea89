import assert from 'node:assert/strict';
import { test } from 'node:test';

import { goMap, withGoMaps } from './go-map.js';

test("goMap: keys in Go's order (byte order), values kept; null and undefined pass through", () => {
  assert.deepEqual(Object.keys(goMap({ b: 1, 'c d': 2, a: 3, B: 4, é: 5, '80/tcp': 6 })), ['80/tcp', 'B', 'a', 'b', 'c d', 'é']);
  assert.equal(goMap({ x: [1] }).x![0], 1);
  assert.equal(goMap(null), null);
  assert.equal(goMap(undefined), undefined);
});

test('withGoMaps sorts Labels, ExposedPorts and Volumes only, and leaves the config as it was', () => {
  const config = { Labels: { z: '1', a: '2' }, ExposedPorts: { '80/tcp': {}, '443/tcp': {} }, Volumes: { '/v2': {}, '/data': {} }, Env: ['B=1', 'A=2'], Cmd: null };
  const sorted = withGoMaps(config);
  assert.deepEqual(Object.keys(sorted.Labels), ['a', 'z']);
  assert.deepEqual(Object.keys(sorted.ExposedPorts), ['443/tcp', '80/tcp']);
  assert.deepEqual(Object.keys(sorted.Volumes), ['/data', '/v2']);
  assert.deepEqual(sorted.Env, ['B=1', 'A=2'], 'lists keep their order');
  assert.deepEqual(Object.keys(config.Labels), ['z', 'a'], 'the record is not changed');
});
