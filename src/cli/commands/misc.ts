/** top, port, diff, commit, export. */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';

import { type Define, ExitError, action, collect } from '../context.js';
import { tabwrite } from '../format.js';
import { splitRef } from './pull.js';

const enc = encodeURIComponent;

export const top: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .argument('[ps-options...]')
    .passThroughOptions()
    .action(
      action(set, async (name: string, psArgs: string[]) => {
        const r = await ctx.client.get<{ Titles: string[]; Processes: string[][] }>(`/containers/${enc(name)}/top`, { ps_args: psArgs.length ? psArgs.join(' ') : undefined });
        const lines = [r.Titles, ...(r.Processes ?? [])].map((l) => l.join('\t'));
        // docker's top uses tabwriter(minwidth 20, padding 1).
        ctx.out(tabwrite(lines.join('\n') + '\n', 20, 1));
      }),
    );

export const port: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .argument('[private-port]')
    .action(
      action(set, async (name: string, priv: string | undefined) => {
        const info = await ctx.client.get<{ Name: string; NetworkSettings: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null } }>(`/containers/${enc(name)}/json`);
        const ports = info.NetworkSettings.Ports ?? {};
        const fmt = (b: { HostIp: string; HostPort: string }): string => `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp || '0.0.0.0'}:${b.HostPort}`;
        if (priv) {
          const key = priv.includes('/') ? priv : `${priv}/tcp`;
          const b = ports[key];
          // The port as it was asked for ("80", not "80/tcp"), as the docker CLI says it.
          if (!b?.length) throw new ExitError(1, `Error: No public port '${priv}' published for ${info.Name.replace(/^\//, '')}`);
          ctx.out(b.map((x) => fmt(x) + '\n').join(''));
          return;
        }
        const keys = Object.keys(ports).sort((a, b) => parseInt(a) - parseInt(b) || a.localeCompare(b));
        for (const k of keys) for (const b of ports[k] ?? []) ctx.out(`${k} -> ${fmt(b)}\n`);
      }),
    );

export const diff: Define = (cmd, ctx, set) =>
  cmd.argument('<container>').action(
    action(set, async (name: string) => {
      const changes = await ctx.client.get<{ Kind: number; Path: string }[] | null>(`/containers/${enc(name)}/changes`);
      for (const c of changes ?? []) ctx.out(`${['C', 'A', 'D'][c.Kind] ?? '?'} ${c.Path}\n`);
    }),
  );

export const commit: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .argument('[repository]')
    .option('-a, --author <author>', 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    .option('-c, --change <change>', 'Apply Dockerfile instruction to the created image', collect)
    .option('-m, --message <message>', 'Commit message')
    .option('-p, --pause', 'Pause container during commit (default true)', true)
    .option('--no-pause', 'Do not pause the container during commit')
    .action(
      action(set, async (name: string, repository: string | undefined, o: { author?: string; change?: string[]; message?: string; pause: boolean }) => {
        const ref = repository ? splitRef(repository) : undefined;
        const r = await ctx.client.post<{ Id: string }>('/commit', {
          container: name,
          repo: ref?.name,
          tag: ref?.tag,
          comment: o.message,
          author: o.author,
          pause: o.pause ? undefined : '0',
          changes: o.change?.length ? o.change.join('\n') : undefined,
        });
        // No body, as the docker CLI: a config in it ({} too) would come before the container's
        // in the merge, and the changes apply to it (ENV A=1 would then come before PATH).
        ctx.out(`${r.Id}\n`);
      }),
    );

/** Streams an archive endpoint to -o FILE or stdout (never to a terminal, as docker refuses). */
export async function archiveOut(res: NodeJS.ReadableStream, output: string | undefined): Promise<void> {
  if (output) {
    const tmp = `${output}.berth-tmp-${process.pid}`;
    try {
      await pipeline(res, fs.createWriteStream(tmp));
      fs.renameSync(tmp, output);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return;
  }
  await pipeline(res, process.stdout);
}

export const exportCmd: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
    .action(
      action(set, async (name: string, o: { output?: string }) => {
        if (!o.output && process.stdout.isTTY) throw new ExitError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
        await archiveOut(await ctx.client.raw('GET', `/containers/${enc(name)}/export`), o.output);
      }),
    );
export { exportCmd as export };
