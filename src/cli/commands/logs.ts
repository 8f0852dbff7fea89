/** logs: -f, --since, --until, -n/--tail, -t, --details; frames demultiplexed unless the container has a TTY. */
import { once } from 'node:events';

import { type Define, ExitError, action } from '../context.js';
import { FrameDemuxer } from '../demux.js';
import { parseTimestamp } from '../format.js';

/** --since/--until as the docker client reads them for logs, its errors naming the flag. */
function timestampOf(flag: 'since' | 'until', value: string): string {
  try {
    return parseTimestamp(value);
  } catch (err) {
    throw new ExitError(1, `invalid value for "${flag}": ${(err as Error).message}`);
  }
}

export const logs: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .option('--details', 'Show extra details provided to logs')
    .option('-f, --follow', 'Follow log output')
    .option('--since <time>', 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')
    .option('-n, --tail <n>', 'Number of lines to show from the end of the logs', 'all')
    .option('-t, --timestamps', 'Show timestamps')
    .option('--until <time>', 'Show logs before a timestamp or relative')
    .action(
      action(set, async (name: string, o: { details?: boolean; follow?: boolean; since?: string; tail: string; timestamps?: boolean; until?: string }) => {
        const info = await ctx.client.get<{ Id: string; Config: { Tty: boolean } }>(`/containers/${encodeURIComponent(name)}/json`);
        const res = await ctx.client.raw('GET', `/containers/${encodeURIComponent(info.Id)}/logs`, {
          query: {
            stdout: true,
            stderr: true,
            follow: o.follow,
            since: o.since ? timestampOf('since', o.since) : undefined,
            until: o.until ? timestampOf('until', o.until) : undefined,
            tail: o.tail,
            timestamps: o.timestamps,
            details: o.details,
          },
        });
        // Back pressure: a full stdout or stderr (a slow reader) is waited for before more is read.
        const full = new Set<NodeJS.WritableStream>();
        const write = (out: NodeJS.WritableStream, data: Buffer): void => {
          if (!out.write(data)) full.add(out);
        };
        const { stdout, stderr } = ctx.io;
        const demux = info.Config.Tty ? undefined : new FrameDemuxer((s, p) => write(s === 2 ? stderr : stdout, p));
        if (o.follow) ctx.io.exitOnInterrupt(0);
        for await (const chunk of res) {
          if (demux) demux.push(chunk as Buffer);
          else write(stdout, chunk as Buffer);
          for (const out of full) await once(out, 'drain');
          full.clear();
        }
      }),
    );
