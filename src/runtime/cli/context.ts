/** What every berth-oci verb gets: global options, a logger, and the runtime library. */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { InvalidArgumentError } from '../../common/errors.js';
import type { Stage0Starter } from '../launch.js';
import { Runtime } from '../runtime.js';

export interface GlobalOptions {
  root?: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
}

/**
 * Where a verb's output goes and what its relative paths are relative to: this process's, or,
 * in the berth-oci server (server.ts), the client's that asked.
 */
export interface CliIo {
  cwd: string;
  out(text: string): void;
  err(text: string): void;
  /** Where stage 0 runs (default: a child of this process). */
  starter?: Stage0Starter;
  /** Whether signals to this process go to the container (`run`, `exec`): not in the server, whose client forwards them. */
  forwardsSignals: boolean;
}

export const processIo: CliIo = {
  get cwd() {
    return process.cwd();
  },
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  forwardsSignals: true,
};

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

export class CliContext {
  private runtimeInstance?: Runtime;
  readonly global: GlobalOptions;

  constructor(
    global: GlobalOptions,
    readonly io: CliIo = processIo,
  ) {
    this.global = { ...global, root: global.root && this.path(global.root), log: global.log && this.path(global.log) };
  }

  get runtime(): Runtime {
    // Outside this process (the server), hooks are not run: see HooksNotRunHereError.
    this.runtimeInstance ??= new Runtime({ root: this.global.root, starter: this.io.starter, runsHooks: this.io.starter === undefined });
    return this.runtimeInstance;
  }

  /** A path from the command line, made absolute against the caller's working directory. */
  path(p: string): string;
  path(p: string | undefined): string | undefined;
  path(p: string | undefined): string | undefined {
    return p === undefined ? undefined : path.resolve(this.io.cwd, p);
  }

  out(text: string): void {
    this.io.out(text);
  }

  /** Signals to this process go to the container's process from now on (`run`, `exec` in the foreground). */
  forwardSignals(pid: number): void {
    if (!this.io.forwardsSignals) return;
    for (const signal of FORWARDED_SIGNALS) {
      process.on(signal, () => {
        try {
          process.kill(pid, signal);
        } catch {
          /* gone */
        }
      });
    }
  }

  /** Logs to --log (as runc: JSON lines with level/msg/time when --log-format json) or stderr. */
  log(level: 'debug' | 'info' | 'warning' | 'error', msg: string): void {
    if (level === 'debug' && !this.global.debug) return;
    const time = new Date().toISOString();
    if (this.global.log) {
      const line = this.global.logFormat === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
      try {
        fs.appendFileSync(this.global.log, line + '\n');
      } catch {
        /* the log is best effort; the message still reaches stderr below */
      }
    }
    if (level === 'error' || level === 'warning' || !this.global.log) this.io.err(`berth-oci: ${msg}\n`);
  }
}

export type VerbMain = (args: string[], ctx: CliContext) => Promise<number>;

/** parseArgs with runc's conventions: unknown flags and missing values are usage errors naming the flag. */
export function parseVerbArgs<T extends NonNullable<ParseArgsConfig['options']>>(verb: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InvalidArgumentError(`${verb}: ${(err as Error).message.replace(/\. To specify a positional.*$/s, '')}`);
  }
}

/** The container id: exactly one positional argument. */
export function requireId(verb: string, positionals: string[], extra = 0): string {
  if (positionals.length < 1) throw new InvalidArgumentError(`${verb} requires a container id`, 'container-id');
  if (positionals.length > 1 + extra) throw new InvalidArgumentError(`${verb}: unexpected arguments: ${positionals.slice(1 + extra).join(' ')}`);
  return positionals[0];
}

export function parseCount(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`must be a non-negative integer, got ${JSON.stringify(value)}`, flag);
  return n;
}

/** fds 3 .. 3+n-1 of this process, passed on to the container (--preserve-fds). */
export function preservedFds(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 3 + i);
}
