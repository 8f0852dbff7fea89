/**
 * run and create. `run` does what the docker CLI does, in its order: create (pulling the
 * image if the daemon has none), attach (hijacked), wait (condition next-exit, or removed
 * with --rm; the answer comes at exit), start, then the container's exit status.
 */
import fs from 'node:fs';
import { type Command, Option } from 'commander';

import { ApiError, readBody } from '../client.js';
import { type Ctx, type Define, ExitError, UsageError, action, collect, errorText } from '../context.js';
import { buildCreateRequest, FlagError, parseEnvFile, type RunFlags } from '../runopts.js';
import { attachContainer, consoleSize, followResize, session } from '../streams.js';

/** The flags run and create share (docker's names and short forms). */
function containerFlags(cmd: Command): Command {
  return cmd
    .helpOption('--help', 'Print usage')
    .argument('<image>')
    .argument('[command...]')
    .passThroughOptions()
    .option('-a, --attach <stream>', 'Attach to STDIN, STDOUT or STDERR', collect)
    .option('--add-host <host:ip>', 'Add a custom host-to-IP mapping', collect)
    .option('--cap-add <cap>', 'Add Linux capabilities', collect)
    .option('--cap-drop <cap>', 'Drop Linux capabilities', collect)
    .option('--cpus <n>', 'Number of CPUs')
    .option('--device <device>', 'Add a host device to the container', collect)
    .option('--dns <ip>', 'Set custom DNS servers', collect)
    .option('--dns-option <option>', 'Set DNS options', collect)
    .option('--dns-search <domain>', 'Set custom DNS search domains', collect)
    .option('-e, --env <var>', 'Set environment variables', collect)
    .option('--env-file <file>', 'Read in a file of environment variables', collect)
    .option('--entrypoint <cmd>', 'Overwrite the default ENTRYPOINT of the image')
    .option('--expose <port>', 'Expose a port or a range of ports', collect)
    .option('--group-add <group>', 'Add additional groups to join', collect)
    .option('-h, --hostname <name>', 'Container host name')
    .option('--init', 'Run an init inside the container that forwards signals and reaps processes')
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('-l, --label <label>', 'Set meta data on a container', collect)
    .option('--label-file <file>', 'Read in a line delimited file of labels', collect)
    .option('--pid <mode>', 'PID namespace to use')
    .option('--ipc <mode>', 'IPC mode to use')
    .option('--uts <mode>', 'UTS namespace to use')
    .option('--cgroupns <mode>', 'Cgroup namespace to use (host|private)')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <cpus>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--cpuset-mems <mems>', 'MEMs in which to allow execution (0-3, 0,1)')
    .option('--cpu-period <n>', 'Limit CPU CFS (Completely Fair Scheduler) period')
    .option('--cpu-quota <n>', 'Limit CPU CFS (Completely Fair Scheduler) quota')
    .option('--memory-reservation <bytes>', 'Memory soft limit')
    .option('--memory-swap <bytes>', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--memory-swappiness <n>', 'Tune container memory swappiness (0 to 100)')
    .option('--oom-kill-disable', 'Disable OOM Killer')
    .option('--oom-score-adj <n>', "Tune host's OOM preferences (-1000 to 1000)")
    .option('--blkio-weight <n>', 'Block IO (relative weight), between 10 and 1000')
    .option('--device-read-bps <device:rate>', 'Limit read rate (bytes per second) from a device', collect)
    .option('--device-write-bps <device:rate>', 'Limit write rate (bytes per second) to a device', collect)
    .option('--device-read-iops <device:rate>', 'Limit read rate (IO per second) from a device', collect)
    .option('--device-write-iops <device:rate>', 'Limit write rate (IO per second) to a device', collect)
    .option('--sysctl <key=value>', 'Sysctl options', collect)
    .option('--volumes-from <container>', 'Mount volumes from the specified container(s)', collect)
    .option('--domainname <name>', 'Container NIS domain name')
    .option('--health-cmd <command>', 'Command to run to check health')
    .option('--health-interval <duration>', 'Time between running the check (ms|s|m|h)')
    .option('--health-timeout <duration>', 'Maximum time to allow one check to run (ms|s|m|h)')
    .option('--health-retries <n>', 'Consecutive failures needed to report unhealthy')
    .option('--health-start-period <duration>', 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)')
    .option('--health-start-interval <duration>', 'Time between running the check during the start period (ms|s|m|h)')
    .option('--no-healthcheck', 'Disable any container-specified HEALTHCHECK')
    .option('--log-driver <driver>', 'Logging driver for the container')
    .option('--log-opt <opt>', 'Log driver options', collect)
    .option('-m, --memory <bytes>', 'Memory limit')
    .option('--mount <mount>', 'Attach a filesystem mount to the container', collect)
    .option('--name <name>', 'Assign a name to the container')
    .option('--cidfile <file>', 'Write the container ID to the file')
    .option('--ip <address>', 'IPv4 address (e.g., 172.30.100.104)')
    .option('--mac-address <address>', 'Container MAC address (e.g., 92:d0:c6:0a:29:33)')
    .option('--link <name:alias>', 'Add link to another container', collect)
    .option('--net, --network <network>', 'Connect a container to a network')
    .option('--network-alias <alias>', 'Add network-scoped alias for the container', collect)
    .option('--pids-limit <n>', 'Tune container pids limit (set -1 for unlimited)')
    .option('--platform <platform>', 'Set platform if server is multi-platform capable')
    .option('--privileged', 'Give extended privileges to this container')
    .option('-p, --publish <ports>', "Publish a container's port(s) to the host", collect)
    .option('-P, --publish-all', 'Publish all exposed ports to random ports')
    .option('--pull <policy>', 'Pull image before running ("always", "missing", "never")', 'missing')
    .option('-q, --quiet', 'Suppress the pull output')
    .option('--read-only', "Mount the container's root filesystem as read only")
    .option('--restart <policy>', 'Restart policy to apply when a container exits')
    .option('--rm', 'Automatically remove the container and its associated anonymous volumes when it exits')
    .option('--security-opt <opt>', 'Security Options', collect)
    .option('--shm-size <bytes>', 'Size of /dev/shm')
    .option('--stop-signal <signal>', 'Signal to stop the container')
    .option('--stop-timeout <seconds>', 'Timeout (in seconds) to stop a container')
    .option('--tmpfs <mount>', 'Mount a tmpfs directory', collect)
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('--ulimit <ulimit>', 'Ulimit options', collect)
    .option('-u, --user <user>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('--userns <mode>', 'User namespace to use')
    .option('-v, --volume <volume>', 'Bind mount a volume', collect)
    .option('-w, --workdir <dir>', 'Working directory inside the container');
}

type Flags = RunFlags & { pull?: string; quiet?: boolean; detachKeys?: string; cidfile?: string; labelFile?: string[]; sigProxy?: boolean };

/**
 * --cidfile, as the docker CLI: the file must not exist (another container's), is made before
 * the create, gets the ID after it, and goes again if the create fails.
 */
function cidFile(ctx: Ctx, file: string | undefined): { write(id: string): void; discard(): void } {
  if (!file) return { write: () => undefined, discard: () => undefined };
  const where = ctx.path(file);
  let fd: number;
  try {
    fd = fs.openSync(where, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ExitError(125, `berth: container ID file found, make sure the other container isn't running or delete ${file}`);
    throw new ExitError(125, `berth: failed to create the container ID file: ${(e as Error).message}`);
  }
  return {
    write: (id) => {
      fs.writeSync(fd, id);
      fs.closeSync(fd);
    },
    discard: () => {
      fs.closeSync(fd);
      fs.rmSync(where, { force: true });
    },
  };
}

/** Creates the container (pulling its image when missing, as docker does); returns its ID. */
async function createContainer(ctx: Ctx, command: 'run' | 'create', flags: Flags, image: string, args: string[]): Promise<string> {
  let req;
  try {
    if (flags.pull !== undefined && !['always', 'missing', 'never'].includes(flags.pull)) {
      throw new FlagError(`invalid pull option: '${flags.pull}': must be one of "always", "missing" or "never"`);
    }
    const read = (f: string): string => {
      try {
        return fs.readFileSync(ctx.path(f), 'utf8');
      } catch (err) {
        // Go's words for a file it cannot open.
        const code = (err as NodeJS.ErrnoException).code;
        throw new FlagError(`open ${f}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
      }
    };
    const envFiles = (flags.envFile ?? []).flatMap((f) => parseEnvFile(read(f), ctx.io.env));
    const labelFileLines = (flags.labelFile ?? []).flatMap((f) =>
      read(f)
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#')),
    );
    // commander reads --no-healthcheck as healthcheck: false.
    const given = (flags as { healthcheck?: boolean }).healthcheck === false ? { ...flags, noHealthcheck: true } : flags;
    req = buildCreateRequest({ ...given, labelFileLines }, image, args, { env: ctx.io.env, envFiles, consoleSize: flags.tty ? consoleSize(ctx.io) : undefined });
  } catch (e) {
    // As the docker CLI: a value its flag parser refuses is "invalid argument … flag: …" alone;
    // what it finds wrong afterwards carries the program's name.
    if (e instanceof FlagError) throw new UsageError(`berth ${command}`, `${e.message.startsWith('invalid argument "') ? '' : 'berth: '}${e.message}`);
    throw e;
  }
  const cid = cidFile(ctx, flags.cidfile);
  const create = async (): Promise<{ Id: string; Warnings?: string[] | null }> => {
    const created = await ctx.client.post<{ Id: string; Warnings?: string[] | null }>('/containers/create', { name: req.name, platform: req.platform }, req.body);
    cid.write(created.Id);
    return created;
  };
  // Loaded only when an image must be pulled (its progress display and auth: ~1.5 ms of a start).
  const pull = async (): Promise<void> => (await import('./pull.js')).pullImage(ctx, image, ctx.io.stderr, { platform: flags.platform, quiet: flags.quiet });
  let res;
  try {
    try {
      if (flags.pull === 'always') await pull();
      res = await create();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404 && /no such image/i.test(e.message)) || flags.pull === 'never') throw e;
      ctx.err(`Unable to find image '${(await import('./pull.js')).withDefaultTag(image)}' locally\n`);
      await pull();
      res = await create();
    }
  } catch (e) {
    cid.discard();
    throw e;
  }
  for (const w of res.Warnings ?? []) ctx.err(`WARNING: ${w}\n`);
  return res.Id;
}

/** docker's exit status for a start that failed: 126 cannot execute, 127 not found, else 125. */
function startFailureStatus(message: string): number {
  if (/executable file not found|no such file or directory|not found/i.test(message)) return 127;
  if (/permission denied/i.test(message)) return 126;
  return 125;
}

/**
 * Attach, wait, start, stream until the output ends; returns the exit status (from the wait
 * answer). Shared by run and start -a.
 */
/** Signals sent to the CLI go to the container (its kill endpoint), until the function returned is called. */
export function proxySignalsTo(ctx: Ctx, id: string): () => void {
  return ctx.io.proxySignals((signal) => void ctx.client.post(`/containers/${encodeURIComponent(id)}/kill`, { signal }).catch(() => undefined));
}

export async function attachStartWait(
  ctx: Ctx,
  id: string,
  o: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean; detachKeys?: string; condition: string; start: boolean; sigProxy: boolean },
): Promise<number> {
  // The attach and the wait are both in place before the start, asked for together (docker
  // asks one after the other: a round trip more).
  const [attached, waited] = await Promise.allSettled([
    attachContainer(ctx.client, id, o),
    ctx.client.raw('POST', `/containers/${encodeURIComponent(id)}/wait`, { query: { condition: o.condition } }),
  ]);
  if (attached.status === 'rejected' || waited.status === 'rejected') {
    if (attached.status === 'fulfilled') (attached.value.socket as { destroy(): void }).destroy();
    if (waited.status === 'fulfilled') waited.value.destroy();
    throw attached.status === 'rejected' ? attached.reason : (waited as PromiseRejectedResult).reason;
  }
  const hijacked = attached.value;
  const waitRes = waited.value;
  const s = session(hijacked, o, ctx.io);
  const waitBody = readBody(waitRes);
  waitBody.catch(() => undefined); // destroyed on a failed start or a detach
  // docker's --sig-proxy: without a terminal (which has its own ^C), a signal sent to us goes to the container.
  const stopProxy = o.sigProxy && !o.tty ? proxySignalsTo(ctx, id) : (): void => undefined;
  if (o.start) {
    try {
      await ctx.client.post(`/containers/${encodeURIComponent(id)}/start`);
    } catch (e) {
      stopProxy();
      waitRes.destroy();
      (hijacked.socket as { destroy(): void }).destroy();
      throw e;
    }
  }
  let stopResize = (): void => undefined;
  if (o.tty) stopResize = followResize((h, w) => ctx.client.post(`/containers/${encodeURIComponent(id)}/resize`, { h, w }), ctx.io);
  s.start();
  const { detached } = await s.done.finally(stopProxy);
  stopResize();
  if (detached) {
    waitRes.destroy();
    return 0;
  }
  const body = JSON.parse((await waitBody).toString('utf8') || '{}') as { StatusCode?: number; Error?: { Message?: string } | null };
  if (body.Error?.Message) throw new ExitError(125, `Error response from daemon: ${body.Error.Message}`);
  return body.StatusCode ?? 0;
}

export const run: Define = (cmd, ctx, set) =>
  containerFlags(cmd)
    .option('-d, --detach', 'Run container in background and print container ID')
    .option('--detach-keys <keys>', 'Override the key sequence for detaching a container')
    .option('--sig-proxy', 'Proxy received signals to the process (default true)')
    .addOption(new Option('--no-sig-proxy').hideHelp())
    .action(
      action(set, async (image: string, args: string[], flags: Flags) => {
        // As the docker CLI (CheckTty): -it needs a terminal to read from.
        if (!flags.detach && flags.interactive && flags.tty && !ctx.io.stdin.isTTY) throw new ExitError(1, 'the input device is not a TTY');
        let id: string;
        try {
          id = await createContainer(ctx, 'run', flags, image, args);
        } catch (e) {
          if (e instanceof ExitError) throw e;
          throw new UsageError('berth run', `berth: ${errorText(e)}`);
        }
        if (flags.detach) {
          try {
            await ctx.client.post(`/containers/${encodeURIComponent(id)}/start`);
          } catch (e) {
            throw new UsageError('berth run', `berth: ${errorText(e)}`, startFailureStatus(errorText(e)));
          }
          ctx.out(`${id}\n`);
          return 0;
        }
        const attach = (flags.attach ?? []).map((a) => a.toLowerCase());
        try {
          return await attachStartWait(ctx, id, {
            tty: !!flags.tty,
            stdin: attach.length ? attach.includes('stdin') : !!flags.interactive,
            stdout: attach.length ? attach.includes('stdout') : true,
            stderr: attach.length ? attach.includes('stderr') : true,
            detachKeys: flags.detachKeys,
            condition: flags.rm ? 'removed' : 'next-exit',
            start: true,
            sigProxy: flags.sigProxy !== false,
          });
        } catch (e) {
          if (e instanceof ExitError) throw e;
          const msg = errorText(e);
          if (flags.rm) await ctx.client.delete(`/containers/${encodeURIComponent(id)}`, { force: true }).catch(() => undefined);
          throw new UsageError('berth run', `berth: ${msg}`, startFailureStatus(msg));
        }
      }),
    );

export const create: Define = (cmd, ctx, set) =>
  containerFlags(cmd).action(
    action(set, async (image: string, args: string[], flags: Flags) => {
      let id: string;
      try {
        id = await createContainer(ctx, 'create', flags, image, args);
      } catch (e) {
        if (e instanceof ExitError) throw e;
        // docker create ends 1 on what the daemon refuses (run ends 125).
        throw new ExitError(1, errorText(e));
      }
      ctx.out(`${id}\n`);
    }),
  );
