/**
 * Starts berth-nsexec with a plan and speaks its sync protocol (native/runtime/nsexec.c):
 *   stage 0 -> us:  "pid <host pid>"
 *   us -> child:    "go <len>\n<state json>"   (the state hooks get on stdin; only for plans with hooks)
 *   child -> us:    "sync <name>"  -> we do our part (e.g. createRuntime hooks), answer "ok"
 *   child -> us:    "ready"        (set up, waiting for start; or about to exec for `exec`)
 *   either -> us:   "error <message>"
 * Through berth-shim (src/shim), the shim adds "init <pid>" once it knows the container's PID 1.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';

import { SystemError } from '../common/errors.js';
import { splitLines } from '../common/lines.js';
import { nativeBinary } from '../common/paths.js';
import { encodePlan, type PlanOp } from './plan/plan.js';

/** What the protocol needs besides the plan: the state for hooks, and the answer to syncs. */
export interface ProtocolOptions {
  /** The state JSON given to hooks, once the pid is known. */
  stateFor(pid: number): object;
  /** Called for each "sync <name>" from the container stage. */
  onSync?(name: string, pid: number): Promise<void> | void;
  /**
   * Called once the container's process exists (stage 0's "pid"), while it sets up: work that
   * needs only its pid is done here, off the path to "ready". Throwing fails the launch.
   */
  onPid?(pid: number): void;
}

export interface LaunchOptions extends ProtocolOptions {
  ops: PlanOp[];
  /** stdin, stdout, stderr of the container process (fds or 'inherit'/'ignore'/'pipe'). */
  stdio: Array<number | 'inherit' | 'ignore' | 'pipe'>;
  /** Extra fds passed as 3, 4, ... (--preserve-fds). */
  preserveFds?: number[];
  /** Where stage 0 runs: a child of this process unless given (see Stage0Starter). */
  starter?: Stage0Starter;
}

/** What stage 0 is to the caller: a ChildProcess, or a shim started by the spawner (src/shim/spawner.ts). */
export interface Stage0 {
  readonly pid?: number;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  unref(): void;
}

export interface Launched {
  pid: number;
  /** Stage 0: in foreground mode it exits with the container's status. */
  stage0: Stage0;
}

/** A berth-nsexec being started: the process, and its ends of the plan pipe and the sync socket. */
export interface StartingStage0 {
  stage0: Stage0 & { kill(signal: NodeJS.Signals): unknown };
  plan: Promise<Writable>;
  sync: Promise<Duplex>;
  /** Rejects if stage 0 cannot be started; never resolves. */
  failed: Promise<never>;
}

/**
 * Starts berth-nsexec with the given stdio and preserved fds, the plan and sync fds after them
 * (BERTH_PLAN_FD, BERTH_SYNC_FD). By default as a child of this process; the berth-oci server
 * (cli/server.ts) has its client start it instead, so that the container descends from the
 * process that ran `berth-oci`, as with runc.
 */
export type Stage0Starter = (opts: { stdio: LaunchOptions['stdio']; preserveFds: number[] }) => StartingStage0;

export const spawnStage0: Stage0Starter = ({ stdio, preserveFds }) => {
  const planFd = 3 + preserveFds.length;
  const syncFd = planFd + 1;
  const binary = nativeBinary('berth-nsexec');
  const child = spawn(binary, [], {
    stdio: [...stdio, ...preserveFds, 'pipe', 'pipe'],
    env: { BERTH_PLAN_FD: String(planFd), BERTH_SYNC_FD: String(syncFd), ...(process.env.BERTH_NSEXEC_TRACE ? { BERTH_NSEXEC_TRACE: '1' } : {}) },
  });
  const failed = new Promise<never>((_, reject) => {
    child.on('error', (err) => reject(new SystemError(`cannot start ${path.basename(binary)}: ${err.message}`, { cause: err })));
  });
  return { stage0: child, plan: Promise.resolve(child.stdio[planFd] as Writable), sync: Promise.resolve(child.stdio[syncFd] as Duplex), failed };
};

export function launch(opts: LaunchOptions): Promise<Launched> {
  return new PreparedLaunch(opts).launch(opts);
}

/**
 * berth-nsexec started before its plan exists: it reads the plan to EOF before it does
 * anything, so the runtime can start it first and compile the plan (config, cgroups, state
 * record) while the fork and exec happen (~1.5 ms for a small Node process, more for a big one).
 */
export class PreparedLaunch {
  private readonly starting: StartingStage0;
  private used = false;

