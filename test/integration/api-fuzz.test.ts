/**
 * Bad input never crashes the API: request bodies of the Docker API (create, update, exec,
 * commit, network and volume create, connect), each with fields swapped for values of other
 * JSON types, sent to a private berthd. Every answer must be a 4xx with a message, or a success
 * (then what it made is removed), and the daemon must keep answering. A 500 here was a TypeError
 * in code that trusted a field's type. The generator is seeded: a failure repeats with its seed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip } from '../helpers/engines.js';
import { socketRequest } from '../helpers/http.js';

// Other seeds and more rounds, to look further: BERTH_FUZZ_SEED=7 BERTH_FUZZ_ROUNDS=2000.
const SEED = Number(process.env.BERTH_FUZZ_SEED ?? 42);
const ROUNDS = Number(process.env.BERTH_FUZZ_ROUNDS ?? 150);
const TAG = process.pid % 200;
const VALUES: unknown[] = [null, 0, -1, 1.5, 1e30, '', 'x', '/abs', [], [1], ['a'], [null], {}, { a: 1 }, { a: null }, true, false];

/** mulberry32: a small seeded generator whose low bits are as good as its high ones (an LCG's are not). */
function generator(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** A copy of `body` with one field somewhere in it replaced by a value of some JSON type. */
function mutate(body: unknown, rnd: (n: number) => number, depth = 0): unknown {
  if (body === null || typeof body !== 'object') return VALUES[rnd(VALUES.length)];
  const copy: Record<string, unknown> = Array.isArray(body) ? ({ ...body } as Record<string, unknown>) : { ...(body as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return VALUES[rnd(VALUES.length)];
  const key = keys[rnd(keys.length)]!;
  copy[key] = rnd(3) === 0 || depth > 3 ? VALUES[rnd(VALUES.length)] : mutate(copy[key], rnd, depth + 1);
  return Array.isArray(body) ? Object.values(copy) : copy;
}

const CREATE = {
  Image: 'busybox',
  Cmd: ['true'],
  Env: ['A=1'],
  Entrypoint: ['sh'],
  Labels: { a: 'b' },
  ExposedPorts: { '80/tcp': {} },
  Volumes: { '/v': {} },
  WorkingDir: '/w',
  User: 'nobody',
  Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9 },
  StopSignal: 'SIGTERM',
  StopTimeout: 3,
  Tty: false,
  Hostname: 'h',
  NetworkingConfig: { EndpointsConfig: { none: {} } },
  HostConfig: {
    Binds: ['/tmp:/x:ro'],
    Memory: 64e6,
    MemorySwap: -1,
    CpuShares: 2,
    NanoCpus: 1e9,
    PidsLimit: 10,
    Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 20 }],
    CapAdd: ['NET_ADMIN'],
    CapDrop: ['MKNOD'],
    Dns: ['192.0.2.1'],
    ExtraHosts: ['a:192.0.2.2'],
    Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/n', CgroupPermissions: 'rwm' }],
    LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1e6 } }],
    Tmpfs: { '/r': 'size=1m' },
    SecurityOpt: ['no-new-privileges'],
    ShmSize: 1e6,
    OomScoreAdj: 5,
    GroupAdd: ['1'],
    NetworkMode: 'none',
    IpcMode: 'private',
    DeviceCgroupRules: ['c 1:3 rmw'],
  },
};

