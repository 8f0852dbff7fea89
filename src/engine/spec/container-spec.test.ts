import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { ImageConfig } from '../../images/types.js';
import { validateSpec } from '../../runtime/spec/validate.js';
import { ALL_CAPABILITIES, containerSpec, DOCKER_DEFAULT_CAPABILITIES, resourceWarnings, tweakCapabilities } from './container-spec.js';
import type { ContainerSpecInput, CreateConfig, HostConfig, HostFacts } from './container-spec.js';

const ID = '3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e';
const IMAGE: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/usr/local/bin:/bin', 'LANG=C.UTF-8'], Entrypoint: ['/entry.sh'], Cmd: ['serve', '--port', '80'], WorkingDir: '/srv' },
  rootfs: { type: 'layers', diff_ids: [] },
};

function spec(create: CreateConfig = {}, host: HostConfig = {}, extra: Partial<ContainerSpecInput> = {}) {
  return containerSpec({
    image: IMAGE,
    create,
    host,
    rootfs: '/var/lib/berth/rootfs',
    user: { uid: 0, gid: 0, additionalGids: [10] },
    cgroupsPath: `/berth/${ID}`,
    id: ID,
    facts: { arch: 'amd64' },
    ...extra,
  });
}

function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError || error instanceof UnsupportedError, String(error));
    assert.match((error as Error).message, message);
    return true;
  });
}

