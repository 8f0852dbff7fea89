import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSignal } from './signals.js';

test("parseSignal takes what docker kill -s takes and refuses the rest in dockerd's words", () => {
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('sigusr1'), 10);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('RTMIN+3'), 37);
  assert.equal(parseSignal(undefined), 9);
  assert.equal(parseSignal('', 'SIGTERM'), 15);
  for (const bad of ['BOGUS', '0', '65', 'RTMAX+1']) assert.throws(() => parseSignal(bad), { message: `Invalid signal: ${bad}` });
});
