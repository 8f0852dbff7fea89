import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildCreateRequest, FlagError, parseEnvFile, parseMount, parsePublish, type RunFlags } from './runopts.js';
import { DOCKER_V28_CREATE_MANY_FLAGS, DOCKER_V28_RUN_RM_ECHO } from './runopts.fixtures.js';

/** Go's zero values, recursively ({"Type":"","Config":{}} is as good as absent). */
const isEmpty = (v: unknown): boolean =>
  v === null || v === undefined || v === '' || v === 0 || v === false || (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every(isEmpty));

/**
 * Every field docker set to something (non-empty) must be ours too, and every field we set must
 * be docker's value. `skip` lists the paths where we differ on purpose.
 */
function compareWithDocker(ours: Record<string, unknown>, docker: Record<string, unknown>, skip: string[], prefix = ''): void {
  for (const key of new Set([...Object.keys(ours), ...Object.keys(docker)])) {
    const p = prefix + key;
    if (skip.includes(p)) continue;
    const a = ours[key];
    const d = docker[key];
    if (key === 'HostConfig') {
      compareWithDocker(a as Record<string, unknown>, d as Record<string, unknown>, skip, 'HostConfig.');
      continue;
    }
    if (isEmpty(d) && isEmpty(a)) continue;
    if (key === 'Env') {
      assert.deepEqual([...(a as string[])].sort(), [...(d as string[])].sort(), p);
      continue;
    }
    assert.deepEqual(a, d, p);
  }
}

const flagsOf = (f: RunFlags): RunFlags => f;

test('run --rm busybox echo hi: the body docker v28 sends', () => {
  const req = buildCreateRequest(flagsOf({ rm: true }), 'busybox', ['echo', 'hi'], { env: {} });
  // docker names the default network's endpoint; an empty EndpointsConfig means the same.
  compareWithDocker(req.body as unknown as Record<string, unknown>, DOCKER_V28_RUN_RM_ECHO, ['NetworkingConfig']);
  assert.equal(req.name, undefined);
});

test('create with many flags: the body docker v28 sends', () => {
  const flags: RunFlags = {
    name: 'cap1',
    env: ['A=1', 'B'],
    volume: ['/tmp:/mnt:ro', 'namedvol:/data'],
    mount: ['type=tmpfs,destination=/t2'],
    tmpfs: ['/run:size=1m'],
    workdir: '/app',
    user: '1:2',
    entrypoint: '/bin/sh',
    hostname: 'hn',
    label: ['k=v'],
    publish: ['8080:80', '127.0.0.1:53:53/udp'],
    network: 'none',
    memory: '64m',
    cpus: '1.5',
    pidsLimit: '100',
    ulimit: ['nofile=1024:2048'],
    readOnly: true,
    capAdd: ['NET_ADMIN'],
    capDrop: ['MKNOD'],
    securityOpt: ['no-new-privileges'],
    init: true,
    restart: 'on-failure:3',
    stopSignal: 'SIGINT',
    stopTimeout: '5',
    device: ['/dev/null:/dev/mynull:rw'],
    interactive: true,
    tty: true,
  };
  const req = buildCreateRequest(flags, 'busybox', ['-c', 'echo x'], { env: {} });
  compareWithDocker(req.body as unknown as Record<string, unknown>, DOCKER_V28_CREATE_MANY_FLAGS, []);
  assert.equal(req.name, 'cap1');
});

test('-d attaches nothing; -a picks streams; -e KEY takes the value from the environment', () => {
  const d = buildCreateRequest({ detach: true, interactive: true }, 'img', [], { env: {} }).body;
  assert.deepEqual([d.AttachStdin, d.AttachStdout, d.AttachStderr, d.OpenStdin, d.StdinOnce], [false, false, false, true, false]);
  const a = buildCreateRequest({ attach: ['STDERR'] }, 'img', [], { env: {} }).body;
  assert.deepEqual([a.AttachStdin, a.AttachStdout, a.AttachStderr], [false, false, true]);
  assert.deepEqual(buildCreateRequest({ env: ['HOME', 'X=1'] }, 'img', [], { env: { HOME: '/root' } }).body.Env, ['HOME=/root', 'X=1']);
  assert.throws(() => buildCreateRequest({ detach: true, attach: ['stdout'] }, 'img', []), FlagError);
  assert.deepEqual(buildCreateRequest({ volume: ['/anon'] }, 'img', []).body.Volumes, { '/anon': {} });
  assert.deepEqual(buildCreateRequest({ entrypoint: '' }, 'img', []).body.Entrypoint, ['']);
  assert.deepEqual(buildCreateRequest({ network: 'mynet' }, 'img', []).body.NetworkingConfig, { EndpointsConfig: { mynet: {} } });
});

