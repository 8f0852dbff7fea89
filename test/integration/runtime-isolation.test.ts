/**
 * Each isolation claim of berth-oci, proven from inside a real container on the real kernel
 * (issue 2, acceptance 3). Needs root and the test images (../shared/testimages, umoci).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { Spec } from '../../src/runtime/spec/config.js';
import { makeBundle, type TestBundle } from '../helpers/images.js';
import { isRoot, OciCli, uniqueId, waitFor } from '../helpers/runtime.js';

const cli = new OciCli();
const bundles: TestBundle[] = [];

function bundle(args: string[], edit?: ((spec: Spec) => void)): TestBundle {
  const b = makeBundle({ args, edit });
  bundles.push(b);
  return b;
}

/** Runs a shell snippet in a fresh container and returns its output. */
function runSh(script: string, edit?: ((spec: Spec) => void)) {
  const b = bundle(['sh', '-c', script], edit);
  return cli.run(['run', '-b', b.dir, uniqueId('iso')]);
}

describe('berth-oci isolation', { skip: !isRoot && 'needs root' }, () => {
  before(() => {
    bundle(['true']); // builds the image cache once, outside any single test's timeout
  });
  after(() => {
    cli.cleanup();
    for (const b of bundles) b.remove();
  });

  it('runs the process as PID 1 of its own pid namespace', () => {
    const r = runSh('echo $$; ls /proc | grep -c "^[0-9]"');
    assert.equal(r.status, 0, r.stderr);
    const [pid, count] = r.stdout.trim().split('\n');
    assert.equal(pid, '1');
    assert.ok(Number(count) <= 3, `sees only its own processes, saw ${count}`);
  });

  it('has its own hostname', () => {
    const r = runSh('hostname', (s) => (s.hostname = 'berth-iso-test'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'berth-iso-test');
    assert.notEqual(os.hostname(), 'berth-iso-test');
  });

  it('has only lo in a new network namespace', () => {
    const r = runSh('ls /sys/class/net');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split(/\s+/), ['lo']);
  });

  it('maps root inside a user namespace to an unprivileged uid outside', async () => {
    const b = bundle(['sh', '-c', 'id -u; sleep 30'], (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    const id = uniqueId('userns');
    const r = cli.run(['run', '-d', '-b', b.dir, id]);
    assert.equal(r.status, 0, r.stderr);
    const state = JSON.parse(cli.run(['state', id]).stdout) as { pid: number; status: string };
    assert.equal(state.status, 'running');
    const status = fs.readFileSync(`/proc/${state.pid}/status`, 'utf8');
    const uids = /^Uid:\s+(.*)$/m.exec(status)![1].split(/\s+/);
    assert.deepEqual(uids, ['100000', '100000', '100000', '100000'], 'host sees the unprivileged uid');
    const inside = cli.run(['exec', id, 'id', '-u']);
    assert.equal(inside.status, 0, inside.stderr);
    assert.equal(inside.stdout.trim(), '0', 'the container sees root');
    assert.equal(cli.run(['delete', '--force', id]).status, 0);
  });

  it('has its process in every cgroup of the container once created, before start', () => {
    const b = bundle(['true']);
    const id = uniqueId('cgjoin');
    const r = cli.run(['create', '-b', b.dir, id]);
    assert.equal(r.status, 0, r.stderr);
    try {
      const state = JSON.parse(cli.run(['state', id]).stdout) as { pid: number; status: string };
      assert.equal(state.status, 'created');
      const lines = fs.readFileSync(`/proc/${state.pid}/cgroup`, 'utf8').trim().split('\n');
      assert.ok(lines.length >= 2, `hierarchies: ${lines.join(' | ')}`);
      for (const line of lines) assert.ok(line.endsWith(`/${id}`), `in the container's cgroup on every hierarchy: ${line}`);
    } finally {
      assert.equal(cli.run(['delete', '--force', id]).status, 0);
    }
  });

  it('shows its own cgroups as the root of a new cgroup namespace', () => {
    const r = runSh('cat /proc/self/cgroup', (s) => s.linux!.namespaces!.push({ type: 'cgroup' }));
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length >= 2, r.stdout);
    for (const line of lines) assert.match(line, /^\d+:[^:]*:\/$/, `the namespace's root is the container's cgroup: ${line}`);
    const host = runSh('cat /proc/self/cgroup');
    assert.ok(host.stdout.split('\n').some((l) => /^\d+:[^:]*:\/.+/.test(l)), `without one it sees the host's paths: ${host.stdout}`);
  });

  it('OOM-kills a process that allocates beyond the memory limit', () => {
    const hog = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived';
    const limited = runSh(hog, (s) => (s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 * 1024 * 1024 } }));
    assert.notEqual(limited.status, 0, 'the hog must not survive 32 MiB');
    assert.doesNotMatch(limited.stdout, /survived/);
    assert.equal(limited.status, 137, `killed by SIGKILL (OOM), got ${limited.status}: ${limited.stderr}`);
    const free = runSh('head -c 20000000 /dev/zero | tr "\\0" a | wc -c', (s) => (s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 * 1024 * 1024 } }));
    assert.equal(free.status, 0, 'streaming within the limit works');
  });

  it('stops a fork bomb at the pids limit', async () => {
    const b = bundle(['sh', '-c', '(for i in $(seq 1 40); do sleep 20 & done) 2>/dev/null; exec sleep 20'], (s) => (s.linux!.resources = { ...s.linux!.resources, pids: { limit: 12 } }));
    const id = uniqueId('pids');
    assert.equal(cli.run(['run', '-d', '-b', b.dir, id]).status, 0);
    const state = JSON.parse(cli.run(['state', id]).stdout) as { pid: number };
    const pidsPath = /^\d+:pids:(.*)$/m.exec(fs.readFileSync(`/proc/${state.pid}/cgroup`, 'utf8'))![1];
    const events = path.join('/sys/fs/cgroup/pids', pidsPath, 'pids.events');
    await waitFor(() => /max [1-9]/.test(fs.readFileSync(events, 'utf8')), 5000, 'a refused fork');
    const pids = JSON.parse(cli.run(['ps', '--format', 'json', id]).stdout) as number[];
    assert.ok(pids.length <= 12 && pids.length >= 6, `the limit holds the container at 12 processes, saw ${pids.length}`);
    assert.equal(cli.run(['delete', '--force', id]).status, 0);
  });

  it('blocks a syscall with the errno a seccomp rule gives', () => {
    const r = runSh('mkdir /tmp/blocked; echo "rc=$?"; touch /tmp/allowed && echo touched', (s) => {
      s.linux!.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 71 /* EPROTO */ }],
      };
    });
    assert.match(r.stderr + r.stdout, /Protocol error/, 'mkdir fails with EPROTO');
    assert.match(r.stdout, /rc=1/);
    assert.match(r.stdout, /touched/, 'other syscalls still work');
    const mode = runSh('grep Seccomp: /proc/self/status', (s) => (s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }));
    assert.match(mode.stdout, /Seccomp:\s+2/);
  });

  it('really lacks dropped capabilities', () => {
    // runc's default spec keeps only AUDIT_WRITE, KILL and NET_BIND_SERVICE.
    const r = runSh('grep CapEff /proc/self/status; touch /tmp/f; chown 1234 /tmp/f && echo chowned; hostname other && echo renamed; true');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /CapEff:\s+0000000020000420/);
    assert.doesNotMatch(r.stdout, /chowned/, 'no CAP_CHOWN');
    assert.doesNotMatch(r.stdout, /renamed/, 'no CAP_SYS_ADMIN');
    const withChown = runSh('touch /tmp/f; chown 1234 /tmp/f && echo chowned; grep CapEff /proc/self/status', (s) => {
      for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_CHOWN');
    });
    assert.match(withChown.stdout, /chowned/, `an added capability works: ${withChown.stdout} ${withChown.stderr}`);
  });

  it('makes masked paths unreadable', () => {
    assert.ok(fs.readFileSync('/proc/timer_list', 'utf8').length > 0, 'the host can read it');
    const r = runSh('wc -c < /proc/timer_list; ls /sys/firmware | wc -l; cat /proc/keys | wc -c');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split(/\s+/), ['0', '0', '0']);
  });

  it("mounts nothing inside /proc (runc's checkProcMount), even through an image's symlink; lxcfs's files may be covered", () => {
    const hostFile = path.join(os.tmpdir(), `berth-proc-${process.pid}`);
    fs.writeFileSync(hostFile, 'from the host\n');
    try {
      const bind = (destination: string) => (s: Spec) => s.mounts!.push({ destination, type: 'bind', source: hostFile, options: ['rbind', 'ro'] });
      const direct = runSh('true', bind('/proc/sys/kernel/core_pattern'));
      assert.notEqual(direct.status, 0);
      assert.match(direct.stderr, /rootfs\/proc\/sys\/kernel\/core_pattern" cannot be mounted because it is inside \/proc/);
      // /linked -> /proc/sys/kernel in the image: the mount would land on the container's procfs.
      const b = bundle(['true'], bind('/linked/core_pattern'));
      fs.symlinkSync('/proc/sys/kernel', path.join(b.dir, 'rootfs', 'linked'));
      const viaLink = cli.run(['run', '-b', b.dir, uniqueId('iso')]);
      assert.notEqual(viaLink.status, 0);
      assert.match(viaLink.stderr, /rootfs\/linked\/core_pattern" cannot be mounted because it is inside \/proc/);
      const lxcfs = runSh('cat /proc/uptime', bind('/proc/uptime'));
      assert.equal(lxcfs.stdout, 'from the host\n', lxcfs.stderr);
      assert.equal(runSh('cat /x', bind('/x')).stdout, 'from the host\n', 'anywhere else');
    } finally {
      fs.rmSync(hostFile, { force: true });
    }
  });

  it('keeps a read-only root read-only', () => {
    const r = runSh('touch /newfile && echo wrote; echo ok > /tmp/x && echo tmp', (s) => {
      s.root!.readonly = true;
      s.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] });
    });
    assert.match(r.stderr, /Read-only file system/);
    assert.doesNotMatch(r.stdout, /wrote/);
    assert.match(r.stdout, /tmp/, 'a writable mount inside still works');
    const ro = runSh('echo x > /proc/sys/kernel/domainname && echo wrote-sys; grep " /proc/sys " /proc/self/mountinfo', (s) => {
      const proc = s.mounts!.find((m) => m.destination === '/proc')!;
      proc.options = ['nosuid', 'noexec', 'nodev']; // as Docker's
    });
    assert.doesNotMatch(ro.stdout, /wrote-sys/, 'readonlyPaths are read-only');
    // And keep the flags of the mount they are on (proc's nosuid, nodev, noexec), as runc.
    const flags = ro.stdout.trim().split(' ')[5]!.split(',');
    assert.deepEqual(['ro', 'nosuid', 'nodev', 'noexec'].filter((f) => !flags.includes(f)), [], ro.stdout);
  });

  it('runs every hook in order with the state on stdin', async () => {
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-hooks-'));
    try {
      const log = path.join(logDir, 'log');
      const hook = (name: string, file = log) => ({ path: '/bin/sh', args: ['sh', '-c', `read -r state; echo "${name} $state" >> ${file}`] });
      const b = bundle(['sh', '-c', 'echo main >> /hooks/log'], (s) => {
        s.mounts!.push({ destination: '/hooks', type: 'bind', source: logDir, options: ['rbind', 'rw'] });
        s.hooks = {
          prestart: [hook('prestart')],
          createRuntime: [hook('createRuntime')],
          createContainer: [hook('createContainer')],
          startContainer: [hook('startContainer', '/hooks/log')],
          poststart: [hook('poststart')],
          poststop: [hook('poststop')],
        };
      });
      const id = uniqueId('hooks');
      const r = cli.run(['run', '-b', b.dir, id]);
      assert.equal(r.status, 0, r.stderr);
      await waitFor(() => fs.readFileSync(log, 'utf8').includes('poststop'), 5000, 'poststop hook');
      const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
      const names = lines.map((l) => l.split(' ')[0]);
      // poststart runs after the process started, so it may come before or after its output.
      assert.deepEqual(names.filter((n) => n !== 'poststart' && n !== 'main'), ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststop']);
      assert.ok(names.indexOf('poststart') > names.indexOf('startContainer'));
      assert.ok(names.indexOf('main') > names.indexOf('startContainer'));
      for (const line of lines.filter((l) => !l.startsWith('main'))) {
        const state = JSON.parse(line.slice(line.indexOf(' ') + 1)) as { id: string; pid?: number; bundle: string };
        assert.equal(state.id, id);
        assert.equal(state.bundle, b.dir);
      }
    } finally {
      fs.rmSync(logDir, { recursive: true, force: true });
    }
  });
});

