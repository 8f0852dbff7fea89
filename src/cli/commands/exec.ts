/** exec and attach: hijacked sessions with the local terminal. */
import { Option } from 'commander';

import { type Define, ExitError, action, collect } from '../context.js';
import { attachContainer, consoleSize, followResize, session } from '../streams.js';

const enc = encodeURIComponent;

export const exec: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-d, --detach', 'Detached mode: run command in the background')
    .option('--detach-keys <keys>', 'Override the key sequence for detaching a container')
    .option('-e, --env <var>', 'Set environment variables', collect)
    .option('--env-file <file>', 'Read in a file of environment variables', collect)
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('--privileged', 'Give extended privileges to the command')
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('-u, --user <user>', 'Username or UID (format: "<name|uid>[:<group|gid>]")')
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .action(
      action(set, async (container: string, command: string[], o: { detach?: boolean; detachKeys?: string; env?: string[]; envFile?: string[]; interactive?: boolean; privileged?: boolean; tty?: boolean; user?: string; workdir?: string }) => {
        // As the docker CLI (CheckTty): -it needs a terminal to read from.
        if (!o.detach && o.interactive && o.tty && !ctx.io.stdin.isTTY) throw new ExitError(1, 'the input device is not a TTY');
        let env = o.env ?? [];
        if (o.envFile?.length) {
          const [{ default: fs }, { parseEnvFile }] = await Promise.all([import('node:fs'), import('../runopts.js')]);
          env = [...o.envFile.flatMap((f) => parseEnvFile(fs.readFileSync(ctx.path(f), 'utf8'), ctx.io.env)), ...env];
        }
        env = env.map((e) => (e.includes('=') || ctx.io.env[e] === undefined ? e : `${e}=${ctx.io.env[e]}`));
        const tty = !!o.tty;
        const size = tty ? consoleSize(ctx.io) : undefined;
        const created = await ctx.client.post<{ Id: string }>(`/containers/${enc(container)}/exec`, undefined, {
          User: o.user ?? '',
          Privileged: !!o.privileged,
          Tty: tty,
          ConsoleSize: size ?? null,
          AttachStdin: !!o.interactive && !o.detach,
          AttachStderr: !o.detach,
          AttachStdout: !o.detach,
          DetachKeys: o.detachKeys ?? '',
          Env: env.length ? env : null,
          WorkingDir: o.workdir ?? '',
          Cmd: command,
        });
        const id = created.Id;
        if (o.detach) {
          await ctx.client.post(`/exec/${id}/start`, undefined, { Detach: true, Tty: tty, ConsoleSize: size ?? null });
          return 0;
        }
        const h = await ctx.client.hijack(`/exec/${id}/start`, undefined, { Detach: false, Tty: tty, ConsoleSize: size ?? null });
        const s = session(h, { tty, stdin: !!o.interactive, stdout: true, stderr: true, detachKeys: o.detachKeys }, ctx.io);
        const stopResize = tty ? followResize((hh, w) => ctx.client.post(`/exec/${id}/resize`, { h: hh, w }), ctx.io) : () => undefined;
        s.start();
        const { detached } = await s.done;
        stopResize();
        if (detached) return 0;
        const info = await ctx.client.get<{ ExitCode: number | null; Running: boolean }>(`/exec/${id}/json`);
        return info.ExitCode ?? 0;
      }),
    );

export const attach: Define = (cmd, ctx, set) =>
  cmd
    .argument('<container>')
    .option('--detach-keys <keys>', 'Override the key sequence for detaching a container')
    .option('--no-stdin', 'Do not attach STDIN')
    .option('--sig-proxy', 'Proxy all received signals to the process (default true)')
    .addOption(new Option('--no-sig-proxy').hideHelp())
    .action(
      action(set, async (name: string, o: { detachKeys?: string; stdin: boolean; sigProxy?: boolean }) => {
        const info = await ctx.client.get<{ Id: string; Config: { Tty: boolean; OpenStdin: boolean }; State: { Running: boolean; Paused: boolean; Restarting: boolean } }>(`/containers/${enc(name)}/json`);
        if (!info.State.Running) throw new ExitError(1, 'You cannot attach to a stopped container, start it first');
        if (info.State.Paused) throw new ExitError(1, 'You cannot attach to a paused container, unpause it first');
        const opts = { tty: info.Config.Tty, stdin: o.stdin && info.Config.OpenStdin, stdout: true, stderr: true, detachKeys: o.detachKeys };
        const h = await attachContainer(ctx.client, info.Id, opts);
        const waitRes = await ctx.client.raw('POST', `/containers/${enc(info.Id)}/wait`, { query: { condition: 'next-exit' } });
        const s = session(h, opts, ctx.io);
        const stopResize = opts.tty ? followResize((hh, w) => ctx.client.post(`/containers/${enc(info.Id)}/resize`, { h: hh, w }), ctx.io) : () => undefined;
        // docker's --sig-proxy (on by default): without a terminal, signals sent to us go to the container.
        const stopProxy = o.sigProxy !== false && !opts.tty ? ctx.io.proxySignals((signal) => void ctx.client.post(`/containers/${enc(info.Id)}/kill`, { signal }).catch(() => undefined)) : () => undefined;
        s.start();
        const { detached } = await s.done.finally(stopProxy);
        stopResize();
        if (detached) {
          waitRes.destroy();
          throw new ExitError(1, 'read escape sequence');
        }
        const { readBody } = await import('../client.js');
        const body = JSON.parse((await readBody(waitRes)).toString('utf8') || '{}') as { StatusCode?: number };
        return body.StatusCode ?? 0;
      }),
    );
