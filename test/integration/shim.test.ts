/**
 * berth-shim: a container started through it has its output in log.json, its exit status in
 * exit.json and over the shim's socket, keeps running and logging when whoever started it is
 * killed, can be signalled through the shim, and leaves nothing behind once deleted. Prints
 * the shim's memory. Needs root and the test images.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { after, describe, it } from 'node:test';

import { mountPointsUnder } from '../../src/common/mountinfo.js';
import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { Spec } from '../../src/runtime/spec/config.js';
import { FrameParser, readExit, readLog, shimLogFile, ShimClient, shimPid, type Frame, type LogEntry } from '../../src/shim/client.js';
import { NetnsPool } from '../../src/shim/spawner.js';
import { makeBundle, type TestBundle } from '../helpers/images.js';
import { alive, cleanUp, logText, memory } from '../helpers/shim.js';
import { isRoot, uniqueId, waitFor } from '../helpers/runtime.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-shim-root-'));
const runtime = new Runtime({ root });
const bundles: TestBundle[] = [];
const shimDirs: string[] = [];
const ids: string[] = [];

function setup(args: string[], edit?: (spec: Spec) => void): { id: string; bundle: TestBundle; dir: string } {
  const bundle = makeBundle({ args, edit });
  bundles.push(bundle);
  const id = uniqueId('shim');
  ids.push(id);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-shim-'));
  shimDirs.push(dir);
  return { id, bundle, dir };
}

/** The container's own cgroup directories (v1 controllers or the v2 unified one). */
function cgroupDirs(pid: number, id: string): string[] {
  return fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(':'))
    .filter(([, controllers, p]) => p.includes(id) && ['', 'memory', 'pids'].includes(controllers))
    .map(([, controllers, p]) => path.join('/sys/fs/cgroup', controllers, p));
}

/** Deletes the container and checks that its processes, cgroups and mounts are gone, and the shim too. */
async function deleteAndCheck(id: string, bundle: TestBundle, dir: string, pid: number, cgroups: string[]): Promise<void> {
  const shim = shimPid(dir);
  if (shim) await new ShimClient(dir).shutdown();
  await runtime.delete(id);
  assert.equal(alive(pid), false, 'the container process is gone');
  if (shim) await waitFor(() => !alive(shim), 5000, 'the shim to exit');
  assert.equal(fs.existsSync(path.join(dir, 'shim.sock')), false, 'the shim removed its socket');
  assert.deepEqual(cgroups.filter((d) => fs.existsSync(d)), [], 'cgroups removed');
  assert.deepEqual(mountPointsUnder(path.join(bundle.dir, 'rootfs')), [], 'no mounts left');
}

/** The namespaces a process holds open (readlinks of its fds, e.g. "mnt:[4026532...]"). */
function heldNamespaces(pid: number, kind: string): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      return target.startsWith(`${kind}:`) ? [target] : [];
    } catch {
      return [];
    }
  });
}

