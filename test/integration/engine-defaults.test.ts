/**
 * Docker's secure defaults, proven from inside a container (issue 4): a Spec made by
 * src/engine/spec/container-spec.ts for the busybox test image, run by bin/berth-oci.
 * Needs root and the test images; the comparison with a real `docker run` needs a private dockerd.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { containerSpec, type CreateConfig, type HostConfig } from '../../src/engine/spec/container-spec.js';
import type { ImageConfig } from '../../src/images/types.js';
import { CAPABILITIES, LAST_CAP } from '../../src/runtime/plan/tables.js';
import { dockerdSkip, type PrivateDockerd, startPrivateDockerd } from '../helpers/engines.js';
import { makeBundle, testImagesDir, type TestBundle } from '../helpers/images.js';
import { isRoot, OciCli, uniqueId } from '../helpers/runtime.js';

const DOCKER_DEFAULT_CAPEFF = '00000000a80425fb';
const CGROUP_PARENT = `/berth-engine-defaults-${process.pid}`;

const cli = new OciCli();
const bundles: TestBundle[] = [];

const IMAGE: ImageConfig = {
  architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
  rootfs: { type: 'layers', diff_ids: [] },
};

/** This process's bounding set: what "all capabilities" can mean here. */
function ownBoundingSet(): bigint {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapBnd:'))!;
  return BigInt(`0x${line.split(/\s+/)[1]}`);
}

function capNames(mask: bigint): string[] {
  return Object.entries(CAPABILITIES)
    .filter(([, bit]) => bit <= LAST_CAP && (mask >> BigInt(bit)) & 1n)
    .map(([name]) => name);
}

/** Runs a shell script in a container whose config.json is containerSpec's output. */
function runSh(script: string, host: HostConfig = {}, create: CreateConfig = {}) {
  const id = uniqueId('defaults');
  const b = makeBundle();
  bundles.push(b);
  b.spec = containerSpec({
    image: IMAGE,
    create: { Cmd: ['sh', '-c', script], ...create },
    host,
    rootfs: path.join(b.dir, 'rootfs'),
    user: { uid: 0, gid: 0, additionalGids: [] }, // busybox: root
    cgroupsPath: `${CGROUP_PARENT}/${id}`,
    id,
    facts: {
      capabilities: capNames(ownBoundingSet()),
      cgroupVersion: fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1,
      arch: process.arch,
      kernel: os.release(),
    },
  });
  b.save();
  return cli.run(['run', '-b', b.dir, id]);
}

function statusField(out: string, name: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`${name}:`));
  assert.ok(line, `${name} in ${out}`);
  return line.split(/\s+/)[1];
}

