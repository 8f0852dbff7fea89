/**
 * berth-oci's lifecycle as runc has it: create/start/state/kill/delete, run, exec, pause,
 * ps, list, exit codes, the console socket, and that nothing is left behind after delete,
 * after a failed create, or after bad input. Needs root and the test images.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import type { Spec } from '../../src/runtime/spec/config.js';
import { makeBundle, type TestBundle } from '../helpers/images.js';
import { BERTH_OCI, isRoot, OciCli, uniqueId, waitFor } from '../helpers/runtime.js';

const cli = new OciCli();
const bundles: TestBundle[] = [];

function bundle(args: string[], edit?: (spec: Spec) => void): TestBundle {
  const b = makeBundle({ args, edit });
  bundles.push(b);
  return b;
}

interface OciState {
  id: string;
  status: string;
  pid: number;
  bundle: string;
  ociVersion: string;
}
const state = (id: string): OciState => JSON.parse(cli.run(['state', id]).stdout) as OciState;

/** The container's cgroup directories, read from its init's /proc/<pid>/cgroup. */
function cgroupDirs(pid: number): string[] {
  return fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(':'))
    .filter(([, controllers]) => ['memory', 'pids', 'cpu', 'freezer'].includes(controllers))
    .map(([, controllers, p]) => path.join('/sys/fs/cgroup', controllers, p));
}

