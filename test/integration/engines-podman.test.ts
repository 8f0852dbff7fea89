/**
 * A real podman (Debian's 4.3, with conmon) on berth-oci: private --root/--runroot/--tmpdir
 * (file locks under tmpdir, not the host's /dev/shm/libpod_lock), cgroupfs, a file events
 * backend, `--runtime bin/berth-oci` (which podman runs without --root: berth-oci's default). Runs the
 * busybox and multilayer test images (`podman load` of the docker-archives: nothing is
 * pulled), detached + exec (+ exit code), pause, stop, and `-it` / `exec -it` on a real
 * pseudo-terminal. Needs root.
 */
import assert from 'node:assert/strict';
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
  removeEngineDir,
  runtimeForEngine,
  shellSteps,
  splitHostname,
  stopPid,
  which,
} from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';
import { BERTH_OCI, isRoot } from '../helpers/runtime.js';

const PODMAN = which('podman');
const skip = !isRoot ? 'needs root' : !PODMAN || !which('conmon') ? 'needs podman and conmon (Debian podman)' : false;

let dir = '';
let env: NodeJS.ProcessEnv = {};
let global: string[] = [];
let runOpts: string[] = [];
const ids: string[] = [];
let cgroupsBefore = new Set<string>();

/** The hard limit of a resource for this process, from /proc/self/limits (undefined = unlimited). */
function hardLimit(name: string): number | undefined {
  const line = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? undefined : Number(hard);
}

function podman(args: string[], timeoutMs = 60_000): CmdResult {
  return cmd(PODMAN!, [...global, ...args], { env, timeoutMs });
}
function podmanOk(args: string[], timeoutMs = 60_000): string {
  const r = podman(args, timeoutMs);
  // stdout too: an exec exit 255 with nothing on stderr was berth-oci writing pid 0 to conmon's pid
  // file (fixed in src/runtime/launch.ts); BERTH_ENGINE_TRACE=1 logs berth-oci's calls.
  assert.equal(r.status, 0, `podman ${args.join(' ')}: stderr ${JSON.stringify(r.stderr)}, stdout ${JSON.stringify(r.stdout)}`);
  return r.stdout;
}
/**
 * berth-oci's own view. podman gives the runtime no --root (and `--runtime-flag root=…` does
 * not reach the `delete` that conmon's exit command runs), so it is berth-oci's default root.
 */
const berthList = (): { id: string; status: string; pid: number; bundle?: string }[] => {
  const r = cmd(BERTH_OCI, ['list', '--format', 'json']);
  return r.status === 0 ? (JSON.parse(r.stdout) as { id: string; status: string; pid: number; bundle?: string }[]) : [];
};

