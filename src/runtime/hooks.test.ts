import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runHooks } from './hooks.js';
import type { State } from './spec/config.js';

// State bigger than a pipe's buffer: the write blocks until the hook reads or closes its stdin.
const bigState: State = { ociVersion: '1.0.2', id: 'c1', status: 'created', pid: 1, bundle: '/b', annotations: { big: 'x'.repeat(256 * 1024) } };

test('a hook that exits without reading its state on stdin succeeds (its exit status decides)', () => {
  assert.doesNotThrow(() => runHooks('prestart', [{ path: '/bin/sh', args: ['sh', '-c', 'exec 0<&-; exit 0'] }], bigState));
});

test('a hook that exits non-zero without reading its state fails with its status', () => {
  assert.throws(() => runHooks('prestart', [{ path: '/bin/sh', args: ['sh', '-c', 'exec 0<&-; exit 3'] }], bigState), /prestart hook \/bin\/sh exited with status 3/);
});

test('a hook gets the state as JSON on stdin', () => {
  const state: State = { ociVersion: '1.0.2', id: 'c2', status: 'created', pid: 42, bundle: '/b' };
  assert.doesNotThrow(() => runHooks('poststart', [{ path: '/bin/sh', args: ['sh', '-c', 'grep -q \'"id":"c2"\''] }], state));
  assert.throws(() => runHooks('poststart', [{ path: '/bin/sh', args: ['sh', '-c', 'grep -q \'"id":"other"\''] }], state), /exited with status 1/);
});

test('a hook that cannot be started fails with a message naming it', () => {
  assert.throws(() => runHooks('createRuntime', [{ path: '/nonexistent/hook' }], bigState), /createRuntime hook \/nonexistent\/hook failed: .*ENOENT/);
});
