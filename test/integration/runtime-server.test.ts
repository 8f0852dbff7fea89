/**
 * The berth-oci server (src/runtime/cli/server.ts) and its native client (bin/berth-oci ->
 * native/build/berth-oci): the first command starts a server, the next ones run in it with
 * the caller's stdio, fds, signals, working directory and exit status; what it does not serve
 * (hooks, other namespaces, a dead server) runs in Node as before. Needs root and the test images.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { Spec } from '../../src/runtime/spec/config.js';
import { makeBundle, type TestBundle } from '../helpers/images.js';
import { rawRequest } from '../helpers/command-server.js';
import { BERTH_OCI, isRoot, OciCli, uniqueId, waitFor, type Result } from '../helpers/runtime.js';

const serverDir = `/run/berth-oci-server-t-${process.pid}`;
const env = { ...process.env, BERTH_OCI_SERVER_DIR: serverDir, BERTH_OCI_SERVER_IDLE_MS: '30000' };
const bundles: TestBundle[] = [];

function bundle(args: string[], edit?: (spec: Spec) => void): TestBundle {
  const b = makeBundle({ args, edit });
  bundles.push(b);
  return b;
}

const cli = new OciCli();
const oci = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Result => cli.run(args, { env, ...opts });

function serverPids(): number[] {
  const r = spawnSync('pgrep', ['-f', `berth-oci-serve ${serverDir}/`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

function socketFile(): string | undefined {
  return fs.existsSync(serverDir) ? fs.readdirSync(serverDir).find((f) => f.endsWith('.sock')) : undefined;
}

/** Whether the command ran in the server: with --debug, it logs so (cli.ts). */
function servedRun(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Result & { served: boolean } {
  const log = path.join(os.tmpdir(), `berth-oci-log-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const r = oci(['--debug', '--log', log, ...args], opts);
    const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    return { ...r, served: text.includes('run by the berth-oci server') && !text.includes('hands the command back') };
  } finally {
    fs.rmSync(log, { force: true });
  }
}

/** Runs commands until one is served (the first starts the server, which takes a moment to listen). */
async function untilServed(args: () => string[]): Promise<void> {
  await waitFor(() => servedRun(args()).served, 15_000, 'a command run by the berth-oci server');
}

describe('berth-oci server', { skip: !isRoot && 'needs root' }, () => {
  let trueBundle: TestBundle;
  before(async () => {
    trueBundle = bundle(['true']);
    await untilServed(() => ['run', '--bundle', trueBundle.dir, uniqueId('srv')]);
  });
  after(() => {
    for (const id of fs.existsSync(cli.root) ? fs.readdirSync(cli.root) : []) oci(['delete', '--force', id], { env: { ...env, BERTH_OCI_SERVER: '0' } });
    spawnSync('pkill', ['-f', `berth-oci-serve ${serverDir}/`]);
    fs.rmSync(serverDir, { recursive: true, force: true });
    fs.rmSync(cli.root, { recursive: true, force: true });
    for (const b of bundles) b.remove();
  });

  it('keeps its socket and log in a directory only root can enter', () => {
    const st = fs.statSync(serverDir);
    assert.equal(st.mode & 0o777, 0o700);
    const sock = socketFile();
    assert.ok(sock, 'a socket');
    assert.equal(fs.statSync(path.join(serverDir, sock)).mode & 0o777, 0o600);
    assert.equal(serverPids().length, 1);
    // Started from a bundle directory, it does not stay there (a mount of it would be busy).
    assert.equal(fs.readlinkSync(`/proc/${serverPids()[0]}/cwd`), '/');
  });

  it('runs a container with the caller\'s stdio and exit status, relative paths against its cwd', () => {
    const b = bundle(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    const id = uniqueId('srv');
    const r = servedRun(['run', '--pid-file', 'rel.pid', id], { cwd: b.dir });
    assert.ok(r.served, 'served');
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /^err$/m);
    assert.ok(Number(fs.readFileSync(path.join(b.dir, 'rel.pid'), 'utf8')) > 0, 'pid file written relative to the caller\'s cwd');
    assert.ok(!fs.existsSync(path.join(cli.root, id)), 'run deleted its container');
  });

  it('reports errors on the caller\'s stderr with runc\'s exit status', () => {
    const r = servedRun(['state', 'no-such-container']);
    assert.ok(r.served);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /berth-oci: .*no-such-container/);
  });

  it('passes preserved fds, and the container descends from the caller', async () => {
    // PID 1 gets no default signal actions: the shell traps SIGTERM and waits interruptibly.
    const b = bundle(['sh', '-c', 'trap "exit 42" TERM; echo through-fd-3 >&3; sleep 30 & wait']);
    const id = uniqueId('srv');
    const file = path.join(b.dir, 'fd3');
    const fd = fs.openSync(file, 'w');
    const child = spawn(BERTH_OCI, ['--root', cli.root, 'run', '--preserve-fds', '1', '--bundle', b.dir, id], { env, stdio: ['ignore', 'ignore', 'pipe', fd] });
    fs.closeSync(fd);
    try {
      await waitFor(() => fs.readFileSync(file, 'utf8') === 'through-fd-3\n', 10_000, 'the write to fd 3');
      const state = JSON.parse(oci(['state', id]).stdout) as { pid: number };
      // The container's init -> berth-nsexec (stage 0, foreground) -> the client we spawned.
      const ppid = (pid: number): number => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      assert.equal(ppid(ppid(state.pid)), child.pid);
      // A signal to the client reaches the container, whose status the client exits with.
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 42);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('create, start, exec, kill and delete as separate commands', () => {
    const b = bundle(['sleep', '300']);
    const id = uniqueId('srv');
    assert.equal(servedRun(['create', '--bundle', b.dir, id]).status, 0);
    assert.equal((JSON.parse(oci(['state', id]).stdout) as { status: string }).status, 'created');
    assert.equal(servedRun(['start', id]).status, 0);
    const e = servedRun(['exec', id, 'sh', '-c', 'echo in-exec; exit 3']);
    assert.ok(e.served);
    assert.equal(e.status, 3);
    assert.equal(e.stdout, 'in-exec\n');
    assert.equal(servedRun(['kill', id, 'KILL']).status, 0);
    assert.equal(servedRun(['delete', '--force', id]).status, 0);
    assert.ok(!fs.existsSync(path.join(cli.root, id)));
  });

  it('runs a container with hooks in Node instead (a hook may call berth-oci back)', () => {
    const marker = path.join(os.tmpdir(), `berth-hook-${process.pid}`);
    // The hook asks the runtime for the state, which a server busy running the hook could not answer.
    const hook = `${BERTH_OCI} --root ${cli.root} list -q > ${marker}`;
    const b = bundle(['true'], (spec) => {
      spec.hooks = { poststart: [{ path: '/bin/sh', args: ['sh', '-c', hook], env: Object.entries(env).map(([k, v]) => `${k}=${v}`) }] };
    });
    const id = uniqueId('srv');
    try {
      const r = servedRun(['run', '--bundle', b.dir, id]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!r.served, 'not served');
      assert.match(fs.readFileSync(marker, 'utf8'), new RegExp(id));
    } finally {
      fs.rmSync(marker, { force: true });
    }
  });

  it('refuses a client from other namespaces (it runs the command itself)', async () => {
    const sock = path.join(serverDir, socketFile()!);
    const reply = await rawRequest(sock, ['/', 'mnt:1 pid:1 user:1 cgroup:1 net:1 root:1:1', 'list']);
    assert.equal(reply, 'fallback namespaces\n');
  });

  it('a dead server is replaced: its command runs in Node, a new server takes over', async () => {
    for (const pid of serverPids()) process.kill(pid, 'SIGKILL');
    await waitFor(() => serverPids().length === 0, 5000, 'the server gone');
    assert.ok(socketFile(), 'its socket file stayed');
    const r = servedRun(['run', '--bundle', trueBundle.dir, uniqueId('srv')]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.served);
    await untilServed(() => ['run', '--bundle', trueBundle.dir, uniqueId('srv')]);
    assert.equal(serverPids().length, 1);
  });

  it('a server that stops removes its socket, and its log when nothing went wrong', async () => {
    await untilServed(() => ['run', '--bundle', trueBundle.dir, uniqueId('srv')]);
    for (const pid of serverPids()) process.kill(pid, 'SIGTERM');
    await waitFor(() => serverPids().length === 0, 5000, 'the server gone');
    assert.deepEqual(fs.readdirSync(serverDir), []);
  });

  it('BERTH_OCI_SERVER=0 keeps every command in Node', () => {
    const r = servedRun(['run', '--bundle', trueBundle.dir, uniqueId('srv')], { env: { ...env, BERTH_OCI_SERVER: '0' } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.served);
  });
});