describe('the API under malformed bodies', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-fuzz-' });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  it("refuses a body said to be other than JSON, a negative memory limit and an unknown wait condition in dockerd's words", async () => {
    const create = JSON.stringify({ Image: 'busybox', Cmd: ['true'] });
    const plain = await socketRequest(d.socket, 'POST', '/containers/create', { 'Content-Type': 'text/plain' }, create);
    assert.deepEqual([plain.status, (JSON.parse(plain.body) as { message: string }).message], [400, "unsupported Content-Type header (text/plain): must be 'application/json'"]);
    const charset = await socketRequest(d.socket, 'POST', '/containers/create', { 'Content-Type': 'application/json; charset=utf-8' }, create);
    assert.equal(charset.status, 201, charset.body);
    d.docker(['rm', '-f', (JSON.parse(charset.body) as { Id: string }).Id]);
    const negative = await socketRequest(d.socket, 'POST', '/containers/create', { 'Content-Type': 'application/json' }, JSON.stringify({ Image: 'busybox', HostConfig: { Memory: -5 } }));
    assert.deepEqual([negative.status, (JSON.parse(negative.body) as { message: string }).message], [400, 'Minimum memory limit allowed is 6MB']);
    const id = d.dockerOk(['create', 'busybox', 'true']).trim();
    const wait = await socketRequest(d.socket, 'POST', `/containers/${id}/wait?condition=bogus`, {}, '');
    assert.deepEqual([wait.status, (JSON.parse(wait.body) as { message: string }).message], [400, 'invalid condition: "bogus"']);
    d.dockerOk(['rm', id]);
  });

  it(`answers ${ROUNDS} rounds of mutated create, update, exec, commit, network, volume and connect bodies with 4xx or success, and stays up`, async () => {
    const rnd = generator(SEED);
    const target = d.dockerOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000']).trim();
    const post = (p: string, body: unknown): Promise<{ status: number; body: string }> => socketRequest(d.socket, 'POST', p, { 'Content-Type': 'application/json' }, JSON.stringify(body));
    const bodies: Array<[string | (() => Promise<string>), unknown]> = [
      ['/containers/create', CREATE],
      [`/containers/${target}/update`, { Memory: 64e6, MemorySwap: -1, CpuShares: 2, NanoCpus: 1e9, PidsLimit: 10, RestartPolicy: { Name: 'always' }, BlkioWeight: 100, CpusetCpus: '0' }],
      [`/containers/${target}/exec`, { Cmd: ['true'], Env: ['A=1'], User: 'nobody', WorkingDir: '/', Tty: false, AttachStdout: true, Privileged: false, DetachKeys: 'ctrl-x', ConsoleSize: [1, 1] }],
      [async () => `/exec/${(JSON.parse((await post(`/containers/${target}/exec`, { Cmd: ['true'] })).body) as { Id: string }).Id}/start`, { Detach: true, Tty: false, ConsoleSize: [1, 1] }],
      [`/commit?container=${target}&repo=fuzzed`, { Cmd: ['true'], Env: ['A=1'], Labels: { a: 'b' }, ExposedPorts: { '80/tcp': {} } }],
      ['/networks/create', { Name: 'fuzzed', Driver: 'bridge', Internal: false, Options: { 'com.docker.network.bridge.name': `fz${TAG}br0` }, Labels: { a: 'b' }, IPAM: { Config: [{ Subnet: `10.251.${TAG}.0/24`, Gateway: `10.251.${TAG}.1` }] } }],
      ['/volumes/create', { Name: 'fuzzed', Driver: 'local', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' }, Labels: { a: 'b' } }],
      ['/networks/none/connect', { Container: target, EndpointConfig: { Aliases: ['a'] } }],
    ];
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [route, body] of bodies) {
        const path = typeof route === 'string' ? route : await route();
        const sent = rnd(4) === 0 ? mutate(mutate(body, rnd), rnd) : mutate(body, rnd);
        const r = await post(path, sent);
        // 501: valid but not supported here (an IPv6 network, say), a deliberate answer.
        if (r.status >= 500 && r.status !== 501) failures.push(`${path.replace(target, '<c>')} ${JSON.stringify(sent)} -> ${r.status} ${r.body}`);
        else if (r.status >= 400) assert.ok((JSON.parse(r.body) as { message?: string }).message, `${r.status} without a message: ${r.body}`);
        if (r.status === 201 && path === '/containers/create') d.docker(['rm', '-f', (JSON.parse(r.body) as { Id: string }).Id]);
        if (r.status === 201 && path === '/networks/create') d.docker(['network', 'rm', 'fuzzed']);
        if (r.status === 201 && path === '/volumes/create') d.docker(['volume', 'rm', '-f', 'fuzzed']);
        if (r.status === 201 && path.startsWith('/commit')) d.docker(['rmi', '-f', 'fuzzed']);
      }
      assert.equal(d.docker(['version', '--format', '{{.Server.Version}}']).status, 0, `the daemon stopped answering in round ${round}\n${d.logTail()}`);
    }
    assert.deepEqual(failures, []);
    d.dockerOk(['rm', '-f', target]);
  });
});
