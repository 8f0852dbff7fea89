/**
 * Issue 4, acceptance 4: kill -9 berthd while containers run and others are being created,
 * start it again: every running container still runs with the same PID 1, its log has no gap,
 * stop works, a container that exited meanwhile shows its real exit code, and once everything
 * is removed nothing is left: no mounts, cgroups, runtime state or processes.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

import { FakeRegistry } from '../../src/images/registry/fake-registry.testutil.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { makeTar, sha256 } from '../../src/storage/tar.testutil.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cgroupRoots, DOCKER, dockerdSkip, pidsMentioning, poll, sleep } from '../helpers/engines.js';
import { makeBundle } from '../helpers/images.js';

const TMPFS_MAGIC = 0x01021994;
const run = promisify(execFile);

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** The counter lines of a log: each container prints "n <i>" with i = 0, 1, 2, ... */
function counters(log: string): number[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('n '))
    .map((l) => Number(l.slice(2)));
}

describe('berthd survives kill -9', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-crash-' });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  it('keeps running containers and their logs, settles interrupted creates, cleans up after', async () => {
    const counter = 'i=0; while true; do echo "n $i"; i=$((i+1)); sleep 0.05; done';
    const running = ['alpha', 'beta', 'gamma'].map((name) => d.dockerOk(['run', '-d', '--name', name, 'busybox', 'sh', '-c', counter]).trim());
    const pids = running.map((id) => d.dockerOk(['inspect', '-f', '{{.State.Pid}}', id]).trim());
    d.dockerOk(['run', '-d', '--name', 'short', 'busybox', 'sh', '-c', 'sleep 1; exit 42']);
    d.dockerOk(['run', '--rm', '-v', 'kept:/data', 'busybox', 'sh', '-c', 'echo survives > /data/f']);

    // Creates in flight when the daemon dies: each must end up whole or not at all.
    const inflight = Array.from({ length: 4 }, (_, i) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(DOCKER!, ['run', '-d', '--name', `inflight${i}`, 'busybox', 'sleep', '1000'], { env: d.env, stdio: 'ignore' });
        p.on('exit', resolve);
      }),
    );
    await sleep(150);
    await d.kill9();
    await Promise.all(inflight);
    // The daemon is gone; the containers are not, and their output still goes to the logs.
    for (const pid of pids) assert.ok(fs.existsSync(`/proc/${pid}`), `container process ${pid} survives the daemon`);
    await sleep(1500); // "short" exits while no daemon runs
    // A bundle whose container's record a removal had taken away when the daemon died.
    const orphan = path.join(d.dir, 'exec', 'c', '0123456789abcdef01234567');
    fs.mkdirSync(path.join(orphan, 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(orphan, 'config.json'), '{}');

    await d.start();
    assert.equal(fs.existsSync(orphan), false, 'a bundle no record names is removed at start');
    for (const [i, id] of running.entries()) {
      assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.Pid}}', id]).trim(), `running ${pids[i]}`);
      const seq = counters(d.dockerOk(['logs', id]));
      assert.ok(seq.length > 20, `log of ${id} has ${seq.length} lines`);
      seq.forEach((n, j) => assert.equal(n, j, `log of ${id} has no gap or repeat at line ${j}`));
    }
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'short']).trim(), 'exited 42', 'the exit while the daemon was away is recorded');

    // A named volume's data outlives its container and the daemon (issue 3, acceptance 4).
    assert.equal(d.dockerOk(['run', '--rm', '-v', 'kept:/data', 'busybox', 'cat', '/data/f']), 'survives\n');

    // logs -f of a re-attached container follows new output.
    const follow = spawn(DOCKER!, ['logs', '-f', '--tail', '0', 'alpha'], { env: d.env, stdio: ['ignore', 'pipe', 'ignore'] });
    let followed = '';
    follow.stdout.on('data', (c: Buffer) => (followed += c.toString()));
    assert.ok(await poll(() => counters(followed).length >= 3, 5000), 'logs -f after the restart');
    follow.kill();

    // exec works in a container the new daemon re-attached.
    assert.equal(d.dockerOk(['exec', 'gamma', 'sh', '-c', 'echo exec-after-restart']), 'exec-after-restart\n');

    // stop works after the restart (the exit is seen through the shim again).
    d.dockerOk(['stop', '-t', '1', 'beta']);
    assert.match(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'beta']).trim(), /^exited (137|143)$/);
    // And the daemon runs new containers.
    assert.equal(d.dockerOk(['run', '--rm', 'busybox', 'echo', 'after']).trim(), 'after');

    // Interrupted creates: whatever exists is consistent and removable.
    const states = d.dockerOk(['ps', '-a', '--filter', 'name=inflight', '--format', '{{.Names}} {{.State}}']).trim();
    for (const line of states.split('\n').filter(Boolean)) assert.match(line, /^inflight\d (created|running|exited)$/, states);
    const all = d.dockerOk(['ps', '-aq']).split('\n').filter(Boolean);
    d.dockerOk(['rm', '-f', ...all]);
    d.dockerOk(['volume', 'rm', 'kept']);
    assert.equal(d.dockerOk(['ps', '-aq']), '');

    // Nothing left: mounts, runtime state, cgroups, processes (but the daemon itself).
    assert.deepEqual(d.mountsLeft(), []);
    assert.deepEqual(fs.readdirSync(path.join(d.dir, 'exec', 'runtime')), []);
    for (const root of cgroupRoots()) {
      const parent = path.join(root, d.cgroupParent);
      const left = fs.existsSync(parent) ? fs.readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
      assert.deepEqual(left.map((e) => e.name), [], `cgroups left under ${parent}`);
    }
    // The daemon and its own helper (berth-fsop, which mounts root file systems) aside.
    const strays = (): number[] => pidsMentioning(d.dir).filter((p) => p !== d.pid() && parentOf(p) !== d.pid());
    assert.ok(await poll(() => strays().length === 0, 15_000), `processes left: ${strays().map((p) => `${p} ${cmdline(p)}`).join('; ')}`);
    const snapshots = fs.readdirSync(path.join(d.dir, 'data', 'snapshots', 'snapshots'));
    assert.deepEqual(snapshots, [], 'no writable layer left');
  });

  it("releases a deleted image's layers when the last container on them goes, also across a restart; at start, layers no image needs", async () => {
    const layersDir = path.join(d.dir, 'data', 'snapshots', 'layers');
    const layerDirs = () => new Set(fs.readdirSync(layersDir));
    const before = layerDirs();
    d.loadImages('multilayer'); // its first layer is busybox's: that one stays throughout
    const added = [...layerDirs()].filter((l) => !before.has(l));
    assert.ok(added.length >= 2, `multilayer added its own layers: ${added}`);
    const present = () => added.filter((l) => fs.existsSync(path.join(layersDir, l)));

    // Deleted with force while a container stands on it: the layers stay for the container...
    const id = d.dockerOk(['create', 'multilayer']).trim();
    d.dockerOk(['rmi', '-f', 'multilayer']);
    assert.deepEqual(present(), added);
    // ...a restarted daemon knows it too (it found them at start, no image needing them)...
    await d.kill9();
    await d.start();
    assert.deepEqual(present(), added);
    assert.match(d.dockerOk(['start', '-a', id]), /GREETING=hello from multilayer/);
    // ...and they go with the container, as dockerd's layer store releases them.
    d.dockerOk(['rm', id]);
    assert.ok(await poll(() => present().length === 0, 5000), `layers left: ${present()}`);
    assert.deepEqual([...before].filter((l) => !fs.existsSync(path.join(layersDir, l))), [], "busybox's layers stay");
    assert.match(d.dockerOk(['system', 'df', '--format', '{{.Type}} {{.Size}}']), /^Images 1\.987MB$/m);

    // A load cut short by a crash (layers in, the image record not): the next start removes them.
    d.loadImages('multilayer');
    assert.deepEqual(present(), added);
    await d.kill9();
    const file = path.join(d.dir, 'data', 'images', 'images.json');
    const store = JSON.parse(fs.readFileSync(file, 'utf8')) as { images: Array<{ names: string[] }> };
    store.images = store.images.filter((r) => !r.names.some((n) => n.includes('multilayer')));
    fs.writeFileSync(file, JSON.stringify(store));
    await d.start();
    assert.deepEqual(present(), []);
    assert.equal(d.dockerOk(['run', '--rm', 'busybox', 'echo', 'ok']), 'ok\n');
  });

  it('finds an exit whose record had not reached the disk when the daemon died (exit.json)', async () => {
    // The exit record is written within 20 ms (saveSoon) and the shim told to go at once: a
    // daemon killed in between leaves a record that says "running" and no shim. Simulated: the
    // record is put back to "running" while the daemon is down.
    const id = d.dockerOk(['run', '-d', '--name', 'lost-exit', 'busybox', 'sh', '-c', 'exit 7']).trim();
    assert.equal(d.dockerOk(['wait', id]).trim(), '7');
    assert.ok(await poll(() => pidsMentioning(path.join(d.dir, 'exec', 'c', id.slice(0, 24))).length === 0, 5000), 'the shim went');
    await d.kill9();
    const file = path.join(d.dir, 'data', 'containers', id, 'container.json');
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { state: Record<string, unknown> };
    record.state = { ...record.state, status: 'running', exitCode: 0, pid: 999_999_999 };
    fs.writeFileSync(file, JSON.stringify(record));
    await d.start();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id]).trim(), 'exited 7');
    d.dockerOk(['rm', id]);
    assert.deepEqual(d.mountsLeft(), []);
  });

  it('finds a run whose "running" record had not reached the disk, ended while the daemon was down (exit.json newer than the record)', async () => {
    // `docker run -d` answered, the "running" record still held back (saveSoon), the daemon
    // killed; the container exits meanwhile. Simulated: the record put back to "created".
    // It said "Created" at the restart, as if it had never run.
    const id = d.dockerOk(['run', '-d', '--name', 'lost-start', 'busybox', 'sh', '-c', 'exit 5']).trim();
    assert.equal(d.dockerOk(['wait', id]).trim(), '5');
    // The exit as the daemon knows it (its record may not have reached the disk yet: saveSoon).
    const finished = d.dockerOk(['inspect', '-f', '{{.State.FinishedAt}}', id]).trim();
    await d.kill9();
    const file = path.join(d.dir, 'data', 'containers', id, 'container.json');
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { state: Record<string, unknown> };
    record.state = { ...record.state, status: 'created', exitCode: 0, pid: 0, startedAt: '0001-01-01T00:00:00Z', finishedAt: '0001-01-01T00:00:00Z' };
    fs.writeFileSync(file, JSON.stringify(record));
    await d.start();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}', id]).trim(), `exited 5 ${finished}`);
    assert.notEqual(d.dockerOk(['inspect', '-f', '{{.State.StartedAt}}', id]).trim(), '0001-01-01T00:00:00Z');
    // A restart of the daemon after that finds the same exit handled: nothing changes.
    await d.kill9();
    await d.start();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}', id]).trim(), 'exited 5 0');
    d.dockerOk(['rm', id]);
    // A start that failed leaves the shim's exit.json too: that container stays "created".
    const failed = d.dockerOk(['create', 'busybox', '/no-such-program']).trim();
    assert.notEqual(d.docker(['start', failed]).status, 0);
    await d.kill9();
    await d.start();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', failed]).trim(), 'created 127');
    d.dockerOk(['rm', failed]);
    assert.deepEqual(d.mountsLeft(), []);
  });

  it('deletes a runtime record whose container is gone (killed between an --rm removal and the runtime\'s delete)', async () => {
    // berthd removes an exited --rm container, answers its `wait --condition removed`, then
    // deletes the runtime's record and cgroups. Killed in between, it leaves a runtime record
    // that no container names: simulated with a container the runtime made by itself, running.
    await d.kill9();
    const id = createHash('sha256').update(`orphan-${process.pid}-${Date.now()}`).digest('hex');
    const bundle = makeBundle({ args: ['sleep', '1000'], edit: (spec) => (spec.linux!.cgroupsPath = `${d.cgroupParent}/${id}`) });
    const runtime = new Runtime({ root: path.join(d.dir, 'exec', 'runtime') });
    try {
      const { pid } = await runtime.create(id, { bundle: bundle.dir });
      await runtime.start(id);
      const cgroups = cgroupRoots().map((root) => path.join(root, d.cgroupParent, id)).filter((dir) => fs.existsSync(dir));
      assert.ok(cgroups.length > 0, 'the orphan has cgroups');
      await d.start();
      assert.ok(await poll(() => !fs.existsSync(`/proc/${pid}`) || /^\d+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 5000), 'its process was killed');
      assert.equal(fs.existsSync(path.join(d.dir, 'exec', 'runtime', id)), false, 'its runtime record is gone');
      assert.deepEqual(cgroups.filter((dir) => fs.existsSync(dir)), [], 'its cgroups are gone');
    } finally {
      await runtime.delete(id, true).catch(() => undefined);
      bundle.remove();
    }
  });

  it('a pull killed midway leaves no half-written blob, layer or image; the next pull completes', async () => {
    // Two layers from an in-process registry; the first stops halfway through until the daemon is dead.
    const reg = await new FakeRegistry().start();
    const gzLayer = (files: Record<string, Buffer | string>) => {
      const tar = makeTar(Object.entries(files).map(([name, data]) => ({ name, data })));
      return { tar, gz: zlib.gzipSync(tar, { level: 0 }) }; // level 0: files arrive as they are sent
    };
    const bottom = gzLayer({ 'early.txt': 'early', 'bulk.bin': randomBytes(3 << 20) });
    const top = gzLayer({ 'top.txt': 'top layer\n' });
    const layers = [bottom, top].map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...reg.addBlob('crash', l.gz) }));
    const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...reg.addBlob('crash', JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['cat', '/top.txt'] }, rootfs: { type: 'layers', diff_ids: [bottom, top].map((l) => sha256(l.tar)) } })) };
    reg.addManifest('crash', 'v1', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers });
    const stalled: http.ServerResponse[] = [];
    reg.hook = (req, res) => {
      if (!req.url!.endsWith(`/blobs/${layers[0]!.digest}`)) return false;
      res.writeHead(200, { 'content-length': bottom.gz.length });
      res.write(bottom.gz.subarray(0, bottom.gz.length >> 1));
      stalled.push(res);
      return true;
    };
    const data = path.join(d.dir, 'data');
    const inFlight = (): string[] => [path.join(data, 'content', 'ingest'), path.join(data, 'snapshots', 'tmp')].flatMap((dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : []));
    const image = `${reg.host}/crash:v1`;
    const puller = spawn(DOCKER!, ['pull', image], { env: d.env, stdio: 'ignore' });
    try {
      // Killed while the first layer is half here: its blob being written, its files being unpacked.
      assert.ok(await poll(() => stalled.length > 0 && inFlight().length >= 2, 15_000), `the pull is under way: ${inFlight().join(', ')}`);
      await d.kill9();
      stalled.forEach((res) => res.destroy());
      reg.hook = undefined;
      await d.start();
      assert.deepEqual(inFlight(), [], 'no ingest file, no half-unpacked layer');
      assert.equal(d.docker(['image', 'inspect', image]).status, 1, 'no image');
      assert.deepEqual(fs.readdirSync(path.join(data, 'snapshots', 'layers')).filter((l) => l !== sha256(bottom.tar).slice(7) && fs.existsSync(path.join(data, 'snapshots', 'layers', l, 'layer.json')) && JSON.parse(fs.readFileSync(path.join(data, 'snapshots', 'layers', l, 'layer.json'), 'utf8')).diffId === sha256(top.tar)), [], 'no top layer without its parent');
      // (Not d.dockerOk: a synchronous client would stop this process's registry from answering.)
      await run(DOCKER!, ['pull', image], { env: d.env, timeout: 60_000 });
      const cid = d.dockerOk(['create', image]).trim();
      for (const [file, text] of [['/top.txt', 'top layer\n'], ['/early.txt', 'early']]) assert.ok(d.dockerOk(['cp', `${cid}:${file}`, '-']).includes(text), file);
      d.dockerOk(['rm', cid]);
      d.dockerOk(['rmi', image]);
    } finally {
      puller.kill('SIGKILL');
      await reg.stop();
    }
  });

  it('keeps containers and their logs when the exec root is lost, as after a reboot', async () => {
    // berthd mounts a tmpfs on an empty exec root that is on a disk (/tmp is one here), and
    // keeps logs in the data root, so that losing the tmpfs (a reboot) loses no log.
    const execRoot = path.join(d.dir, 'exec');
    assert.equal(fs.statfsSync(execRoot).type, TMPFS_MAGIC, 'the exec root is a tmpfs');
    const done = d.dockerOk(['run', '-d', '--name', 'done', 'busybox', 'echo', 'finished']).trim();
    assert.equal(d.dockerOk(['wait', done]).trim(), '0');
    const up = d.dockerOk(['run', '-d', '--name', 'up', 'busybox', 'sh', '-c', 'echo started; exec sleep 1000']).trim();
    assert.ok(await poll(() => d.docker(['logs', up]).stdout === 'started\n', 5000), 'the running container logged');
    const logPath = d.dockerOk(['inspect', '-f', '{{.LogPath}}', up]).trim();
    assert.ok(logPath.startsWith(path.join(d.dir, 'data') + '/'), `the log is in the data root: ${logPath}`);

    // "Reboot": the daemon, the shims and the containers die, the exec root's tmpfs goes.
    await d.kill9();
    for (const pid of pidsMentioning(d.dir)) process.kill(pid, 'SIGKILL');
    for (const root of cgroupRoots()) {
      const parent = path.join(root, d.cgroupParent);
      if (!fs.existsSync(parent)) continue;
      for (const e of fs.readdirSync(parent, { withFileTypes: true }).filter((x) => x.isDirectory())) {
        for (const pid of fs.readFileSync(path.join(parent, e.name, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      }
    }
    assert.ok(await poll(() => pidsMentioning(d.dir).length === 0, 5000), 'shims gone');
    assert.equal(spawnSync('umount', ['-l', execRoot]).status, 0);
    await d.start();

    assert.equal(fs.statfsSync(execRoot).type, TMPFS_MAGIC, 'a new tmpfs on the exec root');
    assert.equal(d.dockerOk(['logs', done]), 'finished\n');
    assert.equal(d.dockerOk(['logs', up]), 'started\n');
    assert.match(d.dockerOk(['inspect', '-f', '{{.State.Status}}', up]).trim(), /^exited$/);
    // It starts again, appending to the same log.
    d.dockerOk(['start', up]);
    assert.ok(await poll(() => d.docker(['logs', up]).stdout === 'started\nstarted\n', 5000), d.docker(['logs', up]).stdout);
    d.dockerOk(['rm', '-f', done, up]);
    assert.ok(!fs.existsSync(logPath), 'rm removes the log');
    assert.deepEqual(d.mountsLeft(), []);
  });
});
