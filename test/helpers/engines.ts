/**
 * Helpers for the tests that run real engines (dockerd + containerd, podman) on berth-oci:
 * running commands, driving a TTY through a real pseudo-terminal, and cleaning up what the
 * engines leave behind (processes, mounts, cgroups) under a private temp dir.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { mountPointsUnder } from '../../src/common/mountinfo.js';
import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { BERTH_OCI, isRoot, poll } from './runtime.js';

export interface CmdResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (stdin closed), capturing its output. */
export function cmd(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string | Buffer; cwd?: string } = {}): CmdResult {
  const r = spawnSync(file, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    // SIGKILL: the docker CLI passes a SIGTERM on to the container (run's signal proxy) and
    // keeps waiting, so a test that times out would hang instead of failing.
    killSignal: 'SIGKILL',
    input: opts.input,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  if (r.error && !(r.error as NodeJS.ErrnoException).code?.startsWith('ETIMEDOUT')) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
}

/** Finds an executable: the first of `candidates` that exists, else a lookup in PATH. */
export function which(...candidates: string[]): string | undefined {
  for (const c of candidates) {
    if (c.includes('/')) {
      if (fs.existsSync(c)) return c;
      continue;
    }
    for (const dir of (process.env.PATH ?? '').split(':')) {
      const p = path.join(dir, c);
      if (dir && fs.existsSync(p)) return p;
    }
  }
  return undefined;
}

export type PtyStep = { expect: string } | { send: string } | { resize: [number, number] };

/**
 * Runs argv on a new pseudo-terminal (test/helpers/pty-run.py), as someone typing at a
 * terminal: waits for each `expect` regex in the output, types each `send` text.
 */
export function ptyRun(
  argv: string[],
  steps: PtyStep[],
  opts: { env?: NodeJS.ProcessEnv; timeoutS?: number; size?: [number, number]; reportModes?: boolean } = {},
): CmdResult {
  const spec = JSON.stringify({ argv, steps, timeout: opts.timeoutS ?? 60, size: opts.size, report_modes: opts.reportModes });
  return cmd('python3', [path.join(PACKAGE_ROOT, 'test', 'helpers', 'pty-run.py'), spec], { env: opts.env, timeoutMs: ((opts.timeoutS ?? 60) + 10) * 1000 });
}

/** Steps for an interactive busybox sh: checks the TTY's name and that typed input reaches the shell. */
export function shellSteps(exitCode: number): PtyStep[] {
  return [
    { expect: '# ' },
    // The shell prints typed-42 only if it received and evaluated the line (the echo shows $((6*7))).
    { send: 'tty; echo typed-$((6*7)); [ -t 0 ] && echo stdin-is-a-tty\r' },
    { expect: 'typed-42' },
    { expect: 'stdin-is-a-tty' },
    { send: `exit ${exitCode}\r` },
  ];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { poll };

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    // A zombie child of ours counts as gone.
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

/** SIGTERM, then SIGKILL after graceMs: for one process we started. */
export async function stopPid(pid: number | undefined, graceMs: number): Promise<void> {
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await poll(() => !alive(pid), graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  await poll(() => !alive(pid), 5000);
}

/**
 * Processes whose command line names `dir` (e.g. containerd shims, conmon, started by our
 * private daemons for containers under it): found by that unique path, never by name.
 */
export function pidsMentioning(dir: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir)) pids.push(Number(e));
    } catch {
      /* exited */
    }
  }
  return pids;
}

/** Unmounts everything mounted at or below dir, deepest first (lazily if busy). */
export function unmountUnder(dir: string): void {
  for (let pass = 0; pass < 3; pass++) {
    const points = mountPointsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) if (cmd('umount', [p]).status !== 0) cmd('umount', ['-l', p]);
  }
}

/** The cgroup v1 hierarchies (and the v2 one, if mounted) under /sys/fs/cgroup. */
export function cgroupRoots(): string[] {
  const base = '/sys/fs/cgroup';
  if (fs.existsSync(path.join(base, 'cgroup.controllers'))) return [base];
  return fs
    .readdirSync(base, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.isSymbolicLink())
    .map((e) => path.join(base, e.name));
}

/** Which of the named cgroup parents (relative, e.g. "docker") exist now, per hierarchy. */
export function existingCgroups(names: string[]): Set<string> {
  const found = new Set<string>();
  for (const root of cgroupRoots()) for (const n of names) if (fs.existsSync(path.join(root, n))) found.add(path.join(root, n));
  return found;
}

/**
 * Removes the cgroups our containers left under the named parents (those with one of `ids`
 * in their name), then each parent that did not exist before (`before`) if it is now empty.
 * rmdir only succeeds on an empty cgroup, so nothing alive is touched.
 */
