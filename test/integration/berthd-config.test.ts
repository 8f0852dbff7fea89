/**
 * berthd's configuration file: the containers' defaults it gives (DNS, ulimits, /dev/shm size,
 * IPC mode) reach containers that set none of their own; a key no daemon knows stops berthd
 * with dockerd's message, before it touches anything. The pid file keeps a second daemon out,
 * but not a dead one's zombie.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BERTHD, startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip, poll, stopPid } from '../helpers/engines.js';
import { socketRequest } from '../helpers/http.js';

describe('berthd configuration file', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({
      prefix: 'berthd-config-',
      config: {
        dns: ['10.231.0.53'],
        'dns-search': ['example.test'],
        'dns-opts': ['ndots:3'],
        'default-ulimits': { nofile: { Name: 'nofile', Soft: 1111, Hard: 2222 } },
        'default-shm-size': '16M',
        'default-ipc-mode': 'shareable',
        'live-restore': true,
        'insecure-registries': ['reg.example.test:5000', '10.231.0.0/16'],
        'log-driver': 'local',
      },
    });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  it("gives containers the daemon's DNS, ulimits, /dev/shm size and IPC mode unless they set their own", () => {
    const out = d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1']);
    assert.match(out, /^nameserver 10\.231\.0\.53$/m);
    assert.match(out, /^search example\.test$/m);
    assert.match(out, /^options ndots:3$/m);
    assert.match(out, /^1111\n2222\n/m);
    assert.match(out, /^shm\s+16384\s/m);
    const own = d.dockerOk(['run', '--rm', '--dns', '10.231.0.54', '--ulimit', 'nofile=500:600', '--shm-size', '8m', '--ipc', 'private', 'busybox', 'sh', '-c', 'grep nameserver /etc/resolv.conf; ulimit -n; df -k /dev/shm | tail -1']);
    assert.match(own, /^nameserver 10\.231\.0\.54$/m);
    assert.doesNotMatch(own, /10\.231\.0\.53/);
    assert.match(own, /^500$/m);
    assert.match(own, /^shm\s+8192\s/m);
    const id = d.dockerOk(['create', 'busybox', 'true']).trim();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.IpcMode}}', id]).trim(), 'shareable');
    d.dockerOk(['rm', id]);
    assert.match(fs.readFileSync(path.join(d.dir, 'berthd.log'), 'utf8'), /accepted without effect here: live-restore/);
  });

  it('info shows the insecure registries and the log driver as dockerd does', async () => {
    const info = JSON.parse(d.dockerOk(['info', '--format', '{{json .}}'])) as { LoggingDriver: string; RegistryConfig: { InsecureRegistryCIDRs: string[]; IndexConfigs: Record<string, { Secure: boolean; Official: boolean }> } };
    assert.equal(info.LoggingDriver, 'local');
    assert.deepEqual(info.RegistryConfig.InsecureRegistryCIDRs, ['10.231.0.0/16', '127.0.0.0/8']);
    // dockerd's deprecated fields, empty, as API 1.44 still has them.
    const raw = (JSON.parse((await socketRequest(d.socket, 'GET', '/v1.44/info')).body) as { RegistryConfig: Record<string, unknown> }).RegistryConfig;
    assert.deepEqual([raw.AllowNondistributableArtifactsCIDRs, raw.AllowNondistributableArtifactsHostnames], [[], []]);
    assert.deepEqual(info.RegistryConfig.IndexConfigs['reg.example.test:5000'], { Name: 'reg.example.test:5000', Mirrors: [], Secure: false, Official: false });
    assert.equal(info.RegistryConfig.IndexConfigs['docker.io']?.Official, true);
    // The docker CLI lists them under "Insecure Registries", as for dockerd.
    const text = d.dockerOk(['info']);
    assert.match(text, /Insecure Registries:\s+reg\.example\.test:5000\s+10\.231\.0\.0\/16\s+127\.0\.0\.0\/8/);
  });

  it("stops at a key no daemon knows, with dockerd's message", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthd-badconfig-'));
    try {
      fs.writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify({ 'data-roott': '/nowhere', debug: true }));
      const r = spawnSync(BERTHD, ['--config-file', path.join(dir, 'daemon.json'), '-H', `unix://${dir}/berth.sock`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid')], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /the following directives don't match any configuration option: data-roott/);
      assert.ok(!fs.existsSync(path.join(dir, 'data')) && !fs.existsSync(path.join(dir, 'berth.sock')), 'nothing made');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("berthd's pid file", { skip: dockerdSkip }, () => {
  const procState = (pid: number): string | undefined => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    } catch {
      return undefined;
    }
  };
  const daemonArgs = (dir: string): string[] => ['-H', `unix://${dir}/berth.sock`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid'), '--config-file', path.join(dir, 'daemon.json'), '--bridge', 'none', '--no-exec-root-tmpfs'];

  it('refuses to start while the pid file names a live process, and starts when it names a zombie', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthd-pidfile-'));
    fs.writeFileSync(path.join(dir, 'daemon.json'), '{}');
    // sh starts `sleep 0`, then becomes `sleep 30`, which never waits: its finished child stays a
    // zombie, as a berthd killed with SIGKILL does until its parent reaps it.
    const parent = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let daemon: ReturnType<typeof spawn> | undefined;
    try {
      const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim()))));
      assert.ok(await poll(() => procState(zombie) === 'Z', 5000), `pid ${zombie} became a zombie`);

      fs.writeFileSync(path.join(dir, 'pid'), String(parent.pid));
      const refused = spawnSync(BERTHD, daemonArgs(dir), { encoding: 'utf8', timeout: 30_000 });
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`pid file .* names a running process \\(${parent.pid}\\)`));

      fs.writeFileSync(path.join(dir, 'pid'), String(zombie));
      daemon = spawn(BERTHD, daemonArgs(dir), { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => daemon!.once('exit', (code) => resolve(code)));
      const started = await Promise.race([poll(() => fs.existsSync(path.join(dir, 'berth.sock')), 30_000).then((ok) => (ok ? 'started' : 'no socket after 30 s')), exited.then((code) => `exited with ${code}`)]);
      assert.equal(started, 'started');
      assert.equal(fs.readFileSync(path.join(dir, 'pid'), 'utf8'), String(daemon.pid));
    } finally {
      if (daemon?.pid) await stopPid(daemon.pid, 10_000);
      parent.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
