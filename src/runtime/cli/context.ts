/** What every berth-oci verb gets: global options, a logger, and the runtime library. */
import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { InvalidArgumentError } from '../../common/errors.js';
import { Runtime } from '../runtime.js';

export interface GlobalOptions {
  root?: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
}

export class CliContext {
  private runtimeInstance?: Runtime;
  constructor(readonly global: GlobalOptions) {}

  get runtime(): Runtime {
    this.runtimeInstance ??= new Runtime({ root: this.global.root });
    return this.runtimeInstance;
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
    if (level === 'error' || level === 'warning' || !this.global.log) process.stderr.write(`berth-oci: ${msg}\n`);
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
