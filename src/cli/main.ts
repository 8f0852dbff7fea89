/**
 * berth: a Docker-compatible command line that talks to a daemon only through the Docker
 * Engine API. Global flags come first (`berth -H unix:///x.sock ps`). Only the module of the
 * command used is loaded (the bundle keeps each in a chunk of its own), so `berth version`
 * starts as fast as Node allows; `berth --help` loads them all to list them.
 */
import path from 'node:path';

import { Command, CommanderError } from 'commander';

import { ConnectError, resolveHost } from './client.js';
import { commandWordsOf, SERVE_FLAG } from './served.js';
import { Ctx, type CliIo, type Define, ExitError, UsageError, VERSION, errorText, processIo, useLines } from './context.js';


type Loader = () => Promise<object>;
const lifecycle: Loader = () => import('./commands/lifecycle.js');
const runMod: Loader = () => import('./commands/run.js');
const misc: Loader = () => import('./commands/misc.js');
const images: Loader = () => import('./commands/images.js');
const system: Loader = () => import('./commands/system.js');

/** command name → [module, export]; the first line of each group is its description. */
const TOP: Record<string, [Loader, string, string]> = {
  run: [runMod, 'run', 'Create and run a new container from an image'],
  create: [runMod, 'create', 'Create a new container'],
  exec: [() => import('./commands/exec.js'), 'exec', 'Execute a command in a running container'],
  attach: [() => import('./commands/exec.js'), 'attach', 'Attach local standard input, output, and error streams to a running container'],
  start: [lifecycle, 'start', 'Start one or more stopped containers'],
  stop: [lifecycle, 'stop', 'Stop one or more running containers'],
  restart: [lifecycle, 'restart', 'Restart one or more containers'],
  kill: [lifecycle, 'kill', 'Kill one or more running containers'],
  rm: [lifecycle, 'rm', 'Remove one or more containers'],
  pause: [lifecycle, 'pause', 'Pause all processes within one or more containers'],
  unpause: [lifecycle, 'unpause', 'Unpause all processes within one or more containers'],
  wait: [lifecycle, 'wait', 'Block until one or more containers stop, then print their exit codes'],
  rename: [lifecycle, 'rename', 'Rename a container'],
  update: [lifecycle, 'update', 'Update configuration of one or more containers'],
  ps: [() => import('./commands/ps.js'), 'ps', 'List containers'],
  logs: [() => import('./commands/logs.js'), 'logs', 'Fetch the logs of a container'],
  inspect: [() => import('./commands/inspect.js'), 'inspect', 'Return low-level information on Docker objects'],
  top: [misc, 'top', 'Display the running processes of a container'],
  port: [misc, 'port', 'List port mappings or a specific mapping for the container'],
  diff: [misc, 'diff', "Inspect changes to files or directories on a container's filesystem"],
  commit: [misc, 'commit', "Create a new image from a container's changes"],
  export: [misc, 'export', "Export a container's filesystem as a tar archive"],
  cp: [() => import('./commands/cp.js'), 'cp', 'Copy files/folders between a container and the local filesystem'],
  stats: [() => import('./commands/stats.js'), 'stats', 'Display a live stream of container(s) resource usage statistics'],
  events: [system, 'events', 'Get real time events from the server'],
  build: [() => import('./commands/build.js'), 'build', 'Build an image from a Dockerfile'],
  images: [images, 'images', 'List images'],
  rmi: [images, 'rmi', 'Remove one or more images'],
  tag: [images, 'tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE'],
  history: [images, 'history', 'Show the history of an image'],
  pull: [() => import('./commands/pull.js'), 'pull', 'Download an image from a registry'],
  push: [() => import('./commands/pull.js'), 'push', 'Upload an image to a registry'],
  search: [images, 'search', 'Search Docker Hub for images'],
  save: [images, 'save', 'Save one or more images to a tar archive (streamed to STDOUT by default)'],
  load: [images, 'load', 'Load an image from a tar archive or STDIN'],
  import: [images, 'importImage', 'Import the contents from a tarball to create a filesystem image'],
  login: [() => import('./commands/login.js'), 'login', 'Authenticate to a registry'],
  logout: [() => import('./commands/login.js'), 'logout', 'Log out from a registry'],
  info: [system, 'info', 'Display system-wide information'],
  version: [system, 'version', 'Show the Docker version information'],
};

