/**
 * The Dockerfile instructions that only change an image's config (ENV, LABEL, CMD, HEALTHCHECK…),
 * applied to a run config as moby's dispatchers apply them. Pure: shared by the builder (each
 * applied, then recorded as a step) and by `docker commit --change` / `docker import --change`
 * (moby's BuildFromConfig: the changes are a Dockerfile dispatched on the container's config).
 */
import path from 'node:path';

import { InvalidArgumentError } from '../../common/errors.js';
import type { ImageConfig } from '../../images/types.js';
import { parseSignal } from '../containers/signals.js';
import { goDuration, goQuoteList, parseDockerfile, ShellLex, toCommand, type Command, type CommandLine } from './dockerfile.js';

export type RunConfig = NonNullable<ImageConfig['config']>;

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** The shell RUN and shell-form commands use: SHELL's, or /bin/sh -c. */
export const shellOf = (runConfig: RunConfig): string[] => ((runConfig.Shell as string[] | undefined)?.length ? (runConfig.Shell as string[]) : DEFAULT_SHELL);

/** Exec form as is; shell form through the SHELL. */
export function commandOf(runConfig: RunConfig, line: CommandLine): string[] {
  return line.shell ? [...shellOf(runConfig), ...line.args] : [...line.args];
}

/** EXPOSE's port specs ("80", "80/udp", "8000-8002/tcp") → ExposedPorts keys. */
export function exposedPorts(spec: string): string[] {
  const m = /^(?:(?:\[[^\]]*\]|[^:]*):)?(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(spec);
  if (!m) throw new InvalidArgumentError(`Invalid containerPort: ${spec}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new InvalidArgumentError(`Invalid proto: ${m[3]}`);
  const start = Number(m[1]);
  const end = m[2] !== undefined ? Number(m[2]) : start;
  if (start < 1 || end > 65535 || end < start) throw new InvalidArgumentError(`Invalid containerPort: ${spec}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

/** Variable substitution in a word, or in words split as a shell splits them. */
export interface Expander {
  word(text: string): string;
  words(text: string): string[];
}

export type ConfigCommand = Command & { kind: 'ENV' | 'LABEL' | 'USER' | 'STOPSIGNAL' | 'EXPOSE' | 'VOLUME' | 'SHELL' | 'CMD' | 'ENTRYPOINT' | 'HEALTHCHECK' | 'ONBUILD' };

const CONFIG_KINDS = new Set<Command['kind']>(['ENV', 'LABEL', 'USER', 'STOPSIGNAL', 'EXPOSE', 'VOLUME', 'SHELL', 'CMD', 'ENTRYPOINT', 'HEALTHCHECK', 'ONBUILD']);

export function isConfigCommand(command: Command): command is ConfigCommand {
  return CONFIG_KINDS.has(command.kind);
}

/**
 * Applies one instruction to `rc` in place; returns what the builder records for the step
 * ("ENV A=1"). `state.cmdSet`: a CMD came earlier (an ENTRYPOINT clears the Cmd otherwise).
 */
export function applyToRunConfig(rc: RunConfig, command: ConfigCommand, x: Expander, state: { cmdSet: boolean }): string {
  switch (command.kind) {
    case 'ENV': {
      const pairs = command.pairs.map(([k, v]) => [x.word(k), x.word(v)] as const);
      rc.Env = [...(rc.Env ?? [])];
      for (const [k, v] of pairs) {
        const at = rc.Env.findIndex((e) => e.split('=', 1)[0] === k);
        if (at >= 0) rc.Env[at] = `${k}=${v}`;
        else rc.Env.push(`${k}=${v}`);
      }
      return `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'LABEL': {
      const pairs = command.pairs.map(([k, v]) => [x.word(k), x.word(v)] as const);
      rc.Labels = { ...(rc.Labels ?? {}) };
      for (const [k, v] of pairs) rc.Labels[k] = v;
      return `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'USER':
      rc.User = x.word(command.value);
      return `USER ${rc.User}`;
    case 'STOPSIGNAL': {
      const signal = x.word(command.value);
      parseSignal(signal); // "Invalid signal: FOO", as dockerd's dispatch refuses it
      rc.StopSignal = signal;
      return `STOPSIGNAL ${signal}`;
    }
    case 'EXPOSE': {
      const ports = command.values.flatMap((v) => x.words(v));
      rc.ExposedPorts = { ...(rc.ExposedPorts ?? {}) };
      for (const p of ports) for (const key of exposedPorts(p)) rc.ExposedPorts[key] = {};
      return `EXPOSE ${ports.join(' ')}`;
    }
    case 'VOLUME': {
      const volumes = command.values.map((v) => x.word(v));
      rc.Volumes = { ...(rc.Volumes ?? {}) };
      for (const v of volumes) {
        if (v.trim() === '') throw new InvalidArgumentError('VOLUME specified can not be an empty string');
        rc.Volumes[v] = {};
      }
      return `VOLUME [${volumes.join(' ')}]`;
    }
    case 'SHELL':
      rc.Shell = command.shell;
      return `SHELL [${command.shell.join(' ')}]`;
    case 'CMD':
      rc.Cmd = commandOf(rc, command.line);
      if (command.line.args.length > 0) state.cmdSet = true;
      return `CMD ${goQuoteList(rc.Cmd)}`;
    case 'ENTRYPOINT': {
      // `ENTRYPOINT` or `ENTRYPOINT []`: an empty one (moby's resolveCmdLine), which a commit's
      // merge keeps (it clears the container's); the builder records none at all.
      const ep = command.line.args.length === 0 ? [] : commandOf(rc, command.line);
      rc.Entrypoint = ep;
      if (!state.cmdSet) rc.Cmd = null;
      return `ENTRYPOINT ${goQuoteList(ep)}`;
    }
    case 'HEALTHCHECK': {
      const h = command.health;
      rc.Healthcheck = {
        Test: h.test,
        ...(h.interval !== undefined ? { Interval: h.interval } : {}),
        ...(h.timeout !== undefined ? { Timeout: h.timeout } : {}),
        ...(h.startPeriod !== undefined ? { StartPeriod: h.startPeriod } : {}),
        ...(h.startInterval !== undefined ? { StartInterval: h.startInterval } : {}),
        ...(h.retries !== undefined ? { Retries: h.retries } : {}),
      };
      const d = (n: number | undefined): string => JSON.stringify(goDuration(n ?? 0));
      const retries = `'\\x${(h.retries ?? 0).toString(16).padStart(2, '0')}'`;
      return `HEALTHCHECK &{${goQuoteList(h.test)} ${d(h.interval)} ${d(h.timeout)} ${d(h.startPeriod)} ${d(h.startInterval)} ${retries}}`;
    }
    case 'ONBUILD':
      rc.OnBuild = [...((rc.OnBuild as string[] | undefined) ?? []), command.expression];
      return `ONBUILD ${command.expression}`;
  }
}

/** What `--change` may hold (moby's validCommitCommands). */
const CHANGE_KEYWORDS = new Set(['CMD', 'ENTRYPOINT', 'HEALTHCHECK', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);

/**
 * `docker commit --change` and `docker import --change`, as moby's BuildFromConfig: the changes,
 * joined by newlines, are a Dockerfile (so one change may hold several lines) whose instructions
 * must all be of CHANGE_KEYWORDS; each is checked as the builder checks it, then applied to a copy
 * of `config` with its variables substituted from the config's Env. Errors in dockerd's words.
 */
export function applyChanges(config: RunConfig, changes: readonly string[]): RunConfig {
  if (changes.length === 0) return config;
  const { escape, instructions } = parseDockerfile(changes.join('\n'));
  if (instructions.length === 0) throw new InvalidArgumentError('file with no instructions');
  for (const ins of instructions) {
    if (!CHANGE_KEYWORDS.has(ins.keyword)) throw new InvalidArgumentError(`${ins.keyword.toLowerCase()} is not a valid change command`);
  }
  // Checked as the builder checks them, without a line number (dockerd's words for a change).
  const commands = instructions.map(({ line: _line, ...ins }) => toCommand(ins, escape));
  const rc = structuredClone(config);
  const lex = new ShellLex(escape);
  const state = { cmdSet: false };
  for (const command of commands) {
    const env = new Map((rc.Env ?? []).map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, ''])));
    const x: Expander = { word: (t) => lex.processWord(t, env), words: (t) => lex.processWords(t, env) };
    if (command.kind === 'WORKDIR') {
      // Relative to the current one, and not made (there is no container to make it in).
      rc.WorkingDir = path.posix.resolve('/', rc.WorkingDir || '/', x.word(command.value));
      continue;
    }
    if (!isConfigCommand(command)) throw new InvalidArgumentError(`${command.kind.toLowerCase()} is not a valid change command`);
    applyToRunConfig(rc, command, x, state);
  }
  return rc;
}
