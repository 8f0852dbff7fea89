/**
 * berth-shim for the Docker API: terminals (the pty master through console.sock), stdin (a
 * pipe, and "once"), resize, the framed `stream` command, exec under a shim of its own with
 * hold mode, log rotation; and berth-init as a container's PID 1. Needs root and the test
 * images. Prints the shim's memory with a terminal.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { after, describe, it } from 'node:test';

import { nativeBinary } from '../../src/common/paths.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { Process, Spec } from '../../src/runtime/spec/config.js';
import { FrameParser, readExit, readLog, shimLogFile, ShimClient, type Frame, type ShimOptions } from '../../src/shim/client.js';
import { makeBundle, type TestBundle } from '../helpers/images.js';
import { alive, cleanUp, logText, memory } from '../helpers/shim.js';
import { isRoot, poll, uniqueId, waitFor } from '../helpers/runtime.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-shimtty-root-'));
const runtime = new Runtime({ root });
const bundles: TestBundle[] = [];
const shimDirs: string[] = [];
const ids: string[] = [];

function shimDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-shimtty-'));
  shimDirs.push(dir);
  return dir;
}

/** A container created under a shim (not started). */
async function create(args: string[], opts: { edit?: (spec: Spec) => void; shim?: Omit<ShimOptions, 'dir'> } = {}): Promise<{ id: string; dir: string; pid: number; shim: number; client: ShimClient }> {
  const bundle = makeBundle({ args, edit: opts.edit });
  bundles.push(bundle);
  const id = uniqueId('shimtty');
  ids.push(id);
  const dir = shimDir();
  const launched = await runtime.create(id, { bundle: bundle.dir, shim: { lingerMs: 60_000, ...opts.shim, dir } });
  return { id, dir, pid: launched.pid, shim: launched.stage0.pid!, client: new ShimClient(dir) };
}

const tty = (spec: Spec): void => {
  spec.process!.terminal = true;
};

/** Collects the frames of a stream socket as they come. */
function frames(socket: net.Socket): { all: Frame[]; text(stream?: 1 | 2): string; ended: Promise<void> } {
  const all: Frame[] = [];
  const parser = new FrameParser();
  const ended = new Promise<void>((resolve, reject) => pipeline(socket, parser, (err) => (err ? reject(err) : resolve())));
  parser.on('data', (f: Frame) => all.push(f));
  const text = (stream?: 1 | 2): string =>
    Buffer.concat(all.filter((f) => stream === undefined || f.stream === stream).map((f) => f.data)).toString();
  return { all, text, ended };
}

/** The fds a process has open. */
function openFds(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).sort();
}

/** The exec'd process: the container's process with other args. */
function execProcess(id: string, args: string[], terminal = false): Process {
  return { ...runtime.config(id).process!, args, terminal };
}

after(() => cleanUp({ runtime, root, ids, shimDirs, bundles }));

/** Each test's limit: a broken shim or init would leave wait() pending forever. */
const T = { timeout: 30_000 };