/** Management commands: group → sub name → top-level name or [module, export]. */
const GROUPS: Record<string, { about: string; subs: Record<string, string | [Loader, string, string]> }> = {
  container: {
    about: 'Manage containers',
    subs: {
      attach: 'attach', commit: 'commit', cp: 'cp', create: 'create', diff: 'diff', exec: 'exec', export: 'export',
      inspect: [() => import('./commands/inspect.js'), 'containerInspect', 'Display detailed information on one or more containers'],
      kill: 'kill', logs: 'logs', ls: 'ps', list: 'ps', ps: 'ps', pause: 'pause', port: 'port',
      prune: [lifecycle, 'prune', 'Remove all stopped containers'],
      rename: 'rename', restart: 'restart', rm: 'rm', remove: 'rm', run: 'run', start: 'start', stats: 'stats', stop: 'stop',
      top: 'top', unpause: 'unpause', update: 'update', wait: 'wait',
    },
  },
  image: {
    about: 'Manage images',
    subs: {
      build: 'build', history: 'history',
      inspect: [() => import('./commands/inspect.js'), 'imageInspect', 'Display detailed information on one or more images'],
      load: 'load', ls: 'images', list: 'images', prune: [images, 'prune', 'Remove unused images'], pull: 'pull', push: 'push',
      import: 'import', rm: 'rmi', remove: 'rmi', save: 'save', tag: 'tag',
    },
  },
  volume: {
    about: 'Manage volumes',
    subs: Object.fromEntries(
      [
        ['create', 'Create a volume'], ['ls', 'List volumes'], ['list', 'List volumes'], ['inspect', 'Display detailed information on one or more volumes'],
        ['rm', 'Remove one or more volumes'], ['remove', 'Remove one or more volumes'], ['prune', 'Remove unused local volumes'],
      ].map(([n, d]) => [n, [() => import('./commands/volume.js'), n === 'list' ? 'ls' : n === 'remove' ? 'rm' : n, d] as [Loader, string, string]]),
    ),
  },
  network: {
    about: 'Manage networks',
    subs: Object.fromEntries(
      [
        ['connect', 'Connect a container to a network'], ['create', 'Create a network'], ['disconnect', 'Disconnect a container from a network'],
        ['inspect', 'Display detailed information on one or more networks'], ['ls', 'List networks'], ['list', 'List networks'],
        ['prune', 'Remove all unused networks'], ['rm', 'Remove one or more networks'], ['remove', 'Remove one or more networks'],
      ].map(([n, d]) => [n, [() => import('./commands/network.js'), n === 'list' ? 'ls' : n === 'remove' ? 'rm' : n, d] as [Loader, string, string]]),
    ),
  },
  system: {
    about: 'Manage Docker',
    subs: {
      df: [system, 'df', 'Show docker disk usage'], events: 'events', info: 'info',
      prune: [system, 'prune', 'Remove unused data'],
    },
  },
};

/** The command words (`run`, or `image ls`) after the global flags. */
const commandWords = (argv: string[]): string[] => commandWordsOf(argv, (word) => Object.hasOwn(GROUPS, word));

/**
 * The docker CLI's (cobra's) words for a wrong number of arguments, from the arguments `cmd`
 * declares: "requires 2 arguments", "requires at least 1 argument", "accepts no arguments".
 */
export function arityText(cmd: Command): string {
  const args = cmd.registeredArguments;
  const required = args.filter((a) => a.required).length;
  const variadic = args.some((a) => a.variadic);
  const optional = args.filter((a) => !a.required && !a.variadic).length;
  const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;
  if (variadic) return `requires at least ${plural(Math.max(required, 1))}`;
  if (optional > 0) return required === 0 ? `requires at most ${plural(optional)}` : `requires at least ${required} and at most ${plural(required + optional)}`;
  if (required === 0) return 'accepts no arguments';
  return `requires ${plural(required)}`;
}

/** The command the words name, as far as they name known ones (the program itself for none). */
function commandOf(program: Command, words: string[]): Command {
  let cmd = program;
  for (const w of words) {
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (!sub) break;
    cmd = sub;
  }
  return cmd;
}

const GO_TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

/**
 * pflag's `--flag=true` / `--flag=false` for the command's boolean flags (`--rm=false`,
 * `--sig-proxy=false`), which commander does not read: true is the flag itself, false its
 * `--no-` form where the command has one, else nothing (the flag's default is false then).
 * Only the command's own flags are rewritten, up to its first argument that is not a flag's
 * value (after it come the container's command and its arguments, as with run and exec).
 */