  constructor(opts: Pick<LaunchOptions, 'stdio' | 'preserveFds' | 'starter'>) {
    this.starting = (opts.starter ?? spawnStage0)({ stdio: opts.stdio, preserveFds: opts.preserveFds ?? [] });
    // If stage 0 dies early, its exit tells why.
    void this.starting.plan.then((plan) => plan.on('error', () => undefined), () => undefined);
    this.starting.failed.catch(() => undefined); // an abort() before launch() leaves nobody waiting
  }

  launch(opts: ProtocolOptions & { ops: PlanOp[] }): Promise<Launched> {
    this.used = true;
    const { stage0, plan, sync, failed } = this.starting;
    const speak = async (): Promise<number> => {
      (await plan).end(encodePlan(opts.ops));
      return speakLaunchProtocol(await sync, needsState(opts.ops), opts);
    };
    return Promise.race([failed, speak()]).then((pid) => ({ pid, stage0 }));
  }

  /** Gives up before launch(): stage 0 reads an empty plan and exits having done nothing. */
  abort(): void {
    if (this.used) return;
    this.used = true;
    void this.starting.plan.then((plan) => plan.destroy(), () => undefined);
    void this.starting.sync.then((sync) => sync.destroy(), () => undefined);
    this.starting.stage0.kill('SIGKILL');
  }
}

/** Only a plan with hooks or syncs reads the state. */
export function needsState(ops: readonly PlanOp[]): boolean {
  return ops.some(([name]) => name === 'hook' || name === 'sync' || name === 'load_state');
}

/**
 * The runtime's side of the sync protocol on `sync` (the plan already sent), up to "ready".
 * Resolves with the container's pid; on an error, kills it (if it had one) and rejects. With
 * `shimInit`, the socket goes through berth-shim, which adds "init <pid>" once it has found
 * the container's PID 1: resolves only when both have come, and they agree.
 */
export function speakLaunchProtocol(sync: Duplex, withState: boolean, opts: ProtocolOptions & { shimInit?: boolean }): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let pid = 0;
    let ready = false;
    let init: number | undefined;
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      sync.destroy();
      if (err) {
        if (pid) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        reject(err);
      } else {
        resolve(pid);
      }
    };
    const maybeDone = (): void => {
      // The container process writes "ready" on the socket it shares with stage 0, which
      // writes "pid" after clone(): a short setup (an exec without hooks) can win that race.
      // Done only with both (a pid of 0 once reached the pid file, and conmon lost the exit).
      if (!ready || !pid || (opts.shimInit && init === undefined)) return;
      if (opts.shimInit && init !== pid) return finish(new SystemError(`the shim did not find the container's process (it has ${init || 'none'}, not ${pid})`));
      finish();
    };
    const handleLine = async (line: string): Promise<void> => {
      const space = line.indexOf(' ');
      const verb = space < 0 ? line : line.slice(0, space);
      const rest = space < 0 ? '' : line.slice(space + 1);
      if (verb === 'pid') {
        pid = Number(rest);
        // Writing to a process that has already exec'd would fail with EPIPE and drop its
        // "ready" still in the socket: only a plan that reads the state gets it.
        if (withState) {
          const json = JSON.stringify(opts.stateFor(pid));
          sync.write(`go ${Buffer.byteLength(json)}\n${json}`);
        }
        try {
          opts.onPid?.(pid);
        } catch (err) {
          return finish(err as Error);
        }
        maybeDone();
      } else if (verb === 'sync') {
        try {
          await opts.onSync?.(rest, pid);
          sync.write('ok\n');
        } catch (err) {
          sync.write('abort\n');
          finish(err as Error);
        }
      } else if (verb === 'ready') {
        ready = true;
        maybeDone();
      } else if (verb === 'init' && opts.shimInit) {
        init = Number(rest);
        maybeDone();
      } else if (verb === 'error') {
        finish(new SystemError(rest));
      }
    };
    let chain = Promise.resolve();
    sync.setEncoding('utf8');
    sync.on('data', splitLines((line) => (chain = chain.then(() => handleLine(line)))));
    let socketError: Error | undefined;
    sync.on('error', (err) => (socketError ??= err));
    sync.on('close', () => {
      // Before any pid, an error of the socket itself (the shim's not reachable) says more.
      const message = !pid && socketError ? `cannot reach the container's setup: ${socketError.message}` : 'container process exited during setup';
      void chain.then(() => finish(new SystemError(message)));
    });
    sync.resume(); // a socket handed over paused (the berth-oci server's) flows from here
  });
}
