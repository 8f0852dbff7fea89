/** start, stop, restart, kill, rm, pause, unpause, wait, rename, container prune. */
import { Option } from 'commander';

import { type Define, ExitError, action, collect, confirm, eachName, filtersJson, prunedText } from '../context.js';
import { humanSize } from '../format.js';

const enc = encodeURIComponent;

export const start: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container...>')
    .option('-a, --attach', "Attach STDOUT/STDERR and forward signals")
    .option('-i, --interactive', "Attach container's STDIN")
    .option('--detach-keys <keys>', 'Override the key sequence for detaching a container')
    .action(
      action(set, async (names: string[], o: { attach?: boolean; interactive?: boolean; detachKeys?: string }) => {
        if (o.attach || o.interactive) {
          if (names.length > 1) throw new ExitError(1, 'you cannot start and attach multiple containers at once');
          const info = await ctx.client.get<{ Id: string; Config: { Tty: boolean; OpenStdin: boolean }; State: { Running: boolean } }>(`/containers/${enc(names[0])}/json`);
          if (info.State.Running) throw new ExitError(1, `Error response from daemon: container ${info.Id} is already running`);
          const { attachStartWait } = await import('./run.js');
          return attachStartWait(ctx, info.Id, {
            tty: info.Config.Tty,
            stdin: !!o.interactive && info.Config.OpenStdin,
            stdout: true,
            stderr: true,
            detachKeys: o.detachKeys,
            condition: 'next-exit',
            start: true,
          });
        }
        return eachName(ctx, names, async (n) => {
          await ctx.client.post(`/containers/${enc(n)}/start`);
          return n;
        });
      }),
    );

/** stop and restart: the same flags (-s, -t; --time is docker's deprecated name). */
const stopLike =
  (verb: 'stop' | 'restart'): Define =>
  (cmd, ctx, set) =>
    cmd
      .argument('<container...>')
      .option('-s, --signal <signal>', 'Signal to send to the container')
      .option('-t, --timeout <seconds>', 'Seconds to wait before killing the container')
      .addOption(new Option('--time <seconds>', 'Seconds to wait before killing the container (deprecated)').hideHelp())
      .action(
        action(set, async (names: string[], o: { signal?: string; time?: string; timeout?: string }) =>
          eachName(ctx, names, async (n) => {
            await ctx.client.post(`/containers/${enc(n)}/${verb}`, { t: o.timeout ?? o.time, signal: o.signal });
            return n;
          }),
        ),
      );
export const stop = stopLike('stop');
export const restart = stopLike('restart');

export const kill: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container...>')
    .option('-s, --signal <signal>', 'Signal to send to the container')
    .action(
      action(set, async (names: string[], o: { signal?: string }) =>
        eachName(ctx, names, async (n) => {
          await ctx.client.post(`/containers/${enc(n)}/kill`, { signal: o.signal });
          return n;
        }),
      ),
    );

export const rm: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container...>')
    .option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')
    .option('-l, --link', 'Remove the specified link')
    .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
    .action(
      action(set, async (names: string[], o: { force?: boolean; link?: boolean; volumes?: boolean }) =>
        eachName(ctx, names, async (n) => {
          await ctx.client.delete(`/containers/${enc(n)}`, { force: o.force, v: o.volumes, link: o.link });
          return n;
        }),
      ),
    );

const simple =
  (verb: 'pause' | 'unpause'): Define =>
  (cmd, ctx, set) =>
    cmd.argument('<container...>').action(
      action(set, async (names: string[]) =>
        eachName(ctx, names, async (n) => {
          await ctx.client.post(`/containers/${enc(n)}/${verb}`);
          return n;
        }),
      ),
    );
export const pause = simple('pause');
export const unpause = simple('unpause');

export const wait: Define = (cmd, ctx, set) =>
  cmd.argument('<container...>').action(
    action(set, async (names: string[]) =>
      eachName(ctx, names, async (n) => {
        const r = await ctx.client.post<{ StatusCode: number; Error?: { Message?: string } | null }>(`/containers/${enc(n)}/wait`);
        if (r.Error?.Message) throw new Error(r.Error.Message);
        return String(r.StatusCode);
      }),
    ),
  );

export const rename: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .argument('<new-name>')
    .action(
      action(set, async (name: string, newName: string) => {
        if (!newName.trim()) throw new ExitError(1, 'Error: Neither old nor new names may be empty');
        await ctx.client.post(`/containers/${enc(name)}/rename`, { name: newName });
      }),
    );

export const prune: Define = (cmd, ctx, set) =>
  cmd
    .option('--filter <filter>', 'Provide filter values (e.g. "until=<timestamp>")', collect)
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(
      action(set, async (o: { filter?: string[]; force?: boolean }) => {
        if (!(await confirm(ctx, 'WARNING! This will remove all stopped containers.', o.force))) return;
        const r = await ctx.client.post<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { filters: filtersJson(o.filter) });
        ctx.out(prunedText('Containers', r.ContainersDeleted, r.SpaceReclaimed ?? 0, humanSize));
      }),
    );