export function withBoolValues(argv: string[], cmd: Command): string[] {
  const options = cmd.options;
  const byLong = new Map(options.flatMap((o) => (o.long ? [[o.long, o] as const] : [])));
  const takesValue = (flag: string): boolean => {
    const o = byLong.get(flag) ?? options.find((x) => x.short === flag);
    return !!o && (o.required || o.optional);
  };
  const out: string[] = [];
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    out.push(a);
    if (!commandSeen) {
      if (a === cmd.name() || cmd.aliases().includes(a)) commandSeen = true;
      continue;
    }
    if (a === '--') {
      out.push(...argv.slice(i + 1));
      break;
    }
    const m = /^(--[\w-]+|-\w)=(.*)$/.exec(a);
    const option = m ? (byLong.get(m[1]!) ?? options.find((o) => o.short === m[1])) : undefined;
    if (m && option?.long && !option.required && !option.optional) {
      const value = m[2]!;
      if (!GO_TRUE.has(value) && !GO_FALSE.has(value)) {
        const name = option.short ? `${option.short}, ${option.long}` : option.long;
        const path: string[] = [];
        for (let c: Command | null = cmd; c; c = c.parent) path.unshift(c.name());
        throw new UsageError(path.join(' '), `invalid argument ${JSON.stringify(value)} for ${JSON.stringify(name)} flag: strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`);
      }
      out.pop();
      if (GO_TRUE.has(value)) out.push(option.long);
      else if (byLong.has(`--no-${option.long.slice(2)}`)) out.push(`--no-${option.long.slice(2)}`);
      continue;
    }
    if (a.startsWith('-') && !a.includes('=') && takesValue(a)) {
      if (i + 1 < argv.length) out.push(argv[++i]!);
      continue;
    }
    if (!a.startsWith('-')) {
      out.push(...argv.slice(i + 1));
      break;
    }
  }
  return out;
}


function dockerFlagError(e: CommanderError, argv: readonly string[]): string {
  const m = /'([^']+)'/.exec(e.message);
  switch (e.code) {
    case 'commander.unknownOption':
      return `unknown ${m?.[1]?.startsWith('--') ? 'flag' : 'shorthand flag'}: ${m?.[1]?.startsWith('--') ? m[1] : `'${m?.[1]?.slice(1, 2)}' in ${m?.[1]}`}`;
    case 'commander.optionMissingArgument': {
      // pflag names the flag as it was given: "--memory", or "'m' in -m".
      const flags = (m?.[1] ?? '').split(/[ ,]+/).filter((f) => f.startsWith('-'));
      const short = flags.find((f) => /^-[^-]$/.test(f));
      const long = flags.find((f) => f.startsWith('--'));
      const typedShort = short !== undefined && argv.some((a) => /^-[^-]/.test(a) && a.endsWith(short.slice(1)));
      return `flag needs an argument: ${typedShort || !long ? `'${short?.slice(1)}' in ${short}` : long}`;
    }
    default:
      return e.message.replace(/^error: /, '');
  }
}