describe('berth-shim: terminals, stdin, streams, exec', { skip: !isRoot && 'needs root' }, () => {

  it('runs a container on a pty: its output is logged as stdout and streamed as stream 1', T, async () => {
    const c = await create(['sh', '-c', 'tty; stty size; echo err >&2; exit 4'], {
      edit: (spec) => {
        tty(spec);
        spec.process!.consoleSize = { height: 30, width: 100 };
      },
    });
    // The shim takes the master in its own loop, in parallel with the create's return.
    assert.ok(await poll(() => !fs.existsSync(path.join(c.dir, 'console.sock')), 2000), 'the console socket is gone once the master came');
    const stream = frames(await c.client.stream());
    await runtime.start(c.id);
    assert.equal((await c.client.wait()).status, 4);
    await stream.ended;
    // After the output went through (the shim lingers): its buffers have been used.
    const { rssKb, pssKb } = memory(c.shim);
    console.log(`berth-shim memory with a tty container: VmRSS ${rssKb} kB, Pss ${pssKb} kB`);
    assert.ok(rssKb > 0 && rssKb < 3 * 1024, `shim RSS ${rssKb} kB is under 3 MB`);

    const expected = '/dev/pts/0\r\n30 100\r\nerr\r\n';
    const log = readLog(shimLogFile(c.dir));
    assert.equal(logText(log, 'stdout'), expected);
    assert.equal(logText(log, 'stderr'), '', 'a terminal has no stderr of its own');
    assert.ok(stream.all.every((f) => f.stream === 1));
    assert.equal(stream.text(), expected);
  });

  it('gives stdin as a pipe: cat echoes it; ending a "once" stream closes it, another does not', T, async () => {
    const c = await create(['cat'], { shim: { stdin: true } });
    await runtime.start(c.id);
    assert.deepEqual(openFds(c.pid), ['0', '1', '2'], 'no fd of the shim leaks into the container');
    await assert.rejects(c.client.resize(24, 80), /no terminal/);

    const first = await c.client.stream({ stdin: true });
    const firstFrames = frames(first);
    first.write('hello\n');
    await waitFor(() => firstFrames.text(1) === 'hello\n', 5000, 'cat to echo hello');
    first.end(); // not "once": stdin stays open for the next client
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await c.client.state()).status, 'running', 'cat still runs after a stream without once ended its input');

    const second = await c.client.stream({ stdin: true, once: true });
    const secondFrames = frames(second);
    second.end('bye\n');
    const exit = await c.client.wait();
    assert.equal(exit.status, 0, 'cat exited at the end of its input');
    await secondFrames.ended;
    assert.equal(secondFrames.text(1), 'bye\n');
    assert.equal(logText(readLog(shimLogFile(c.dir)), 'stdout'), 'hello\nbye\n');
  });

  it('resizes the terminal (stty size sees it), writes stdin to the pty, and sends ^D for "once"', T, async () => {
    const c = await create(['sh', '-c', 'read go; stty size; cat; echo "cat ended"'], { edit: tty });
    await runtime.start(c.id);
    assert.deepEqual(openFds(c.pid), ['0', '1', '2'], 'no fd of the shim leaks into the container');
    const socket = await c.client.stream({ stdin: true, once: true });
    const out = frames(socket);
    await c.client.resize(33, 111);
    socket.write('go\n');
    await waitFor(() => out.text().includes('33 111\r\n'), 5000, 'stty size to print the new size');
    socket.write('abc\n');
    await waitFor(() => /abc\r\n(.|\r\n)*abc\r\n/.test(out.text()), 5000, 'the echo and cat');
    socket.end();
    const exit = await c.client.wait();
    assert.equal(exit.status, 0);
    await out.ended;
    assert.match(out.text(), /cat ended\r\n$/);
  });

  it('streams frames with stderr apart from stdout, to several clients at once', T, async () => {
    const c = await create(['sh', '-c', 'echo out; echo err >&2; sleep 0.1; echo out2; echo err2 >&2']);
    const a = frames(await c.client.stream());
    const b = frames(await c.client.stream());
    await runtime.start(c.id);
    await Promise.all([a.ended, b.ended]);
    for (const s of [a, b]) {
      assert.equal(s.text(1), 'out\nout2\n');
      assert.equal(s.text(2), 'err\nerr2\n');
    }
    assert.equal(readExit(c.dir)?.status, 0);
  });

  it('drops a stream client that does not read, without holding back the container or a client that reads', T, async () => {
    // 4 MiB in 64 KiB steps: more than a dropped client's socket holds (2 MiB), at a pace a reading client keeps up with.
    const c = await create(['sh', '-c', "i=0; while [ $i -lt 64 ]; do head -c 65536 /dev/zero | tr '\\0' a; sleep 0.01; i=$((i+1)); done"]);
    const slow = await c.client.stream(); // never read until the end: not flowing
    const fast = frames(await c.client.stream());
    await runtime.start(c.id);
    assert.equal((await c.client.wait()).status, 0, 'the container finished while a client did not read');
    await fast.ended;
    assert.equal(fast.text(1).length, 4 << 20, 'the reading client got all of it');
    let slowBytes = 0;
    await new Promise<void>((resolve) => {
      slow.on('data', (d: Buffer) => (slowBytes += d.length)).on('close', () => resolve());
      slow.resume();
    });
    assert.ok(slowBytes < 4 << 20, `the client that did not read was dropped (it got ${slowBytes} bytes)`);
  });

  it('runs exec under a shim of its own, without and with a terminal, with its exit code', T, async () => {
    const c = await create(['sleep', '100']);
    await runtime.start(c.id);

    const dir = shimDir();
    const launched = await runtime.exec(c.id, execProcess(c.id, ['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 7']), { shim: { dir, hold: true, lingerMs: 60_000 } });
    const client = new ShimClient(dir);
    assert.notEqual(launched.stage0.pid, c.shim, 'a shim of its own');
    const out = frames(await client.stream());
    const exit = await client.wait();
    await out.ended;
    assert.equal(exit.status, 7);
    assert.deepEqual(readExit(dir), exit);
    assert.equal(out.text(1), 'exec-out\n');
    assert.equal(out.text(2), 'exec-err\n');
    assert.equal(fs.existsSync(path.join(dir, 'log.json')), false, 'no log file for exec');

    const ttyDir = shimDir();
    await runtime.exec(c.id, execProcess(c.id, ['sh', '-c', 'tty; read x; echo "got $x"; exit 3'], true), { shim: { dir: ttyDir, hold: true, lingerMs: 60_000 } });
    const ttyClient = new ShimClient(ttyDir);
    const socket = await ttyClient.stream({ stdin: true });
    const ttyOut = frames(socket);
    socket.write('yes\n');
    assert.equal((await ttyClient.wait()).status, 3);
    await ttyOut.ended;
    assert.match(ttyOut.text(), /^(yes\r\n)?\/dev\/pts\/\d+\r\n/);
    assert.match(ttyOut.text(), /got yes\r\n$/);
    assert.ok(ttyOut.all.every((f) => f.stream === 1));
    assert.equal((await c.client.state()).status, 'running', 'the container still runs');
  });

  it('holds the output of an exec until the first stream client: nothing is lost', T, async () => {
    const c = await create(['sleep', '100']);
    await runtime.start(c.id);

    // More than a pipe holds: without hold the shim would read and drop it meanwhile.
    const dir = shimDir();
    await runtime.exec(c.id, execProcess(c.id, ['seq', '1', '30000']), { shim: { dir, hold: true, lingerMs: 60_000 } });
    const client = new ShimClient(dir);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await client.state()).status, 'running', 'the exit is not reported before its output is taken');
    const out = frames(await client.stream());
    assert.equal((await client.wait()).status, 0);
    await out.ended;
    const expected = Array.from({ length: 30000 }, (_, i) => `${i + 1}\n`).join('');
    assert.equal(out.text(1), expected);

    // A process that has exited before anyone streams.
    const quickDir = shimDir();
    await runtime.exec(c.id, execProcess(c.id, ['sh', '-c', 'echo quick; echo quick-err >&2; exit 2']), { shim: { dir: quickDir, hold: true, lingerMs: 60_000 } });
    const quick = new ShimClient(quickDir);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(readExit(quickDir), undefined, 'no exit.json before the output was streamed');
    const quickOut = frames(await quick.stream());
    await quickOut.ended;
    assert.equal(quickOut.text(1), 'quick\n');
    assert.equal(quickOut.text(2), 'quick-err\n');
    assert.equal((await quick.wait()).status, 2);
  });

  it('rotates log.json like json-file max-size/max-file, and readLog reads the files in order', T, async () => {
    const lines = 400;
    const c = await create(['sh', '-c', `i=0; while [ $i -lt ${lines} ]; do echo "line $i ............................................................"; i=$((i+1)); done`], {
      shim: { log: { maxSize: 4096, maxFiles: 3 } },
    });
    await runtime.start(c.id);
    assert.equal((await c.client.wait()).status, 0);
    const files = fs.readdirSync(c.dir).filter((f) => f.startsWith('log.json')).sort();
    assert.deepEqual(files, ['log.json', 'log.json.1', 'log.json.2']);
    const entryMax = Math.max(...fs.readFileSync(path.join(c.dir, 'log.json.1'), 'utf8').trim().split('\n').map((l) => l.length + 1));
    for (const f of files) assert.ok(fs.statSync(path.join(c.dir, f)).size < 4096 + entryMax, `${f} is at most max-size and one entry`);
    for (const f of ['log.json.1', 'log.json.2']) assert.ok(fs.statSync(path.join(c.dir, f)).size >= 4096, `${f} was rotated when full`);

    const numbers = readLog(shimLogFile(c.dir)).map((e) => Number(/^line (\d+) /.exec(e.log)?.[1]));
    assert.equal(numbers.at(-1), lines - 1, 'ends with the last line');
    assert.ok(numbers[0] > 0, 'the oldest lines were rotated away');
    assert.deepEqual(numbers, numbers.map((_, i) => numbers[0] + i), 'oldest first, none missing in between');
    assert.equal(readLog(shimLogFile(c.dir), { tail: 2 }).map((e) => e.log.split(' ')[1]).join(','), `${lines - 2},${lines - 1}`);
  });
});

