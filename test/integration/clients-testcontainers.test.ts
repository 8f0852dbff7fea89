/**
 * testcontainers (npm) against berthd: a GenericContainer from the local busybox image starts,
 * Wait.forLogMessage sees its message, and stop() removes it. Configuration, all through the
 * environment as a user would set it: DOCKER_HOST (berthd's socket), TESTCONTAINERS_RYUK_DISABLED
 * (the reaper is an image we do not have and needs networking) and TESTCONTAINERS_HOST_OVERRIDE
 * (this machine has /.dockerenv, so testcontainers would look up the "bridge" network's gateway
 * through the network API, which berthd does not have yet) and TMPDIR (its lock files, kept in
 * the daemon's temp dir). The daemon gets a bridge of the test's own, for getMappedPort().
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import Docker from 'dockerode';
import { GenericContainer, Wait } from 'testcontainers';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip } from '../helpers/engines.js';

const skip = dockerdSkip;

async function gone(docker: Docker, id: string): Promise<void> {
  await assert.rejects(docker.getContainer(id).inspect(), (err: { statusCode?: number }) => err.statusCode === 404, `container ${id} still exists`);
  assert.ok(!(await docker.listContainers({ all: true })).some((c) => c.Id === id), `container ${id} still listed`);
}

describe('testcontainers against berthd', { skip }, () => {
  let d: PrivateBerthd;
  let docker: Docker;
  const saved: Record<string, string | undefined> = {};
  const env: Record<string, string> = { TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' };

  before(async () => {
    // A bridge of the test's own, for port publishing (getMappedPort).
    d = await startBerthd({ prefix: 'berthd-tc-', bridge: { name: `tc${process.pid % 100000}`, cidr: `10.214.${process.pid % 200}.1/24` } });
    d.loadImages('busybox', 'web');
    docker = new Docker({ socketPath: d.socket });
    env.DOCKER_HOST = `unix://${d.socket}`;
    // testcontainers' lock files go to os.tmpdir(): keep them in the daemon's dir, removed with it.
    env.TMPDIR = path.join(d.dir, 'tmp');
    fs.mkdirSync(env.TMPDIR);
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await d?.stop();
  });

  it('starts a GenericContainer, waits for its log message, stops and removes it', async () => {
    const t0 = Date.now();
    const container = await new GenericContainer('busybox')
      .withCommand(['sh', '-c', 'echo starting; sleep 0.5; echo "server is ready"; exec sleep 1000'])
      .withEnvironment({ GREETING: 'hi' })
      .withLabels({ suite: 'testcontainers' })
      .withWaitStrategy(Wait.forLogMessage('server is ready'))
      .withStartupTimeout(30_000)
      .start();
    const id = container.getId();
    try {
      assert.ok(Date.now() - t0 >= 500, 'start() returned only once the message was logged');
      const info = await docker.getContainer(id).inspect();
      assert.equal(info.State.Status, 'running');
      assert.equal(info.Config.Labels['org.testcontainers'], 'true');
      assert.equal(info.Config.Labels.suite, 'testcontainers');
      assert.ok(info.Config.Env.includes('GREETING=hi'));
      assert.equal(container.getName(), info.Name);
      const logs = await container.logs();
      const lines: string[] = [];
      await new Promise<void>((resolve, reject) => {
        logs.on('data', (line: string) => {
          lines.push(String(line).trim());
          if (lines.includes('server is ready')) resolve();
        });
        logs.on('error', reject);
        setTimeout(() => reject(new Error(`no ready line in ${JSON.stringify(lines)}`)), 10_000);
      });
      logs.destroy();
      assert.deepEqual(lines.slice(0, 2), ['starting', 'server is ready']);
    } finally {
      const stopped = await container.stop();
      assert.equal(stopped.getId(), id);
    }
    await gone(docker, id);
  });

  it('a regular expression seen N times; restart() keeps the container', async () => {
    const container = await new GenericContainer('busybox')
      .withCommand(['sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 0.1; done; exec sleep 1000'])
      .withWaitStrategy(Wait.forLogMessage(/tick \d/, 3))
      .start();
    const id = container.getId();
    try {
      const pid = (await docker.getContainer(id).inspect()).State.Pid;
      await container.restart({ timeout: 1000 });
      const after = await docker.getContainer(id).inspect();
      assert.ok(after.State.Running && after.State.Pid !== pid, 'restarted with a new PID 1');
    } finally {
      await container.stop({ timeout: 1000 });
    }
    await gone(docker, id);
  });

  it('a message that never comes fails start() within the startup timeout, and the container is removed', async () => {
    const before = new Set((await docker.listContainers({ all: true })).map((c) => c.Id));
    const t0 = Date.now();
    await assert.rejects(
      new GenericContainer('busybox').withCommand(['sh', '-c', 'echo something else; exec sleep 1000']).withWaitStrategy(Wait.forLogMessage('never printed')).withStartupTimeout(2000).start(),
      /never printed|timed out|Log message/i,
    );
    assert.ok(Date.now() - t0 < 15_000);
    let left: string[] = [];
    for (const t1 = Date.now(); Date.now() - t1 < 10_000; await new Promise((r) => setTimeout(r, 100))) {
      left = (await docker.listContainers({ all: true })).map((c) => c.Id).filter((id) => !before.has(id));
      if (left.length === 0) break;
    }
    assert.deepEqual(left, [], 'the failed container is removed');
  });

  it('a container that exits before its message fails start()', async () => {
    const t0 = Date.now();
    await assert.rejects(new GenericContainer('busybox').withCommand(['sh', '-c', 'echo bye; exit 1']).withWaitStrategy(Wait.forLogMessage('never printed')).withStartupTimeout(10_000).start(), /Log stream ended/);
    assert.ok(Date.now() - t0 < 8000, 'the end of the log stream (the exit) ends the wait, not the timeout');
  });

  it('exec in a started container', async (t) => {
    const probe = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '100'] });
    let execStatus = 0;
    try {
      await probe.start();
      await probe.exec({ Cmd: ['true'] }).catch((err: { statusCode?: number }) => (execStatus = err.statusCode ?? 0));
    } finally {
      await probe.remove({ force: true });
    }
    if (execStatus === 501) {
      t.skip('berthd answers exec with 501 until the shim runs exec (branch shim-tty)');
      return;
    }
    const container = await new GenericContainer('busybox').withCommand(['sh', '-c', 'echo up; exec sleep 1000']).withWaitStrategy(Wait.forLogMessage('up')).start();
    try {
      const r = await container.exec(['sh', '-c', 'echo out; echo err >&2; exit 4']);
      assert.equal(r.exitCode, 4);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
    } finally {
      await container.stop();
    }
  });

  it('the web image with an exposed port and getMappedPort()', async () => {
    const container = await new GenericContainer('web').withExposedPorts(80).start();
    try {
      const port = container.getMappedPort(80);
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.match(await res.text(), /hello from the web test image/);
    } finally {
      await container.stop();
    }
  });

  it('nothing is left: no container, no mount', async () => {
    assert.deepEqual(await docker.listContainers({ all: true }), []);
    assert.deepEqual(d.mountsLeft(), []);
  });
});
