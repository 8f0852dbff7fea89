/**
 * A real Docker on berth-oci: a private dockerd 20.10 (Debian's docker.io) with its own
 * containerd, data-root, exec-root and socket under a temp dir, no bridge, no iptables, and
 * `--add-runtime berth=bin/berth-oci`. The docker CLI runs the busybox and multilayer test
 * images (loaded with `docker load`, no registry, no network) with `--runtime berth`:
 * plain runs, the multilayer image's config and whiteouts, detached + exec (+ its exit code),
 * top, pause, stop, and `-it` / `exec -it` on a real pseudo-terminal. Needs root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  cmd,
  type CmdResult,
  existingCgroups,
  MULTILAYER_EXPECTED,
  MULTILAYER_LAYERS_CMD,
  MULTILAYER_LAYERS_EXPECTED,
  pidsMentioning,
  poll,
  ptyRun,
  removeCgroups,
  runtimeForEngine,
  shellSteps,
  splitHostname,
  stopPid,
  unmountUnder,
  which,
} from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';
import { BERTH_OCI, isRoot } from '../helpers/runtime.js';

const DOCKERD = which('dockerd');
const CONTAINERD = which('containerd');
// The preinstalled docker CLI (v28) if there is one, else Debian's (20.10, from docker.io).
const DOCKER = which('/usr/local/bin/docker', 'docker');
const skip = !isRoot ? 'needs root' : !DOCKERD || !CONTAINERD || !DOCKER ? 'needs dockerd, containerd and docker (Debian docker.io)' : false;

let dir = '';
let env: NodeJS.ProcessEnv = {};
let containerdPid: number | undefined;
let dockerdPid: number | undefined;
const ids: string[] = [];
let cgroupsBefore = new Set<string>();

function docker(args: string[], timeoutMs = 60_000): CmdResult {
  return cmd(DOCKER!, args, { env, timeoutMs });
}
/** docker …, which must succeed; returns stdout. */
function dockerOk(args: string[], timeoutMs = 60_000): string {
  const r = docker(args, timeoutMs);
  assert.equal(r.status, 0, `docker ${args.join(' ')}: ${r.stderr}\n${daemonLogTail()}`);
  return r.stdout;
}
function daemonLogTail(): string {
  const tail = (f: string): string => {
    try {
      return fs.readFileSync(f, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  };
  return `--- dockerd.log ---\n${tail(path.join(dir, 'dockerd.log'))}\n--- containerd.log ---\n${tail(path.join(dir, 'containerd.log'))}`;
}
const RUN = ['run', '--runtime', 'berth', '--network', 'none'];

/** berth-oci's own view: the root dockerd gives the runtime is <exec-root>/runtime-<name>/moby. */
function berthList(): { id: string; status: string; pid: number }[] {
  const execRoot = path.join(dir, 'exec');
  const roots = fs.existsSync(execRoot) ? fs.readdirSync(execRoot).filter((d) => d.startsWith('runtime-')) : [];
  return roots.flatMap((r) => {
    const res = cmd(BERTH_OCI, ['--root', path.join(execRoot, r, 'moby'), 'list', '--format', 'json']);
    return res.status === 0 ? (JSON.parse(res.stdout) as { id: string; status: string; pid: number }[]) : [];
  });
}

async function startDaemons(): Promise<void> {
  dir = fs.mkdtempSync('/tmp/berth-dockerd-');
  for (const d of ['containerd', 'data', 'exec', 'cli']) fs.mkdirSync(path.join(dir, d));
  env = { ...process.env, DOCKER_HOST: `unix://${dir}/docker.sock`, DOCKER_CONFIG: path.join(dir, 'cli') };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
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
  // The runtime, by daemon.json rather than --add-runtime: the same thing, and it shows in `docker info`.
  fs.writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify({ runtimes: { berth: { path: runtimeForEngine(dir, BERTH_OCI) } } }));

  const log = (name: string): number => fs.openSync(path.join(dir, name), 'a');
  const ctr = spawn(CONTAINERD!, ['--config', path.join(dir, 'containerd.toml')], { stdio: ['ignore', log('containerd.log'), log('containerd.log')], detached: true });
  containerdPid = ctr.pid;
  ctr.unref();
  assert.ok(await poll(() => fs.existsSync(`${c}/containerd.sock`), 20_000), `containerd did not start\n${daemonLogTail()}`);

  const dockerd = spawn(
    DOCKERD!,
    [
      '--config-file', path.join(dir, 'daemon.json'),
      '--containerd', `${c}/containerd.sock`,
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'dockerd.pid'),
      '-H', `unix://${dir}/docker.sock`,
      '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--userland-proxy=false',
    ],
    { stdio: ['ignore', log('dockerd.log'), log('dockerd.log')], detached: true },
  );
  dockerdPid = dockerd.pid;
  dockerd.unref();
  const up = await poll(() => {
    if (dockerdPid && !fs.existsSync(`/proc/${dockerdPid}`)) return true;
    return docker(['version'], 10_000).status === 0;
  }, 60_000, 200);
  assert.ok(up && docker(['version']).status === 0, `dockerd did not start\n${daemonLogTail()}`);
}

