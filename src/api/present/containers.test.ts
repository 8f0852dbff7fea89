import assert from 'node:assert/strict';
import { test } from 'node:test';

import { command } from './containers.js';

test('Command as dockerd lists it: arguments with a space in single quotes, the path as it is', () => {
  assert.equal(command({ path: 'sh', args: ['-c', 'for i in 1 2; do echo $i; done'] }), "sh -c 'for i in 1 2; do echo $i; done'");
  assert.equal(command({ path: 'sleep', args: ['100'] }), 'sleep 100');
  assert.equal(command({ path: '/my prog', args: [] }), '/my prog');
  assert.equal(command({ path: 'echo', args: ['a\tb'] }), 'echo a\tb');
});
