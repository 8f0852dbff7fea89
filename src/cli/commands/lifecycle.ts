/** start, stop, restart, kill, rm, pause, unpause, wait, rename, container prune. */
import { Option } from 'commander';

import { type Define, ExitError, UsageError, action, collect, confirm, eachName, errorText, filtersJson, prunedText } from '../context.js';
import { ApiError } from '../client.js';
import { humanSize, integerFlag, ramFlag } from '../format.js';

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
            sigProxy: true, // docker start -a forwards signals (no flag to turn it off)
          });
        }
        const failed: string[] = [];
        await eachName(ctx, names, async (n) => {
          try {
            await ctx.client.post(`/containers/${enc(n)}/start`);
          } catch (e) {
            failed.push(n);
            throw e;
          }
          return n;
        });
        // The docker CLI's summary after each container's own error.
        if (failed.length) throw new ExitError(1, `Error: failed to start containers: ${failed.join(', ')}`);
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
        action(set, async (names: string[], o: { signal?: string; time?: string; timeout?: string }) => {
          const t = o.timeout ?? o.time;
          try {
            if (t !== undefined) integerFlag(t, o.timeout !== undefined ? '-t, --timeout' : '--time');
          } catch (e) {
            throw new UsageError(`berth ${verb}`, (e as Error).message);
          }
          return eachName(ctx, names, async (n) => {
            await ctx.client.post(`/containers/${enc(n)}/${verb}`, { t, signal: o.signal });
            return n;
          });
        }),
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
      action(set, async (names: string[], o: { force?: boolean; link?: boolean; volumes?: boolean }) => {
        let failed = false;
        for (const n of names) {
          try {
            await ctx.client.delete(`/containers/${enc(n)}`, { force: o.force, v: o.volumes, link: o.link });
            ctx.out(n + '\n');
          } catch (e) {
            ctx.err(errorText(e) + '\n');
            // As the docker CLI: with --force, a container that is not there is no failure.
            if (!(o.force && e instanceof ApiError && e.status === 404)) failed = true;
          }
        }
        return failed ? 1 : 0;
      }),
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
        try {
          await ctx.client.post(`/containers/${enc(name)}/rename`, { name: newName });
        } catch (e) {
          // As the docker CLI: the daemon's error, then its own line.
          ctx.err(errorText(e) + '\n');
          throw new ExitError(1, `Error: failed to rename container named ${name}`);
        }
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

/** The flags of `docker update` that were given, as the body of POST /containers/{id}/update. */
export function updateBody(o: UpdateFlags): Record<string, unknown> {
  const int = (v: string, flag: string): number => {
    try {
      return integerFlag(v, flag);
    } catch (e) {
      throw new UsageError('berth update', (e as Error).message);
    }
  };
  const size = (v: string, flag: string): number => {
    try {
      return ramFlag(v, flag);
    } catch (e) {
      throw new UsageError('berth update', (e as Error).message);
    }
  };
  const body: Record<string, unknown> = {};
  if (o.blkioWeight !== undefined) body.BlkioWeight = int(o.blkioWeight, '--blkio-weight');
  if (o.cpuPeriod !== undefined) body.CpuPeriod = int(o.cpuPeriod, '--cpu-period');
  if (o.cpuQuota !== undefined) body.CpuQuota = int(o.cpuQuota, '--cpu-quota');
  if (o.cpuRtPeriod !== undefined) body.CpuRealtimePeriod = int(o.cpuRtPeriod, '--cpu-rt-period');
  if (o.cpuRtRuntime !== undefined) body.CpuRealtimeRuntime = int(o.cpuRtRuntime, '--cpu-rt-runtime');
  if (o.cpuShares !== undefined) body.CpuShares = int(o.cpuShares, '-c, --cpu-shares');
  if (o.cpus !== undefined) {
    const n = Number(o.cpus);
    if (!Number.isFinite(n) || n < 0) throw new ExitError(125, `invalid argument "${o.cpus}" for "--cpus" flag: failed to parse ${o.cpus} as a rational number`);
    body.NanoCpus = Math.round(n * 1e9);
  }
  if (o.cpusetCpus !== undefined) body.CpusetCpus = o.cpusetCpus;
  if (o.cpusetMems !== undefined) body.CpusetMems = o.cpusetMems;
  if (o.memory !== undefined) body.Memory = size(o.memory, '-m, --memory');
  if (o.memoryReservation !== undefined) body.MemoryReservation = size(o.memoryReservation, '--memory-reservation');
  if (o.memorySwap !== undefined) body.MemorySwap = o.memorySwap === '-1' ? -1 : size(o.memorySwap, '--memory-swap');
  if (o.kernelMemory !== undefined) body.KernelMemory = size(o.kernelMemory, '--kernel-memory');
  if (o.pidsLimit !== undefined) body.PidsLimit = int(o.pidsLimit, '--pids-limit');
  if (o.restart !== undefined) {
    // Split only: the daemon judges the policy (the docker CLI's update leaves it to dockerd).
    const [name, count] = o.restart.split(':');
    body.RestartPolicy = { Name: name, MaximumRetryCount: count !== undefined ? int(count, '--restart') : 0 };
  }
  return body;
}

interface UpdateFlags {
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpuShares?: string;
  cpus?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  kernelMemory?: string;
  pidsLimit?: string;
  restart?: string;
}

export const update: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container...>')
    .option('--blkio-weight <uint16>', 'Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)')
    .option('--cpu-period <int>', 'Limit CPU CFS (Completely Fair Scheduler) period')
    .option('--cpu-quota <int>', 'Limit CPU CFS (Completely Fair Scheduler) quota')
    .option('--cpu-rt-period <int>', 'Limit the CPU real-time period in microseconds')
    .option('--cpu-rt-runtime <int>', 'Limit the CPU real-time runtime in microseconds')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpus <decimal>', 'Number of CPUs')
    .option('--cpuset-cpus <string>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--cpuset-mems <string>', 'MEMs in which to allow execution (0-3, 0,1)')
    .option('-m, --memory <bytes>', 'Memory limit')
    .option('--memory-reservation <bytes>', 'Memory soft limit')
    .option('--memory-swap <bytes>', 'Swap limit equal to memory plus swap: -1 to enable unlimited swap')
    .addOption(new Option('--kernel-memory <bytes>', 'Kernel memory limit (deprecated)').hideHelp())
    .option('--pids-limit <int>', 'Tune container pids limit (set -1 for unlimited)')
    .option('--restart <string>', 'Restart policy to apply when a container exits')
    .action(
      action(set, async (names: string[], o: UpdateFlags) => {
        const body = updateBody(o);
        if (Object.keys(body).length === 0) throw new ExitError(1, 'you must provide one or more flags when using this command');
        // As the docker CLI: the names updated, then every warning, then the errors together.
        const warnings: string[] = [];
        const errors: string[] = [];
        for (const n of names) {
          try {
            const r = await ctx.client.post<{ Warnings?: string[] | null }>(`/containers/${enc(n)}/update`, undefined, body);
            ctx.out(`${n}\n`);
            warnings.push(...(r.Warnings ?? []));
          } catch (e) {
            errors.push(errorText(e));
          }
        }
        if (warnings.length) ctx.out(warnings.join('\n') + '\n');
        if (errors.length) throw new ExitError(1, errors.join('\n'));
      }),
    );
