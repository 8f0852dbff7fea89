/**
 * Issue 4, acceptance 3, through berthd and the docker CLI: a default container has Docker's
 * capability set (CapEff 00000000a80425fb, the value a private dockerd gives the same image in
 * engine-defaults.test.ts), seccomp mode 2, and cannot mount, load kernel modules, set the
 * clock or reach the daemon's socket; the flags that loosen this do.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip, poll } from '../helpers/engines.js';

/** One Docker API call over the socket (for what the docker CLI cannot ask for). */
function api(socketPath: string, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => ((res.statusCode ?? 500) >= 400 ? reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)) : resolve(text ? JSON.parse(text) : undefined)));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const DOCKER_DEFAULT_CAPEFF = '00000000a80425fb';

function field(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
}

describe('berthd secure defaults', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-sec-' });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  const sh = (script: string, flags: string[] = []): { status: number | null; stdout: string; stderr: string } =>
    d.docker(['run', '--rm', ...flags, 'busybox', 'sh', '-c', script]);

  it("has Docker's default capabilities and seccomp in filter mode", () => {
    const r = sh('cat /proc/self/status');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(field(r.stdout, 'CapEff'), DOCKER_DEFAULT_CAPEFF);
    assert.equal(field(r.stdout, 'CapBnd'), DOCKER_DEFAULT_CAPEFF);
    assert.equal(field(r.stdout, 'Seccomp'), '2');
  });

  it('cannot mount, load a kernel module, or set the clock', () => {
    const r = sh('mkdir -p /mnt; mount -t tmpfs none /mnt && echo MOUNTED; date -s "2001-01-01 00:00" 2>&1; echo done');
    assert.doesNotMatch(r.stdout, /MOUNTED/);
    // busybox date exits 0 even when it cannot set the clock: its message says what happened.
    assert.match(r.stdout, /can't set date: Operation not permitted/);
    assert.match(r.stdout, /done/);
    assert.ok(new Date().getFullYear() >= 2024, "the host's clock is untouched");
    // The denial comes from the kernel, not from a missing file: init_module is refused by seccomp/caps.
    const mod = sh('echo > /tmp/m.ko; insmod /tmp/m.ko; echo rc=$?');
    assert.match(mod.stdout + mod.stderr, /rc=[1-9]/);
  });

  it("cannot see or reach berthd's socket", () => {
    const r = sh(`ls ${d.socket} 2>&1; find / -xdev -type s 2>/dev/null; echo end`);
    assert.match(r.stdout, new RegExp(`${d.socket}: No such file or directory`));
    assert.doesNotMatch(r.stdout.split('\n').slice(1).join('\n'), /berth\.sock/, 'no socket of the daemon anywhere in the container');
    // Only lo in the container's own network namespace: no path to the daemon's socket either.
    const net = sh('ls /sys/class/net');
    assert.equal(net.stdout.trim(), 'lo');
  });

  it('--privileged, --cap-add, --cap-drop and seccomp=unconfined change exactly that', () => {
    const added = sh('grep CapEff /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && echo MOUNTED', ['--cap-add', 'SYS_ADMIN', '--security-opt', 'apparmor=unconfined']);
    assert.equal(BigInt(`0x${field(added.stdout, 'CapEff')}`), BigInt(`0x${DOCKER_DEFAULT_CAPEFF}`) | (1n << 21n));
    assert.match(added.stdout, /MOUNTED/);
    const dropped = sh('grep CapEff /proc/self/status', ['--cap-drop', 'ALL']);
    assert.equal(field(dropped.stdout, 'CapEff'), '0000000000000000');
    const unconfined = sh('grep Seccomp: /proc/self/status', ['--security-opt', 'seccomp=unconfined']);
    assert.equal(field(unconfined.stdout, 'Seccomp'), '0');
    const privileged = sh('grep -E "CapEff|Seccomp:" /proc/self/status; ls /dev | wc -l', ['--privileged']);
    assert.equal(field(privileged.stdout, 'Seccomp'), '0');
    assert.notEqual(field(privileged.stdout, 'CapEff'), DOCKER_DEFAULT_CAPEFF);
    const nnp = sh('grep NoNewPrivs /proc/self/status', ['--security-opt', 'no-new-privileges']);
    assert.equal(field(nnp.stdout, 'NoNewPrivs'), '1');
  });

  it('UsernsMode "private": root inside, an unprivileged range outside, one range per container', async () => {
    const script = 'id -u; touch /etc/written && echo wrote; stat -c %u /bin/busybox; sleep 5';
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { Id } = (await api(d.socket, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['sh', '-c', script], HostConfig: { UsernsMode: 'private' } })) as { Id: string };
      await api(d.socket, 'POST', `/containers/${Id}/start`);
      ids.push(Id);
    }
    const hostUids = ids.map((id) => {
      const pid = d.dockerOk(['inspect', '-f', '{{.State.Pid}}', id]).trim();
      return Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    });
    for (const uid of hostUids) assert.ok(uid >= 65536, `host uid ${uid} is unprivileged`);
    assert.notEqual(hostUids[0], hostUids[1], 'each container has its own range');
    assert.ok(await poll(() => d.dockerOk(['logs', ids[0]!]).includes('wrote'), 5000));
    assert.equal(d.dockerOk(['logs', ids[0]!]), '0\nwrote\n0\n', 'root inside owns the image files and can write them');
    d.dockerOk(['rm', '-f', ...ids]);
    assert.deepEqual(d.mountsLeft(), [], 'idmapped layers are unmounted');
  });

  it('runs as the requested user with no capabilities', () => {
    const r = sh('id -u; grep CapEff /proc/self/status', ['--user', '1000:1000']);
    assert.match(r.stdout, /^1000\n/);
    assert.equal(field(r.stdout, 'CapEff'), '0000000000000000');
  });
});
