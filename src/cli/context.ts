/** What every `berth` command gets: the API client, output streams, and docker's error shape. */
import path from 'node:path';

import type { Command } from 'commander';

import { ApiClient, ApiError } from './client.js';
import { USE_LINES } from './usage-lines.js';

export const VERSION = '0.1.0';

/** Ends a command with an exit status, printing message (if any) to stderr. */
export class ExitError extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}

/**
 * A command refused as the docker CLI refuses a flag or a run (exit 125 by default): the message,
 * then "Run '<command path> --help' for more information" after a blank line.
 */
export class UsageError extends ExitError {
  constructor(commandPath: string, message: string, code = 125) {
    // A flag the parser refuses comes with the command's use lines, as cobra's flag errors do.
    super(code, `${message}${FLAG_PARSER_ERROR.test(message) ? useLines(commandPath) : ''}\n\nRun '${commandPath} --help' for more information`);
  }
}

/** What the docker CLI's flag parser (pflag, through cobra) says. */
const FLAG_PARSER_ERROR = /^(unknown flag: |unknown shorthand flag: |invalid argument "|flag needs an argument: |bad flag syntax: )/;

/** "\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]" (a second use line tab-indented), or nothing for a command the table lacks. */
export function useLines(commandPath: string): string {
  const lines = USE_LINES[commandPath.replace(/^berth ?/, '')];
  return lines ? `\n\nUsage:  ${lines.map((l, i) => `${i ? '\t' : ''}berth ${l}`).join('\n')}` : '';
}

/** An output of the command: a terminal's has its size and says when it changes ('resize'). */
export type CliOutput = NodeJS.WritableStream & { isTTY?: boolean; columns?: number; getWindowSize?(): [number, number] };

/** The command's input; a terminal's can be put in raw mode. */
export type CliInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };

/**
 * The command's side of the terminal: this process's stdio, environment and directory, or, in
 * the berth CLI server (server.ts), its client's, relayed.
 */
export interface CliIo {
  /** Touched only by commands that read input (making process.stdin costs a start ~3 ms). */
  readonly stdin: CliInput;
  stdout: CliOutput;
  stderr: CliOutput;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborted when the command is given up (the server's client went away): its connections end. */
  signal?: AbortSignal;
  /** From now on, Ctrl-C (SIGINT) ends the command with this status (a command that runs until interrupted: logs -f, events, stats). */
  exitOnInterrupt(code: number): void;
  /**
   * docker's --sig-proxy: the signals a user sends the command (PROXIED_SIGNALS) go to `forward`,
   * by name ("INT"), instead of ending it, until the function returned is called.
   */
  proxySignals(forward: (signal: string) => void): () => void;
}

/** The signals a proxying command passes on to its container (the native client's list too). */
export const PROXIED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

export const processIo: CliIo = {
  get stdin() {
    return process.stdin;
  },
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  get cwd() {
    return process.cwd();
  },
  exitOnInterrupt: (code) => void process.on('SIGINT', () => process.exit(code)),
  proxySignals: (forward) => {
    const handlers = PROXIED_SIGNALS.map((sig) => [sig, () => forward(sig.slice(3))] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    return () => {
      for (const [sig, h] of handlers) process.off(sig, h);
    };
  },
};

export class Ctx {
  private api: ApiClient | undefined;
  constructor(
    readonly host: string,
    readonly debug: boolean,
    readonly configDir: string | undefined,
    readonly io: CliIo = processIo,
  ) {}

  get client(): ApiClient {
    this.api ??= new ApiClient(this.host, this.io.signal);
    return this.api;
  }

  out(s: string): void {
    this.io.stdout.write(s);
  }

  err(s: string): void {
    this.io.stderr.write(s);
  }

  /** A local path from the command line, against the caller's working directory. */
  path(p: string): string {
    return path.resolve(this.io.cwd, p);
  }
}

/**
 * A command's definition: adds its description, options, arguments and action to `cmd`.
 * The action returns the exit status (undefined: 0).
 */
export type Define = (cmd: Command, ctx: Ctx, setStatus: (code: number) => void) => void;

/** Collects a repeated option into a list (-e A -e B). */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Wraps an action so that its returned status is recorded. */
export function action<A extends unknown[]>(setStatus: (code: number) => void, fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const code = await fn(...args);
    setStatus(code ?? 0);
  };
}

/** Several names, one argument each, one request each: docker prints each result, collects errors, exits 1 if any failed. */
export async function eachName(ctx: Ctx, names: string[], fn: (name: string) => Promise<string | void>): Promise<number> {
  let failed = false;
  for (const n of names) {
    try {
      const out = await fn(n);
      if (out !== undefined) ctx.out(out + '\n');
    } catch (e) {
      failed = true;
      ctx.err(errorText(e) + '\n');
    }
  }
  return failed ? 1 : 0;
}

/** How docker prints an error from the daemon or the client. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `Error response from daemon: ${e.message}`;
  return (e as Error)?.message ?? String(e);
}

/** docker's prune confirmation: "Are you sure you want to continue? [y/N]" on stdin. */
export async function confirm(ctx: Ctx, warning: string, force: boolean | undefined): Promise<boolean> {
  if (force) return true;
  ctx.out(`${warning}\nAre you sure you want to continue? [y/N] `);
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('utf8');
      if (buf.includes('\n')) done();
    };
    const input = ctx.io.stdin;
    const done = (): void => {
      input.off('data', onData);
      input.off('end', done);
      input.pause();
      resolve(buf);
    };
    input.on('data', onData);
    input.once('end', done);
  });
  return /^y(es)?$/i.test(line.trim());
}

/** Docker's --filter key=value list → the API's `filters` JSON ({"key": ["value", ...]}). */
export function filtersJson(list: string[] | undefined): string | undefined {
  if (!list?.length) return undefined;
  const f: Record<string, string[]> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i < 0) throw new ExitError(125, `invalid argument "${item}" for "-f, --filter" flag: bad format of filter (expected name=value)`);
    (f[item.slice(0, i).trim().toLowerCase()] ??= []).push(item.slice(i + 1));
  }
  return JSON.stringify(f);
}

/** What a prune endpoint answered, as docker prints it: "Deleted <what>:" lines, then the space. */
export function prunedText(what: string, deleted: string[] | null | undefined, space?: number, humanSize?: (n: number) => string): string {
  let s = deleted?.length ? `Deleted ${what}:\n${deleted.join('\n')}\n\n` : '';
  if (space !== undefined && humanSize) s += `Total reclaimed space: ${humanSize(space)}\n`;
  return s;
}

/** rmi/image prune entries → "Untagged: x" / "Deleted: sha256:…" (prune prints them lower-case). */
export function imageDeletions(list: { Untagged?: string; Deleted?: string }[] | null | undefined, lower = false): string[] {
  return (list ?? []).map((x) => (x.Untagged ? `${lower ? 'untagged' : 'Untagged'}: ${x.Untagged}` : `${lower ? 'deleted' : 'Deleted'}: ${x.Deleted}`));
}
