/**
 * Which `berth` command lines the berth CLI server (server.ts) runs: those that touch no local
 * file but through Ctx.path and use input and the terminal only through CliIo (the server
 * relays its client's: run -it, exec -i, attach, a prune's question). The rest (build, cp,
 * save, load, export, import, login...) run in a Node process of their own. Commands that run
 * until Ctrl-C (logs -f, events, stats) are served: the client ends itself then
 * (CliIo.exitOnInterrupt).
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
  exec: true, info: true, logs: true, stats: true, history: true, diff: true, commit: true, events: true, attach: true,
  container: new Set(['run', 'create', 'start', 'stop', 'restart', 'kill', 'rm', 'remove', 'ps', 'ls', 'list', 'inspect', 'wait', 'pause', 'unpause', 'rename', 'top', 'port', 'exec', 'logs', 'stats', 'diff', 'commit', 'prune', 'attach']),
  image: new Set(['ls', 'list', 'inspect', 'rm', 'remove', 'tag', 'pull', 'history', 'prune']),
  volume: new Set(['create', 'ls', 'list', 'inspect', 'rm', 'remove', 'prune']),
  network: new Set(['create', 'ls', 'list', 'inspect', 'rm', 'remove', 'connect', 'disconnect', 'prune']),
  system: new Set(['info', 'df', 'prune', 'events']),
};

/** Whether the server runs this command line. */
export function servable(argv: string[], isGroup: (word: string) => boolean): boolean {
  const words = commandWordsOf(argv, isGroup);
  if (words.length === 0) return false;
  const entry = Object.hasOwn(SERVED, words[0]) ? SERVED[words[0]] : undefined; // not 'constructor' of Object's prototype
  const command = entry instanceof Set ? words[1] : words[0];
  return entry !== undefined && (entry === true || (command !== undefined && entry.has(command)));
}
