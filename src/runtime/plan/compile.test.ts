/**
 * The plan is the recorded sequence of operations the C stage will perform: these tests
 * check its order and content without root (youki's idea of a recording syscall layer).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import type { Spec } from '../spec/config.js';
import { defaultSpec } from '../spec/defaults.js';
import { compileCreatePlan, compileExecPlan, execEnvironment, type CreatePlanContext } from './compile.js';
import { encodePlan, type PlanOp } from './plan.js';
import { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, MS_BIND, MS_PRIVATE, MS_REC, MS_SLAVE } from './tables.js';

function context(overrides: Partial<CreatePlanContext> = {}): CreatePlanContext {
  return {
    bundle: '/bundle',
    rootfs: '/bundle/rootfs',
    execFifo: '/run/berth-oci/c1/exec.fifo',
    foreground: false,
    preserveFds: 0,
    cgroup: { mode: 'v1', procsFiles: ['/sys/fs/cgroup/memory/c1/cgroup.procs'], optionalProcsFiles: ['/sys/fs/cgroup/unified/c1/cgroup.procs'], paths: { memory: '/sys/fs/cgroup/memory/c1', unified: '/sys/fs/cgroup/unified/c1' } },
    host: { lastCap: 40, isDirectory: (p) => !p.endsWith('.conf'), exists: () => false },
    ...overrides,
  };
}

function spec(edit?: (s: Spec) => void): Spec {
  const s = defaultSpec();
  s.process!.terminal = false;
  edit?.(s);
  return s;
}

const names = (ops: PlanOp[]): string[] => ops.map((op) => op[0]);
const find = (ops: PlanOp[], name: string): PlanOp[] => ops.filter((op) => op[0] === name);

describe('compileCreatePlan', () => {
  it('writes oom_score_adj in stage 0, before any namespace is joined or made (inherited through clone)', () => {
    const ops = compileCreatePlan(
      spec((s) => {
        s.process!.oomScoreAdj = 0;
        s.linux!.namespaces = [...(s.linux!.namespaces ?? []), { type: 'user' }];
        s.linux!.uidMappings = [{ containerID: 0, hostID: 1 << 30, size: 65536 }];
        s.linux!.gidMappings = [{ containerID: 0, hostID: 1 << 30, size: 65536 }];
      }),
      context(),
    );
    assert.deepEqual(ops[0], ['write', '/proc/self/oom_score_adj', '0']);
    assert.equal(ops.filter((op) => op[1] === '/proc/self/oom_score_adj').length, 1, 'not again inside the namespaces');
    assert.deepEqual(compileCreatePlan(spec(), context())[0], ['write', '/sys/fs/cgroup/memory/c1/cgroup.procs', '0'], 'none when unset');
  });

  it('joins the cgroup, creates the namespaces in one clone, then sets up the container in order', () => {
    const ops = compileCreatePlan(spec(), context());
    const order = names(ops);
    const at = (name: string): number => order.indexOf(name);
    assert.deepEqual(ops[0], ['write', '/sys/fs/cgroup/memory/c1/cgroup.procs', '0']);
    assert.deepEqual(ops[1], ['try_write', '/sys/fs/cgroup/unified/c1/cgroup.procs', '0']);
    const clone = find(ops, 'clone')[0];
    assert.equal(clone[1], CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS);
    assert.equal(clone[4], 'detach');
    assert.ok(at('mkfifo') < at('clone') && at('exec_fifo') < at('clone'), 'the fifo is made and opened by the host side');
    assert.deepEqual(ops[at('clone') + 1], ['rootfs', '/bundle/rootfs', MS_SLAVE | MS_REC]);
    assert.ok(at('mount') < at('mknod') && at('mknod') < at('pivot_root'));
    assert.ok(at('pivot_root') < at('mask') && at('mask') < at('readonly') && at('readonly') < at('readonly_root'));
    // The cwd is made if missing, inside the new root, before anything is read-only (runc's order).
    assert.ok(at('pivot_root') < at('mkdir_all') && at('mkdir_all') < at('readonly_root') && at('mkdir_all') < at('chdir'));
    assert.deepEqual(find(ops, 'mkdir_all')[0], ['mkdir_all', spec().process!.cwd]);
    assert.ok(at('user') < at('caps'), 'identity before capabilities (keepcaps)');
    assert.ok(at('no_new_privs') < at('user'));
    assert.deepEqual(order.slice(-3), ['ready', 'wait_start', 'exec']);
  });

  it('brings lo up only when the engine asks (its annotation) and there is a network namespace; runc leaves it', () => {
    assert.deepEqual(find(compileCreatePlan(spec(), context()), 'loopback_up'), []);
    const asked = compileCreatePlan(spec((s) => (s.annotations = { 'io.berth.network.loopback': 'up' })), context());
    const order = names(asked);
    assert.deepEqual(find(asked, 'loopback_up'), [['loopback_up']]);
    assert.ok(order.indexOf('clone') < order.indexOf('loopback_up') && order.indexOf('loopback_up') < order.indexOf('user'), 'inside the namespace, before the identity changes');
    const hostNet = spec((s) => {
      s.annotations = { 'io.berth.network.loopback': 'up' };
      s.linux!.namespaces = s.linux!.namespaces!.filter((ns) => ns.type !== 'network');
    });
    assert.deepEqual(find(compileCreatePlan(hostNet, context()), 'loopback_up'), [], "never the host's lo");
  });

  it("gives execve one entry per variable, the last one given, and reads HOME from the container's passwd only when missing (runc)", () => {
    const ops = compileCreatePlan(spec((s) => {
      s.process!.env = ['PATH=/bin', 'A=from-file', 'B=', 'A=1', 'PATH=/usr/bin:/bin', 'BARE'];
      s.process!.user = { uid: 1000, gid: 1000 };
    }), context());
    const exec = find(ops, 'exec')[0]!;
    assert.equal(String(exec[2]), 'B=\0A=1\0PATH=/usr/bin:/bin\0BARE\0');
    assert.deepEqual(find(ops, 'resolve_exec')[0], ['resolve_exec', 'sh', '/usr/bin:/bin'], 'the PATH that execve gets');
    const order = names(ops);
    assert.deepEqual(find(ops, 'home_from_passwd'), [['home_from_passwd', 1000]]);
    assert.ok(order.indexOf('pivot_root') < order.indexOf('home_from_passwd') && order.indexOf('home_from_passwd') < order.indexOf('user'), "the container's /etc/passwd, read before the user changes");
    const withHome = compileCreatePlan(spec((s) => (s.process!.env = ['HOME=/data'])), context());
    assert.deepEqual(find(withHome, 'home_from_passwd'), []);
  });

  it('checks each mount target for lying inside /proc: refused by its path, else in the C stage (outside_proc)', () => {
    const withMount = (destination: string) => spec((s) => s.mounts!.push({ destination, type: 'bind', source: '/srv/x', options: ['rbind'] }));
    assert.throws(() => compileCreatePlan(withMount('/proc/sys/kernel/core_pattern'), context()), /^InvalidArgumentError: mounts\[\d+\]\.destination: "\/bundle\/rootfs\/proc\/sys\/kernel\/core_pattern" cannot be mounted because it is inside \/proc$/);
    const ops = compileCreatePlan(withMount('/data'), context());
    const at = ops.findIndex((op) => op[0] === 'outside_proc' && op[1] === '/data');
    assert.deepEqual(ops[at], ['outside_proc', '/data', '/bundle/rootfs/data']);
    assert.equal(ops[at + 1]![0], 'mount', 'checked right before its mount');
    const lxcfs = compileCreatePlan(withMount('/proc/uptime'), context());
    assert.deepEqual(find(lxcfs, 'outside_proc').filter((op) => op[1] === '/proc/uptime'), [], "lxcfs's files may be covered");
    assert.deepEqual(find(lxcfs, 'outside_proc').filter((op) => op[1] === '/proc'), [], 'nor is /proc itself checked');
  });

  it('execEnvironment: last value wins, an empty HOME counts as none and is dropped', () => {
    assert.deepEqual(execEnvironment(['A=1', 'B=2', 'A=3']), { env: ['B=2', 'A=3'], needsHome: true });
    assert.deepEqual(execEnvironment(['HOME=', 'X=1']), { env: ['X=1'], needsHome: true });
    assert.deepEqual(execEnvironment(['HOME=/h', 'HOME=']), { env: [], needsHome: true });
    assert.deepEqual(execEnvironment(['HOME=', 'HOME=/h']), { env: ['HOME=/h'], needsHome: false });
    assert.deepEqual(execEnvironment(undefined), { env: [], needsHome: true });
  });

  it('without an exec fifo (create and start in one) the process goes from ready to exec', () => {
    const ops = compileCreatePlan(spec(), context({ execFifo: undefined }));
    assert.deepEqual(find(ops, 'mkfifo'), []);
    assert.deepEqual(find(ops, 'exec_fifo'), []);
    assert.deepEqual(names(ops).slice(-3), ['ready', 'wait_start', 'exec'], 'wait_start: nothing to wait on (no fifo)');
  });

  it('mounts the config mounts in order with the parsed flags and data', () => {
    const ops = compileCreatePlan(
      spec((s) => s.mounts!.push({ destination: '/etc/resolv.conf', type: 'bind', source: 'files/resolv.conf', options: ['rbind', 'ro', 'rprivate'] })),
      context(),
    );
    const mounts = find(ops, 'mount');
    assert.deepEqual(mounts[0], ['mount', 'proc', '/proc', 'proc', 0, '', 'dir']);
    const devpts = mounts.find((m) => m[3] === 'devpts')!;
    assert.equal(devpts[5], 'newinstance,ptmxmode=0666,mode=0620,gid=5');
    const bind = mounts.find((m) => m[2] === '/etc/resolv.conf')!;
    assert.equal(bind[1], '/bundle/files/resolv.conf', 'relative sources resolve in the bundle');
    assert.equal(bind[6], 'file', 'a file source gets a file target');
    assert.equal((bind[4] as number) & (MS_BIND | MS_REC), MS_BIND | MS_REC);
    assert.ok(find(ops, 'propagate').some((p) => p[1] === '/etc/resolv.conf' && p[2] === (MS_PRIVATE | MS_REC)));
  });

  it('turns the cgroup mount into a tmpfs with the container own hierarchies bound read-only (v1)', () => {
    const ops = compileCreatePlan(spec(), context());
    const cgroupMounts = find(ops, 'mount').filter((m) => String(m[2]).startsWith('/sys/fs/cgroup'));
    assert.deepEqual(cgroupMounts.map((m) => m[2]), ['/sys/fs/cgroup', '/sys/fs/cgroup/memory'], "hybrid's unified directory is joined, not mounted (as runc)");
    assert.equal(cgroupMounts[1][1], '/sys/fs/cgroup/memory/c1');
    assert.ok(find(ops, 'remount').some((r) => r[1] === '/sys/fs/cgroup'));
  });

  it('binds host devices instead of mknod inside a user namespace and writes the id maps', () => {
    const ops = compileCreatePlan(
      spec((s) => {
        s.linux!.namespaces!.push({ type: 'user' });
        s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 1000 }];
      }),
      context(),
    );
    assert.equal(find(ops, 'mknod').length, 0);
    assert.ok(find(ops, 'mount').some((m) => m[1] === '/dev/null' && m[2] === '/dev/null' && m[4] === MS_BIND));
    const clone = find(ops, 'clone')[0];
    assert.ok(((clone[1] as number) & CLONE_NEWUSER) !== 0);
    assert.equal(clone[2], '0 100000 65536\n');
    assert.equal(clone[3], '0 200000 1000\n');
  });

  it('joins namespaces given by path, user first and mount last, before clone', () => {
    const ops = compileCreatePlan(
      spec((s) => {
        s.linux!.namespaces = [
          { type: 'mount', path: '/proc/42/ns/mnt' },
          { type: 'network', path: '/var/run/netns/x' },
          { type: 'user', path: '/proc/42/ns/user' },
          { type: 'pid' },
        ];
      }),
      context(),
    );
    assert.deepEqual(find(ops, 'setns').map((o) => o[1]), ['/proc/42/ns/user', '/var/run/netns/x', '/proc/42/ns/mnt']);
    assert.equal(find(ops, 'clone')[0][1], CLONE_NEWPID);
  });

  it('loads seccomp before dropping privileges without noNewPrivileges, last with it', () => {
    const seccomp = { filter: Buffer.alloc(8), flags: 0 };
    const withNnp = names(compileCreatePlan(spec(), context({ seccomp })));
    assert.ok(withNnp.indexOf('seccomp') > withNnp.indexOf('caps'));
    const withoutNnp = names(compileCreatePlan(spec((s) => (s.process!.noNewPrivileges = false)), context({ seccomp })));
    assert.ok(withoutNnp.indexOf('seccomp') < withoutNnp.indexOf('user'));
  });

  it('computes capability masks and maps RLIM_INFINITY', () => {
    const ops = compileCreatePlan(spec((s) => s.process!.rlimits!.push({ type: 'RLIMIT_CORE', soft: 2 ** 64, hard: 2 ** 64 })), context());
    assert.deepEqual(find(ops, 'caps')[0], ['caps', 40, '0x20000420', '0x20000420', '0x20000420', '0x0', '0x20000420']);
    assert.deepEqual(find(ops, 'rlimit').find((r) => r[1] === 4), ['rlimit', 4, -1, -1]);
  });

  it('runs hooks at their points: createRuntime through the runtime, createContainer and startContainer in the container', () => {
    const hook = { path: '/bin/hook', args: ['hook', 'x'] };
    const ops = compileCreatePlan(spec((s) => (s.hooks = { createRuntime: [hook], createContainer: [hook], startContainer: [hook] })), context());
    const order = names(ops);
    assert.ok(order.indexOf('sync') < order.indexOf('hook') && order.indexOf('hook') < order.indexOf('pivot_root'));
    assert.ok(order.lastIndexOf('hook') > order.indexOf('wait_start'));
    assert.ok(order.indexOf('load_state') < order.indexOf('ready'), 'the state for startContainer hooks is read before the socket closes');
  });

  it('rejects what it cannot do, naming the field', () => {
    assert.throws(() => compileCreatePlan(spec((s) => (s.process!.terminal = true)), context()), (e: Error) => e instanceof InvalidArgumentError && /console-socket/.test(e.message));
    assert.throws(() => compileCreatePlan(spec((s) => (s.linux!.rootfsPropagation = 'sideways')), context()), /linux.rootfsPropagation/);
    assert.throws(() => compileCreatePlan(spec((s) => (s.process!.apparmorProfile = 'docker-default')), context()), /AppArmor is not enabled/);
    assert.throws(() => compileCreatePlan(spec((s) => (s.linux!.mountLabel = 'system_u:object_r:container_file_t:s0')), context()), /SELinux is not enabled/);
  });
});

describe('compileCreatePlan on cgroup v2', () => {
  it('attaches the device filter before anything joins the cgroup', () => {
    const program = Buffer.alloc(16);
    const ctx = context({ cgroup: { mode: 'v2', procsFiles: ['/sys/fs/cgroup/c1/cgroup.procs'], paths: { unified: '/sys/fs/cgroup/c1' }, deviceFilter: { cgroupDir: '/sys/fs/cgroup/c1', program } } });
    const ops = compileCreatePlan(spec(), ctx);
    assert.deepEqual(ops[0], ['bpf_devices', '/sys/fs/cgroup/c1', program]);
    assert.deepEqual(ops[1], ['write', '/sys/fs/cgroup/c1/cgroup.procs', '0']);
  });
});

describe('compileCreatePlan without a mount namespace', () => {
  it('mounts in the shared namespace and enters the rootfs with chroot, leaving / alone', () => {
    const ops = compileCreatePlan(spec((s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount'))), context());
    const order = names(ops);
    assert.ok(order.includes('rootfs_shared') && !order.includes('rootfs'));
    assert.ok(order.includes('chroot') && !order.includes('pivot_root'));
  });
});

describe('compileExecPlan', () => {
  it('joins every namespace of the container, mount last, and starts no new one', () => {
    const ops = compileExecPlan({ ...defaultSpec().process!, terminal: false }, {
      initPid: 42,
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'],
      foreground: true,
      preserveFds: 0,
      lastCap: 40,
    });
    assert.deepEqual(find(ops, 'setns').map((o) => o[1]), ['/proc/42/ns/ipc', '/proc/42/ns/uts', '/proc/42/ns/net', '/proc/42/ns/pid', '/proc/42/ns/mnt']);
    assert.deepEqual(find(ops, 'clone')[0], ['clone', 0, '', '', 'foreground']);
    assert.ok(!names(ops).includes('wait_start'));
  });
});

describe('encodePlan', () => {
  it('writes length-prefixed arguments that may hold any bytes', () => {
    const bytes = encodePlan([['exec', Buffer.from('sh\0-c\0'), 'a\nb', 3]]);
    assert.equal(bytes.toString('latin1'), 'exec 3\n6\nsh\0-c\0\n3\na\nb\n1\n3\n');
  });
});
