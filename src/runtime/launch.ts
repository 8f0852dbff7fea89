/**
 * Starts berth-nsexec with a plan and speaks its sync protocol (native/runtime/nsexec.c):
 *   stage 0 -> us:  "pid <host pid>"
 *   us -> child:    "go <len>\n<state json>"   (the state hooks get on stdin; only for plans with hooks)
 *   child -> us:    "sync <name>"  -> we do our part (e.g. createRuntime hooks), answer "ok"
 *   child -> us:    "ready"        (set up, waiting for start; or about to exec for `exec`)
 *   either -> us:   "error <message>"
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';

import { SystemError } from '../common/errors.js';
import { nativeBinary } from '../common/paths.js';
import { encodePlan, type PlanOp } from './plan/plan.js';

export interface LaunchOptions {
  ops: PlanOp[];
  /** stdin, stdout, stderr of the container process (fds or 'inherit'/'ignore'/'pipe'). */
  stdio: Array<number | 'inherit' | 'ignore' | 'pipe'>;
  /** Extra fds passed as 3, 4, ... (--preserve-fds). */
  preserveFds?: number[];
  /** The state JSON given to hooks, once the pid is known. */
  stateFor(pid: number): object;
  /** Called for each "sync <name>" from the container stage. */
  onSync?(name: string, pid: number): Promise<void> | void;
  /** The program that carries out the plan: berth-nsexec, or berth-shim which starts it (src/shim). */
  binary?: string;
  args?: string[];
  /** Extra environment for that program. */
  env?: Record<string, string>;
}

export interface Launched {
  pid: number;
  /** Stage 0: in foreground mode it exits with the container's status. */
  stage0: ChildProcess;
}

export function launch(opts: LaunchOptions): Promise<Launched> {
  const preserved = opts.preserveFds ?? [];
  const planFd = 3 + preserved.length;
  const syncFd = planFd + 1;
  const binary = opts.binary ?? nativeBinary('berth-nsexec');
  const child = spawn(binary, opts.args ?? [], {
    stdio: [...opts.stdio, ...preserved, 'pipe', 'pipe'],
    env: { ...opts.env, BERTH_PLAN_FD: String(planFd), BERTH_SYNC_FD: String(syncFd), ...(process.env.BERTH_NSEXEC_TRACE ? { BERTH_NSEXEC_TRACE: '1' } : {}) },
  });
  const needsState = opts.ops.some(([name]) => name === 'hook' || name === 'sync' || name === 'load_state');
  const planPipe = child.stdio[planFd] as Writable;
  const sync = child.stdio[syncFd] as Duplex;
  planPipe.on('error', () => undefined); // if stage 0 dies early, its exit tells why
  planPipe.end(encodePlan(opts.ops));

  return new Promise<Launched>((resolve, reject) => {
    let pid = 0;
    let buffered = '';
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (err) {
        if (pid) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        sync.destroy();
        reject(err);
      } else {
        sync.destroy();
        resolve({ pid, stage0: child });
      }
    };
    child.on('error', (err) => finish(new SystemError(`cannot start ${path.basename(binary)}: ${err.message}`, { cause: err })));
    const handleLine = async (line: string): Promise<void> => {
      const space = line.indexOf(' ');
      const verb = space < 0 ? line : line.slice(0, space);
      const rest = space < 0 ? '' : line.slice(space + 1);
      if (verb === 'pid') {
        pid = Number(rest);
        // Only a plan with hooks or syncs reads the state; writing to a process that has
        // already exec'd would fail with EPIPE and drop its "ready" still in the socket.
        if (needsState) {
          const json = JSON.stringify(opts.stateFor(pid));
          sync.write(`go ${Buffer.byteLength(json)}\n${json}`);
        }
      } else if (verb === 'sync') {
        try {
          await opts.onSync?.(rest, pid);
          sync.write('ok\n');
        } catch (err) {
          sync.write('abort\n');
          finish(err as Error);
        }
      } else if (verb === 'ready') {
        finish();
      } else if (verb === 'error') {
        finish(new SystemError(rest));
      }
    };
    let chain = Promise.resolve();
    sync.setEncoding('utf8');
    sync.on('data', (chunk: string) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        chain = chain.then(() => handleLine(line));
      }
    });
    sync.on('error', () => undefined);
    sync.on('close', () => {
      void chain.then(() => finish(new SystemError('container process exited during setup')));
    });
  });
}
