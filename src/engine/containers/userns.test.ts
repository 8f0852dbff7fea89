import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { allocateRange, FIRST_BASE, idMappings, RANGE_SIZE } from './userns.js';

describe('user namespace ranges', () => {
  it('hands out the lowest free range, never one in use', () => {
    assert.deepEqual(allocateRange([]), { base: FIRST_BASE, size: RANGE_SIZE });
    assert.equal(allocateRange([FIRST_BASE]).base, FIRST_BASE + RANGE_SIZE);
    assert.equal(allocateRange([FIRST_BASE + RANGE_SIZE]).base, FIRST_BASE);
    assert.equal(allocateRange([FIRST_BASE, FIRST_BASE + 2 * RANGE_SIZE]).base, FIRST_BASE + RANGE_SIZE);
  });
  it('maps root inside to the base outside, for uids and gids', () => {
    assert.deepEqual(idMappings({ base: 5 * RANGE_SIZE, size: RANGE_SIZE }), {
      uidMappings: [{ containerID: 0, hostID: 5 * RANGE_SIZE, size: RANGE_SIZE }],
      gidMappings: [{ containerID: 0, hostID: 5 * RANGE_SIZE, size: RANGE_SIZE }],
    });
  });
});
