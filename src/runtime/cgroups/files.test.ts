import assert from 'node:assert/strict';
import { test } from 'node:test';

import { oomKillCount, parseLimit } from './files.js';

test('oomKillCount reads the oom_kill line of memory.oom_control (v1) and memory.events (v2)', () => {
  assert.equal(oomKillCount('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n'), 2);
  assert.equal(oomKillCount('low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n'), 1);
  assert.equal(oomKillCount('oom_kill_disable 0\nunder_oom 0\n'), undefined, 'a kernel before 4.13 has no count');
  assert.equal(oomKillCount(undefined), undefined);
});

test('parseLimit: max and the v1 unlimited value are no limit', () => {
  assert.equal(parseLimit('max\n'), undefined);
  assert.equal(parseLimit('9223372036854771712\n'), undefined);
  assert.equal(parseLimit('4096\n'), 4096);
});
