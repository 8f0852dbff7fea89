/**
 * dockerode (docker-modem) drives berthd: the calls a Node program makes, with docker-modem's
 * quirks: the create body repeated in the query string, attach hijacked with `Upgrade: tcp` (and
 * without, as a plain streamed POST), `Transfer-Encoding: chunked` on hijacked requests, and
 * multiplexed streams split with modem.demuxStream. Every container is checked gone at the end.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';

import Docker from 'dockerode';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip, poll } from '../helpers/engines.js';

const skip = dockerdSkip;

/** Everything a stream gives until it ends. */
function collect(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

/** A multiplexed stream split into stdout and stderr text, resolved when it ends. */
function demux(docker: Docker, stream: NodeJS.ReadableStream): Promise<{ stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => (stdout += c.toString()));
  err.on('data', (c: Buffer) => (stderr += c.toString()));
  docker.modem.demuxStream(stream, out, err);
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve({ stdout, stderr }));
    stream.on('close', () => resolve({ stdout, stderr }));
    stream.on('error', reject);
  });
}

async function statusOf(err: Promise<unknown>): Promise<number | undefined> {
  try {
    await err;
  } catch (e) {
    return (e as { statusCode?: number }).statusCode;
  }
  assert.fail('expected an error');
}

describe('dockerode against berthd', { skip }, () => {
  let d: PrivateBerthd;
  let docker: Docker;
  const made: string[] = [];
  const prefix = `dode-${process.pid}`;

  before(async () => {
    d = await startBerthd({ prefix: 'berthd-dockerode-' });
    d.loadImages('busybox');
    docker = new Docker({ socketPath: d.socket });
  });
  after(async () => {
    await d?.stop();
  });

  const create = async (opts: Docker.ContainerCreateOptions): Promise<Docker.Container> => {
    const c = await docker.createContainer({ Image: 'busybox', ...opts });
    made.push(c.id);
    return c;
  };

  it('ping, version, info, listImages, getImage().inspect()', async () => {
    assert.equal(String(await docker.ping()), 'OK');
    const v = await docker.version();
    assert.equal(v.Os, 'linux');
    assert.match(v.ApiVersion, /^1\.\d+$/);
    assert.equal((await docker.info()).OSType, 'linux');
    const images = await docker.listImages();
    assert.ok(images.some((i) => i.RepoTags?.includes('busybox:latest')));
    const inspect = await docker.getImage('busybox').inspect();
    assert.match(inspect.Id, /^sha256:[a-f0-9]{64}$/);
    assert.equal(await statusOf(docker.getImage(`no-such-image-${prefix}`).inspect()), 404);
  });

  it('createContainer: the body, repeated in the query string, is taken once; HostPort "0" is accepted', async () => {
    const c = await create({
      name: `${prefix}-create`,
      Cmd: ['sh', '-c', 'echo $FOO'],
      Env: ['FOO=from-env'],
      Labels: { suite: prefix, 'with space': 'a b' },
      ExposedPorts: { '80/tcp': {} },
      HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '0' }] }, AutoRemove: false },
    });
    // The daemon logs a request once it is answered: poll for the line.
    const created = new RegExp(`POST /containers/create\\?.*Image=busybox.* 201`);
    assert.ok(await poll(() => created.test(d.logTail(400)), 5000), `docker-modem put the body in the query string\n${d.logTail()}`);
    const info = await c.inspect();
    assert.equal(info.Name, `/${prefix}-create`);
    assert.deepEqual(info.Config.Cmd, ['sh', '-c', 'echo $FOO']);
    assert.ok(info.Config.Env.includes('FOO=from-env'));
    assert.equal(info.Config.Labels['with space'], 'a b');
    assert.deepEqual(info.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '0' }] });
    assert.equal(info.State.Status, 'created');
    assert.equal(typeof info.NetworkSettings.Ports, 'object');
    await c.start();
    assert.equal((await c.wait()).StatusCode, 0);
    const logs = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    assert.ok(Buffer.isBuffer(logs));
    assert.equal(logs.subarray(8).toString(), 'from-env\n', 'one multiplexed frame');
    await c.remove();
    assert.equal(await statusOf(c.inspect()), 404);
  });

  it('attach (hijacked, demultiplexed) before start, then wait gives the exit code', async () => {
    const c = await create({ Cmd: ['sh', '-c', 'echo out1; echo err1 >&2; sleep 0.2; echo out2; exit 5'], AttachStdout: true, AttachStderr: true });
    const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
    const output = demux(docker, stream);
    // not-running (the default) would answer at once for a created container, as dockerd does.
    const waited = c.wait({ condition: 'next-exit' });
    await c.start();
    assert.deepEqual(await waited, { StatusCode: 5, Error: null });
    assert.deepEqual(await output, { stdout: 'out1\nout2\n', stderr: 'err1\n' });
    await c.remove();
  });

  it('docker.run() as dockerode defaults it (Tty: true): one raw stream from a terminal', async () => {
    const out = new PassThrough();
    const outText = collect(out);
    const [result, container] = (await docker.run('busybox', ['sh', '-c', 'echo hi; tty'], out, { name: `${prefix}-run-tty` })) as [{ StatusCode: number }, Docker.Container];
    made.push(container.id);
    out.end();
    assert.equal(result.StatusCode, 0);
    assert.equal(await outText, 'hi\r\n/dev/pts/0\r\n');
    await container.remove();
  });

  it('docker.run() with Tty false: create, attach (a plain POST), start, wait; streams split with an array of two', async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    const outText = collect(out);
    const errText = collect(err);
    const [result, container] = (await docker.run('busybox', ['sh', '-c', 'echo to-out; echo to-err >&2; exit 2'], [out, err], { name: `${prefix}-run`, Tty: false })) as [{ StatusCode: number }, Docker.Container];
    made.push(container.id);
    out.end();
    err.end();
    assert.equal(result.StatusCode, 2);
    assert.equal(await outText, 'to-out\n');
    assert.equal(await errText, 'to-err\n');
    await container.remove();
  });

  it('attach without hijack (a plain POST answered with a raw stream), and with logs', async () => {
    const c = await create({ Cmd: ['sh', '-c', 'echo before; sleep 0.3; echo during >&2'] });
    await c.start();
    await c.wait();
    const stream = (await c.attach({ stream: false, logs: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
    assert.deepEqual(await demux(docker, stream), { stdout: 'before\n', stderr: 'during\n' });
    const hijacked = await c.attach({ stream: false, logs: true, stdout: true, stderr: true, hijack: true });
    assert.deepEqual(await demux(docker, hijacked), { stdout: 'before\n', stderr: 'during\n' });
    await c.remove();
  });

  it('logs follow, inspect, stop (the trap runs), restart, kill, listContainers with filters, remove', async () => {
    const c = await create({
      name: `${prefix}-ticker`,
      Labels: { suite: prefix },
      Cmd: ['sh', '-c', 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done'],
    });
    await c.start();
    const info = await c.inspect();
    assert.equal(info.State.Running, true);
    assert.ok(info.State.Pid > 0 && fs.existsSync(`/proc/${info.State.Pid}`));

    const follow = (await c.logs({ follow: true, stdout: true, stderr: true, tail: 0 })) as unknown as NodeJS.ReadableStream;
    const followed = demux(docker, follow);

    const byLabel = await docker.listContainers({ filters: { label: [`suite=${prefix}`] } });
    assert.deepEqual(byLabel.map((x) => x.Id), [c.id]);
    assert.equal(byLabel[0]!.State, 'running');
    assert.deepEqual(byLabel[0]!.Names, [`/${prefix}-ticker`]);
    assert.deepEqual((await docker.listContainers({ filters: JSON.stringify({ name: [`${prefix}-ticker`], status: ['exited'] }) })).length, 0);
    assert.equal((await docker.listContainers({ all: true, filters: { id: [c.id.slice(0, 12)] } })).length, 1);

    await new Promise((r) => setTimeout(r, 400));
    await c.stop({ t: 5 });
    const { stdout } = await followed;
    assert.match(stdout, /^tick \d+\n(tick \d+\n)*bye\n$/, 'logs -f ends with the container');
    const stopped = await c.inspect();
    assert.deepEqual([stopped.State.Status, stopped.State.ExitCode], ['exited', 0]);
    assert.equal(await statusOf(c.stop()), 304, 'stopping a stopped container');

    await c.start();
    assert.equal(await statusOf(c.start()), 304, 'starting a running container');
    const pid1 = (await c.inspect()).State.Pid;
    await c.restart({ t: 2 });
    assert.notEqual((await c.inspect()).State.Pid, pid1);
    await c.pause();
    assert.equal((await c.inspect()).State.Status, 'paused');
    await c.unpause();
    await c.rename({ name: `${prefix}-renamed` });
    assert.equal((await c.inspect()).Name, `/${prefix}-renamed`);
    assert.equal(await statusOf(c.remove()), 409);
    await c.kill();
    assert.equal((await c.wait()).StatusCode, 137);
    assert.equal(await statusOf(c.kill()), 409);
    await c.remove({ force: true, v: true });
    assert.equal(await statusOf(c.inspect()), 404);
    assert.equal(await statusOf(docker.getContainer(`${prefix}-ticker`).inspect()), 404);
  });

  it('remove({ force: true }) of a running container kills it and returns at once', async () => {
    const c = await create({ Cmd: ['sleep', '1000'] });
    await c.start();
    const pid = (await c.inspect()).State.Pid;
    const t0 = Date.now();
    await c.remove({ force: true });
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    assert.ok(!fs.existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')), 'the process is gone');
    assert.equal(await statusOf(c.inspect()), 404);
  });

  it('wait with condition removed answers after AutoRemove', async () => {
    const c = await create({ Cmd: ['sh', '-c', 'exit 3'], HostConfig: { AutoRemove: true } });
    const waited = c.wait({ condition: 'removed' });
    await c.start();
    assert.equal((await waited).StatusCode, 3);
    assert.equal(await statusOf(c.inspect()), 404);
  });

  it('getEvents: since/until returns the lifecycle and ends; a live stream delivers as it happens', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const c = await create({ name: `${prefix}-ev`, Cmd: ['true'] });
    await c.start();
    await c.wait();
    await c.remove();
    const until = Math.floor(Date.now() / 1000) + 1;
    const stream = (await docker.getEvents({ since, until, filters: { container: [`${prefix}-ev`] } })) as unknown as Readable;
    const lines = (await collect(stream)).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Action: string; status: string; id: string });
    assert.deepEqual(lines.map((e) => e.Action), ['create', 'start', 'die', 'destroy']);
    assert.ok(lines.every((e) => e.id === c.id && e.status === e.Action));

    const live = (await docker.getEvents({ filters: { type: ['volume'] } })) as unknown as Readable;
    const first = new Promise<{ Action: string; Actor: { ID: string } }>((resolve) => live.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split('\n')[0]!))));
    const vol = await docker.createVolume({ Name: `${prefix}-evvol` });
    const e = await first;
    live.destroy();
    assert.deepEqual([e.Action, e.Actor.ID], ['create', `${prefix}-evvol`]);
    await docker.getVolume(vol.name).remove();
  });

  it('volumes: create, inspect, list with filters, mount, remove', async () => {
    const v = await docker.createVolume({ Name: `${prefix}-vol`, Labels: { suite: prefix } });
    assert.equal(v.name, `${prefix}-vol`);
    const inspect = await docker.getVolume(`${prefix}-vol`).inspect();
    assert.equal(inspect.Driver, 'local');
    const list = await docker.listVolumes({ filters: { label: [`suite=${prefix}`] } });
    assert.deepEqual(list.Volumes.map((x) => x.Name), [`${prefix}-vol`]);
    const c = await create({ Cmd: ['sh', '-c', 'echo data > /v/f'], HostConfig: { Binds: [`${prefix}-vol:/v`] } });
    await c.start();
    await c.wait();
    assert.equal(fs.readFileSync(path.join(inspect.Mountpoint, 'f'), 'utf8'), 'data\n');
    assert.equal(await statusOf(docker.getVolume(`${prefix}-vol`).remove()), 409, 'in use');
    await c.remove();
    await docker.getVolume(`${prefix}-vol`).remove();
    assert.equal(await statusOf(docker.getVolume(`${prefix}-vol`).inspect()), 404);
  });

  it('errors carry the status codes', async () => {
    assert.equal(await statusOf(docker.getContainer('no-such-container').inspect()), 404);
    assert.equal(await statusOf(docker.getContainer('no-such-container').start()), 404);
    assert.equal(await statusOf(docker.createContainer({ Image: `no-such-image-${prefix}` })), 404);
    await create({ name: `${prefix}-taken`, Cmd: ['true'] });
    assert.equal(await statusOf(docker.createContainer({ Image: 'busybox', name: `${prefix}-taken` })), 409);
    await docker.getContainer(`${prefix}-taken`).remove();
  });

  it('every container made here is gone, with its mounts', async () => {
    const all = await docker.listContainers({ all: true });
    assert.deepEqual(all.filter((c) => made.includes(c.Id)), []);
    for (const id of made) assert.equal(await statusOf(docker.getContainer(id).inspect()), 404);
    assert.ok(await poll(() => d.mountsLeft().length === 0, 5000), String(d.mountsLeft()));
  });
});