export function removeCgroups(parents: string[], ids: string[], before: Set<string>): void {
  const rmTree = (dir: string): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) rmTree(path.join(dir, e.name));
    try {
      fs.rmdirSync(dir);
    } catch {
      /* busy or gone */
    }
  };
  for (const root of cgroupRoots()) {
    for (const parent of parents) {
      const dir = path.join(root, parent);
      if (!fs.existsSync(dir)) continue;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory() && ids.some((id) => e.name.includes(id))) rmTree(path.join(dir, e.name));
      }
      if (!before.has(dir)) rmTree(dir);
    }
  }
}

/** The expected output of the multilayer image's entrypoint, without the hostname line. */
export const MULTILAYER_EXPECTED = [
  'args:default-arg-1 default arg 2',
  'cwd:/app',
  'user:65534:65534 groups:65534 100',
  'GREETING=hello from multilayer',
  'MULTILAYER=1',
].join('\n');

/** A shell command checking multilayer's whiteouts, opaque dir and overwrite, and what it prints. */
export const MULTILAYER_LAYERS_CMD =
  'test ! -e /data/delete-me.txt && test "$(ls -A /opaque)" = new.txt && test ! -e /removed-dir && cat /data/overwrite.txt /vol/seed.txt /app/hello-symlink.txt';
export const MULTILAYER_LAYERS_EXPECTED = 'version from layer 3\nseed data from image\nhello from layer 2\n';

/** Splits the multilayer entrypoint's output into (everything but hostname, hostname). */
export function splitHostname(out: string): { rest: string; hostname: string | undefined } {
  const lines = out.trim().split('\n');
  const h = lines.find((l) => l.startsWith('hostname:'));
  return { rest: lines.filter((l) => !l.startsWith('hostname:')).join('\n'), hostname: h?.slice('hostname:'.length) };
}

/**
 * The runtime path to give an engine: berth-oci itself, or with BERTH_ENGINE_TRACE=1 a
 * wrapper in dir that logs each call (argv and exit status; stderr still goes to the engine) to dir/runtime-calls.log, which
 * BERTH_KEEP_ENGINE_DIRS=1 keeps after the tests.
 */
export function runtimeForEngine(dir: string, berthOci: string): string {
  if (!process.env.BERTH_ENGINE_TRACE) return berthOci;
  const wrapper = path.join(dir, 'berth-oci-trace');
  const log = path.join(dir, 'runtime-calls.log');
  fs.writeFileSync(
    wrapper,
    `#!/bin/sh\necho "$(date +%T.%N) $*" >> '${log}'\n'${berthOci}' "$@"\nrc=$?\necho "$(date +%T.%N) -> $rc" >> '${log}'\nexit $rc\n`,
    { mode: 0o755 },
  );
  return wrapper;
}

/**
 * Unmounts what is left below an engine's temp dir, removes the cgroups its containers left
 * under `cgroupParents` (see removeCgroups), then the dir itself unless BERTH_KEEP_ENGINE_DIRS.
 */
export function removeEngineDir(dir: string, cgroupParents: string[], ids: string[], cgroupsBefore: Set<string>): void {
  unmountUnder(dir);
  removeCgroups(cgroupParents, ids, cgroupsBefore);
  if (!process.env.BERTH_KEEP_ENGINE_DIRS) fs.rmSync(dir, { recursive: true, force: true });
}

const DOCKERD = which('dockerd');
const CONTAINERD = which('containerd');
/** The preinstalled docker CLI (v28) if there is one, else Debian's (20.10, from docker.io). */
export const DOCKER = which('/usr/local/bin/docker', 'docker');
/** Why the private-dockerd tests cannot run here (a `skip` reason), or false. */
export const dockerdSkip: string | false = !isRoot
  ? 'needs root'
  : !DOCKERD || !CONTAINERD || !DOCKER
    ? 'needs dockerd, containerd and docker (Debian docker.io)'
    : false;

export interface PrivateDockerd {
  /** The temp dir holding everything: sockets, data-root, exec-root, logs. */
  dir: string;
  /** The environment that points the docker CLI at this daemon. */
  env: NodeJS.ProcessEnv;
  /** Container IDs the test made: their cgroups are removed by stop(). */
  ids: string[];
  docker(args: string[], timeoutMs?: number): CmdResult;
  /** docker …, which must succeed; returns stdout. */
  dockerOk(args: string[], timeoutMs?: number): string;
  /** The last lines of dockerd's and containerd's logs. */
  logTail(): string;
  /** Removes all containers, stops the daemons and shims, cleans up mounts, cgroups and dir. */
  stop(): Promise<void>;
}

/**
 * Starts a private dockerd (Debian's 20.10) with its own containerd, data-root, exec-root and
 * socket under a new temp dir: no bridge, no iptables (unless `network` gives dockerd's network
 * flags instead, e.g. a bridge of the caller's and iptables), and `runtimes` (name → path of berth-oci
 * or a wrapper of it; a function of the temp dir, e.g. for runtimeForEngine) registered through
 * daemon.json. `timeoutMs` is docker()'s default. If the daemons do not come up, what was
 * started is stopped (and the dir removed) before the error.
 */
