import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Router } from './router.js';

describe('Router', () => {
  const router = new Router();
  const named = (label: string) => Object.assign(() => undefined, { label });
  router.delete('/containers/{id*}/checkpoints/{checkpoint}', named('checkpoint'));
  router.get('/containers/json', named('list'));
  router.get('/containers/{id*}/json', named('inspect'));
  router.delete('/containers/{id*}', named('remove'));
  router.get('/images/{name*}/json', named('image'));
  const route = (method: string, path: string): [string, Record<string, string>] | undefined => {
    const found = router.match(method, path);
    return found && [(found.handler as unknown as { label: string }).label, found.params];
  };

  it('takes names with slashes where a pattern allows them (link names, image references), the fixed suffix deciding', () => {
    assert.deepEqual(route('GET', '/containers/a5/al/json'), ['inspect', { id: 'a5/al' }]);
    assert.deepEqual(route('DELETE', '/containers/a5/al'), ['remove', { id: 'a5/al' }]);
    assert.deepEqual(route('GET', '/containers/json'), ['list', {}]);
    assert.deepEqual(route('GET', '/images/127.0.0.1:5000/busybox/json'), ['image', { name: '127.0.0.1:5000/busybox' }]);
    assert.deepEqual(route('DELETE', '/containers/c/checkpoints/x'), ['checkpoint', { id: 'c', checkpoint: 'x' }], 'the first route registered wins');
    assert.deepEqual(route('GET', '/containers/a%2Fb/json'), ['inspect', { id: 'a/b' }]);
  });

  it('has no route for a path that exists with another method only, as dockerd (404 for both)', () => {
    assert.equal(route('PUT', '/containers/a2'), undefined);
    assert.equal(route('GET', '/containers/a2/bogus'), undefined);
    assert.equal(route('POST', '/containers/json'), undefined);
  });
});
