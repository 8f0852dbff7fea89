import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { checkHealthcheck, nextHealth, probeCommand, storedHealthcheck, timing, type Health } from './health.js';

const ok = { Start: 's', End: 'e', ExitCode: 0, Output: '' };
const bad = { ...ok, ExitCode: 1 };

describe('health checks', () => {
  it("keeps a Healthcheck as dockerd's omitempty does: no null, zero or empty fields", () => {
    assert.deepEqual(storedHealthcheck({ Test: ['CMD', 'true'], Interval: 1e9, Timeout: null, StartPeriod: 0, Retries: 2 }), { Test: ['CMD', 'true'], Interval: 1e9, Retries: 2 });
    assert.deepEqual(storedHealthcheck({ Test: [] }), {});
    assert.equal(storedHealthcheck(undefined), undefined);
  });

  it('turns Docker test forms into argv', () => {
    assert.deepEqual(probeCommand(['CMD', 'curl', '-f', 'x']), ['curl', '-f', 'x']);
    assert.deepEqual(probeCommand(['CMD-SHELL', 'test -f /ok']), ['/bin/sh', '-c', 'test -f /ok']);
    assert.equal(probeCommand(['NONE']), undefined);
    assert.equal(probeCommand([]), undefined);
    assert.equal(probeCommand(undefined), undefined);
  });
  it('reads nanoseconds, with Docker\'s defaults for 0', () => {
    assert.deepEqual(timing({ Interval: 200_000_000, Retries: 2 }), { interval: 200, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 2 });
    assert.deepEqual(timing({}), { interval: 30_000, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 3 });
    assert.equal(timing({ StartInterval: 100_000_000 }).startInterval, 100);
  });
  it('becomes healthy on a success and unhealthy after Retries failures in a row', () => {
    let h: Health = { Status: 'starting', FailingStreak: 0, Log: [] };
    h = nextHealth(h, bad, 2, false);
    assert.deepEqual([h.Status, h.FailingStreak], ['starting', 1]);
    h = nextHealth(h, ok, 2, false);
    assert.deepEqual([h.Status, h.FailingStreak], ['healthy', 0]);
    h = nextHealth(nextHealth(h, bad, 2, false), bad, 2, false);
    assert.deepEqual([h.Status, h.FailingStreak], ['unhealthy', 2]);
  });
  it('does not count failures during the start period, and keeps the last 5 results', () => {
    let h: Health = { Status: 'starting', FailingStreak: 0, Log: [] };
    for (let i = 0; i < 7; i++) h = nextHealth(h, bad, 1, true);
    assert.deepEqual([h.Status, h.FailingStreak, h.Log.length], ['starting', 0, 5]);
  });
});

describe('Config.Healthcheck at create', () => {
  it('takes what dockerd takes and names what it refuses', () => {
    checkHealthcheck(undefined);
    checkHealthcheck({ Test: ['CMD', 'true'], Interval: 1_000_000, Timeout: 0, Retries: 0 });
    assert.throws(() => checkHealthcheck('x'), /^Error: Healthcheck: must be an object|Healthcheck: must be an object/);
    assert.throws(() => checkHealthcheck({ Test: 'true' }), /Healthcheck\.Test: must be a list of strings/);
    assert.throws(() => checkHealthcheck({ StartInterval: 'x' }), /Healthcheck\.StartInterval: must be an integer/);
    assert.throws(() => checkHealthcheck({ Interval: 500 }), /Interval in Healthcheck cannot be less than 1ms/);
    assert.throws(() => checkHealthcheck({ Retries: -1 }), /Retries in Healthcheck cannot be negative/);
  });
});
