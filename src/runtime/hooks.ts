/** Hooks the runtime runs itself, in the runtime's namespaces: prestart/createRuntime, poststart, poststop. */
import { spawnSync } from 'node:child_process';

import { SystemError } from '../common/errors.js';
import type { Hook, State } from './spec/config.js';

export function runHooks(kind: string, hooks: Hook[] | undefined, state: State): void {
  for (const hook of hooks ?? []) {
    const args = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
    const env: Record<string, string> = {};
    for (const entry of hook.env ?? []) {
      const eq = entry.indexOf('=');
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const result = spawnSync(hook.path, args.slice(1), {
      argv0: args[0],
      input: JSON.stringify(state),
      env,
      stdio: ['pipe', 'inherit', 'inherit'],
      timeout: hook.timeout ? hook.timeout * 1000 : undefined,
      killSignal: 'SIGKILL',
    });
    // A hook may exit without reading its state (`sh -c "echo ..."`): the write of the state then
    // fails with EPIPE, which runc (Go's os/exec) ignores too; the hook's exit status decides.
    if (result.error && (result.error as NodeJS.ErrnoException).code !== 'EPIPE') {
      const timedOut = (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
      throw new SystemError(`${kind} hook ${hook.path} ${timedOut ? `timed out after ${hook.timeout} s` : `failed: ${result.error.message}`}`);
    }
    if (result.status !== 0) {
      const why = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
      throw new SystemError(`${kind} hook ${hook.path} ${why}`);
    }
  }
}