function setUp(): void {
  dir = fs.mkdtempSync('/tmp/berth-podman-');
  for (const d of ['root', 'runroot', 'tmp', 'net']) fs.mkdirSync(path.join(dir, d));
  // No search registries: a short name never resolves to a registry, and nothing is pulled.
  fs.writeFileSync(path.join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  fs.writeFileSync(path.join(dir, 'containers.conf'), '[engine]\nlock_type = "file"\n');
  env = { ...process.env, CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'), CONTAINERS_CONF: path.join(dir, 'containers.conf') };
  delete env.CONTAINERS_STORAGE_CONF;
  delete env.CONTAINER_HOST;
  global = [
    '--root', path.join(dir, 'root'),
    '--runroot', path.join(dir, 'runroot'),
    '--tmpdir', path.join(dir, 'tmp'),
    '--network-config-dir', path.join(dir, 'net'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--storage-driver', 'overlay',
    '--runtime', runtimeForEngine(dir, BERTH_OCI),
  ];
  // podman asks for RLIMIT_NOFILE/NPROC of 1048576, which root without CAP_SYS_RESOURCE
  // (sandboxes, CI) may not raise to: ask for this process's hard limits instead.
  const nofile = hardLimit('Max open files') ?? 1048576;
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const nproc = Math.min(hardLimit('Max processes') ?? pidMax, pidMax);
  runOpts = ['--pull', 'never', '--network', 'none', '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
}

async function tearDown(): Promise<void> {
  if (!dir) return;
  const left = podman(['ps', '-aq', '--no-trunc'], 30_000).stdout.split('\n').filter(Boolean);
  ids.push(...left);
  if (left.length) podman(['rm', '-f', '-t', '0', ...left], 60_000);
  podman(['rmi', '-af'], 60_000);
  // conmon (and anything else started for containers under dir) outlives a failed podman.
  for (const pid of pidsMentioning(dir)) await stopPid(pid, 5_000);
  // Our containers berth-oci still has (in its default root), if podman failed to delete them.
  const mine = new Set(ids.map((id) => id.trim()));
  for (const c of berthList()) if (mine.has(c.id) || c.bundle?.startsWith(dir + '/')) cmd(BERTH_OCI, ['delete', '--force', c.id]);
  removeEngineDir(dir, ['libpod_parent'], ids, cgroupsBefore);
}

describe('podman 4.3 with --runtime berth-oci', { skip, timeout: 600_000 }, () => {
  before(() => {
    cgroupsBefore = existingCgroups(['libpod_parent', 'libpod_parent/conmon']);
    const images = testImagesDir();
    setUp();
    for (const name of ['busybox', 'multilayer']) {
      const out = podmanOk(['load', '-q', '-i', path.join(images, 'docker-archive', `${name}.tar`)]);
      assert.match(out, new RegExp(`Loaded image: docker.io/library/${name}:latest`));
    }
  });
  after(tearDown);

  it('podman run --rm busybox echo hi', () => {
    assert.equal(podmanOk(['run', '--rm', ...runOpts, 'busybox', 'echo', 'hi']), 'hi\n');
    assert.match(podmanOk(['run', '--rm', ...runOpts, 'busybox', 'id']), /^uid=0\(root\) gid=0\(root\)/);
  });

  it('podman run multilayer: entrypoint, cmd, cwd, user and groups, env, hostname', () => {
    const { rest, hostname } = splitHostname(podmanOk(['run', '--rm', ...runOpts, 'multilayer']));
    assert.equal(rest, MULTILAYER_EXPECTED);
    assert.match(hostname ?? '', /^[0-9a-f]{12}$/);
    const named = splitHostname(podmanOk(['run', '--rm', ...runOpts, '--hostname', 'berth-host', 'multilayer', 'x', 'y z']));
    assert.equal(named.hostname, 'berth-host');
    assert.match(named.rest, /^args:x y z$/m);
  });

  it('podman run multilayer: whiteouts, opaque directory, overwritten file', () => {
    assert.equal(podmanOk(['run', '--rm', ...runOpts, '--entrypoint', 'sh', 'multilayer', '-c', MULTILAYER_LAYERS_CMD]), MULTILAYER_LAYERS_EXPECTED);
  });

  it('podman run exit codes', () => {
    assert.equal(podman(['run', '--rm', ...runOpts, 'busybox', 'sh', '-c', 'exit 42']).status, 42);
    const missing = podman(['run', '--rm', ...runOpts, 'busybox', 'no-such-program']);
    assert.equal(missing.status, 127, missing.stderr);
  });

  it('podman run -d, exec (exit code, user, env), pause, stop, rm; berth-oci runs it', async () => {
    const id = podmanOk(['run', '-d', ...runOpts, 'busybox', 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']).trim();
    ids.push(id);
    assert.equal(podmanOk(['inspect', '-f', '{{.OCIRuntime}}', id]).trim(), runtimeForEngine(dir, BERTH_OCI));
    const listed = berthList().find((c) => c.id === id);
    assert.ok(listed, `berth-oci list shows the container: ${JSON.stringify(berthList())}`);
    assert.equal(listed.status, 'running');
    assert.equal(Number(podmanOk(['inspect', '-f', '{{.State.Pid}}', id]).trim()), listed.pid);

    const ex = podman(['exec', id, 'sh', '-c', 'echo in-exec; echo err >&2; exit 7']);
    assert.equal(ex.status, 7, ex.stderr);
    assert.equal(ex.stdout, 'in-exec\n');
    assert.equal(ex.stderr, 'err\n');
    assert.equal(podmanOk(['exec', '-u', 'nobody', '-w', '/tmp', '-e', 'FOO=bar', id, 'sh', '-c', 'id -u; pwd; echo $FOO']), '65534\n/tmp\nbar\n');

    podmanOk(['pause', id]);
    assert.equal(podmanOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'paused');
    podmanOk(['unpause', id]);
    assert.equal(podmanOk(['exec', id, 'echo', 'after-unpause']), 'after-unpause\n');

    const t0 = Date.now();
    podmanOk(['stop', '-t', '10', id]);
    assert.ok(Date.now() - t0 < 8000, 'the container stopped on SIGTERM, not the timeout');
    assert.equal(podmanOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id]).trim(), 'exited 0');
    podmanOk(['rm', id]);
    assert.ok(await poll(() => !berthList().some((c) => c.id === id), 10_000), 'berth-oci no longer has the container');
  });

  it('podman run -it: a TTY at /dev/pts/0, typed input reaches the shell, exit code', () => {
    const r = ptyRun([PODMAN!, ...global, 'run', '-it', '--rm', ...runOpts, 'busybox', 'sh'], shellSteps(3), { env });
    assert.equal(r.status, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /\r\n\/dev\/pts\/0\r\n/);
    assert.match(r.stdout, /typed-42/);
  });

  it('podman exec -it: a TTY in a running container, typed input reaches the shell', () => {
    const id = podmanOk(['run', '-d', ...runOpts, 'busybox', 'sleep', '300']).trim();
    ids.push(id);
    try {
      const r = ptyRun([PODMAN!, ...global, 'exec', '-it', id, 'sh'], shellSteps(4), { env });
      assert.equal(r.status, 4, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /\r\n\/dev\/pts\/\d+\r\n/);
      assert.match(r.stdout, /typed-42/);
    } finally {
      podman(['rm', '-f', '-t', '0', id]);
    }
  });
});