describe("engine defaults: Docker's, from inside the container", { skip: !isRoot && 'needs root' }, () => {
  before(() => {
    makeBundle().remove(); // unpacks the image once, outside any test's timeout
  });
  after(() => {
    cli.cleanup();
    for (const b of bundles.splice(0)) b.remove();
    for (const root of ['/sys/fs/cgroup', ...['memory', 'pids', 'cpu,cpuacct', 'devices', 'freezer', 'systemd'].map((c) => `/sys/fs/cgroup/${c}`)]) {
      try {
        fs.rmdirSync(path.join(root, CGROUP_PARENT));
      } catch {
        // absent or not on this hierarchy
      }
    }
  });

  it("has Docker's default capabilities and seccomp filter; mount and clock changes fail", () => {
    const r = runSh(
      'grep -E "^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|Seccomp|NoNewPrivs):" /proc/self/status; ' +
        'mkdir -p /mnt; mount -t tmpfs none /mnt 2>&1 && echo MOUNTED; ' +
        'date -s 2001-02-03 2>&1; ' +
        'echo env: $HOSTNAME $PATH; pwd',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statusField(r.stdout, 'CapEff'), DOCKER_DEFAULT_CAPEFF);
    assert.equal(statusField(r.stdout, 'CapPrm'), DOCKER_DEFAULT_CAPEFF);
    assert.equal(statusField(r.stdout, 'CapBnd'), DOCKER_DEFAULT_CAPEFF);
    assert.equal(statusField(r.stdout, 'CapInh'), '0000000000000000');
    assert.equal(statusField(r.stdout, 'Seccomp'), '2');
    assert.equal(statusField(r.stdout, 'NoNewPrivs'), '0');
    assert.doesNotMatch(r.stdout, /MOUNTED/);
    assert.match(r.stdout, /mount: .*(denied|not permitted)/i);
    // busybox date reports the failed clock_settime (EPERM) and still prints the date it wanted.
    assert.match(r.stdout, /date: can't set date: Operation not permitted/);
    assert.ok(new Date().getFullYear() > 2001);
    assert.match(r.stdout, /^env: \S{12} \/usr\/local\/sbin:/m);
    assert.match(r.stdout, /^\/$/m);
  });

  it('--cap-add SYS_ADMIN: the capability and the seccomp rules that go with it allow mount', () => {
    const r = runSh('grep -E "^(CapEff|Seccomp):" /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && grep " /mnt " /proc/mounts', { CapAdd: ['sys_admin'] });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(BigInt(`0x${statusField(r.stdout, 'CapEff')}`), BigInt(`0x${DOCKER_DEFAULT_CAPEFF}`) | (1n << 21n));
    assert.equal(statusField(r.stdout, 'Seccomp'), '2');
    assert.match(r.stdout, /^none \/mnt tmpfs /m);
  });

  it('--cap-drop ALL --security-opt no-new-privileges', () => {
    const r = runSh('grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status', { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statusField(r.stdout, 'CapEff'), '0000000000000000');
    assert.equal(statusField(r.stdout, 'CapBnd'), '0000000000000000');
    assert.equal(statusField(r.stdout, 'NoNewPrivs'), '1');
  });

  it("--privileged: this host's full capability set, no seccomp, mount works", () => {
    const r = runSh('grep -E "^(CapEff|Seccomp):" /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && echo MOUNTED', { Privileged: true });
    assert.equal(r.status, 0, r.stderr);
    const full = ownBoundingSet() & ((1n << BigInt(LAST_CAP + 1)) - 1n);
    assert.equal(statusField(r.stdout, 'CapEff'), full.toString(16).padStart(16, '0'));
    assert.equal(statusField(r.stdout, 'Seccomp'), '0');
    assert.match(r.stdout, /MOUNTED/);
  });

  it('--security-opt seccomp=unconfined keeps the default capabilities', () => {
    const r = runSh('grep -E "^(CapEff|Seccomp):" /proc/self/status', { SecurityOpt: ['seccomp=unconfined'] });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statusField(r.stdout, 'CapEff'), DOCKER_DEFAULT_CAPEFF);
    assert.equal(statusField(r.stdout, 'Seccomp'), '0');
  });
});

describe('engine defaults: the same CapEff as docker run', { skip: dockerdSkip, timeout: 300_000 }, () => {
  let engine: PrivateDockerd | undefined;
  before(async () => {
    testImagesDir();
    engine = await startPrivateDockerd({ prefix: 'berth-defaults-dockerd-', timeoutMs: 120_000 });
  });
  after(async () => {
    await engine?.stop();
    // runSh's bundles of this suite (the first suite's after() has run already).
    for (const b of bundles.splice(0)) b.remove();
  });

  it('docker run --rm busybox grep CapEff /proc/self/status', () => {
    const images = testImagesDir();
    if (engine!.docker(['image', 'inspect', 'busybox']).status !== 0) engine!.dockerOk(['load', '-i', path.join(images, 'docker-archive', 'busybox.tar')]);
    const theirs = engine!.dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    assert.equal(statusField(theirs, 'CapEff'), DOCKER_DEFAULT_CAPEFF);
    const ours = runSh('grep CapEff /proc/self/status');
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(statusField(ours.stdout, 'CapEff'), statusField(theirs, 'CapEff'));
  });
});