export async function startPrivateDockerd(
  opts: { runtimes?: Record<string, string> | ((dir: string) => Record<string, string>); prefix?: string; timeoutMs?: number; network?: string[] } = {},
): Promise<PrivateDockerd> {
  if (!DOCKERD || !CONTAINERD || !DOCKER) throw new Error(dockerdSkip || 'no dockerd');
  const cgroupsBefore = existingCgroups(['docker']);
  const dir = fs.mkdtempSync(`/tmp/${opts.prefix ?? 'berth-dockerd-'}`);
  for (const d of ['containerd', 'data', 'exec', 'cli']) fs.mkdirSync(path.join(dir, d));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${dir}/docker.sock`, DOCKER_CONFIG: path.join(dir, 'cli') };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
  const defaultTimeout = opts.timeoutMs ?? 60_000;
  const ids: string[] = [];
  let containerdPid: number | undefined;
  let dockerdPid: number | undefined;
  let runtimes: Record<string, string> = {};

  const docker = (args: string[], timeoutMs = defaultTimeout): CmdResult => cmd(DOCKER, args, { env, timeoutMs });
  const logTail = (): string => {
    const tail = (f: string): string => {
      try {
        return fs.readFileSync(path.join(dir, f), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        return '';
      }
    };
    return `--- dockerd.log ---\n${tail('dockerd.log')}\n--- containerd.log ---\n${tail('containerd.log')}`;
  };
  const dockerOk = (args: string[], timeoutMs = defaultTimeout): string => {
    const r = docker(args, timeoutMs);
    assert.equal(r.status, 0, `docker ${args.join(' ')}: ${r.stderr}\n${logTail()}`);
    return r.stdout;
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (dockerdPid && fs.existsSync(`${dir}/docker.sock`)) {
      const left = docker(['ps', '-aq', '--no-trunc'], 20_000).stdout.split('\n').filter(Boolean);
      ids.push(...left);
      if (left.length) docker(['rm', '-f', ...left], 60_000);
    }
    await stopPid(dockerdPid, 30_000);
    await stopPid(containerdPid, 20_000);
    // Shims (and anything else) started for containers under dir outlive containerd: stop them.
    for (const pid of pidsMentioning(dir)) await stopPid(pid, 5_000);
    // Containers berth-oci (the registered runtimes) still knows of, if a shim died without
    // deleting them: the root dockerd gives a runtime is <exec-root>/runtime-<name>/moby.
    for (const name of Object.keys(runtimes)) {
      const root = path.join(dir, 'exec', `runtime-${name}`, 'moby');
      for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) cmd(BERTH_OCI, ['--root', root, 'delete', '--force', id]);
    }
    removeEngineDir(dir, ['docker'], ids, cgroupsBefore);
  };

  try {
    runtimes = typeof opts.runtimes === 'function' ? opts.runtimes(dir) : (opts.runtimes ?? {});
    const c = path.join(dir, 'containerd');
    fs.writeFileSync(
      path.join(dir, 'containerd.toml'),
      [
        'version = 2',
        `root = "${c}/root"`,
        `state = "${c}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${c}/containerd.sock"`,
        '[ttrpc]',
        `  address = "${c}/containerd.sock.ttrpc"`,
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${c}/opt"`,
        '',
      ].join('\n'),
    );
    // Runtimes by daemon.json rather than --add-runtime: the same thing, and they show in `docker info`.
    const config = Object.fromEntries(Object.entries(runtimes).map(([name, p]) => [name, { path: p }]));
    fs.writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify(Object.keys(config).length ? { runtimes: config } : {}));

    const log = (name: string): number => fs.openSync(path.join(dir, name), 'a');
    const ctr = spawn(CONTAINERD, ['--config', path.join(dir, 'containerd.toml')], { stdio: ['ignore', log('containerd.log'), log('containerd.log')], detached: true });
    containerdPid = ctr.pid;
    ctr.unref();
    if (!(await poll(() => fs.existsSync(`${c}/containerd.sock`), 20_000))) throw new Error(`containerd did not start\n${logTail()}`);

    const dockerd = spawn(
      DOCKERD,
      [
        '--config-file', path.join(dir, 'daemon.json'),
        '--containerd', `${c}/containerd.sock`,
        '--data-root', path.join(dir, 'data'),
        '--exec-root', path.join(dir, 'exec'),
        '--pidfile', path.join(dir, 'dockerd.pid'),
        '-H', `unix://${dir}/docker.sock`,
        ...(opts.network ?? ['--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--userland-proxy=false']),
      ],
      { stdio: ['ignore', log('dockerd.log'), log('dockerd.log')], detached: true },
    );
    dockerdPid = dockerd.pid;
    dockerd.unref();
    const up = await poll(() => {
      if (dockerdPid && !fs.existsSync(`/proc/${dockerdPid}`)) return true;
      return docker(['version'], 10_000).status === 0;
    }, 60_000, 200);
    if (!up || docker(['version']).status !== 0) throw new Error(`dockerd did not start\n${logTail()}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, ids, docker, dockerOk, logTail, stop };
}