describe('berth-shim', { skip: !isRoot && 'needs root' }, () => {
  after(() => cleanUp({ runtime, root, ids, shimDirs, bundles }));

  it('logs stdout and stderr, records the exit status, answers wait and attach', async () => {
    const { id, bundle, dir } = setup(['sh', '-c', 'echo out; echo err >&2; sleep 1; exit 3']);
    const launched = await runtime.create(id, { bundle: bundle.dir, shim: { dir, lingerMs: 60_000 } });
    const client = new ShimClient(dir);
    const shim = Number(fs.readFileSync(path.join(dir, 'shim.pid'), 'utf8'));
    assert.equal(shim, launched.stage0.pid);
    assert.deepEqual(await client.state(), { shim, pid: launched.pid, status: 'running' });
    const cgroups = cgroupDirs(launched.pid, id);
    assert.ok(cgroups.length > 0, 'the container has its own cgroups');

    const attached: LogEntry[] = [];
    const stream = await client.attach();
    const attaching = (async () => {
      for await (const entry of stream) attached.push(entry);
    })();
    const waiting = client.wait();
    await runtime.start(id);
    // Held so that PID 1's exit does not wait for the namespace's teardown, let go after it.
    const containerMounts = fs.readlinkSync(`/proc/${launched.pid}/ns/mnt`);
    assert.notEqual(containerMounts, fs.readlinkSync('/proc/self/ns/mnt'));
    assert.deepEqual(heldNamespaces(shim, 'mnt'), [containerMounts], 'the shim holds the container\'s mount namespace');

    const { rssKb, pssKb } = memory(shim);
    console.log(`berth-shim memory: VmRSS ${rssKb} kB, Pss ${pssKb} kB`);
    assert.ok(rssKb > 0 && rssKb < 3 * 1024, `shim RSS ${rssKb} kB is under 3 MB`);

    const exit = await waiting;
    assert.equal(exit.status, 3);
    assert.equal(exit.signal, 0);
    assert.ok(!Number.isNaN(Date.parse(exit.finished)));
    assert.deepEqual(readExit(dir), exit);
    assert.deepEqual(await client.wait(), exit, 'wait after the exit answers at once');
    assert.equal((await client.state()).status, 'stopped');
    assert.deepEqual(heldNamespaces(shim, 'mnt'), [], 'the shim let the mount namespace go once the exit was told');

    const log = readLog(shimLogFile(dir));
    assert.equal(logText(log, 'stdout'), 'out\n');
    assert.equal(logText(log, 'stderr'), 'err\n');
    for (const e of log) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    await attaching;
    assert.deepEqual(attached, log, 'attach streamed what was logged, and ended at the exit');
    assert.deepEqual(readLog(shimLogFile(dir), { tail: 1 }), log.slice(-1));
    assert.deepEqual(readLog(shimLogFile(dir), { since: new Date(Date.now() + 60_000) }), []);

    await deleteAndCheck(id, bundle, dir, launched.pid, cgroups);
  });

  it('gives a container a network namespace made ahead (berthd\'s netns pool): new, only lo, held by nobody else after', async () => {
    const pool = new NetnsPool(1);
    const pooled = new Runtime({ root, netns: pool });
    try {
      pool.fill();
      await waitFor(() => {
        const taken = pool.take();
        if (!taken) return false;
        taken.release(); // and the take made the next
        return true;
      }, 5000, 'the pool to fill');
      await waitFor(() => pool.available > 0, 5000, 'the pool to fill again');
      // The namespaces the pool holds: descriptors of ours.
      const ownNetns = (): string[] =>
        fs.readdirSync('/proc/self/fd').flatMap((fd) => {
          try {
            const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
            return target.startsWith('net:') ? [target] : [];
          } catch {
            return [];
          }
        });
      const madeAhead = ownNetns();
      assert.ok(madeAhead.length > 0);
      const { id, bundle, dir } = setup(['sh', '-c', 'cat /proc/net/dev; readlink /proc/self/ns/net']);
      const launched = await pooled.create(id, { bundle: bundle.dir, shim: { dir } });
      const inContainer = fs.readlinkSync(`/proc/${launched.pid}/ns/net`);
      assert.ok(madeAhead.includes(inContainer), `the container got one made ahead (${inContainer} of ${madeAhead.join(' ')})`);
      assert.notEqual(inContainer, fs.readlinkSync('/proc/self/ns/net'), 'not the host network namespace');
      // Nobody but the container holds it: no process of ours, and no maker left alive.
      const holders = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== launched.pid && (() => {
        try {
          return fs.readlinkSync(`/proc/${p}/ns/net`) === inContainer;
        } catch {
          return false;
        }
      })());
      assert.deepEqual(holders, [], 'only the container is in it');
      assert.ok(!ownNetns().includes(inContainer), 'our descriptor on it was closed once the container was in it');
      const client = new ShimClient(dir);
      const waiting = client.wait();
      await pooled.start(id);
      assert.equal((await waiting).status, 0);
      const out = logText(readLog(shimLogFile(dir)), 'stdout');
      const interfaces = out.split('\n').flatMap((l) => /^\s*([\w.-]+):\s+\d/.exec(l)?.[1] ?? []);
      assert.deepEqual(interfaces, ['lo'], out);
      assert.ok(out.trim().endsWith(inContainer), out);
      await new ShimClient(dir).shutdown();
      await pooled.delete(id);
    } finally {
      pool.close();
    }
  });

  it('creates and starts in one (startNow): the program runs without a start, no exec fifo', async () => {
    const { id, bundle, dir } = setup(['sh', '-c', 'echo started; exit 4']);
    const client = new ShimClient(dir);
    const launched = await runtime.create(id, { bundle: bundle.dir, startNow: true, shim: { dir } });
    assert.equal(fs.existsSync(path.join(root, id, 'exec.fifo')), false);
    const exit = await client.wait();
    assert.equal(exit.status, 4);
    assert.equal(logText(readLog(shimLogFile(dir)), 'stdout'), 'started\n');
    assert.equal(runtime.state(id).status, 'stopped');
    await assert.rejects(runtime.start(id), /stopped/);
    await deleteAndCheck(id, bundle, dir, launched.pid, []);
  });

  it('holds a started container\'s output for the attach client on its way (holdMs): all of it streamed, the exit reported after', async () => {
    const { id, bundle, dir } = setup(['sh', '-c', 'echo one; echo two >&2; exit 5']);
    const client = new ShimClient(dir);
    const launched = await runtime.create(id, { bundle: bundle.dir, startNow: true, shim: { dir, holdMs: 60_000 } });
    await waitFor(() => !alive(launched.pid), 5000, 'the program to exit');
    assert.equal((await client.state()).status, 'running', 'no exit while its output waits for the client');
    assert.equal(readExit(dir), undefined);
    const socket = await client.stream();
    const parser = new FrameParser();
    const got: Frame[] = [];
    parser.on('data', (f: Frame) => got.push(f));
    await new Promise<void>((resolve, reject) => pipeline(socket, parser, (err) => (err ? reject(err) : resolve())));
    const text = (n: 1 | 2): string => Buffer.concat(got.filter((f) => f.stream === n).map((f) => f.data)).toString();
    assert.equal(text(1), 'one\n');
    assert.equal(text(2), 'two\n');
    assert.equal((await client.wait()).status, 5);
    assert.equal(logText(readLog(shimLogFile(dir)), 'stdout'), 'one\n');
    await deleteAndCheck(id, bundle, dir, launched.pid, []);
  });

  it('ends a hold on release, and by itself after holdMs when no client comes', async () => {
    const released = setup(['sh', '-c', 'echo out; exit 2']);
    const a = await runtime.create(released.id, { bundle: released.bundle.dir, startNow: true, shim: { dir: released.dir, holdMs: 60_000 } });
    const timed = setup(['sh', '-c', 'echo late; exit 3']);
    const started = Date.now();
    const b = await runtime.create(timed.id, { bundle: timed.bundle.dir, startNow: true, shim: { dir: timed.dir, holdMs: 700 } });
    const releasedClient = new ShimClient(released.dir);
    await releasedClient.release();
    assert.equal((await releasedClient.wait()).status, 2);
    assert.equal(logText(readLog(shimLogFile(released.dir)), 'stdout'), 'out\n');
    assert.equal((await new ShimClient(timed.dir).wait()).status, 3);
    assert.ok(Date.now() - started >= 600, `held until the limit (${Date.now() - started} ms)`);
    assert.equal(logText(readLog(shimLogFile(timed.dir)), 'stdout'), 'late\n');
    await deleteAndCheck(released.id, released.bundle, released.dir, a.pid, []);
    await deleteAndCheck(timed.id, timed.bundle, timed.dir, b.pid, []);
  });

  it('outlives the process that started it', async () => {
    const { id, bundle, dir } = setup(['sh', '-c', 'echo first; sleep 1; echo second; exit 5']);
    const runtimeModule = path.join(PACKAGE_ROOT, 'dist', 'src', 'runtime', 'runtime.js');
    const script = `
      import { Runtime } from ${JSON.stringify(runtimeModule)};
      const rt = new Runtime({ root: ${JSON.stringify(root)} });
      const l = await rt.create(${JSON.stringify(id)}, { bundle: ${JSON.stringify(bundle.dir)}, shim: { dir: ${JSON.stringify(dir)}, lingerMs: 60000 } });
      await rt.start(${JSON.stringify(id)});
      process.stdout.write('started ' + l.pid + '\\n');
      setInterval(() => {}, 1000);
    `;
    const starter = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    starter.stdout.on('data', (d) => (out += d));
    starter.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => starter.once('exit', r));
    await waitFor(() => /started \d+\n/.test(out) || starter.exitCode !== null, 20_000, 'the starter to start the container');
    const pid = Number(/started (\d+)/.exec(out)?.[1]);
    assert.ok(pid > 0, `starter: ${out} ${err}`);
    const cgroups = cgroupDirs(pid, id);
    starter.kill('SIGKILL');
    await exited;

    const shim = shimPid(dir);
    assert.ok(shim && alive(shim), 'the shim is still there');
    assert.ok(alive(pid), 'the container is still running');
    assert.equal(Number(/PPid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]), shim, "the shim is the container's parent");
    const exit = await new ShimClient(dir).wait();
    assert.equal(exit.status, 5);
    assert.equal(logText(readLog(shimLogFile(dir)), 'stdout'), 'first\nsecond\n', 'output after the starter died is logged');

    await deleteAndCheck(id, bundle, dir, pid, cgroups);
  });

  it('writes any output as valid JSON: bad UTF-8, control characters, long lines', async () => {
    const { id, bundle, dir } = setup(['sh', '-c', `printf '\\377\\342\\202\\254\\001"\\\\\\n'; head -c 20000 /dev/zero | tr '\\0' a; echo; printf 'no newline'`]);
    const launched = await runtime.create(id, { bundle: bundle.dir, shim: { dir, lingerMs: 60_000 } });
    const cgroups = cgroupDirs(launched.pid, id);
    await runtime.start(id);
    assert.equal((await new ShimClient(dir).wait()).status, 0);
    const log = readLog(shimLogFile(dir));
    assert.equal(log[0].log, '\ufffd\u20ac\u0001"\\\n');
    assert.ok(log.every((e) => e.log.length <= 16384) && log.some((e) => e.log.length === 16384), 'a long line is logged in parts of 16 KiB');
    assert.equal(logText(log, 'stdout'), `\ufffd\u20ac\u0001"\\\n${'a'.repeat(20000)}\nno newline`);
    await deleteAndCheck(id, bundle, dir, launched.pid, cgroups);
  });

  it('signals the container through the shim, and leaves after its linger', async () => {
    // Without a pid namespace of its own: a namespace's PID 1 ignores SIGTERM unless it handles it.
    const { id, bundle, dir } = setup(['sleep', '100'], (spec) => {
      spec.linux!.namespaces = spec.linux!.namespaces!.filter((ns) => ns.type !== 'pid');
    });
    const launched = await runtime.create(id, { bundle: bundle.dir, shim: { dir, lingerMs: 300 } });
    const cgroups = cgroupDirs(launched.pid, id);
    await runtime.start(id);
    const client = new ShimClient(dir);
    await client.kill(15);
    const exit = await client.wait();
    assert.deepEqual([exit.status, exit.signal], [143, 15]);
    assert.equal(runtime.state(id).status, 'stopped');
    await assert.rejects(client.kill('SIGTERM'), /not running/);
    await waitFor(() => !alive(launched.stage0.pid!), 5000, 'the shim to leave after its linger');
    assert.equal(shimPid(dir), undefined);
    await deleteAndCheck(id, bundle, dir, launched.pid, cgroups);
  });
});
