/**
 * Which `berth` command lines the berth CLI server (server.ts) runs: those that read no input
 * and need no terminal (the server has neither of its client's), and touch no local file but
 * through Ctx.path. The rest (interactive run and exec, attach, build, cp, save, load, export,
 * login, a prune's question...) run in a Node process of their own. Commands that run until
 * Ctrl-C (logs -f, events, stats) are served: the client ends itself then (CliIo.exitOnInterrupt).
 */

/** The hidden first argument that makes berth.cjs the CLI server. */
export const SERVE_FLAG = '--berth-cli-serve';

/** Global flags that take a value (everything else before the command is boolean). */
const GLOBAL_VALUE = new Set(['-H', '--host', '-l', '--log-level', '--config', '-c', '--context', '--tlscacert', '--tlscert', '--tlskey']);

/** The command words (`run`, or `image ls`) after the global flags, without parsing anything else. */
export function commandWordsOf(argv: string[], isGroup: (word: string) => boolean): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i];
    if (a.startsWith('-')) {
      if (words.length) return words; // a flag of the command: no sub-command word
      if (GLOBAL_VALUE.has(a)) i++;
      continue;
    }
    words.push(a);
    if (!isGroup(a)) return words;
  }
  return words;
}

const SERVED: Record<string, true | Set<string>> = {
  run: true, create: true, start: true, stop: true, restart: true, kill: true, rm: true, ps: true, images: true, inspect: true,
  version: true, wait: true, pause: true, unpause: true, rename: true, tag: true, rmi: true, top: true, port: true, pull: true,
  exec: true, info: true, logs: true, stats: true, history: true, diff: true, commit: true, events: true,
  container: new Set(['run', 'create', 'start', 'stop', 'restart', 'kill', 'rm', 'remove', 'ps', 'ls', 'list', 'inspect', 'wait', 'pause', 'unpause', 'rename', 'top', 'port', 'exec', 'logs', 'stats', 'diff', 'commit', 'prune']),
  image: new Set(['ls', 'list', 'inspect', 'rm', 'remove', 'tag', 'pull', 'history', 'prune']),
  volume: new Set(['create', 'ls', 'list', 'inspect', 'rm', 'remove', 'prune']),
  network: new Set(['create', 'ls', 'list', 'inspect', 'rm', 'remove', 'connect', 'disconnect', 'prune']),
  system: new Set(['info', 'df', 'prune', 'events']),
};

/** Commands that read stdin or use the terminal with -i, -t or -a (start -a, run -a stdin). */
const WITH_INPUT = new Set(['run', 'create', 'start', 'exec']);
const INPUT_FLAG = /^--(interactive|tty|attach)(=|$)|^-[a-zA-Z]*[ita][a-zA-Z]*$/;
/** A prune asks for a confirmation on stdin unless forced. */
const FORCE_FLAG = /^--force(=true)?$|^-[a-zA-Z]*f[a-zA-Z]*$/;

/** Whether the server runs this command line. Cautious: anything that might read input does not. */
export function servable(argv: string[], isGroup: (word: string) => boolean): boolean {
  const words = commandWordsOf(argv, isGroup);
  if (words.length === 0) return false;
  const entry = SERVED[words[0]];
  const command = entry instanceof Set ? words[1] : words[0];
  if (!entry || (entry instanceof Set && !(command && entry.has(command)))) return false;
  // Any argument at all that looks like an input flag (one of the container's own arguments
  // too, as `run busybox ls -a`): such a command runs in Node, which sorts it out.
  if (command === 'prune' && !argv.some((a) => FORCE_FLAG.test(a))) return false;
  return !(WITH_INPUT.has(command) && argv.some((a) => INPUT_FLAG.test(a)));
}
