/**
 * A real Docker on berth-oci: a private dockerd 20.10 (Debian's docker.io) with its own
 * containerd, data-root, exec-root and socket under a temp dir (test/helpers/engines.ts), no
 * bridge, no iptables, and berth-oci registered as runtime `berth` in daemon.json. The docker
 * CLI runs the busybox and multilayer test images (loaded with `docker load`, no registry, no
 * network) with `--runtime berth`:
 * plain runs, the multilayer image's config and whiteouts, detached + exec (+ its exit code),
 * top, pause, stop, and `-it` / `exec -it` on a real pseudo-terminal. Needs root.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  cmd,
  type CmdResult,
  DOCKER,
  dockerdSkip as skip,
  MULTILAYER_EXPECTED,
  MULTILAYER_LAYERS_CMD,
  MULTILAYER_LAYERS_EXPECTED,
  poll,
  type PrivateDockerd,
  ptyRun,
  runtimeForEngine,
  shellSteps,
  splitHostname,
  startPrivateDockerd,
} from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';
import { BERTH_OCI } from '../helpers/runtime.js';

let engine: PrivateDockerd | undefined;
const docker = (args: string[], timeoutMs?: number): CmdResult => engine!.docker(args, timeoutMs);
/** docker …, which must succeed; returns stdout. */
const dockerOk = (args: string[], timeoutMs?: number): string => engine!.dockerOk(args, timeoutMs);
const RUN = ['run', '--runtime', 'berth', '--network', 'none'];

/** berth-oci's own view: the root dockerd gives the runtime is <exec-root>/runtime-<name>/moby. */
function berthList(): { id: string; status: string; pid: number }[] {
  const execRoot = path.join(engine!.dir, 'exec');
  const roots = fs.existsSync(execRoot) ? fs.readdirSync(execRoot).filter((d) => d.startsWith('runtime-')) : [];
  return roots.flatMap((r) => {
    const res = cmd(BERTH_OCI, ['--root', path.join(execRoot, r, 'moby'), 'list', '--format', 'json']);
    return res.status === 0 ? (JSON.parse(res.stdout) as { id: string; status: string; pid: number }[]) : [];
  });
}

describe('docker (dockerd 20.10 + containerd) with --runtime berth', { skip, timeout: 600_000 }, () => {
  before(async () => {
    const images = testImagesDir();
    engine = await startPrivateDockerd({ runtimes: (dir) => ({ berth: runtimeForEngine(dir, BERTH_OCI) }) });
    for (const name of ['busybox', 'multilayer']) {
      const out = dockerOk(['load', '-i', path.join(images, 'docker-archive', `${name}.tar`)]);
      assert.match(out, new RegExp(`Loaded image: ${name}:latest`));
    }
    const runtimes = dockerOk(['info', '--format', '{{json .Runtimes}}']);
    assert.match(runtimes, /"berth"/, 'dockerd knows the berth runtime');
  });
  after(() => engine?.stop());

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
    engine!.ids.push(id);
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
    engine!.ids.push(id);
    dockerOk(['stop', '-t', '1', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id]).trim(), 'exited 137');
    dockerOk(['start', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'running');
    dockerOk(['kill', id]);
    assert.equal(dockerOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'exited');
    dockerOk(['rm', id]);
  });

  it('docker run -it: a TTY at /dev/pts/0, typed input reaches the shell, exit code', () => {
    const r = ptyRun([DOCKER!, ...RUN, '-it', '--rm', 'busybox', 'sh'], shellSteps(3), { env: engine!.env });
    assert.equal(r.status, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /\r\n\/dev\/pts\/0\r\n/);
    assert.match(r.stdout, /typed-42/);
  });

  it('docker exec -it: a TTY in a running container, typed input reaches the shell', () => {
    const id = dockerOk([...RUN, '-d', 'busybox', 'sleep', '300']).trim();
    engine!.ids.push(id);
    try {
      const r = ptyRun([DOCKER!, 'exec', '-it', id, 'sh'], shellSteps(4), { env: engine!.env });
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
