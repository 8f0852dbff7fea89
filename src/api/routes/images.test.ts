import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { registryAuth } from './images.js';

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('X-Registry-Auth', () => {
  it('is anonymous when absent, empty or {}', () => {
    assert.equal(registryAuth(undefined), undefined);
    assert.equal(registryAuth(''), undefined);
    assert.equal(registryAuth(b64url({})), undefined);
    assert.equal(registryAuth('e30='), undefined);
    assert.equal(registryAuth(b64url({ username: '' })), undefined);
  });
  it('reads base64url and base64 JSON', () => {
    const v = { username: 'u', password: 'p?>~', serveraddress: '127.0.0.1:5000' };
    assert.deepEqual(registryAuth(b64url(v)), { username: 'u', password: 'p?>~' });
    assert.deepEqual(registryAuth(Buffer.from(JSON.stringify(v)).toString('base64')), { username: 'u', password: 'p?>~' });
    assert.deepEqual(registryAuth(b64url({ username: 'u' })), { username: 'u', password: '' });
  });
  it('refuses garbage with a 400 naming the header', () => {
    for (const bad of ['!!!', b64url([1]), b64url('x'), b64url({ username: 5 })]) {
      assert.throws(() => registryAuth(bad), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'X-Registry-Auth', bad);
    }
  });
});
