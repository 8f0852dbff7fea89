import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';

import { speakLaunchProtocol } from './launch.js';

/** A sync socket stand-in: the lines stage 0 and the container process write, in the given order. */
function syncWith(lines: string[], close = true): PassThrough {
  const sync = new PassThrough();
  setImmediate(() => {
    for (const l of lines) sync.write(`${l}\n`);
    if (close) sync.end();
  });
  return sync;
}

const noState = { stateFor: () => ({}) };

// Pids above any pid_max (2^22): a failed launch kills its pid, which must be nobody's here.
const A = 999_999_001;
const B = 999_999_002;

test('the pid comes before ready, as usual', async () => {
  assert.equal(await speakLaunchProtocol(syncWith([`pid ${A}`, 'ready']), false, noState), A);
});

test('ready before the pid (a short setup races stage 0\'s "pid" line): still the pid, never 0', async () => {
  assert.equal(await speakLaunchProtocol(syncWith(['ready', `pid ${A}`]), false, noState), A);
});

test('through the shim: ready, init and pid in any order, and they must agree', async () => {
  for (const order of [[`pid ${A}`, 'ready', `init ${A}`], ['ready', `init ${A}`, `pid ${A}`], [`init ${A}`, 'ready', `pid ${A}`]]) {
    assert.equal(await speakLaunchProtocol(syncWith(order), false, { ...noState, shimInit: true }), A, order.join(', '));
  }
  await assert.rejects(speakLaunchProtocol(syncWith(['ready', `init ${B}`, `pid ${A}`]), false, { ...noState, shimInit: true }), new RegExp(`the shim did not find the container's process \\(it has ${B}, not ${A}\\)`));
});

test('ready without any pid before the socket closes: an error, not pid 0', async () => {
  await assert.rejects(speakLaunchProtocol(syncWith(['ready']), false, noState), /container process exited during setup/);
});

test('an error line from the setup rejects with its message', async () => {
  await assert.rejects(speakLaunchProtocol(syncWith([`pid ${A}`, 'error mount /proc: permission denied']), false, noState), /mount \/proc: permission denied/);
});

test('onPid runs once the pid is known, before the launch resolves; its error fails the launch', async () => {
  for (const order of [[`pid ${A}`, 'ready'], ['ready', `pid ${A}`]]) {
    const seen: number[] = [];
    let resolvedAfter = false;
    const launched = speakLaunchProtocol(syncWith(order), false, { ...noState, onPid: (pid) => seen.push(pid) }).then((pid) => {
      resolvedAfter = seen.length === 1;
      return pid;
    });
    assert.equal(await launched, A, order.join(', '));
    assert.deepEqual(seen, [A]);
    assert.ok(resolvedAfter, 'onPid ran before the launch resolved');
  }
  const failing = {
    ...noState,
    onPid: () => {
      throw new Error('cannot write the record');
    },
  };
  await assert.rejects(speakLaunchProtocol(syncWith([`pid ${A}`, 'ready']), false, failing), /cannot write the record/);
});
