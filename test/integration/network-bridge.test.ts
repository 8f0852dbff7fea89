/**
 * Issue 5, the default bridge (first part): berthd with its own bridge and subnet (made by the
 * test, deleted after). Containers get an address and a default route; one reaches another by
 * IP; the host reaches a container's web server at its address; --network none stays with lo.
 * Traffic goes only to the addresses this test made: the bridge's and its containers'.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { freePort, httpGet, httpGetWithRetry } from '../helpers/http.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cmd, dockerdSkip, poll } from '../helpers/engines.js';

const BRIDGE = `bt${process.pid % 100000}`;
const CIDR = `10.213.${process.pid % 200}.1/24`;

describe('the default bridge network', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-net-', bridge: { name: BRIDGE, cidr: CIDR } });
    d.loadImages('busybox', 'web');
  });
  after(async () => {
    await d?.stop();
    assert.notEqual(cmd('ip', ['link', 'show', BRIDGE]).status, 0, 'the bridge is gone');
  });

  it('gives containers addresses on the bridge; they reach each other and the host reaches them', async () => {
    const gateway = CIDR.split('/')[0]!;
    const web = d.dockerOk(['run', '-d', 'web']).trim();
    const ip = d.dockerOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', web]).trim();
    assert.match(ip, new RegExp(`^${gateway.replace(/\.1$/, '').replace(/\./g, '\\.')}\\.\\d+$`));
    assert.equal(d.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.bridge.Gateway}}', web]).trim(), gateway);
    // The host, through the bridge.
    let answer: { status: number; body: string } | undefined;
    for (let i = 0; i < 50 && !answer; i++) {
      answer = await httpGet(`http://${ip}/`).catch(() => undefined);
      if (!answer) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(answer?.status, 200);
    // Another container, by IP.
    const inside = d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', `ip -4 -o addr show eth0; ip -4 -o addr show lo; ip route; wget -q -O - http://${ip}/ >/dev/null && echo reached`]);
    assert.match(inside, /inet 10\.213\./);
    assert.match(inside, /lo\s+inet 127\.0\.0\.1\/8/, 'loopback up on the bridge too');
    assert.match(inside, new RegExp(`default via ${gateway.replace(/\./g, '\\.')}`));
    assert.match(inside, /reached/);
    // --network none still has only lo.
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']).trim(), 'lo');
    // Addresses are not given twice, and freed when a container stops.
    const second = d.dockerOk(['run', '-d', 'busybox', 'sleep', '100']).trim();
    const ip2 = d.dockerOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', second]).trim();
    assert.notEqual(ip2, ip);
    d.dockerOk(['rm', '-f', web, second]);
    // Freed once the veths are gone (off the exit path).
    const allocations = (): Record<string, string> => (JSON.parse(fs.readFileSync(`${d.dir}/data/network/${BRIDGE}.json`, 'utf8')) as { allocations: Record<string, string> }).allocations;
    assert.ok(await poll(() => Object.keys(allocations()).length === 0, 10_000), `addresses released: ${JSON.stringify(allocations())}`);
    // The kernel tears a dead namespace (and its veth pair) down in the background.
    const veths = (): string => cmd('sh', ['-c', `ip -o link show master ${BRIDGE} | wc -l`]).stdout.trim();
    assert.ok(await poll(() => veths() === '0', 10_000), `veths left on the bridge: ${veths()}`);
  });

  it('legacy --link on the default bridge: hosts entry, variables, and dockerd\'s refusals', () => {
    const target = d.dockerOk(['run', '-d', '--name', 'linked-db', '--expose', '5432', '-e', 'POSTGRES_DB=app', 'busybox', 'sleep', '100']).trim();
    const ip = d.dockerOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', target]).trim();
    const out = d.dockerOk(['run', '--rm', '--name', 'linker', '--link', 'linked-db:db', 'busybox', 'sh', '-c', 'env | sort; grep -w db /etc/hosts']);
    assert.match(out, new RegExp(`^DB_PORT=tcp://${ip.replace(/\./g, '\\.')}:5432$`, 'm'));
    assert.match(out, new RegExp(`^DB_PORT_5432_TCP_ADDR=${ip.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(out, /^DB_NAME=\/linker\/db$/m);
    assert.match(out, /^DB_ENV_POSTGRES_DB=app$/m);
    assert.doesNotMatch(out, /DB_ENV_PATH/);
    assert.match(out, new RegExp(`^${ip.replace(/\./g, '\\.')}\tdb ${target.slice(0, 12)} linked-db$`, 'm'));
    // Kept as dockerd keeps it.
    d.dockerOk(['create', '--name', 'linker2', '--link', 'linked-db:db', 'busybox', 'true']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{json .HostConfig.Links}}', 'linker2']).trim(), '["/linked-db:/linker2/db"]');
    // A target that does not exist (create), is not running or is not on the default bridge (start).
    assert.match(d.docker(['create', '--link', 'no-such-target:x', 'busybox', 'true']).stderr, /could not get container for no-such-target/);
    d.dockerOk(['stop', '-t', '0', 'linked-db']);
    const stopped = d.docker(['start', 'linker2']);
    assert.notEqual(stopped.status, 0);
    assert.match(stopped.stderr, /Cannot link to a non running container: \/linked-db AS \/linker2\/db/);
    d.dockerOk(['rm', '-f', 'linker2', 'linked-db']);
    d.dockerOk(['network', 'create', 'link-other']);
    d.dockerOk(['run', '-d', '--name', 'elsewhere', '--network', 'link-other', 'busybox', 'sleep', '100']);
    assert.match(d.docker(['run', '--rm', '--link', 'elsewhere:e', 'busybox', 'true']).stderr, /Cannot link to \/elsewhere, as it does not belong to the default network/);
    assert.match(d.docker(['run', '--rm', '--network', 'host', '--link', 'elsewhere:e', 'busybox', 'true']).stderr, /host type networking can't be used with links/);
    d.dockerOk(['rm', '-f', 'elsewhere']);
    d.dockerOk(['network', 'rm', 'link-other']);
  });

  it("a link's name, /parent/alias, as dockerd keeps it: a name of the target, followed by renames, removed by rm --link", () => {
    d.dockerOk(['run', '-d', '--name', 'ln-target', 'busybox', 'sleep', '100']);
    d.dockerOk(['run', '-d', '--name', 'ln-parent', '--link', 'ln-target:al', 'busybox', 'sleep', '100']);
    try {
      assert.equal(d.dockerOk(['inspect', '-f', '{{.Name}}', 'ln-parent/al']).trim(), '/ln-target');
      assert.equal(d.dockerOk(['ps', '--no-trunc', '--filter', 'name=ln-target', '--format', '{{.Names}}']).trim(), 'ln-parent/al,ln-target');
      assert.equal(d.dockerOk(['ps', '--filter', 'name=ln-target', '--format', '{{.Names}}']).trim(), 'ln-target');
      // The target renamed: the link follows it (a restart of the parent still finds it).
      d.dockerOk(['rename', 'ln-target', 'ln-target2']);
      assert.equal(d.dockerOk(['inspect', '-f', '{{json .HostConfig.Links}}', 'ln-parent']).trim(), '["/ln-target2:/ln-parent/al"]');
      d.dockerOk(['restart', '-t', '0', 'ln-parent']);
      assert.match(d.dockerOk(['exec', 'ln-parent', 'env']), /^AL_NAME=\/ln-parent\/al$/m);
      // The parent renamed: its link is named after it.
      d.dockerOk(['rename', 'ln-parent', 'ln-parent2']);
      assert.equal(d.dockerOk(['inspect', '-f', '{{json .HostConfig.Links}}', 'ln-parent2']).trim(), '["/ln-target2:/ln-parent2/al"]');
      assert.equal(d.dockerOk(['inspect', '-f', '{{.Name}}', 'ln-parent2/al']).trim(), '/ln-target2');
      assert.match(d.docker(['rm', '--link', 'ln-target2']).stderr, /Conflict, cannot remove the default link name of the container/);
      assert.match(d.docker(['rm', '--link', 'ln-parent2/nope']).stderr, /No such container: ln-parent2\/nope/);
      d.dockerOk(['rm', '--link', 'ln-parent2/al']);
      assert.equal(d.dockerOk(['inspect', '-f', '{{json .HostConfig.Links}}', 'ln-parent2']).trim(), 'null');
      assert.equal(d.dockerOk(['ps', '-q', '--filter', 'name=ln-']).trim().split('\n').length, 2, 'both containers stay');
      // A restart that fails is named as dockerd names it.
      d.dockerOk(['create', '--name', 'ln-broken', 'busybox', '/no-such-program']);
      assert.match(d.docker(['restart', 'ln-broken']).stderr, /Error response from daemon: Cannot restart container ln-broken: .*no-such-program/);
    } finally {
      d.docker(['rm', '-f', 'ln-target2', 'ln-parent2', 'ln-broken']);
    }
  });

  it('a container joining and leaving the bridge at start and exit: network connect and disconnect events, as dockerd', () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const id = d.dockerOk(['run', '-d', 'busybox', 'true']).trim();
    d.dockerOk(['wait', id]);
    d.dockerOk(['rm', id]);
    const events = d
      .dockerOk(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=network', '--format', '{{.Action}} {{.Actor.Attributes.container}} {{.Actor.Attributes.name}}'])
      .split('\n')
      .filter((l) => l.includes(id));
    assert.deepEqual(events, [`connect ${id} bridge`, `disconnect ${id} bridge`]);
  });

  it("stats report the container's network counters", async () => {
    const gateway = CIDR.split('/')[0]!;
    const id = d.dockerOk(['run', '-d', 'busybox', 'sh', '-c', `ping -c 3 -W 1 ${gateway} >/dev/null; exec sleep 100`]).trim();
    try {
      let netIO = '';
      assert.ok(await poll(() => !/^0B \/ 0B$/.test((netIO = d.dockerOk(['stats', '--no-stream', '--format', '{{.NetIO}}', id]).trim())), 10_000), `NetIO ${netIO}`);
      assert.match(netIO, /^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
  });

  it('--mac-address: the MAC of the container\'s end, per network (API 1.44) and as Config.MacAddress (older clients)', () => {
    assert.equal(d.dockerOk(['run', '--rm', '--mac-address', '02:42:0a:d5:00:99', 'busybox', 'cat', '/sys/class/net/eth0/address']).trim(), '02:42:0a:d5:00:99');
    const id = d.dockerOk(['run', '-d', '--mac-address', '12:34:56:78:9A:BC', 'busybox', 'sleep', '100']).trim();
    try {
      assert.equal(d.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.bridge.MacAddress}}', id]).trim(), '12:34:56:78:9a:bc');
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
    // What a client before 1.44 sends: Config.MacAddress, for the mode's network.
    const old = cmd(process.execPath, ['-e', `
      const http = require('http');
      const body = JSON.stringify({ Image: 'busybox', Cmd: ['cat', '/sys/class/net/eth0/address'], MacAddress: '02:42:0a:d5:00:98' });
      const req = http.request({ socketPath: ${JSON.stringify(d.socket)}, path: '/v1.41/containers/create', method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => console.log(t)); });
      req.end(body);`]);
    const created = JSON.parse(old.stdout).Id as string;
    d.dockerOk(['start', created]);
    d.dockerOk(['wait', created]);
    assert.equal(d.dockerOk(['logs', created]).trim(), '02:42:0a:d5:00:98');
    d.dockerOk(['rm', created]);
    assert.match(d.docker(['run', '--rm', '--mac-address', '01:00:5e:00:00:01', 'busybox', 'true']).stderr, /multicast/);
  });

  it('publishes ports on the host loopback (-p, -P), reports them, refuses a taken one, and again after kill -9', async () => {
    const port = await freePort();
    const web = d.dockerOk(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'web']).trim();
    assert.equal((await httpGetWithRetry(`http://127.0.0.1:${port}/`))?.status, 200);
    assert.equal(d.dockerOk(['port', web]).trim(), `80/tcp -> 127.0.0.1:${port}`);
    assert.match(d.dockerOk(['ps', '--filter', `id=${web}`, '--format', '{{.Ports}}']), new RegExp(`127\\.0\\.0\\.1:${port}->80/tcp`));
    const taken = d.docker(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'web']);
    assert.notEqual(taken.status, 0);
    assert.match(taken.stderr, /port is already allocated/);
    // -P: a free host port for an exposed one.
    const all = d.dockerOk(['run', '-d', '--expose', '80', '-P', 'web']).trim();
    const mapped = (): Record<string, Array<{ HostIp: string; HostPort: string }>> => JSON.parse(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Ports}}', all])) as Record<string, Array<{ HostIp: string; HostPort: string }>>;
    const hostPort = Number(mapped()['80/tcp']![0]!.HostPort);
    assert.ok(hostPort > 0);
    assert.equal((await httpGetWithRetry(`http://127.0.0.1:${hostPort}/`))?.status, 200);
    // On all addresses: IPv6's too, as dockerd publishes it, forwarded in userland.
    assert.deepEqual(mapped()['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: String(hostPort) }, { HostIp: '::', HostPort: String(hostPort) }]);
    assert.equal((await httpGetWithRetry(`http://[::1]:${hostPort}/`))?.status, 200, 'through IPv6 loopback');
    // The daemon dies and comes back: the same ports serve again.
    await d.kill9();
    await d.start();
    assert.equal((await httpGetWithRetry(`http://127.0.0.1:${port}/`))?.status, 200, 'published again after the restart');
    assert.deepEqual(mapped()['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: String(hostPort) }, { HostIp: '::', HostPort: String(hostPort) }], 'the same bindings after the restart');
    assert.equal((await httpGetWithRetry(`http://[::1]:${hostPort}/`))?.status, 200, 'IPv6 after the restart');
    d.dockerOk(['rm', '-f', web, all]);
    assert.equal(await httpGet(`http://127.0.0.1:${port}/`).then(() => 'open', () => 'closed'), 'closed', 'the port closes with the container');
  });
});