/** Runs one command line; resolves with its exit status. `io`: see CliIo (the server passes its client's). */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  let status = 0;
  const setStatus = (c: number): void => {
    status = c;
  };
  const program = new Command('berth');
  program
    .usage('[OPTIONS] COMMAND')
    .description('A self-sufficient runtime for containers')
    .option('-H, --host <host>', 'Daemon socket to connect to')
    .option('-D, --debug', 'Enable debug mode')
    .option('-l, --log-level <level>', 'Set the logging level')
    .option('--config <dir>', 'Location of client config files')
    .option('-c, --context <name>', 'Name of the context to use (ignored)')
    .option('-v, --version', 'Print version information and quit')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: () => undefined, outputError: () => undefined })
    .helpCommand(false);

  // The context needs the global flags, which commander parses with the command: resolve lazily.
  let ctx: Ctx | undefined;
  const getCtx = (): Ctx => {
    if (!ctx) {
      const g = program.opts<{ host?: string; debug?: boolean; config?: string }>();
      ctx = new Ctx(resolveHost(g.host, io.env), !!g.debug, g.config && path.resolve(io.cwd, g.config), io);
    }
    return ctx;
  };
  const lazyCtx = new Proxy({} as Ctx, {
    get: (_t, k) => {
      const c = getCtx();
      const v = (c as unknown as Record<string | symbol, unknown>)[k];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(c) : v;
    },
  });

  const words = commandWords(argv);
  const define = async (parent: Command, name: string, entry: [Loader, string, string], aliases: string[] = []): Promise<void> => {
    const [load, key, about] = entry;
    const mod = await load();
    const cmd = parent.command(name).description(about);
    for (const a of aliases) cmd.alias(a);
    (mod as Record<string, Define>)[key](cmd, lazyCtx, setStatus);
  };
  // Only help lists every command (and so loads every module); `berth --version` loads none.
  const all = words[0] === 'help' || (words.length === 0 && (argv.length === 0 || argv.includes('--help') || argv.includes('-h')));
  try {
    for (const [name, entry] of Object.entries(TOP)) {
      if (all || words[0] === name) await define(program, name, entry);
      else program.command(name).description(entry[2]);
    }
    for (const [group, { about, subs }] of Object.entries(GROUPS)) {
      const g = program.command(group).description(about).usage('COMMAND');
      if (!(all || words[0] === group)) continue;
      const seen = new Map<string, string[]>();
      for (const [sub, target] of Object.entries(subs)) {
        const key = typeof target === 'string' ? target : target.join('\0');
        if (seen.has(key)) seen.get(key)!.push(sub);
        else seen.set(key, [sub]);
      }
      for (const [key, names] of seen) {
        const [name, ...aliases] = names;
        if (words[1] && !names.includes(words[1]) && words[0] === group) {
          g.command(name).description('');
          continue;
        }
        const entry: [Loader, string, string] = key.includes('\0') ? (subs[name] as [Loader, string, string]) : TOP[key];
        await define(g, name, entry, aliases);
      }
    }
    if (argv.length === 0) {
      program.outputHelp();
      return 0;
    }
    program.action(() => {
      if (program.opts().version) {
        io.stdout.write(`Berth version ${VERSION}\n`);
        return;
      }
      program.outputHelp();
    });
    await program.parseAsync(withBoolValues(argv, commandOf(program, words)), { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') return 0;
      // The command that failed: as far as the words name known commands.
      const cmd = commandOf(program, words);
      // Named as the docker CLI names it (cobra's CommandPath): by the commands' names, not the aliases given.
      const names: string[] = [];
      for (let c: Command | null = cmd; c && c !== program; c = c.parent) names.unshift(c.name());
      const known = names.length;
      const commandPath = ['berth', ...names].join(' ');
      if (e.code === 'commander.unknownCommand' || (known < words.length && ['commander.excessArguments', 'commander.missingArgument'].includes(e.code))) {
        // As the docker CLI: an unknown command, whole, and where to ask for the known ones.
        io.stderr.write(`berth: unknown command: ${['berth', ...words].join(' ')}\n\nRun '${commandPath} --help' for more information\n`);
        return 1;
      }
      if (e.code === 'commander.excessArguments' || e.code === 'commander.missingArgument') {
        // cobra's words: "Run" after an exact count or none, "See" after a bound.
        const arity = arityText(cmd);
        const verb = /^(requires \d|accepts no)/.test(arity) ? 'Run' : 'See';
        io.stderr.write(`berth: '${commandPath}' ${arity}${useLines(commandPath)}\n\n${verb} '${commandPath} --help' for more information\n`);
        return 1;
      }
      const refusal = new UsageError(commandPath, dockerFlagError(e, argv));
      io.stderr.write(`${refusal.message}\n`);
      return refusal.code;
    }
    if (e instanceof ExitError) {
      if (e.message) io.stderr.write(e.message.endsWith('\n') ? e.message : e.message + '\n');
      return e.code;
    }
    if (e instanceof ConnectError) {
      io.stderr.write(e.message + '\n');
      return 1;
    }
    io.stderr.write(errorText(e) + '\n');
    if (ctx?.debug && e instanceof Error && e.stack) io.stderr.write(e.stack + '\n');
    return 1;
  }
}

/**
 * Resolves once what was written to `stream` has gone out: a write to a pipe whose reader is
 * slower than us is queued, and process.exit() would drop it (`berth logs x | slow` lost all
 * but the first 64 kB).
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0 || stream.destroyed) return resolve();
    stream.write('', () => resolve());
  });
}

const isMain = process.argv[1] && /(berth\.cjs|cli\/main\.js)$/.test(process.argv[1]);
if (isMain) {
  // A reader gone (`berth logs x | head -1`): end quietly with the status of docker's CLI,
  // which SIGPIPE kills (128 + 13), not with a stack trace.
  for (const out of [process.stdout, process.stderr]) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(141);
    });
  }
  // The native client (native/client/berth.c) starts `berth.cjs --berth-cli-serve SOCKET` as
  // the berth CLI server (server.ts).
  const argv = process.argv.slice(2);
  const done = argv[0] === SERVE_FLAG ? import('./server.js').then((server) => server.serve(argv.slice(1), main, (word) => Object.hasOwn(GROUPS, word))) : main(argv);
  done.then(
    async (code) => {
      process.exitCode = code;
      await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
      // Streams (stdin in raw mode, open sockets) must not keep a finished command alive.
      setImmediate(() => process.exit(code));
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
