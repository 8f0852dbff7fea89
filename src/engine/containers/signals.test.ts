import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKillSignal, parseSignal } from './signals.js';

test("parseSignal takes what docker kill -s takes and refuses the rest in dockerd's words", () => {
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('sigusr1'), 10);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('RTMIN+3'), 37);
  assert.equal(parseSignal(undefined), 9);
  assert.equal(parseSignal('', 'SIGTERM'), 15);
  for (const bad of ['BOGUS', '0', '65', 'RTMAX+1']) assert.throws(() => parseSignal(bad), { message: `Invalid signal: ${bad}` });
});

test("docker kill's signal: an unknown number is not supported, a bad name or 0 invalid (dockerd's ContainerKill)", () => {
  assert.equal(parseKillSignal('10'), 10);
  assert.equal(parseKillSignal(undefined), 9);
  assert.throws(() => parseKillSignal('999'), { message: 'the linux daemon does not support signal 999' });
  assert.throws(() => parseKillSignal('0'), { message: 'Invalid signal: 0' });
  assert.throws(() => parseKillSignal('BOGUS'), { message: 'Invalid signal: BOGUS' });
});