test('publish specs: ranges, bare ports, IPv6 hosts', () => {
  assert.deepEqual(parsePublish(['80']).bindings, { '80/tcp': [{ HostIp: '', HostPort: '' }] });
  assert.deepEqual(parsePublish(['8000-8001:80-81']).bindings, {
    '80/tcp': [{ HostIp: '', HostPort: '8000' }],
    '81/tcp': [{ HostIp: '', HostPort: '8001' }],
  });
  assert.deepEqual(parsePublish(['[::1]:8080:80']).bindings, { '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] });
  assert.throws(() => parsePublish(['a:b:c:d']), FlagError);
});

test('--mount fields and --env-file lines', () => {
  assert.deepEqual(parseMount('type=bind,src=/a,dst=/b,readonly,bind-propagation=rshared'), {
    Type: 'bind', Source: '/a', Target: '/b', ReadOnly: true, BindOptions: { Propagation: 'rshared' },
  });
  assert.deepEqual(parseMount('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770'), { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1770 } });
  assert.throws(() => parseMount('type=bind,src=/a'), FlagError);
  assert.deepEqual(parseMount('type=bind,src=/a,dst=/b,ro,bind-recursive=writable,bind-create-mountpoint').BindOptions, { ReadOnlyNonRecursive: true, CreateMountpoint: true });
  assert.deepEqual(parseMount('type=bind,src=/a,dst=/b,bind-recursive=disabled').BindOptions, { NonRecursive: true });
  assert.deepEqual(parseMount('type=bind,src=/a,dst=/b,ro,bind-recursive=readonly').BindOptions, { ReadOnlyForceRecursive: true });
  assert.throws(() => parseMount('type=bind,src=/a,dst=/b,bind-recursive=sometimes'), /invalid value for bind-recursive: sometimes/);
  assert.deepEqual(parseEnvFile('# c\n\nA=1\nHOME\nUNSET\n  B=x y\n', { HOME: '/h' }), ['A=1', 'HOME=/h', 'B=x y']);
});

test('--log-driver and --log-opt make LogConfig', () => {
  const req = buildCreateRequest({ logDriver: 'local', logOpt: ['max-size=1m', 'max-file=3'] }, 'busybox', [], { env: {} });
  assert.deepEqual((req.body.HostConfig as Record<string, unknown>).LogConfig, { Type: 'local', Config: { 'max-size': '1m', 'max-file': '3' } });
});

test('namespace, resource, sysctl and health flags as the docker CLI sends them', () => {
  const body = buildCreateRequest(
    {
      pid: 'host',
      ipc: 'shareable',
      uts: 'host',
      cpuShares: '512',
      cpusetCpus: '0',
      memoryReservation: '32m',
      memorySwap: '-1',
      memorySwappiness: '10',
      oomKillDisable: true,
      deviceReadBps: ['/dev/vda:1mb'],
      deviceWriteIops: ['/dev/vda:100'],
      sysctl: ['net.ipv4.ip_forward=1'],
      healthCmd: 'true',
      healthInterval: '1m30s',
      healthRetries: '3',
      volumesFrom: ['a', 'b:ro'],
    },
    'busybox',
    [],
    { env: {} },
  ).body;
  const h = body.HostConfig as Record<string, unknown>;
  assert.deepEqual(
    [h.PidMode, h.IpcMode, h.UTSMode, h.CpuShares, h.CpusetCpus, h.MemoryReservation, h.MemorySwap, h.MemorySwappiness, h.OomKillDisable],
    ['host', 'shareable', 'host', 512, '0', 32 << 20, -1, 10, true],
  );
  assert.deepEqual(h.BlkioDeviceReadBps, [{ Path: '/dev/vda', Rate: 1 << 20 }]);
  assert.deepEqual(h.BlkioDeviceWriteIOps, [{ Path: '/dev/vda', Rate: 100 }]);
  assert.deepEqual(h.Sysctls, { 'net.ipv4.ip_forward': '1' });
  assert.deepEqual(h.VolumesFrom, ['a', 'b:ro']);
  assert.deepEqual(body.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 90e9, Retries: 3 });
  assert.deepEqual(buildCreateRequest({ noHealthcheck: true }, 'busybox', [], { env: {} }).body.Healthcheck, { Test: ['NONE'] });
  assert.throws(() => buildCreateRequest({ noHealthcheck: true, healthCmd: 'x' }, 'busybox', [], { env: {} }), /conflicts/);
  assert.throws(() => buildCreateRequest({ healthInterval: '5x' }, 'busybox', [], { env: {} }), /invalid duration "5x"/);
  assert.throws(() => buildCreateRequest({ deviceReadBps: ['sda:1mb'] }, 'busybox', [], { env: {} }), /bad format/);
  assert.throws(() => buildCreateRequest({ cpuShares: 'lots' }, 'busybox', [], { env: {} }), /--cpu-shares/);
});