describe('containerSpec: command, environment, working directory', () => {
  it("uses the image's Entrypoint and Cmd, WorkingDir and Env", () => {
    const s = spec();
    assert.deepEqual(s.process!.args, ['/entry.sh', 'serve', '--port', '80']);
    assert.equal(s.process!.cwd, '/srv');
    assert.deepEqual(s.process!.env, ['PATH=/usr/local/bin:/bin', `HOSTNAME=${ID.slice(0, 12)}`, 'LANG=C.UTF-8']);
    assert.equal(s.hostname, ID.slice(0, 12));
    assert.equal(s.process!.terminal, false);
    validateSpec(JSON.parse(JSON.stringify(s)));
  });

  it('create Cmd replaces the image Cmd and keeps its Entrypoint', () => {
    assert.deepEqual(spec({ Cmd: ['sh'] }).process!.args, ['/entry.sh', 'sh']);
  });

  it("create Entrypoint resets the image's Cmd", () => {
    assert.deepEqual(spec({ Entrypoint: ['/bin/top'] }).process!.args, ['/bin/top']);
    assert.deepEqual(spec({ Entrypoint: ['/bin/top'], Cmd: ['-b'] }).process!.args, ['/bin/top', '-b']);
  });

  it('an empty Entrypoint list drops the image Entrypoint; [""] does too, and takes no image Cmd', () => {
    assert.deepEqual(spec({ Entrypoint: [] }).process!.args, ['serve', '--port', '80']);
    assert.deepEqual(spec({ Entrypoint: [''], Cmd: ['ls'] }).process!.args, ['ls']);
    rejects(() => spec({ Entrypoint: [''] }), /^No command specified$/);
  });

  it('without any command, says so', () => {
    rejects(() => spec({}, {}, { image: { ...IMAGE, config: {} } }), /^No command specified$/);
  });

  it('defaults: PATH, HOSTNAME, TERM with a tty; cwd /', () => {
    const s = spec({ Tty: true, Hostname: 'web' }, {}, { image: { ...IMAGE, config: { Cmd: ['sh'] } } });
    assert.deepEqual(s.process!.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=web', 'TERM=xterm']);
    assert.equal(s.process!.cwd, '/');
    assert.equal(s.process!.terminal, true);
    assert.equal(s.hostname, 'web');
  });

  it('create Env comes first, then the image variables it did not set; defaults are replaced in place; a bare name unsets', () => {
    const s = spec({ Env: ['LANG=fr_FR', 'A=1', 'TERM=vt100', 'HOSTNAME'], Tty: true });
    assert.deepEqual(s.process!.env, ['PATH=/usr/local/bin:/bin', 'TERM=vt100', 'LANG=fr_FR', 'A=1']);
  });

  it('WorkingDir: must be absolute, is cleaned', () => {
    assert.equal(spec({ WorkingDir: '/a/./b/../c/' }).process!.cwd, '/a/c');
    rejects(() => spec({ WorkingDir: 'rel' }), /^the working directory 'rel' is invalid, it needs to be an absolute path$/);
  });

  it('names bad fields', () => {
    rejects(() => spec({ Env: ['A=1', '=x'] }), /^Env\[1\]: invalid environment variable/);
    rejects(() => spec({ Env: ['A=1', 5 as unknown as string] }), /^Env\[1\]: must be a string/);
    rejects(() => spec({ Cmd: 'ls' as unknown as string[] }), /^Cmd: must be a list of strings/);
    rejects(() => spec({ Tty: 'yes' as unknown as boolean }), /^Tty: must be a boolean/);
    rejects(() => spec({ StopSignal: 'SIGNOPE' }), /^Invalid signal: SIGNOPE$/);
    rejects(() => spec({ Labels: { a: 1 as unknown as string } }), /^Labels\["a"\]: must be a string/);
    assert.doesNotThrow(() => spec({ StopSignal: 'SIGQUIT', Labels: { a: 'b' }, OpenStdin: true }));
  });

  it('user: as resolved by the caller, its gid first among the additional gids', () => {
    const s = spec({}, {}, { user: { uid: 1000, gid: 1000, additionalGids: [27, 1000] } });
    assert.deepEqual(s.process!.user, { uid: 1000, gid: 1000, additionalGids: [1000, 27] });
    rejects(() => spec({}, {}, { user: { uid: -1, gid: 0 } }), /^user\.uid: /);
  });

  it('Domainname', () => {
    assert.equal(spec({ Domainname: 'example.org' }).domainname, 'example.org');
    assert.equal(spec().domainname, undefined);
  });
});

describe('containerSpec: capabilities', () => {
  it("Docker's 14 defaults in bounding, effective and permitted; no inheritable or ambient", () => {
    const caps = spec().process!.capabilities!;
    assert.deepEqual(caps, { bounding: [...DOCKER_DEFAULT_CAPABILITIES], effective: [...DOCKER_DEFAULT_CAPABILITIES], permitted: [...DOCKER_DEFAULT_CAPABILITIES] });
    assert.equal(DOCKER_DEFAULT_CAPABILITIES.length, 14);
  });

  it('a non-root user gets only the bounding set, as current Docker', () => {
    assert.deepEqual(spec({}, {}, { user: { uid: 1, gid: 1 } }).process!.capabilities, { bounding: [...DOCKER_DEFAULT_CAPABILITIES] });
  });

  it('CapAdd/CapDrop: case-insensitive, with or without CAP_, and ALL', () => {
    const caps = (add?: string[], drop?: string[]) => spec({}, { CapAdd: add, CapDrop: drop }).process!.capabilities!.bounding!;
    assert.deepEqual(caps(['sys_admin', 'CAP_NET_ADMIN'], ['chown', 'Cap_Kill']), [
      ...DOCKER_DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_KILL'),
      'CAP_SYS_ADMIN',
      'CAP_NET_ADMIN',
    ]);
    assert.deepEqual(caps(['ALL'], ['sys_module']), ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_MODULE'));
    assert.deepEqual(caps(['chown'], ['all']), ['CAP_CHOWN']);
    assert.deepEqual(caps([], ['ALL']), []);
    assert.deepEqual(tweakCapabilities(['ALL'], [], false, ['CAP_CHOWN', 'CAP_KILL']), ['CAP_CHOWN', 'CAP_KILL']);
  });

  it('names an unknown capability', () => {
    rejects(() => spec({}, { CapAdd: ['NET_ADMIN', 'FLY'] }), /^invalid CapAdd: unknown capability: "CAP_FLY"$/);
    rejects(() => spec({}, { CapDrop: ['bogus'] }), /^invalid CapDrop: unknown capability: "CAP_BOGUS"$/);
  });
});

describe('containerSpec: mounts, paths, devices', () => {
  it("Docker's default mounts, /dev/shm 64 MiB, masked and read-only paths", () => {
    const s = spec();
    assert.deepEqual(
      s.mounts!.map((m) => [m.destination, m.type]),
      [
        ['/proc', 'proc'],
        ['/dev', 'tmpfs'],
        ['/dev/pts', 'devpts'],
        ['/sys', 'sysfs'],
        ['/sys/fs/cgroup', 'cgroup'],
        ['/dev/mqueue', 'mqueue'],
        ['/dev/shm', 'tmpfs'],
      ],
    );
    assert.ok(s.mounts![2].options!.includes('gid=5'));
    assert.ok(s.mounts![3].options!.includes('ro'));
    assert.ok(s.mounts![4].options!.includes('ro'));
    assert.deepEqual(s.mounts![6].options, ['rw', 'nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864']);
    assert.ok(s.linux!.maskedPaths!.includes('/proc/kcore') && s.linux!.maskedPaths!.includes('/sys/firmware'));
    assert.deepEqual(s.linux!.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    assert.equal(s.root!.path, '/var/lib/berth/rootfs');
    assert.equal(s.root!.readonly, false);
    assert.equal(s.hooks, undefined);
  });

  it('ShmSize, ReadonlyRootfs', () => {
    assert.ok(spec({}, { ShmSize: 1 << 20 }).mounts!.find((m) => m.destination === '/dev/shm')!.options!.includes('size=1048576'));
    rejects(() => spec({}, { ShmSize: -1 }), /^HostConfig\.ShmSize: /);
    const s = spec({}, { ReadonlyRootfs: true, Tmpfs: { '/run': '' } });
    assert.equal(s.root!.readonly, true);
    const ro = (dest: string) => s.mounts!.find((m) => m.destination === dest)!.options!.includes('ro');
    assert.deepEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/run'].map(ro), [false, false, false, false, false, true, true, false]);
  });

  it('Tmpfs: defaults noexec,nosuid,nodev; the user wins; a /dev tmpfs replaces the /dev mounts', () => {
    const s = spec({}, { Tmpfs: { '/run/x': 'size=1m', '/tmp': 'exec,mode=1777', '/dev/shm': 'size=2m' } });
    const tmp = s.mounts!.find((m) => m.destination === '/tmp')!;
    assert.deepEqual(tmp.options, ['nosuid', 'nodev', 'rprivate', 'exec', 'mode=1777']);
    assert.equal(s.mounts!.filter((m) => m.destination === '/dev/shm').length, 1);
    assert.deepEqual(s.mounts!.find((m) => m.destination === '/dev/shm')!.options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=2m']);
    assert.ok(s.mounts!.findIndex((m) => m.destination === '/tmp') < s.mounts!.findIndex((m) => m.destination === '/run/x'));
    const dev = spec({}, { Tmpfs: { '/dev': '' } });
    assert.deepEqual(dev.mounts!.map((m) => m.destination), ['/proc', '/sys', '/sys/fs/cgroup', '/dev']);
    rejects(() => spec({}, { Tmpfs: { tmp: '' } }), /^HostConfig\.Tmpfs\["tmp"\]: .*absolute/);
    rejects(() => spec({}, { Tmpfs: { '/tmp': 'bogus=1' } }), /^invalid tmpfs option \["bogus=1"\]$/);
  });

  it("devices: Docker's cgroup rules; HostConfig.Devices looked up among the host's", () => {
    const hostDevices: HostFacts['devices'] = [
      { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
      { type: 'c', path: '/dev/snd/pcm0', major: 116, minor: 2, fileMode: 0o660, uid: 0, gid: 29 },
      { type: 'c', path: '/dev/snd/timer', major: 116, minor: 33, fileMode: 0o660, uid: 0, gid: 29 },
    ];
    const s = spec({}, {}, { facts: { devices: hostDevices } });
    assert.deepEqual(s.linux!.devices, []);
    assert.deepEqual(s.linux!.resources!.devices![0], { allow: false, access: 'rwm' });
    assert.equal(s.linux!.resources!.devices!.length, 8);
    const mapped = spec({}, { Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/f', CgroupPermissions: 'rw' }, { PathOnHost: '/dev/snd' }] }, { facts: { devices: hostDevices } });
    assert.deepEqual(mapped.linux!.devices!.map((d) => d.path), ['/dev/f', '/dev/snd/pcm0', '/dev/snd/timer']);
    assert.deepEqual(mapped.linux!.resources!.devices!.slice(8), [
      { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' },
      { allow: true, type: 'c', major: 116, minor: 2, access: 'rwm' },
      { allow: true, type: 'c', major: 116, minor: 33, access: 'rwm' },
    ]);
    rejects(() => spec({}, { Devices: [{ PathOnHost: '/dev/nope' }] }), /^error gathering device information while adding custom device "\/dev\/nope": no such file or directory$/);
    rejects(() => spec({}, { Devices: [{ PathOnHost: '/dev/fuse', CgroupPermissions: 'rx' }] }, { facts: { devices: hostDevices } }), /^HostConfig\.Devices\[0\]\.CgroupPermissions: /);
  });

  it('Privileged: all caps, no seccomp, no masked or read-only paths, rw /sys and cgroup, host devices', () => {
    const hostDevices: HostFacts['devices'] = [{ type: 'b', path: '/dev/sda', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }];
    const s = spec({}, { Privileged: true, CapDrop: ['chown'] }, { facts: { devices: hostDevices, capabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] } });
    assert.deepEqual(s.process!.capabilities!.effective, ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    assert.deepEqual(spec({}, { Privileged: true }).process!.capabilities!.bounding, [...ALL_CAPABILITIES]);
    assert.equal(s.linux!.seccomp, undefined);
    assert.deepEqual(s.linux!.maskedPaths, []);
    assert.deepEqual(s.linux!.readonlyPaths, []);
    assert.ok(!s.mounts!.find((m) => m.destination === '/sys')!.options!.includes('ro'));
    assert.ok(!s.mounts!.find((m) => m.destination === '/sys/fs/cgroup')!.options!.includes('ro'));
    assert.deepEqual(s.linux!.devices, hostDevices);
    assert.deepEqual(s.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
  });

  it('Init: the init binary bind-mounted read-only runs the command', () => {
    const s = spec({ Cmd: ['sleep', '1'] }, { Init: true }, { facts: { initPath: '/usr/libexec/berth/init' } });
    assert.deepEqual(s.process!.args, ['/sbin/docker-init', '--', '/entry.sh', 'sleep', '1']);
    assert.deepEqual(s.mounts!.find((m) => m.destination === '/sbin/docker-init'), { destination: '/sbin/docker-init', type: 'bind', source: '/usr/libexec/berth/init', options: ['bind', 'ro'] });
    rejects(() => spec({}, { Init: true }), /^HostConfig\.Init: no init binary/);
  });
});

describe('containerSpec: namespaces', () => {
  const types = (s: ReturnType<typeof spec>) => s.linux!.namespaces!.map((n) => n.type);
  it('pid, net, ipc, uts, mount; cgroup private on v2, host on v1', () => {
    assert.deepEqual(types(spec()), ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup']);
    assert.deepEqual(types(spec({}, {}, { facts: { cgroupVersion: 1 } })), ['mount', 'network', 'uts', 'pid', 'ipc']);
    assert.deepEqual(types(spec({}, { CgroupnsMode: 'private' }, { facts: { cgroupVersion: 1 } })), ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup']);
    assert.deepEqual(types(spec({}, { CgroupnsMode: 'host' })), ['mount', 'network', 'uts', 'pid', 'ipc']);
    rejects(() => spec({}, { CgroupnsMode: 'shared' }), /^HostConfig\.CgroupnsMode: invalid cgroup namespace mode/);
  });

  it('user namespace only with id mappings, unless UsernsMode is host', () => {
    const idMappings = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
    const s = spec({}, {}, { facts: { idMappings, sysctls: ['net.ipv4.ping_group_range'] } });
    assert.ok(types(s).includes('user'));
    assert.deepEqual(s.linux!.uidMappings, idMappings.uidMappings);
    assert.ok(!s.mounts!.find((m) => m.type === 'cgroup')!.options!.includes('ro'));
    assert.deepEqual(s.linux!.sysctl, {});
    assert.ok(!types(spec({}, { UsernsMode: 'host' }, { facts: { idMappings } })).includes('user'));
    rejects(() => spec({}, { UsernsMode: 'private' }), /^HostConfig\.UsernsMode: /);
    rejects(() => spec({}, { UsernsMode: 'bogus' }), /^HostConfig\.UsernsMode: invalid/);
    rejects(() => spec({}, { Privileged: true }, { facts: { idMappings } }), /^HostConfig\.Privileged: /);
    rejects(() => spec({}, { PidMode: 'host' }, { facts: { idMappings } }), /^HostConfig\.PidMode: cannot share the host's PID namespace when user namespaces are enabled/);
    rejects(() => spec({}, { IpcMode: 'host' }, { facts: { idMappings } }), /^HostConfig\.IpcMode: cannot share the host's IPC namespace/);
    rejects(() => spec({}, {}, { facts: { idMappings }, network: { mode: 'host' } }), /^HostConfig\.NetworkMode: cannot share the host's network namespace/);
    assert.ok(!types(spec({}, { PidMode: 'host', UsernsMode: 'host' }, { facts: { idMappings } })).includes('pid'));
  });

  it('PidMode, IpcMode, UTSMode: host leaves the namespace out, container:<id> joins it by path', () => {
    const ns = (s: ReturnType<typeof spec>) => s.linux!.namespaces!.filter((n) => n.type !== 'cgroup');
    const shm = (s: ReturnType<typeof spec>) => s.mounts!.find((m) => m.destination === '/dev/shm');
    const host = spec({}, { PidMode: 'host', IpcMode: 'host', UTSMode: 'host' });
    assert.deepEqual(types(host), ['mount', 'network', 'cgroup']);
    assert.equal(host.hostname, undefined, "the host's UTS namespace: no hostname to set");
    assert.deepEqual(shm(host), { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'noexec'] });
    const joined = spec({}, { PidMode: 'container:web', IpcMode: 'container:web' }, { join: { pid: '/proc/7/ns/pid', ipc: { path: '/proc/7/ns/ipc', shm: '/run/c/web/shm' } } });
    assert.deepEqual(ns(joined), [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid', path: '/proc/7/ns/pid' }, { type: 'ipc', path: '/proc/7/ns/ipc' }]);
    assert.equal(shm(joined)!.source, '/run/c/web/shm');
    // A create's check, before the other container runs: the modes only.
    assert.deepEqual(types(spec({}, { PidMode: 'container:web' })), ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup']);
    assert.equal(shm(spec({}, { IpcMode: 'none' })), undefined, 'none: no /dev/shm');
    assert.equal(shm(spec({}, { IpcMode: 'shareable' }, { shm: '/run/c/me/shm' }))!.source, '/run/c/me/shm');
    assert.equal(shm(spec({}, { IpcMode: 'private' }))!.type, 'tmpfs');
    rejects(() => spec({}, { PidMode: 'container:' }), /^HostConfig\.PidMode: invalid PidMode: container name or ID is empty/);
    rejects(() => spec({}, { IpcMode: 'bogus' }), /^Invalid IPC mode: bogus$/);
    rejects(() => spec({}, { UTSMode: 'container:x' }), /^HostConfig\.UTSMode: invalid UTS mode/);
  });
});

describe('containerSpec: other HostConfig fields', () => {
  it('DeviceCgroupRules, MaskedPaths/ReadonlyPaths, Annotations, realtime cpu; StorageOpt and DeviceRequests refused', () => {
    const s = spec({}, { DeviceCgroupRules: ['c 10:229 rmw', 'b *:* r'], MaskedPaths: ['/proc/x'], ReadonlyPaths: [], Annotations: { 'org.example': '1' }, CpuRealtimePeriod: 1000000, CpuRealtimeRuntime: 950000 });
    assert.deepEqual(s.linux!.resources!.devices!.slice(-2), [
      { allow: true, type: 'c', major: 10, minor: 229, access: 'rmw' },
      { allow: true, type: 'b', access: 'r' },
    ]);
    assert.deepEqual([s.linux!.maskedPaths, s.linux!.readonlyPaths], [['/proc/x'], []]);
    // The client's, and Berth's own asking berth-oci for lo up in a namespace of the container's.
    assert.deepEqual(s.annotations, { 'org.example': '1', 'io.berth.network.loopback': 'up' });
    assert.equal(spec({}, {}, { network: { mode: 'host' } }).annotations, undefined, "the host's network is not the container's to change");
    assert.deepEqual([s.linux!.resources!.cpu!.realtimePeriod, s.linux!.resources!.cpu!.realtimeRuntime], [1000000, 950000]);
    rejects(() => spec({}, { DeviceCgroupRules: ['c 10:229'] }), /^HostConfig\.DeviceCgroupRules\[0\]: invalid device cgroup rule format/);
    rejects(() => spec({}, { MaskedPaths: ['relative'] }), /^HostConfig\.MaskedPaths\[0\]: must be an absolute path/);
    rejects(() => spec({}, { StorageOpt: { size: '10G' } }), /--storage-opt is supported only for overlay over xfs/);
    rejects(() => spec({}, { Isolation: 'hyperv' } as never), /^Invalid isolation: "hyperv" - linux only supports 'default'$/);
    assert.ok(spec({}, { Isolation: 'default' } as never));
    rejects(() => spec({}, { DeviceRequests: [{ Count: -1 }] }), /could not select device driver/);
    rejects(() => spec({}, { CpuRealtimePeriod: 1000, CpuRealtimeRuntime: 2000 }), /^cpu real-time runtime cannot be higher than cpu real-time period$/);
    // A privileged container: no masked paths, whatever was asked; all devices allowed.
    assert.deepEqual(spec({}, { Privileged: true, MaskedPaths: ['/proc/x'], DeviceCgroupRules: ['c 1:1 r'] }).linux!.maskedPaths, []);
  });
});

describe('containerSpec: resources, limits, sysctls, security options', () => {
  it('memory reservation, swappiness, OOM killer; cpuset mems; blkio weights and throttles by device', () => {
    const r = spec({}, { Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwappiness: 10, OomKillDisable: true, CpusetMems: '0' }).linux!.resources!;
    assert.deepEqual(r.memory, { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: true });
    assert.equal(r.cpu!.mems, '0');
    assert.equal(spec({}, { MemorySwappiness: -1 }).linux!.resources!.memory, undefined);
    rejects(() => spec({}, { Memory: 64 << 20, MemoryReservation: 128 << 20 }), /^Minimum memory limit can not be less than memory reservation limit, see usage$/);
    rejects(() => spec({}, { MemorySwappiness: 101 }), /valid memory swappiness range is 0-100/);
    rejects(() => spec({}, { CpusetMems: 'x' }), /^Invalid value x for cpuset mems: invalid format: x$/);
    const deviceNumbers = (p: string) => (p === '/dev/vda' ? { major: 254, minor: 0 } : undefined);
    const io = { BlkioWeight: 300, BlkioWeightDevice: [{ Path: '/dev/vda', Weight: 500 }], BlkioDeviceReadBps: [{ Path: '/dev/vda', Rate: 1048576 }], BlkioDeviceWriteIOps: [{ Path: '/dev/vda', Rate: 100 }] };
    assert.deepEqual(spec({}, io, { facts: { deviceNumbers, blkioWeight: true } }).linux!.resources!.blockIO, {
      weight: 300,
      weightDevice: [{ major: 254, minor: 0, weight: 500 }],
      throttleReadBpsDevice: [{ major: 254, minor: 0, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major: 254, minor: 0, rate: 100 }],
    });
    // Without weights in the kernel they are discarded (dockerd warns), the limits stay.
    assert.deepEqual(Object.keys(spec({}, io, { facts: { deviceNumbers } }).linux!.resources!.blockIO!), ['throttleReadBpsDevice', 'throttleWriteIOPSDevice']);
    rejects(() => spec({}, { BlkioDeviceReadBps: [{ Path: '/dev/nope', Rate: 1 }] }, { facts: { deviceNumbers } }), /^HostConfig\.BlkioDeviceReadBps\[0\]\.Path: \/dev\/nope is not a block device/);
    rejects(() => spec({}, { BlkioDeviceWriteBps: [{ Path: '/dev/gone', Rate: 1 }] }, { facts: { deviceNumbers: () => 'missing' } }), /^stat \/dev\/gone: no such file or directory$/);
    rejects(() => spec({}, { BlkioWeight: 5 }, { facts: { blkioWeight: true } }), /range of blkio weight is from 10 to 1000/);
    assert.equal(spec({}, { BlkioWeight: 5 }).linux!.resources!.blockIO, undefined, 'without weights here: discarded unchecked, as dockerd');
    assert.deepEqual(resourceWarnings({ BlkioWeight: 300, OomKillDisable: true }, {}), ['Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.', 'OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.']);
    assert.deepEqual(resourceWarnings({ BlkioWeight: 300, Memory: 1 << 30, OomKillDisable: true }, { blkioWeight: true }), []);
    // Per-device weights on a host without weights: discarded unchecked, with dockerd's own warning.
    assert.deepEqual(resourceWarnings({ BlkioWeightDevice: [{ Path: '/dev/null', Weight: 100 }] }, {}), ['Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.']);
    assert.equal(spec({}, { BlkioWeightDevice: [{ Path: '/dev/null', Weight: 100 }] }).linux!.resources?.blockIO, undefined);
    assert.deepEqual(resourceWarnings({ KernelMemory: 10 << 20 }), ['Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.'], 'no kmem limits here (info: KernelMemory false)');
  });

  it('memory: limit, swap twice the limit by default, -1 unlimited; checks as dockerd', () => {
    assert.deepEqual(spec({}, { Memory: 64 << 20 }).linux!.resources!.memory, { limit: 64 << 20, swap: 128 << 20 });
    assert.deepEqual(spec({}, { Memory: 64 << 20, MemorySwap: -1 }).linux!.resources!.memory, { limit: 64 << 20, swap: -1 });
    assert.deepEqual(spec({}, { Memory: 64 << 20, MemorySwap: 100 << 20 }).linux!.resources!.memory, { limit: 64 << 20, swap: 100 << 20 });
    assert.equal(spec().linux!.resources!.memory, undefined);
    rejects(() => spec({}, { Memory: 1024 }), /^Minimum memory limit allowed is 6MB$/);
    rejects(() => spec({}, { MemorySwap: 100 << 20 }), /^You should always set the Memory limit when using Memoryswap limit, see usage$/);
    rejects(() => spec({}, { Memory: 64 << 20, MemorySwap: 32 << 20 }), /^Minimum memoryswap limit should be larger than memory limit, see usage$/);
    rejects(() => spec({}, { Memory: 1.5 }), /^HostConfig\.Memory: must be an integer/);
  });

  it('cpu: NanoCpus as quota over a 100ms period, shares, cpuset; conflicts', () => {
    assert.deepEqual(spec({}, { NanoCpus: 1_500_000_000 }).linux!.resources!.cpu, { period: 100000, quota: 150000 });
    assert.deepEqual(spec({}, { NanoCpus: 10_000_000 }).linux!.resources!.cpu, { period: 100000, quota: 1000 });
    assert.deepEqual(spec({}, { CpuPeriod: 50000, CpuQuota: 25000, CpuShares: 512, CpusetCpus: '0-1,3' }).linux!.resources!.cpu, {
      period: 50000,
      quota: 25000,
      shares: 512,
      cpus: '0-1,3',
    });
    rejects(() => spec({}, { NanoCpus: 1e9, CpuQuota: 50000 }), /^Conflicting options: Nano CPUs and CPU Quota cannot both be set$/);
    rejects(() => spec({}, { NanoCpus: 1e9, CpuPeriod: 50000 }), /^Conflicting options: Nano CPUs and CPU Period cannot both be set$/);
    // dockerd's range, against the CPUs the daemon may use.
    rejects(() => spec({}, { NanoCpus: 99e9 }, { facts: { cpuCount: 2 } }), /^Range of CPUs is from 0\.01 to 2\.00, as there are only 2 CPUs available$/);
    assert.deepEqual(spec({}, { NanoCpus: 2e9 }, { facts: { cpuCount: 2 } }).linux!.resources!.cpu, { period: 100000, quota: 200000 }, 'all of them is allowed');
    // CPUs and memory nodes the host has, at create (not a failed start), in dockerd's words.
    const host = { facts: { cpusetCpus: '0-1', cpusetMems: '0' } };
    rejects(() => spec({}, { CpusetCpus: '1,9' }, host), /^Requested CPUs are not available - requested 1,9, available: 0-1$/);
    rejects(() => spec({}, { CpusetMems: '0-1' }, host), /^Requested memory nodes are not available - requested 0-1, available: 0$/);
    assert.equal(spec({}, { CpusetCpus: '0-1', CpusetMems: '0' }, host).linux!.resources!.cpu!.cpus, '0-1');
    rejects(() => spec({}, { CpuPeriod: 10 }), /^CPU cfs period can not be less than 1ms/);
    rejects(() => spec({}, { CpuQuota: 10 }), /^CPU cfs quota can not be less than 1ms/);
    rejects(() => spec({}, { CpusetCpus: '0-' }), /^Invalid value [^ ]+ for cpuset cpus: invalid format: /);
    rejects(() => spec({}, { CpuShares: -2 }), /^HostConfig\.CpuShares: /);
  });

  it('pids, ulimits as rlimits, OomScoreAdj', () => {
    assert.deepEqual(spec({}, { PidsLimit: 100 }).linux!.resources!.pids, { limit: 100 });
    assert.deepEqual(spec({}, { PidsLimit: 0 }).linux!.resources!.pids, { limit: -1 });
    assert.equal(spec({}, { PidsLimit: null }).linux!.resources!.pids, undefined);
    const s = spec({}, { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 4096 }, { Name: 'core', Soft: -1, Hard: -1 }], OomScoreAdj: 500 });
    assert.deepEqual(s.process!.rlimits, [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_CORE', soft: 2 ** 64, hard: 2 ** 64 },
    ]);
    assert.equal(s.process!.oomScoreAdj, 500);
    assert.equal(spec().process!.rlimits, undefined);
    assert.equal(spec().process!.oomScoreAdj, undefined);
    validateSpec(JSON.parse(JSON.stringify(s)));
    rejects(() => spec({}, { Ulimits: [{ Name: 'nofile', Soft: 1, Hard: 1 }, { Name: 'bogus', Soft: 1, Hard: 1 }] }), /^HostConfig\.Ulimits\[1\]\.Name: invalid ulimit type/);
    rejects(() => spec({}, { Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 1 }] }), /^HostConfig\.Ulimits\[0\]\.Soft: /);
    rejects(() => spec({}, { OomScoreAdj: 1001 }), /^Invalid value 1001, range for oom score adj is \[-1000, 1000\]$/);
  });

  it("sysctls: Docker's network defaults when the host has them, then the user's; non-namespaced ones refused", () => {
    const s = spec({}, { Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shmmax': '1000' } }, {
      facts: { sysctls: ['net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start'] },
    });
    assert.deepEqual(s.linux!.sysctl, { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shmmax': '1000' });
    assert.deepEqual(spec().linux!.sysctl, {});
    rejects(() => spec({}, { Sysctls: { 'vm.swappiness': '1' } }), /^HostConfig\.Sysctls\["vm\.swappiness"\]: sysctl is not namespaced/);
  });

  it('seccomp: the default profile for the capabilities; unconfined; a given profile', () => {
    const s = spec();
    assert.equal(s.linux!.seccomp!.defaultAction, 'SCMP_ACT_ERRNO');
    const allowed = (x: ReturnType<typeof spec>) => new Set(x.linux!.seccomp!.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
    assert.ok(!allowed(s).has('mount'));
    assert.ok(allowed(spec({}, { CapAdd: ['SYS_ADMIN'] })).has('mount'));
    assert.equal(spec({}, { SecurityOpt: ['seccomp=unconfined'] }).linux!.seccomp, undefined);
    assert.equal(spec({}, { SecurityOpt: ['seccomp:unconfined'] }).linux!.seccomp, undefined);
    const custom = spec({}, { SecurityOpt: ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}'] });
    assert.deepEqual(custom.linux!.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    rejects(() => spec({}, { SecurityOpt: ['no-new-privileges', 'seccomp={"defaultAction":1}'] }), /^HostConfig\.SecurityOpt\[1\]/);
    validateSpec(JSON.parse(JSON.stringify(s)));
  });

  it('no-new-privileges and the other security options', () => {
    assert.equal(spec().process!.noNewPrivileges, undefined);
    assert.equal(spec({}, { SecurityOpt: ['no-new-privileges'] }).process!.noNewPrivileges, true);
    assert.equal(spec({}, { SecurityOpt: ['no-new-privileges=true'] }).process!.noNewPrivileges, true);
    assert.equal(spec({}, { SecurityOpt: ['no-new-privileges:false'] }).process!.noNewPrivileges, undefined);
    assert.equal(spec({}, { SecurityOpt: ['apparmor=my-profile'] }).process!.apparmorProfile, 'my-profile');
    // A host without AppArmor: the profile is left out, as dockerd does (compose files name one).
    assert.equal(spec({}, { SecurityOpt: ['apparmor=my-profile'] }, { facts: { apparmor: false } }).process!.apparmorProfile, undefined);
    assert.equal(spec({}, { SecurityOpt: ['apparmor=unconfined', 'label=disable'] }).process!.apparmorProfile, undefined);
    const paths = spec({}, { SecurityOpt: ['systempaths=unconfined'] });
    assert.deepEqual([paths.linux!.maskedPaths, paths.linux!.readonlyPaths], [[], []]);
    assert.ok(!spec({}, { SecurityOpt: ['writable-cgroups=true'] }).mounts!.find((m) => m.type === 'cgroup')!.options!.includes('ro'));
    rejects(() => spec({}, { SecurityOpt: ['no-new-privileges=maybe'] }), /^HostConfig\.SecurityOpt\[0\]: invalid boolean/);
    rejects(() => spec({}, { SecurityOpt: ['seccomp=unconfined', 'bogus'] }), /^HostConfig\.SecurityOpt\[1\]: invalid security option/);
    rejects(() => spec({}, { SecurityOpt: ['foo=bar'] }), /^invalid --security-opt 2: "foo=bar"$/);
    rejects(() => spec({}, { SecurityOpt: ['label=type:svirt_t'] }), /^HostConfig\.SecurityOpt\[0\]: SELinux labels are not supported/);
  });

  it("the daemon's defaults: no-new-privileges unless the container says otherwise; its seccomp profile unless the container names one", () => {
    const daemon: HostFacts = { arch: 'amd64', noNewPrivileges: true };
    assert.equal(spec({}, {}, { facts: daemon }).process!.noNewPrivileges, true);
    assert.equal(spec({}, { SecurityOpt: ['no-new-privileges=false'] }, { facts: daemon }).process!.noNewPrivileges, undefined);
    const profile = '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}';
    const withProfile: HostFacts = { arch: 'amd64', seccompProfile: profile };
    assert.deepEqual(spec({}, {}, { facts: withProfile }).linux!.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    assert.equal(spec({}, { SecurityOpt: ['seccomp=unconfined'] }, { facts: withProfile }).linux!.seccomp, undefined);
    const builtin = spec({}, { SecurityOpt: ['seccomp=builtin'] }, { facts: withProfile }).linux!.seccomp!;
    assert.equal(builtin.defaultAction, 'SCMP_ACT_ERRNO', "builtin: Docker's profile, not the daemon's");
    assert.equal(spec({}, {}, { facts: { arch: 'amd64', seccompProfile: 'unconfined' } }).linux!.seccomp, undefined);
    assert.equal(spec({}, {}, { facts: { arch: 'amd64', seccompProfile: 'builtin' } }).linux!.seccomp!.defaultAction, 'SCMP_ACT_ERRNO');
    rejects(() => spec({}, {}, { facts: { arch: 'amd64', seccompProfile: '{"defaultAction":1}' } }), /^seccomp-profile\./);
  });

  it('cgroupsPath and the input checks', () => {
    assert.equal(spec().linux!.cgroupsPath, `/berth/${ID}`);
    rejects(() => spec({}, {}, { rootfs: 'rootfs' }), /^rootfs: /);
    rejects(() => spec({}, {}, { id: '' }), /^id: /);
    rejects(() => spec({}, null as unknown as HostConfig), /^HostConfig: must be an object/);
  });
});

describe('containerSpec: the network namespace', () => {
  const facts: HostFacts = { arch: 'amd64', sysctls: ['net.ipv4.ip_unprivileged_port_start', 'net.ipv4.ping_group_range'] };
  it('is private by default, with Docker\'s network sysctls', () => {
    const s = spec({}, {}, { facts });
    assert.deepEqual(s.linux!.namespaces!.find((n) => n.type === 'network'), { type: 'network' });
    assert.equal(s.linux!.sysctl!['net.ipv4.ip_unprivileged_port_start'], '0');
  });
  it('is the host\'s with mode host: no namespace, and no sysctl that would change the host', () => {
    const s = spec({}, {}, { facts, network: { mode: 'host' } });
    assert.equal(s.linux!.namespaces!.some((n) => n.type === 'network'), false);
    assert.equal(s.linux!.sysctl!['net.ipv4.ip_unprivileged_port_start'], undefined);
    assert.equal(s.linux!.sysctl!['net.ipv4.ping_group_range'], undefined);
    rejects(() => spec({}, { Sysctls: { 'net.ipv4.ip_forward': '1' } }, { facts, network: { mode: 'host' } }), /^sysctl "net\.ipv4\.ip_forward" not allowed in host network namespace$/);
  });
  it('joins another namespace by path', () => {
    const s = spec({}, {}, { facts, network: { mode: 'join', path: '/proc/42/ns/net' } });
    assert.deepEqual(s.linux!.namespaces!.find((n) => n.type === 'network'), { type: 'network', path: '/proc/42/ns/net' });
  });
});
