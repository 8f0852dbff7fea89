import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../common/errors.js';
import type { Spec } from './config.js';
import { defaultSpec } from './defaults.js';
import { parseSpec, validateProcess } from './validate.js';
import { runtimeFeatures } from './features.js';

/** A fresh, valid config as loose JSON, changed by `edit`, then parsed. */
function parseEdited(edit: (spec: any) => void): Spec {
  const spec = JSON.parse(JSON.stringify(defaultSpec()));
  edit(spec);
  return parseSpec(JSON.stringify(spec));
}

function assertInvalid(fn: () => unknown, field: string | undefined, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(error)}`);
    assert.equal(error.field, field, `wrong field in: ${error.message}`);
    if (message) assert.match(error.message, message);
    return true;
  });
}

/** Each case: an edit of the default spec and the field its error must name. */
function rejects(name: string, field: string, edit: (spec: any) => void, message?: RegExp): void {
  test(`rejects ${name} (${field})`, () => assertInvalid(() => parseEdited(edit), field, message));
}

test('bad JSON is an InvalidArgumentError without field', () => {
  assertInvalid(() => parseSpec('{"ociVersion": '), undefined, /^config\.json: invalid JSON: /);
  assertInvalid(() => parseSpec('[]'), 'config', /object/);
});

test('the default spec and a rich config pass, unknown fields are kept', () => {
  const spec = parseEdited((s) => {
    s.ociVersion = '1.0.2-dev';
    s.futureField = { x: 1 };
    s.domainname = 'example.org';
    s.annotations = { 'org.example': 'v', empty: '' };
    s.hooks = { prestart: [{ path: '/bin/true', args: ['true'], env: ['A=b'], timeout: 5 }], poststop: [] };
    s.mounts.push({ destination: '/data', type: 'none', source: 'data', options: ['rbind', 'ro', 'rprivate'] });
    s.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
    s.process.user = { uid: 1000, gid: 1000, umask: 0o22, additionalGids: [5, 6] };
    s.process.rlimits.push({ type: 'RLIMIT_CORE', soft: 0, hard: 18446744073709551615 });
    s.process.oomScoreAdj = -1000;
    s.process.consoleSize = { height: 25, width: 80 };
    s.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 4 };
    s.process.scheduler = { policy: 'SCHED_OTHER', nice: 5 };
    s.process.execCPUAffinity = { initial: '0-3,7', final: '1' };
    s.linux.namespaces.push({ type: 'cgroup' }, { type: 'time' }, { type: 'user' });
    s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux.gidMappings = [
      { containerID: 0, hostID: 100000, size: 1000 },
      { containerID: 1000, hostID: 200000, size: 1000 },
    ];
    s.linux.timeOffsets = { monotonic: { secs: -10, nanosecs: 5 }, boottime: { secs: 3600 } };
    s.linux.devices = [
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 438, uid: 0, gid: 0 },
      { path: '/dev/fifo', type: 'p' },
    ];
    s.linux.cgroupsPath = 'system.slice:berth:abc';
    s.linux.rootfsPropagation = 'rslave';
    s.linux.sysctl = {
      'net.ipv4.ip_forward': '1',
      'net/ipv4/conf/eth0.100/rp_filter': '0',
      'kernel.shmmax': '1',
      'fs.mqueue.msg_max': '10',
      'kernel.domainname': 'x',
      'user.max_user_namespaces': '0',
    };
    s.linux.resources = {
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: null, access: 'rw' }],
      memory: { limit: 1 << 30, swap: -1, swappiness: 60 },
      cpu: { shares: 1024, quota: 100000, period: 100000, cpus: '0-1', mems: '0' },
      pids: { limit: -1 },
      hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
      unified: { 'memory.high': '1G' },
    };
    s.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }],
    };
    s.linux.personality = { domain: 'LINUX32' };
  });
  assert.deepEqual((spec as any).futureField, { x: 1 });
  assert.equal(spec.process!.rlimits![1].hard, 2 ** 64);
});

test('a user namespace joined by path needs no mappings; mappings are also allowed', () => {
  parseEdited((s) => s.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' }));
  parseEdited((s) => {
    s.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' });
    s.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
    s.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
  });
});

test('relative mount destinations are accepted with a warning, as in runc', () => {
  const warnings: Array<[string, string]> = [];
  const spec = JSON.parse(JSON.stringify(defaultSpec()));
  spec.mounts.push({ destination: 'data', type: 'tmpfs', source: 'tmpfs' });
  parseSpec(JSON.stringify(spec), { onWarning: (message, field) => warnings.push([message, field]) });
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0][1], 'mounts[7].destination');
  parseSpec(JSON.stringify(spec)); // no handler: silently accepted
});

// ociVersion and root
rejects('missing ociVersion', 'ociVersion', (s) => delete s.ociVersion, /required/);
rejects('non-string ociVersion', 'ociVersion', (s) => (s.ociVersion = 1));
rejects('non-semver ociVersion', 'ociVersion', (s) => (s.ociVersion = 'one'));
rejects('ociVersion 2.x', 'ociVersion', (s) => (s.ociVersion = '2.0.0'), /major/);
rejects('missing root', 'root', (s) => delete s.root);
rejects('missing root.path', 'root.path', (s) => delete s.root.path);
rejects('empty root.path', 'root.path', (s) => (s.root.path = ''));
rejects('non-boolean root.readonly', 'root.readonly', (s) => (s.root.readonly = 'yes'));

// process
rejects('empty args', 'process.args', (s) => (s.process.args = []));
rejects('missing args', 'process.args', (s) => delete s.process.args);
rejects('empty args[0]', 'process.args[0]', (s) => (s.process.args = ['']));
rejects('non-string arg', 'process.args[1]', (s) => (s.process.args = ['sh', 1]));
rejects('NUL in arg', 'process.args[1]', (s) => (s.process.args = ['sh', 'a\0b']), /NUL/);
rejects('relative cwd', 'process.cwd', (s) => (s.process.cwd = 'home'), /absolute/);
rejects('missing cwd', 'process.cwd', (s) => delete s.process.cwd);
rejects('missing user', 'process.user', (s) => delete s.process.user);
rejects('negative uid', 'process.user.uid', (s) => (s.process.user.uid = -1));
rejects('fractional gid', 'process.user.gid', (s) => (s.process.user.gid = 1.5));
rejects('uid beyond 32 bits', 'process.user.uid', (s) => (s.process.user.uid = 2 ** 32));
rejects('bad additional gid', 'process.user.additionalGids[1]', (s) => (s.process.user.additionalGids = [1, -2]));
rejects('bad umask', 'process.user.umask', (s) => (s.process.user.umask = 0o1000));
rejects('env without =', 'process.env[1]', (s) => (s.process.env[1] = 'TERM'), /=/);
rejects('env with empty name', 'process.env[0]', (s) => (s.process.env[0] = '=x'));
rejects('unknown capability', 'process.capabilities.effective[1]', (s) => (s.process.capabilities.effective[1] = 'CAP_FLY'));
rejects('capabilities not an array', 'process.capabilities.ambient', (s) => (s.process.capabilities.ambient = 'CAP_KILL'));
rejects('unknown rlimit', 'process.rlimits[0].type', (s) => (s.process.rlimits[0].type = 'RLIMIT_FOO'));
rejects('duplicate rlimit', 'process.rlimits[1].type', (s) => s.process.rlimits.push({ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }), /duplicate/);
rejects('soft above hard', 'process.rlimits[0].soft', (s) => (s.process.rlimits[0].soft = 2048));
rejects('negative rlimit', 'process.rlimits[0].hard', (s) => (s.process.rlimits[0].hard = -1));
rejects('oomScoreAdj out of range', 'process.oomScoreAdj', (s) => (s.process.oomScoreAdj = 1001));
rejects('non-boolean terminal', 'process.terminal', (s) => (s.process.terminal = 1));
rejects('bad ioPriority class', 'process.ioPriority.class', (s) => (s.process.ioPriority = { class: 'X', priority: 0 }));
rejects('ioPriority out of range', 'process.ioPriority.priority', (s) => (s.process.ioPriority = { class: 'IOPRIO_CLASS_RT', priority: 8 }));
rejects('unknown scheduler policy', 'process.scheduler.policy', (s) => (s.process.scheduler = { policy: 'SCHED_FAST' }));
rejects('nice out of range', 'process.scheduler.nice', (s) => (s.process.scheduler = { policy: 'SCHED_OTHER', nice: 20 }));
rejects('priority for SCHED_OTHER', 'process.scheduler.priority', (s) => (s.process.scheduler = { policy: 'SCHED_OTHER', priority: 1 }));
rejects('bad cpu list', 'process.execCPUAffinity.final', (s) => (s.process.execCPUAffinity = { final: '3-1' }));

// hostname and hooks
rejects('hostname without uts namespace', 'hostname', (s) => (s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'uts')), /UTS/);
rejects('domainname without uts namespace', 'domainname', (s) => {
  delete s.hostname;
  s.domainname = 'x';
  s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'uts');
});
rejects('relative hook path', 'hooks.createRuntime[0].path', (s) => (s.hooks = { createRuntime: [{ path: 'hook' }] }), /absolute/);
rejects('missing hook path', 'hooks.poststart[1].path', (s) => (s.hooks = { poststart: [{ path: '/a' }, {}] }));
rejects('zero hook timeout', 'hooks.prestart[0].timeout', (s) => (s.hooks = { prestart: [{ path: '/a', timeout: 0 }] }));
rejects('hooks not an array', 'hooks.poststop', (s) => (s.hooks = { poststop: {} }));
rejects('non-string annotation', 'annotations.a', (s) => (s.annotations = { a: 1 }));
rejects('empty annotation key', 'annotations', (s) => (s.annotations = { '': 'x' }));

// mounts
rejects('mount without destination', 'mounts[4].destination', (s) => delete s.mounts[4].destination);
rejects('empty mount destination', 'mounts[2].destination', (s) => (s.mounts[2].destination = ''));
rejects('non-string mount option', 'mounts[1].options[2]', (s) => (s.mounts[1].options[2] = 7));
rejects('mounts not an array', 'mounts', (s) => (s.mounts = {}));
test('bind mounts with fs data are accepted with a warning, as in runc 1.1', () => {
  const warnings: Array<[string, string]> = [];
  const spec = JSON.parse(JSON.stringify(defaultSpec()));
  spec.mounts.push({ destination: '/x', source: '/y', options: ['bind', 'size=1k'] });
  parseSpec(JSON.stringify(spec), { onWarning: (message, field) => warnings.push([message, field]) });
  assert.deepEqual(warnings.map(([, field]) => field), ['mounts[7].options']);
});
rejects('idmap on a non-bind mount', 'mounts[7].options', (s) => s.mounts.push({ destination: '/x', type: 'tmpfs', options: ['idmap'] }), /bind/);
rejects('idmap without any mapping', 'mounts[7].options', (s) => s.mounts.push({ destination: '/x', source: '/y', options: ['rbind', 'idmap'] }), /user namespace/);
rejects('mount uidMappings without gidMappings', 'mounts[7].gidMappings', (s) =>
  s.mounts.push({ destination: '/x', source: '/y', options: ['rbind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] }),
);
rejects('zero-size mount mapping', 'mounts[7].uidMappings[0].size', (s) =>
  s.mounts.push({
    destination: '/x',
    source: '/y',
    options: ['bind'],
    uidMappings: [{ containerID: 0, hostID: 1, size: 0 }],
    gidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
  }),
);

// namespaces and id mappings
rejects('unknown namespace type', 'linux.namespaces[2].type', (s) => (s.linux.namespaces[2].type = 'net'), /unknown/);
rejects('duplicate namespace', 'linux.namespaces[5].type', (s) => s.linux.namespaces.push({ type: 'pid' }), /duplicate/);
rejects('relative namespace path', 'linux.namespaces[1].path', (s) => (s.linux.namespaces[1].path = 'proc/1/ns/net'));
rejects('user namespace without mappings', 'linux.uidMappings', (s) => s.linux.namespaces.push({ type: 'user' }));
rejects('user namespace without gid mappings', 'linux.gidMappings', (s) => {
  s.linux.namespaces.push({ type: 'user' });
  s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
});
rejects('mappings without user namespace', 'linux.uidMappings', (s) => (s.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 1 }]));
const withUserNamespace = (s: any, uid: unknown[]) => {
  s.linux.namespaces.push({ type: 'user' });
  s.linux.uidMappings = uid;
  s.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
};
rejects('zero mapping size', 'linux.uidMappings[0].size', (s) => withUserNamespace(s, [{ containerID: 0, hostID: 1, size: 0 }]));
rejects('mapping overflow', 'linux.uidMappings[0].size', (s) => withUserNamespace(s, [{ containerID: 0, hostID: 2 ** 32 - 10, size: 11 }]), /overflow/);
rejects('missing hostID', 'linux.uidMappings[0].hostID', (s) => withUserNamespace(s, [{ containerID: 0, size: 1 }]));
rejects('overlapping mappings', 'linux.uidMappings[1]', (s) =>
  withUserNamespace(s, [
    { containerID: 0, hostID: 1000, size: 10 },
    { containerID: 5, hostID: 5000, size: 10 },
  ]),
/overlaps/);

// linux: misc
rejects('time offsets without time namespace', 'linux.timeOffsets', (s) => (s.linux.timeOffsets = { monotonic: { secs: 1 } }));
rejects('time offsets with joined time namespace', 'linux.timeOffsets', (s) => {
  s.linux.namespaces.push({ type: 'time', path: '/proc/1/ns/time' });
  s.linux.timeOffsets = { boottime: { secs: 1 } };
});
rejects('unknown clock', 'linux.timeOffsets.realtime', (s) => {
  s.linux.namespaces.push({ type: 'time' });
  s.linux.timeOffsets = { realtime: { secs: 1 } };
});
rejects('bad device type', 'linux.devices[0].type', (s) => (s.linux.devices = [{ path: '/dev/x', type: 'x', major: 1, minor: 1 }]));
rejects('device without major', 'linux.devices[0].major', (s) => (s.linux.devices = [{ path: '/dev/x', type: 'c', minor: 1 }]));
rejects('device without minor', 'linux.devices[0].minor', (s) => (s.linux.devices = [{ path: '/dev/x', type: 'u', major: 1 }]));
rejects('relative device path', 'linux.devices[0].path', (s) => (s.linux.devices = [{ path: 'dev/x', type: 'p' }]));
rejects('non-string cgroupsPath', 'linux.cgroupsPath', (s) => (s.linux.cgroupsPath = 5));
rejects('bad rootfsPropagation', 'linux.rootfsPropagation', (s) => (s.linux.rootfsPropagation = 'recursive'));
rejects('relative masked path', 'linux.maskedPaths[3]', (s) => (s.linux.maskedPaths[3] = 'proc/keys'));
rejects('masked paths without mount namespace', 'linux.maskedPaths', (s) => (s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'mount')));
rejects('bad personality', 'linux.personality.domain', (s) => (s.linux.personality = { domain: 'BSD' }));
rejects('bad device rule access', 'linux.resources.devices[0].access', (s) => (s.linux.resources.devices[0].access = 'rwx'));
rejects('device rule without allow', 'linux.resources.devices[0].allow', (s) => delete s.linux.resources.devices[0].allow);
rejects('bad memory limit', 'linux.resources.memory.limit', (s) => (s.linux.resources.memory = { limit: '1G' }));
rejects('bad hugepage size', 'linux.resources.hugepageLimits[0].pageSize', (s) => (s.linux.resources.hugepageLimits = [{ pageSize: '2M', limit: 1 }]));
rejects('unified key escaping the cgroup', 'linux.resources.unified.../x', (s) => (s.linux.resources.unified = { '../x': '1' }));

// sysctl
const dropNamespace = (s: any, type: string) => (s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== type));
rejects('net sysctl without netns', 'linux.sysctl.net.ipv4.ip_forward', (s) => {
  dropNamespace(s, 'network');
  s.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
});
rejects('ipc sysctl without ipc ns', 'linux.sysctl.kernel.msgmax', (s) => {
  dropNamespace(s, 'ipc');
  s.linux.sysctl = { 'kernel.msgmax': '1' };
});
rejects('mqueue sysctl without ipc ns', 'linux.sysctl.fs/mqueue/msg_max', (s) => {
  dropNamespace(s, 'ipc');
  s.linux.sysctl = { 'fs/mqueue/msg_max': '1' };
});
rejects('kernel.hostname sysctl', 'linux.sysctl.kernel.hostname', (s) => (s.linux.sysctl = { 'kernel.hostname': 'x' }), /hostname/);
rejects('domainname sysctl without uts ns', 'linux.sysctl.kernel.domainname', (s) => {
  delete s.hostname;
  dropNamespace(s, 'uts');
  s.linux.sysctl = { 'kernel.domainname': 'x' };
});
rejects('user sysctl without user ns', 'linux.sysctl.user.max_user_namespaces', (s) => (s.linux.sysctl = { 'user.max_user_namespaces': '0' }));
rejects('host-wide sysctl', 'linux.sysctl.vm.swappiness', (s) => (s.linux.sysctl = { 'vm.swappiness': '1' }), /namespace/);
rejects('non-string sysctl value', 'linux.sysctl.net.core.somaxconn', (s) => (s.linux.sysctl = { 'net.core.somaxconn': 1024 }));

// seccomp
rejects('missing seccomp defaultAction', 'linux.seccomp.defaultAction', (s) => (s.linux.seccomp = {}));
rejects('unknown seccomp action', 'linux.seccomp.syscalls[0].action', (s) =>
  (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_MAYBE' }] }),
);
rejects('empty syscall names', 'linux.seccomp.syscalls[0].names', (s) =>
  (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }),
);
rejects('errnoRet on a non-errno action', 'linux.seccomp.syscalls[0].errnoRet', (s) =>
  (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_KILL', errnoRet: 1 }] }),
);
rejects('unknown seccomp arch', 'linux.seccomp.architectures[0]', (s) => (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x86_64'] }));
rejects('seccomp arg index 6', 'linux.seccomp.syscalls[0].args[0].index', (s) =>
  (s.linux.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }],
  }),
);
rejects('unknown seccomp operator', 'linux.seccomp.syscalls[0].args[0].op', (s) =>
  (s.linux.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0, op: 'EQ' }] }],
  }),
);
rejects('listenerMetadata without listenerPath', 'linux.seccomp.listenerMetadata', (s) =>
  (s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'x' }),
);

test('validateProcess checks a standalone process.json with its own field prefix', () => {
  const process = validateProcess({ user: { uid: 0, gid: 0 }, args: ['ls'], cwd: '/' });
  assert.deepEqual(process.args, ['ls']);
  assertInvalid(() => validateProcess({ user: { uid: 0, gid: 0 }, args: [], cwd: '/' }), 'process.args');
  assertInvalid(() => validateProcess({ user: { uid: 0, gid: 0 }, args: ['ls'], cwd: 'x' }, 'exec'), 'exec.cwd');
  assertInvalid(() => validateProcess(null, 'exec'), 'exec');
});

test('runtimeFeatures follows the features.md schema', () => {
  const features = runtimeFeatures() as any;
  assert.equal(features.ociVersionMin, '1.0.0');
  assert.match(features.ociVersionMax, /^1\.\d+\.\d+$/);
  assert.deepEqual(features.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  for (const option of ['rbind', 'rro', 'idmap', 'tmpcopyup', 'nosymfollow', 'defaults']) assert.ok(features.mountOptions.includes(option), option);
  assert.deepEqual(features.mountOptions, [...features.mountOptions].sort());
  assert.deepEqual(features.linux.namespaces, ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']);
  assert.equal(features.linux.capabilities.length, 41);
  assert.equal(features.linux.capabilities[0], 'CAP_CHOWN');
  assert.deepEqual(features.linux.cgroup, { v1: true, v2: true, systemd: false, systemdUser: false });
  assert.deepEqual(features.linux.seccomp.archs, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64']);
  assert.ok(features.linux.seccomp.actions.includes('SCMP_ACT_NOTIFY'));
  assert.ok(features.linux.seccomp.operators.includes('SCMP_CMP_MASKED_EQ'));
  assert.deepEqual(features.linux.apparmor, { enabled: false });
  assert.deepEqual(features.linux.selinux, { enabled: false });
  assert.deepEqual(features.linux.intelRdt, { enabled: false });
  assert.deepEqual(JSON.parse(JSON.stringify(features)), features);
});
