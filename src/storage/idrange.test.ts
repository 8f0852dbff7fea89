import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../common/errors.js';
import { hostIdOf, idInside, OVERFLOW_ID } from './idrange.js';

const range = { base: 2 ** 30, size: 65536 };

describe('id ranges of user namespaces', () => {
  it('shows a host id as the container sees it: minus the base in the range, the overflow id outside', () => {
    assert.equal(idInside(range, range.base), 0);
    assert.equal(idInside(range, range.base + 1000), 1000);
    assert.equal(idInside(range, range.base + 65535), 65535);
    for (const outside of [0, 4242, range.base - 1, range.base + 65536]) assert.equal(idInside(range, outside), OVERFLOW_ID, String(outside));
    assert.equal(idInside(undefined, 4242), 4242, 'no range: the host id');
  });

  it('gives the host id of an id inside, and refuses one the range does not hold', () => {
    assert.equal(hostIdOf(range, 0, 'x'), range.base);
    assert.equal(hostIdOf(range, 65535, 'x'), range.base + 65535);
    assert.equal(hostIdOf(undefined, 70000, 'x'), 70000, 'no range: the id itself');
    for (const bad of [65536, 70000, -1, 1.5]) assert.throws(() => hostIdOf(range, bad, 'entry "f"'), (e: unknown) => e instanceof InvalidArgumentError && /entry "f": id .* cannot be mapped/.test(e.message), String(bad));
  });
});