async function stopDaemons(): Promise<void> {
  if (!dir) return;
  if (dockerdPid && fs.existsSync(`${dir}/docker.sock`)) {
    const left = docker(['ps', '-aq', '--no-trunc'], 20_000).stdout.split('\n').filter(Boolean);
    ids.push(...left);
    if (left.length) docker(['rm', '-f', ...left], 60_000);
  }
  await stopPid(dockerdPid, 30_000);
  await stopPid(containerdPid, 20_000);
  // Shims (and anything else) started for containers under dir outlive containerd: stop them.
  for (const pid of pidsMentioning(dir)) await stopPid(pid, 5_000);
  // Containers berth-oci still knows of (if a shim died without deleting them).
  const execRoot = path.join(dir, 'exec');
  for (const r of fs.existsSync(execRoot) ? fs.readdirSync(execRoot).filter((d) => d.startsWith('runtime-')) : []) {
    const root = path.join(execRoot, r, 'moby');
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) cmd(BERTH_OCI, ['--root', root, 'delete', '--force', id]);
  }
  unmountUnder(dir);
  removeCgroups(['docker'], ids, cgroupsBefore);
  if (!process.env.BERTH_KEEP_ENGINE_DIRS) fs.rmSync(dir, { recursive: true, force: true });
}

describe('docker (dockerd 20.10 + containerd) with --runtime berth', { skip, timeout: 600_000 }, () => {
  before(async () => {
    cgroupsBefore = existingCgroups(['docker']);
    const images = testImagesDir();
    await startDaemons();
    for (const name of ['busybox', 'multilayer']) {
      const out = dockerOk(['load', '-i', path.join(images, 'docker-archive', `${name}.tar`)]);
      assert.match(out, new RegExp(`Loaded image: ${name}:latest`));
    }
    const runtimes = dockerOk(['info', '--format', '{{json .Runtimes}}']);
    assert.match(runtimes, /"berth"/, 'dockerd knows the berth runtime');
  });
  after(stopDaemons);

  it('docker run --rm busybox echo hi', () => {
    assert.equal(dockerOk([...RUN, '--rm', 'busybox', 'echo', 'hi']), 'hi\n');
    assert.equal(dockerOk([...RUN, '--rm', 'busybox', 'id']), 'uid=0(root) gid=0(root) groups=0(root)\n');
  });

  it('docker run multilayer: entrypoint, cmd, cwd, user and groups, env, hostname', () => {
    const { rest, hostname } = splitHostname(dockerOk([...RUN, '--rm', 'multilayer']));
    assert.equal(rest, MULTILAYER_EXPECTED);
    assert.match(hostname ?? '', /^[0-9a-f]{12}$/, 'docker names the host after the container id');
    const named = splitHostname(dockerOk([...RUN, '--rm', '--hostname', 'berth-host', 'multilayer', 'x', 'y z']));
    assert.equal(named.hostname, 'berth-host');
    assert.match(named.rest, /^args:x y z$/m);
  });

  it('docker run multilayer: whiteouts, opaque directory, overwritten file', () => {
    assert.equal(dockerOk([...RUN, '--rm', '--entrypoint', 'sh', 'multilayer', '-c', MULTILAYER_LAYERS_CMD]), MULTILAYER_LAYERS_EXPECTED);
  });

  it('docker run exit codes', () => {
    assert.equal(docker([...RUN, '--rm', 'busybox', 'sh', '-c', 'exit 42']).status, 42);
    const missing = docker([...RUN, '--rm', 'busybox', 'no-such-program']);
    assert.equal(missing.status, 127, missing.stderr);
  });

  it('docker run -d, exec (exit code, user, env), top, pause, stop, rm; berth-oci runs it', async () => {
    const id = dockerOk([...RUN, '-d', 'busybox', 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']).trim();
    ids.push(id);
    assert.equal(dockerOk(['inspect', '-f', '{{.HostConfig.Runtime}}', id]).trim(), 'berth');
    const listed = berthList().find((c) => c.id === id);
    assert.ok(listed, `berth-oci list shows the container: ${JSON.stringify(berthList())}`);
    assert.equal(listed.status, 'running');
    assert.equal(Number(dockerOk(['inspect', '-f', '{{.State.Pid}}', id]).trim()), listed.pid);

    const ex = docker(['exec', id, 'sh', '-c', 'echo in-exec; echo err >&2; exit 7']);
    assert.equal(ex.status, 7, ex.stderr);
    assert.equal(ex.stdout, 'in-exec\n');
    assert.equal(ex.stderr, 'err\n');
    assert.equal(dockerOk(['exec', '-u', 'nobody', '-w', '/tmp', '-e', 'FOO=bar', id, 'sh', '-c', 'id -u; pwd; echo $FOO']), '65534\n/tmp\nbar\n');
    assert.equal(dockerOk(['exec', id, 'cat', '/etc/hostname']).trim(), id.slice(0, 12));

    const top = dockerOk(['top', id]);
    assert.match(top, /while :/, 'docker top (berth-oci ps) lists the container process');

    dockerOk(['pause', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'paused');
    dockerOk(['unpause', id]);
    assert.equal(dockerOk(['exec', id, 'echo', 'after-unpause']), 'after-unpause\n');

    const t0 = Date.now();
    dockerOk(['stop', '-t', '10', id]);
    assert.ok(Date.now() - t0 < 8000, 'the container stopped on SIGTERM, not the timeout');
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id]).trim(), 'exited 0');
    dockerOk(['rm', id]);
    assert.ok(await poll(() => !berthList().some((c) => c.id === id), 10_000), 'berth-oci no longer has the container');
  });

  it('docker kill of a container ignoring SIGTERM; docker stop falls back to SIGKILL', () => {
    const id = dockerOk([...RUN, '-d', 'busybox', 'sleep', '300']).trim();
    ids.push(id);
    dockerOk(['stop', '-t', '1', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id]).trim(), 'exited 137');
    dockerOk(['start', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'running');
    dockerOk(['kill', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'exited');
    dockerOk(['rm', id]);
  });

  it('docker run -it: a TTY at /dev/pts/0, typed input reaches the shell, exit code', () => {
    const r = ptyRun([DOCKER!, ...RUN, '-it', '--rm', 'busybox', 'sh'], shellSteps(3), { env });
    assert.equal(r.status, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /\r\n\/dev\/pts\/0\r\n/);
    assert.match(r.stdout, /typed-42/);
  });

  it('docker exec -it: a TTY in a running container, typed input reaches the shell', () => {
    const id = dockerOk([...RUN, '-d', 'busybox', 'sleep', '300']).trim();
    ids.push(id);
    try {
      const r = ptyRun([DOCKER!, 'exec', '-it', id, 'sh'], shellSteps(4), { env });
      assert.equal(r.status, 4, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /\r\n\/dev\/pts\/\d+\r\n/);
      assert.match(r.stdout, /typed-42/);
      // -t alone (no -i): still a terminal, output only.
      const t = docker(['exec', '-t', id, 'tty']);
      assert.equal(t.status, 0, t.stderr);
      assert.match(t.stdout, /^\/dev\/pts\/\d+\r?\n$/);
    } finally {
      docker(['rm', '-f', id]);
    }
  });
});
