/** berth-oci exec: run a new process in a running container (args, or --process process.json). */
import fs from 'node:fs';

import { InvalidArgumentError } from '../../common/errors.js';
import { exitStatus } from '../runtime.js';
import type { Process } from '../spec/config.js';
import { validateProcess } from '../spec/validate.js';
import { parseCount, parseVerbArgs, preservedFds, type VerbMain } from './context.js';

const execOptions = {
  'console-socket': { type: 'string' },
  cwd: { type: 'string' },
  env: { type: 'string', short: 'e', multiple: true },
  tty: { type: 'boolean', short: 't' },
  user: { type: 'string', short: 'u' },
  'additional-gids': { type: 'string', short: 'g', multiple: true },
  process: { type: 'string', short: 'p' },
  detach: { type: 'boolean', short: 'd' },
  'pid-file': { type: 'string' },
  'process-label': { type: 'string' },
  apparmor: { type: 'string' },
  'no-new-privs': { type: 'boolean' },
  cap: { type: 'string', short: 'c', multiple: true },
  'preserve-fds': { type: 'string' },
  'ignore-paused': { type: 'boolean' },
  cgroup: { type: 'string', multiple: true },
  'no-subreaper': { type: 'boolean' },
} as const;

/** Index of the container id: the first argument that is neither a flag nor a flag's value. */
function idIndex(args: string[]): number {
  const takesValue = new Set<string>();
  for (const [name, opt] of Object.entries(execOptions)) {
    if (opt.type !== 'string') continue;
    takesValue.add('--' + name);
    if ('short' in opt) takesValue.add('-' + opt.short);
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return i + 1;
    if (!a.startsWith('-') || a === '-') return i;
    if (!a.includes('=') && takesValue.has(a)) i++;
  }
  return args.length;
}

function parseUser(spec: string): { uid: number; gid?: number } {
  const [uid, gid] = spec.split(':');
  const num = (s: string): number => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected uid[:gid] as numbers, got ${JSON.stringify(spec)}`, '--user');
    return n;
  };
  return gid === undefined ? { uid: num(uid) } : { uid: num(uid), gid: num(gid) };
}

const main: VerbMain = async (args, ctx) => {
  const split = idIndex(args);
  const flagArgs = args.slice(0, split);
  if (split < args.length && args[split - 1] === '--') flagArgs.pop();
  const { values } = parseVerbArgs('exec', flagArgs, execOptions);
  const id = args[split];
  if (!id) throw new InvalidArgumentError('exec requires a container id', 'container-id');
  const command = args.slice(split + 1);

  let proc: Process;
  if (values.process) {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(ctx.path(values.process), 'utf8'));
    } catch (err) {
      throw new InvalidArgumentError(`cannot read process JSON: ${(err as Error).message}`, '--process');
    }
    proc = validateProcess(json);
  } else {
    if (command.length === 0) throw new InvalidArgumentError('exec needs a command or --process', 'command');
    const base = ctx.runtime.config(id).process;
    if (!base) throw new InvalidArgumentError('the container has no process to base exec on', 'process');
    proc = structuredClone(base);
    proc.args = command;
    proc.terminal = values.tty ?? false;
    proc.env = [...(base.env ?? []), ...(values.env ?? [])];
    if (values.cwd) proc.cwd = values.cwd;
    if (values.user) proc.user = { ...proc.user, ...parseUser(values.user) };
    if (values['additional-gids']) proc.user.additionalGids = values['additional-gids'].map((g) => parseUser(g).uid);
    if (values['no-new-privs']) proc.noNewPrivileges = true;
    for (const cap of values.cap ?? []) {
      const caps = (proc.capabilities ??= {});
      for (const set of ['bounding', 'effective', 'permitted', 'ambient'] as const) caps[set] = [...new Set([...(caps[set] ?? []), cap])];
    }
  }
  if (values.tty !== undefined && values.process) proc.terminal = values.tty;
  const detach = values.detach ?? false;
  const launched = await ctx.runtime.exec(id, proc, {
    consoleSocket: ctx.path(values['console-socket']),
    pidFile: ctx.path(values['pid-file']),
    preserveFds: preservedFds(parseCount(values['preserve-fds'], '--preserve-fds')),
    foreground: !detach,
  });
  if (detach) return 0;
  ctx.forwardSignals(launched.pid);
  return exitStatus(launched.stage0);
};
export default main;
