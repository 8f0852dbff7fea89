/**
 * Issue 4, acceptance 3, through berthd and the docker CLI: a default container has Docker's
 * capability set (CapEff 00000000a80425fb, the value a private dockerd gives the same image in
 * engine-defaults.test.ts), seccomp mode 2, and cannot mount, load kernel modules, set the
 * clock or reach the daemon's socket; the flags that loosen this do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip } from '../helpers/engines.js';

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

  it('runs as the requested user with no capabilities', () => {
    const r = sh('id -u; grep CapEff /proc/self/status', ['--user', '1000:1000']);
    assert.match(r.stdout, /^1000\n/);
    assert.equal(field(r.stdout, 'CapEff'), '0000000000000000');
  });
});