describe('berth-oci process attributes and namespaces', { skip: !isRoot && 'needs root' }, () => {
  after(() => {
    cli.cleanup();
    for (const b of bundles) b.remove();
  });

  it('applies user, groups, umask, rlimits, oomScoreAdj, domainname and sysctl', () => {
    const r = runSh('id -u; id -G; umask; ulimit -n; cat /proc/self/oom_score_adj; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward', (s) => {
      s.process!.user = { uid: 1000, gid: 1000, additionalGids: [5, 100], umask: 0o027 };
      s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 }];
      s.process!.oomScoreAdj = 321;
      s.domainname = 'berth.example';
      s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['1000', '1000 5 100', '0027', '512', '321', 'berth.example', '1']);
  });

  it('shifts the clocks of a new time namespace', () => {
    const r = runSh('cut -d" " -f1 /proc/uptime', (s) => {
      s.linux!.namespaces!.push({ type: 'time' });
      s.linux!.timeOffsets = { boottime: { secs: 86400 * 365 }, monotonic: { secs: 86400 } };
    });
    assert.equal(r.status, 0, r.stderr);
    const hostUptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    assert.ok(Number(r.stdout.trim()) - hostUptime > 86400 * 364, `boottime shifted by a year: ${r.stdout} vs ${hostUptime}`);
  });

  it('enters the rootfs without pivot_root when asked (--no-pivot)', () => {
    const b = bundle(['sh', '-c', 'ls /; cat /proc/self/mountinfo | wc -l']);
    const r = cli.run(['run', '--no-pivot', '-b', b.dir, uniqueId('nopivot')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\bbin\b/);
    assert.doesNotMatch(r.stdout, /\bwork\b/, 'the host root is not visible');
  });
});
