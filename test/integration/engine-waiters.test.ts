/**
 * A client that gives up leaves nothing waiting in the engine. `docker run -d` sends a wait and
 * hangs up without reading it, a poller with a timeout sends many, an attach can end before its
 * container starts: each of them used to leave a waiter (with the request and its socket) for as
 * long as the container lived. In-process, on a real engine and container: the engine's private
 * lists of waiters are what this checks. Likewise, a finished exec is forgotten after a while, as
 * dockerd's execCommandGC does, not kept until its container goes.
 */
import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ExecService } from '../../src/engine/containers/exec.js';
import { Engine } from '../../src/engine/engine.js';
import { cgroupRoots, pidsMentioning, poll, stopPid, unmountUnder } from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';
import { isRoot } from '../helpers/runtime.js';

type Waiters = { exitWaiters: Map<string, unknown[]>; removeWaiters: Map<string, unknown[]>; pendingAttach: Map<string, unknown[]> };

describe('waits and attaches that their clients gave up', { skip: isRoot ? false : 'needs root' }, () => {
  let dir: string;
  let engine: Engine;
  let waiters: Waiters;
  const cgroupParent = `/berth-waiters-${process.pid}`;
  const created: string[] = [];
  const create = async (cmd: string[]): Promise<string> => {
    const { id } = await engine.containers.create({ config: { Image: 'busybox', Cmd: cmd }, hostConfig: { NetworkMode: 'none' } });
    created.push(id);
    return id;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-waiters-'));
    engine = await Engine.open({ dataRoot: path.join(dir, 'data'), execRoot: path.join(dir, 'exec'), cgroupParent, iptables: false });
    await engine.imageService.load(fs.createReadStream(path.join(testImagesDir(), 'docker-archive', 'busybox.tar')));
    waiters = engine.containers as unknown as Waiters;
  });
  after(async () => {
    for (const id of created) await engine?.containers.remove(id, { force: true }).catch(() => undefined);
    engine?.close();
    for (const pid of pidsMentioning(dir)) await stopPid(pid, 3000);
    unmountUnder(dir);
    for (const root of cgroupRoots()) {
      try {
        fs.rmdirSync(path.join(root, cgroupParent));
      } catch {
        /* gone, or never made */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an aborted wait resolves to undefined at once and leaves no waiter; one kept gets the exit', async () => {
    const id = await create(['sleep', '30']);
    await engine.containers.start(id);
    const gone = new AbortController();
    setMaxListeners(30, gone.signal); // one signal for 21 waits here; a request has one each
    const nextExits = Array.from({ length: 20 }, () => engine.containers.wait(id, 'next-exit', gone.signal));
    const removal = engine.containers.wait(id, 'removed', gone.signal);
    assert.equal(waiters.exitWaiters.get(id)?.length, 20);
    assert.equal(waiters.removeWaiters.get(id)?.length, 1);
    gone.abort();
    assert.deepEqual(await Promise.all(nextExits), Array(20).fill(undefined));
    assert.equal(await removal, undefined);
    assert.equal(waiters.exitWaiters.has(id), false, 'no exit waiter left');
    assert.equal(waiters.removeWaiters.has(id), false, 'no removal waiter left');
    // Aborted already: nothing is registered at all.
    assert.equal(await engine.containers.wait(id, 'next-exit', gone.signal), undefined);
    assert.equal(waiters.exitWaiters.has(id), false);

    const kept = engine.containers.wait(id, 'next-exit');
    const keptWithSignal = engine.containers.wait(id, 'next-exit', new AbortController().signal);
    await engine.containers.kill(id, 'SIGKILL');
    assert.equal((await kept).StatusCode, 137);
    assert.equal((await keptWithSignal)?.StatusCode, 137);
  });

  it('an attach closed before its container starts leaves nothing pending', async () => {
    const id = await create(['echo', 'hi']);
    const session = await engine.containers.attach(id);
    assert.equal(waiters.pendingAttach.get(id)?.length, 1);
    assert.equal(waiters.removeWaiters.get(id)?.length, 1, 'the attach waits for a removal meanwhile');
    session.close();
    assert.equal(await session.connected, undefined);
    assert.equal(waiters.pendingAttach.has(id), false, 'no pending attach left');
    assert.ok(await poll(() => !waiters.removeWaiters.has(id), 1000), 'no removal waiter left');
    // The container still runs and exits normally without it.
    const exit = engine.containers.wait(id, 'next-exit');
    await engine.containers.start(id);
    assert.equal((await exit).StatusCode, 0);
  });

  it('an attach kept until the start gets the output (its wait for a removal ends then, and nothing else)', async () => {
    const id = await create(['echo', 'hi']);
    const session = await engine.containers.attach(id);
    await engine.containers.start(id);
    const socket = await session.connected;
    assert.ok(socket, 'connected to the output');
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /hi\n/);
    assert.equal(waiters.removeWaiters.has(id), false, 'no removal waiter left');
    session.close();
  });

  it('a finished exec stays inspectable for a while, then is forgotten; one never started stays', async () => {
    const id = await create(['sleep', '30']);
    await engine.containers.start(id);
    const execs = new ExecService(engine.containers, engine.runtime, engine.events, [], 300);
    const done = execs.create(id, { Cmd: ['true'] });
    const idle = execs.create(id, { Cmd: ['true'] });
    const { exited } = await execs.start(done, { detach: true });
    assert.equal(await exited, 0);
    assert.equal(execs.get(done).exitCode, 0, 'inspectable right after its exit');
    assert.ok(
      await poll(() => {
        try {
          execs.get(done);
          return false;
        } catch {
          return true;
        }
      }, 5000),
      'forgotten after the retention',
    );
    assert.equal(execs.get(idle).running, false, 'an exec never started is kept, as dockerd keeps it');
    await engine.containers.kill(id, 'SIGKILL');
  });
});