test("flag values the docker CLI refuses, in its words", () => {
  const refusal = (flags: RunFlags): string => {
    try {
      buildCreateRequest(flags, 'busybox', []);
    } catch (e) {
      assert.ok(e instanceof FlagError);
      return e.message;
    }
    return '';
  };
  assert.equal(refusal({ memory: '1x' }), `invalid argument "1x" for "-m, --memory" flag: invalid suffix: 'x'`);
  assert.equal(refusal({ shmSize: 'abc' }), `invalid argument "abc" for "--shm-size" flag: invalid size: 'abc'`);
  assert.equal(refusal({ cpus: 'abc' }), 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number');
  assert.equal(refusal({ pidsLimit: 'x' }), 'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax');
  assert.equal(refusal({ ulimit: ['nofile=x'] }), 'invalid argument "nofile=x" for "--ulimit" flag: strconv.ParseInt: parsing "x": invalid syntax');
  assert.equal(refusal({ ulimit: ['bogus=1'] }), 'invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus');
  assert.equal(refusal({ ulimit: ['nofile=10:5'] }), 'invalid argument "nofile=10:5" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 10 > 5');
  assert.equal(refusal({ env: ['=x'] }), 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x');
  assert.equal(refusal({ label: ['=x'] }), `invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name`);
  assert.equal(refusal({ addHost: ['bad'] }), 'invalid argument "bad" for "--add-host" flag: bad format for add-host: "bad"');
  assert.equal(refusal({ addHost: ['h:notanip'] }), 'invalid argument "h:notanip" for "--add-host" flag: invalid IP address in add-host: "notanip"');
  assert.equal(refusal({ dns: ['x'] }), 'invalid argument "x" for "--dns" flag: IP address is not correctly formatted: x');
  assert.equal(refusal({ sysctl: ['kernel.domainname=x'] }), `invalid argument "kernel.domainname=x" for "--sysctl" flag: sysctl 'kernel.domainname=x' is not allowed`);
  assert.equal(refusal({ publish: ['99999:80'] }), 'invalid hostPort: 99999');
  assert.equal(refusal({ restart: 'on-failure:x' }), 'invalid restart policy format: maximum retry count must be an integer');
  // What the daemon judges passes: a restart policy's name, host-gateway, [IPv6] hosts, net.* sysctls.
  assert.equal(refusal({ restart: 'bogus', addHost: ['gw:host-gateway', 'six:[::1]', 'h=10.0.0.1'], sysctl: ['net.ipv4.ip_forward=1'], ulimit: ['nofile=1:-1'] }), '');
  assert.deepEqual(buildCreateRequest({ restart: 'always:3' }, 'busybox', []).body.HostConfig.RestartPolicy, { Name: 'always', MaximumRetryCount: 3 });
});