describe('berth-init', { skip: !isRoot && 'needs root' }, () => {
  const withInit = (spec: Spec): void => {
    spec.mounts!.push({ destination: '/sbin/docker-init', type: 'bind', source: nativeBinary('berth-init'), options: ['bind', 'ro'] });
  };
  const init = (...args: string[]): string[] => ['/sbin/docker-init', '--', ...args];

  it('passes SIGTERM on to its child and exits with the child status', T, async () => {
    const c = await create(init('sh', '-c', 'trap "echo term; exit 42" TERM; echo ready; while :; do sleep 0.05; done'), { edit: withInit });
    await runtime.start(c.id);
    await waitFor(() => logText(readLog(shimLogFile(c.dir)), 'stdout') === 'ready\n', 5000, 'the child to be ready');
    await c.client.kill('SIGTERM'); // to PID 1, berth-init
    const exit = await c.client.wait();
    assert.deepEqual([exit.status, exit.signal], [42, 0]);
    assert.equal(logText(readLog(shimLogFile(c.dir)), 'stdout'), 'ready\nterm\n');
  });

  it('reaps orphaned zombies, and reports a child killed by a signal as 128+N', T, async () => {
    const c = await create(init('sh', '-c', 'for i in 1 2 3; do sh -c "sleep 0.1 &"; done; sleep 1.5; kill -KILL $$'), { edit: withInit });
    await runtime.start(c.id);
    // The orphaned sleeps are berth-init's children now; once they exit, it must reap them.
    await new Promise((r) => setTimeout(r, 800));
    const children = fs.readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    assert.equal(children.length, 1, `only the shell is left: ${children.join(' ')}`);
    assert.ok(alive(children[0]), 'the shell runs, no zombie is left');
    const exit = await c.client.wait();
    assert.deepEqual([exit.status, exit.signal], [137, 0], 'berth-init exits 128+9 itself');
  });

  it('is a static binary that runs in any image', T, () => {
    const elf = fs.readFileSync(nativeBinary('berth-init'));
    // No PT_INTERP program header: nothing to load it but the kernel.
    assert.equal(elf.includes(Buffer.from('/lib64/ld-linux')) || elf.includes(Buffer.from('/lib/ld-linux')), false);
  });
});
