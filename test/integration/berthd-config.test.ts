/**
 * berthd's configuration file: the containers' defaults it gives (DNS, ulimits, /dev/shm size,
 * IPC mode) reach containers that set none of their own; a key no daemon knows stops berthd
 * with dockerd's message, before it touches anything.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BERTHD, startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip } from '../helpers/engines.js';

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

  it('info shows the insecure registries and the log driver as dockerd does', () => {
    const info = JSON.parse(d.dockerOk(['info', '--format', '{{json .}}'])) as { LoggingDriver: string; RegistryConfig: { InsecureRegistryCIDRs: string[]; IndexConfigs: Record<string, { Secure: boolean; Official: boolean }> } };
    assert.equal(info.LoggingDriver, 'local');
    assert.deepEqual(info.RegistryConfig.InsecureRegistryCIDRs, ['10.231.0.0/16', '127.0.0.0/8']);
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