describe('berth-oci lifecycle', { skip: !isRoot && 'needs root' }, () => {
  before(() => {
    bundle(['true']);
  });
  after(() => {
    cli.cleanup();
    for (const b of bundles) b.remove();
  });

  it('create leaves the process waiting; start runs it; kill and delete remove everything', async () => {
    const b = bundle(['sleep', '300']);
    const id = uniqueId('life');
    const pidFile = path.join(b.dir, 'pid');
    const created = cli.run(['create', '--bundle', b.dir, '--pid-file', pidFile, id]);
    assert.equal(created.status, 0, created.stderr);
    const s1 = state(id);
    assert.equal(s1.status, 'created');
    assert.equal(s1.id, id);
    assert.equal(s1.bundle, b.dir);
    assert.equal(fs.readFileSync(pidFile, 'utf8'), String(s1.pid));
    assert.doesNotMatch(fs.readFileSync(`/proc/${s1.pid}/cmdline`, 'utf8'), /sleep/, 'the user program has not run yet');
    const dirs = cgroupDirs(s1.pid);
    assert.ok(dirs.length >= 3 && dirs.every((d) => d.includes(id) && fs.existsSync(d)), `own cgroups: ${dirs}`);

    assert.equal(cli.run(['start', id]).status, 0);
    assert.equal(state(id).status, 'running');
    assert.match(fs.readFileSync(`/proc/${s1.pid}/cmdline`, 'utf8'), /^sleep\x00300/);
    const again = cli.run(['start', id]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already running/);

    const refused = cli.run(['delete', id]);
    assert.equal(refused.status, 1, 'a running container is not deleted without --force');
    assert.match(refused.stderr, /not stopped/);

    assert.equal(cli.run(['kill', id, 'KILL']).status, 0);
    await waitFor(() => state(id).status === 'stopped', 5000, 'stopped');
    assert.equal(cli.run(['delete', id]).status, 0);
    const gone = cli.run(['state', id]);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /does not exist/);
    assert.ok(dirs.every((d) => !fs.existsSync(d)), 'cgroups removed');
    assert.deepEqual(fs.readdirSync(cli.root), [], 'state removed');
  });

  it('run returns the exit status of the container process (128+n for a signal)', async () => {
    const exitId = uniqueId('exit');
    assert.equal(cli.run(['run', '-b', bundle(['sh', '-c', 'exit 42']).dir, exitId]).status, 42);
    const sigId = uniqueId('sig');
    const running = cli.start(['run', '-b', bundle(['sleep', '300']).dir, sigId]);
    await waitFor(() => cli.run(['state', sigId]).stdout.includes('"running"'), 5000, 'running');
    assert.equal(cli.run(['kill', sigId, 'SIGKILL']).status, 0);
    assert.equal((await running).status, 137);
    assert.ok(!fs.existsSync(path.join(cli.root, exitId)) && !fs.existsSync(path.join(cli.root, sigId)), 'run deletes the container');
  });

  it('exec runs a process in the namespaces of a running container', () => {
    const b = bundle(['sleep', '300'], (s) => (s.hostname = 'exec-host'));
    const id = uniqueId('exec');
    assert.equal(cli.run(['run', '-d', '-b', b.dir, id]).status, 0);
    const r = cli.run(['exec', id, 'sh', '-c', 'hostname; echo $$; ls /proc | grep -c "^[0-9]"']);
    assert.equal(r.status, 0, r.stderr);
    const [host, pid, procs] = r.stdout.trim().split('\n');
    assert.equal(host, 'exec-host');
    assert.notEqual(pid, '1');
    assert.ok(Number(procs) <= 5, `sees only the container pid namespace: ${procs}`);
    assert.equal(cli.run(['exec', id, 'sh', '-c', 'exit 7']).status, 7);
    const processJson = path.join(b.dir, 'process.json');
    fs.writeFileSync(processJson, JSON.stringify({ ...b.spec.process, args: ['sh', '-c', 'echo from-json $FOO'], env: ['PATH=/bin', 'FOO=bar'], terminal: false }));
    const viaJson = cli.run(['exec', '--process', processJson, id]);
    assert.equal(viaJson.stdout.trim(), 'from-json bar', viaJson.stderr);
    const missing = cli.run(['exec', id, 'no-such-program']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /executable file not found/);
    assert.equal(cli.run(['delete', '-f', id]).status, 0);
  });

  it("gives the process one value per variable, the last given, and HOME from the container's passwd when it has none (runc)", () => {
    const env = ['PATH=/bin', 'A=from-file', 'A=1', 'HOME='];
    const asNobody = bundle(['sh', '-c', 'env | sort'], (s) => {
      s.process!.env = env;
      s.process!.user = { uid: 65534, gid: 65534 };
    });
    const r = cli.run(['run', '-b', asNobody.dir, uniqueId('env')]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['A=1', 'HOME=/nonexistent', 'PATH=/bin', 'PWD=/', 'SHLVL=1'], "nobody's home in the image's /etc/passwd");
    const noEntry = bundle(['sh', '-c', 'echo "$HOME"'], (s) => {
      s.process!.env = env;
      s.process!.user = { uid: 4242, gid: 4242 };
    });
    assert.equal(cli.run(['run', '-b', noEntry.dir, uniqueId('env')]).stdout, '/\n', 'a user without an entry: /');
    // An image's /etc/passwd that is no regular file (a FIFO would block the start) is not read.
    const fifo = bundle(['sh', '-c', 'echo "$HOME"'], (s) => (s.process!.env = ['PATH=/bin']));
    fs.rmSync(path.join(fifo.dir, 'rootfs', 'etc', 'passwd'));
    spawnSync('mkfifo', [path.join(fifo.dir, 'rootfs', 'etc', 'passwd')]);
    const fromFifo = cli.run(['run', '-b', fifo.dir, uniqueId('env')]);
    assert.equal(fromFifo.stdout, '/\n', fromFifo.stderr);
    const given = bundle(['sleep', '300'], (s) => (s.process!.env = ['PATH=/bin', 'HOME=/given']));
    const id = uniqueId('env');
    assert.equal(cli.run(['run', '-d', '-b', given.dir, id]).status, 0);
    const exec = cli.run(['exec', '--env', 'B=1', '--env', 'B=2', id, 'sh', '-c', 'env | grep -c ^B=; echo "$B $HOME"']);
    assert.equal(exec.stdout, '1\n2 /given\n', exec.stderr);
    assert.equal(cli.run(['delete', '-f', id]).status, 0);
  });

  it('pause freezes every process and resume thaws them; ps and list see the container', () => {
    const b = bundle(['sleep', '300']);
    const id = uniqueId('pause');
    assert.equal(cli.run(['run', '-d', '-b', b.dir, id]).status, 0);
    const { pid } = state(id);
    assert.equal(cli.run(['pause', id]).status, 0);
    assert.equal(state(id).status, 'paused');
    assert.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /State:\s+D/);
    assert.equal(cli.run(['resume', id]).status, 0);
    assert.equal(state(id).status, 'running');
    assert.deepEqual(JSON.parse(cli.run(['ps', '--format', 'json', id]).stdout), [pid]);
    const list = JSON.parse(cli.run(['list', '--format', 'json']).stdout) as OciState[];
    assert.ok(list.some((c) => c.id === id && c.status === 'running' && c.pid === pid));
    assert.match(cli.run(['list']).stdout, new RegExp(`^${id}\\s+${pid}\\s+running`, 'm'));
    assert.equal(cli.run(['delete', '--force', id]).status, 0);
  });

  it('refuses bad input with an error naming what is wrong, leaving nothing behind', () => {
    const b = bundle(['true']);
    fs.writeFileSync(path.join(b.dir, 'config.json'), '{"ociVersion": "1.0.2", "root": ');
    const badJson = cli.run(['create', '-b', b.dir, uniqueId('bad')]);
    assert.equal(badJson.status, 1);
    assert.match(badJson.stderr, /config\.json: invalid JSON/);

    b.spec.linux!.namespaces!.push({ type: 'bogus' as 'pid' });
    b.save();
    const badNs = cli.run(['create', '-b', b.dir, uniqueId('bad')]);
    assert.equal(badNs.status, 1);
    assert.match(badNs.stderr, /linux\.namespaces\[\d+\]\.type/);

    const noBundle = cli.run(['create', '-b', '/nonexistent-bundle', uniqueId('bad')]);
    assert.match(noBundle.stderr, /--bundle/);
    assert.match(cli.run(['create', 'x', 'y']).stderr, /unexpected arguments/);
    assert.match(cli.run(['kill', '--bogus', 'x']).stderr, /--bogus/);
    assert.match(cli.run(['create', '-b', b.dir, '../escape']).stderr, /invalid container id/);
    assert.deepEqual(fs.readdirSync(cli.root).filter((n) => n.startsWith('bad-')), [], 'no state left');
  });

  it('cleans up after a create that fails inside the container', () => {
    const b = bundle(['/no/such/program']);
    const id = uniqueId('fail');
    const before = fs.readdirSync('/sys/fs/cgroup/pids');
    const r = cli.run(['create', '-b', b.dir, id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no\/such\/program/);
    assert.ok(!fs.existsSync(path.join(cli.root, id)), 'no state left');
    assert.deepEqual(fs.readdirSync('/sys/fs/cgroup/pids'), before, 'no cgroup left');
    const dup = uniqueId('dup');
    assert.equal(cli.run(['create', '-b', bundle(['sleep', '10']).dir, dup]).status, 0);
    const conflict = cli.run(['create', '-b', b.dir, dup]);
    assert.match(conflict.stderr, /already exists/);
    assert.equal(state(dup).status, 'created', 'the existing container is untouched');
    assert.match(cli.run(['delete', dup]).stderr, /not stopped: created/, 'deleting a created container needs --force');
    assert.equal(state(dup).status, 'created');
    assert.equal(cli.run(['delete', '--force', dup]).status, 0);
  });

  it('cleans up with delete --force after the runtime itself was killed mid-create', async () => {
    const marker = path.join(os.tmpdir(), `berth-hook-${process.pid}`);
    const b = bundle(['sleep', '300'], (s) => (s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `echo $$ > ${marker}; exec sleep 3`] }] }));
    const id = uniqueId('crash');
    const child = spawn(BERTH_OCI, ['--root', cli.root, 'create', '-b', b.dir, id], { stdio: 'ignore' });
    try {
      await waitFor(() => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').trim() !== '', 10_000, 'the createRuntime hook');
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.equal(state(id).status, 'creating', 'the record survives its creator');
      assert.match(cli.run(['delete', id]).stderr, /not stopped: creating/);
      const pidsDir = fs.readdirSync('/sys/fs/cgroup/pids').find((d) => d === id);
      assert.ok(pidsDir, 'the cgroup was made before the crash');
      assert.equal(cli.run(['delete', '--force', id]).status, 0);
      assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup/pids', id)), 'delete --force removed the cgroup');
      assert.ok(!fs.existsSync(path.join(cli.root, id)));
    } finally {
      // The hook outlives the killed runtime: stop it too.
      const hookPid = Number(fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim() : 0);
      if (hookPid > 0) {
        try {
          process.kill(hookPid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      fs.rmSync(marker, { force: true });
    }
  });

  it('passes --preserve-fds to the container', () => {
    const b = bundle(['sh', '-c', 'cat <&3']);
    const file = path.join(b.dir, 'fd3');
    fs.writeFileSync(file, 'preserved\n');
    const fd = fs.openSync(file, 'r');
    try {
      const out = path.join(b.dir, 'out');
      const outFd = fs.openSync(out, 'w');
      const r = spawnSync(BERTH_OCI, ['--root', cli.root, 'run', '--preserve-fds', '1', '-b', b.dir, uniqueId('fds')], { stdio: ['ignore', outFd, 'inherit', fd] });
      fs.closeSync(outFd);
      assert.equal(r.status, 0);
      assert.equal(fs.readFileSync(out, 'utf8'), 'preserved\n');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('gives a terminal process a pty through --console-socket', async () => {
    const b = bundle(['sh', '-c', 'tty; stty size'], (s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 33, width: 111 };
    });
    const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-tty-'));
    after(() => fs.rmSync(sockDir, { recursive: true, force: true }));
    const sock = path.join(sockDir, 'console.sock');
    const recv = spawn('python3', [path.join(PACKAGE_ROOT, 'test', 'helpers', 'recvtty.py'), sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    recv.stdout.on('data', (d) => (output += d));
    recv.stderr.on('data', (d) => (errors += d));
    const closed = new Promise((resolve) => recv.on('close', resolve));
    await waitFor(() => output.includes('listening'), 5000, 'recvtty');
    const r = await cli.start(['run', '--console-socket', sock, '-b', b.dir, uniqueId('tty')]);
    assert.equal(r.status, 0, r.stderr);
    await closed;
    assert.match(output, /\/dev\/pts\/0/, `${output} ${errors}`);
    assert.match(output, /33 111/);
  });
});

