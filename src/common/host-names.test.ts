import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hostNames, parseIdNames } from './host-names.js';

describe('host names', () => {
  it('parses passwd/group lines, the first name of an id winning; bad lines skipped', () => {
    const names = parseIdNames('root:x:0:0:root:/root:/bin/sh\n# comment\ntoor:x:0:0::/:/bin/sh\nbroken\nnobody:x:65534:65534::/:/bin/false\nodd:x:abc:1\n');
    assert.deepEqual([...names], [
      [0, 'root'],
      [65534, 'nobody'],
    ]);
  });

  it("names root on this host, none for an id it does not have", () => {
    assert.deepEqual(hostNames(0, 0), { uname: 'root', gname: 'root' });
    assert.deepEqual(hostNames(4_000_000_000, 4_000_000_000), { uname: '', gname: '' });
  });
});
