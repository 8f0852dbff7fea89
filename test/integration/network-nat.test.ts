/**
 * Issue 5, kernel NAT (src/network/nat.ts, ports.ts) on the real kernel, without berthd: the
 * test makes three bridges with a network namespace on each ("containers"): A on a Berth
 * network, I on an internal Berth network, and O on a bridge Berth does not know ("outside",
 * standing for the world beyond the host). A small node server in each namespace answers with
 * the address it saw. Published ports are held by a PortPublisher (no proxy: a connection that
 * is not DNATed is reset) and DNATed by HostNat. The FORWARD policy is DROP meanwhile, as dockerd
 * leaves it. Traffic goes only to loopback and to the addresses of what this test made.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { HostNat, natRules, type NatState } from '../../src/network/nat.js';
import { PortPublisher, type PortMap } from '../../src/network/ports.js';
import { cmd, which } from '../helpers/engines.js';
import { isRoot } from '../helpers/runtime.js';

const ID = process.pid % 100000;
const N = (process.pid % 60) * 4;
const net3 = (k: number): string => `10.214.${N + k}`;
const SIDES = {
  a: { bridge: `bn${ID}a`, ns: `bn${ID}a`, veth: `bv${ID}a`, prefix: net3(0) },
  i: { bridge: `bn${ID}i`, ns: `bn${ID}i`, veth: `bv${ID}i`, prefix: net3(1) },
  o: { bridge: `bn${ID}o`, ns: `bn${ID}o`, veth: `bv${ID}o`, prefix: net3(2) },
};
const gw = (s: keyof typeof SIDES): string => `${SIDES[s].prefix}.1`;
const ip = (s: keyof typeof SIDES): string => `${SIDES[s].prefix}.2`;

const SERVER = `
const http = require('node:http');
const dgram = require('node:dgram');
const name = process.argv[2];
let n = 0;
const ready = () => { if (++n === 2) console.log('ready'); };
http.createServer((q, s) => s.end(name + ' saw ' + q.socket.remoteAddress)).listen(80, '0.0.0.0', ready);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(name + ' saw ' + r.address + ': ' + m, r.port, r.address));
u.bind(5353, '0.0.0.0', ready);
`;

/** Prints what a TCP (HTTP GET) or UDP exchange got: the answer, ERR <code>, or TIMEOUT. */
const CLIENT = `
const [kind, host, port] = process.argv.slice(2);
const done = (s) => { console.log(s); process.exit(0); };
setTimeout(() => done('TIMEOUT'), 1000);
if (kind === 'tcp') {
  require('node:http').get({ host, port, path: '/' }, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => done(b)); }).on('error', (e) => done('ERR ' + e.code));
} else {
  const u = require('node:dgram').createSocket('udp4');
  u.on('message', (m) => done(String(m)));
  u.send('ping', Number(port), host);
}
`;

let dir = '';
const servers: ChildProcess[] = [];

function sh(file: string, args: string[]): string {
  const r = cmd(file, args);
  assert.equal(r.status, 0, `${file} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A TCP or UDP exchange from the host (ns undefined) or from inside a namespace, in a child
 * process run asynchronously: the held ports live in this process's event loop.
 */
async function from(ns: string | undefined, kind: 'tcp' | 'udp', host: string, port: number): Promise<string> {
  const argv = [process.execPath, path.join(dir, 'client.cjs'), kind, host, String(port)];
  if (ns) argv.unshift('ip', 'netns', 'exec', ns);
  const r: { stdout?: string; stderr?: string; message?: string } = await run(argv[0]!, argv.slice(1), { timeout: 10_000 }).catch((err: Error & { stdout?: string; stderr?: string }) => err);
  return r.stdout?.trim() || r.stderr?.trim() || r.message || '';
}

/** The lines of iptables-save about Berth: its chains, their rules and the jumps to them. */
function berthLines(): string[] {
  return sh('iptables-save', [])
    .split('\n')
    .filter((l) => l.includes('BERTH'));
}

function sysctl(p: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/sys/${p}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const run = promisify(execFile);

const skip = !isRoot ? 'needs root' : !which('iptables-restore') || !which('iptables-save') ? 'needs iptables' : false;

describe('kernel NAT for bridge networks and published ports', { skip }, () => {
  const nat = new HostNat();
  const ports = new PortPublisher();
  let ipForward: string | undefined;
  let forwardPolicy = 'ACCEPT';
  let state: NatState;
  let published: PortMap;
  const hostPort = (key: string, hostIp: string): number => Number(published[key]!.find((b) => b.HostIp === hostIp)!.HostPort);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-nat-'));
    ipForward = sysctl('net/ipv4/ip_forward');
    forwardPolicy = /^-P FORWARD (\w+)/m.exec(sh('iptables', ['-S', 'FORWARD']))?.[1] ?? 'ACCEPT';
    sh('iptables', ['-P', 'FORWARD', 'DROP']); // as dockerd leaves it
    fs.writeFileSync(path.join(dir, 'server.cjs'), SERVER);
    fs.writeFileSync(path.join(dir, 'client.cjs'), CLIENT);
    for (const [name, s] of Object.entries(SIDES)) {
      sh('ip', ['link', 'add', s.bridge, 'type', 'bridge']);
      sh('ip', ['addr', 'add', `${s.prefix}.1/24`, 'dev', s.bridge]);
      sh('ip', ['link', 'set', s.bridge, 'up']);
      sh('ip', ['netns', 'add', s.ns]);
      sh('ip', ['link', 'add', s.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', s.ns]);
      sh('ip', ['link', 'set', s.veth, 'master', s.bridge, 'up']);
      // What Docker does without its proxy: a frame DNATed back to the port it came in on may leave by it.
      sh('ip', ['link', 'set', s.veth, 'type', 'bridge_slave', 'hairpin', 'on']);
      sh('ip', ['-n', s.ns, 'addr', 'add', `${s.prefix}.2/24`, 'dev', 'eth0']);
      sh('ip', ['-n', s.ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', s.ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', s.ns, 'route', 'add', 'default', 'via', `${s.prefix}.1`]);
      const server = spawn('ip', ['netns', 'exec', s.ns, process.execPath, path.join(dir, 'server.cjs'), name.toUpperCase()], { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
        server.once('exit', (code) => reject(new Error(`the server in ${s.ns} exited (${code})`)));
      });
    }
    published = await ports.publish('a', { ip: ip('a'), bridge: SIDES.a.bridge }, { '80/tcp': [{ HostIp: '127.0.0.1' }, { HostIp: '0.0.0.0' }], '5353/udp': [{ HostIp: '127.0.0.1' }] });
    state = {
      networks: [
        { bridge: SIDES.a.bridge, subnet: `${net3(0)}.0/24`, gateway: gw('a'), internal: false },
        { bridge: SIDES.i.bridge, subnet: `${net3(1)}.0/24`, gateway: gw('i'), internal: true },
      ],
      ports: ports.natPorts(),
    };
  });

  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await ports.close();
    try {
      nat.removeAll();
    } catch (err) {
      console.error(`removeAll: ${(err as Error).message}`);
    }
    for (const s of Object.values(SIDES)) {
      cmd('ip', ['netns', 'del', s.ns]);
      cmd('ip', ['link', 'del', s.veth]);
      cmd('ip', ['link', 'del', s.bridge]);
    }
    cmd('iptables', ['-P', 'FORWARD', forwardPolicy]);
    if (ipForward !== undefined) fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', ipForward);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(berthLines().length, 0, 'no Berth rule left');
  });

  it('DNATs published ports to the namespace, from 127.0.0.1 and from other interfaces, TCP and UDP, with no proxy', async () => {
    const local = hostPort('80/tcp', '127.0.0.1');
    const all = hostPort('80/tcp', '0.0.0.0');
    const udp = hostPort('5353/udp', '127.0.0.1');
    // Before the rules: the held port resets what reaches it (nothing is forwarded in userland).
    assert.equal(await from(undefined, 'tcp', '127.0.0.1', local), 'ERR ECONNRESET');
    nat.apply(state);
    assert.equal(sysctl('net/ipv4/ip_forward'), '1');
    assert.equal(sysctl(`net/ipv4/conf/${SIDES.a.bridge}/route_localnet`), '1');
    // From the host's loopback: masqueraded to the bridge's address, which the namespace can answer.
    assert.equal(await from(undefined, 'tcp', '127.0.0.1', local), `A saw ${gw('a')}`);
    assert.equal(await from(undefined, 'udp', '127.0.0.1', udp), `A saw ${gw('a')}: ping`);
    // 0.0.0.0: any host address, here the bridge's own, and 127.0.0.1 too.
    assert.equal(await from(undefined, 'tcp', gw('a'), all), `A saw ${gw('a')}`);
    assert.equal(await from(undefined, 'tcp', '127.0.0.1', all), `A saw ${gw('a')}`);
    // From another host (the outside namespace) through PREROUTING and FORWARD: its own address kept.
    assert.equal(await from(SIDES.o.ns, 'tcp', gw('o'), all), `A saw ${ip('o')}`);
    // Hairpin: the namespace reaches its own published port through a host address.
    assert.equal(await from(SIDES.a.ns, 'tcp', gw('a'), all), `A saw ${gw('a')}`);
    // A 127.0.0.1 binding is not reachable on other addresses.
    assert.match(await from(SIDES.o.ns, 'tcp', gw('o'), local), /^ERR ECONNREFUSED$|^TIMEOUT$/);
    // The kernel did it: the DNAT rule counted the packets.
    const counted = sh('iptables-save', ['-c', '-t', 'nat']).split('\n').find((l) => l.includes(`-A BERTH-OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport ${local} -j DNAT`));
    assert.match(counted ?? '', /^\[[1-9]\d*:\d+\]/, `counters of the DNAT rule: ${counted}`);
  });

  it('is idempotent, repairs duplicate, missing and stale rules, and removes those of a changed state', async () => {
    nat.apply(state);
    const once = berthLines();
    // Every rule natRules() writes is in the kernel exactly as written (iptables-save's canonical form).
    const { filter, nat: natTable } = natRules(state);
    for (const line of (filter + natTable).split('\n').filter((l) => l.startsWith('-A'))) assert.ok(once.includes(line), `in the kernel: ${line}`);
    const jumps = ['-A FORWARD -j BERTH-FORWARD', '-A INPUT -j BERTH-INPUT', '-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-PREROUTING', '-A OUTPUT -m addrtype --dst-type LOCAL -j BERTH-OUTPUT', '-A POSTROUTING -j BERTH-POSTROUTING'];
    for (const j of jumps) assert.equal(once.filter((l) => l === j).length, 1, j);
    assert.match(sh('iptables', ['-S', 'FORWARD']), /^-P FORWARD DROP\n-A FORWARD -j BERTH-FORWARD\n/, 'jumped to first');
    nat.apply(state);
    assert.deepEqual(berthLines(), once, 'the same after a second apply');

    // What a killed daemon, or a hand, could leave.
    sh('iptables', ['-I', 'FORWARD', '-j', 'BERTH-FORWARD']);
    sh('iptables', ['-A', 'BERTH-FORWARD', '-s', '10.214.255.255/32', '-j', 'ACCEPT']);
    sh('iptables', ['-t', 'nat', '-D', 'OUTPUT', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'BERTH-OUTPUT']);
    sh('iptables', ['-t', 'nat', '-N', 'BERTH-STALE']);
    sh('iptables', ['-t', 'nat', '-A', 'PREROUTING', '-j', 'BERTH-STALE']);
    nat.apply(state);
    assert.deepEqual(berthLines(), once, 'repaired');

    // A port unpublished: its rules go, and its host port is no longer DNATed.
    const local = hostPort('80/tcp', '127.0.0.1');
    nat.apply({ ...state, ports: state.ports.filter((p) => p.hostPort !== local) });
    assert.equal(
      berthLines().filter((l) => l.includes(`--dport ${local} `)).length,
      0,
    );
    assert.equal(await from(undefined, 'tcp', '127.0.0.1', local), 'ERR ECONNRESET', 'only the held socket is left');
    nat.apply(state);
    assert.equal(await from(undefined, 'tcp', '127.0.0.1', local), `A saw ${gw('a')}`);
  });

  it('masquerades a network going out; an internal network reaches nothing but its gateway’s DNS; networks are isolated', async () => {
    nat.apply(state);
    // Under dockerd's FORWARD policy (DROP) our accepts let it through; under the default
    // (ACCEPT) our drops keep the networks apart.
    for (const policy of ['DROP', 'ACCEPT']) {
      sh('iptables', ['-P', 'FORWARD', policy]);
      // Out of A to the outside namespace: the outside sees the host's address on its bridge.
      assert.equal(await from(SIDES.a.ns, 'tcp', ip('o'), 80), `O saw ${gw('o')}`, policy);
      assert.equal(await from(SIDES.a.ns, 'udp', ip('o'), 5353), `O saw ${gw('o')}: ping`, policy);
      // Out of the internal network: nothing.
      assert.equal(await from(SIDES.i.ns, 'tcp', ip('o'), 80), 'TIMEOUT', policy);
      assert.equal(await from(SIDES.i.ns, 'udp', ip('o'), 5353), 'TIMEOUT', policy);
      // Between the two Berth networks, both ways: nothing.
      assert.equal(await from(SIDES.a.ns, 'tcp', ip('i'), 80), 'TIMEOUT', policy);
      assert.equal(await from(SIDES.i.ns, 'tcp', ip('a'), 80), 'TIMEOUT', policy);
      // Routed from outside straight to a container (not through a published port): dropped.
      assert.equal(await from(SIDES.o.ns, 'tcp', ip('a'), 80), 'TIMEOUT', policy);
    }
    sh('iptables', ['-P', 'FORWARD', 'DROP']);
    // The internal network and its gateway: DNS (port 53) only. The host answers on both.
    const dns = dgram.createSocket('udp4');
    dns.on('message', (m, r) => dns.send(`DNS saw ${r.address}: ${m}`, r.port, r.address));
    await new Promise<void>((r) => dns.bind(53, gw('i'), () => r()));
    const web = net.createServer((s) => s.end('HTTP/1.0 200 OK\r\n\r\nhost'));
    await new Promise<void>((r) => web.listen(0, gw('i'), () => r()));
    const webA = net.createServer((s) => s.end('HTTP/1.0 200 OK\r\n\r\nhost'));
    await new Promise<void>((r) => webA.listen(0, gw('a'), () => r()));
    try {
      assert.equal(await from(SIDES.i.ns, 'udp', gw('i'), 53), `DNS saw ${ip('i')}: ping`);
      assert.equal(await from(SIDES.i.ns, 'tcp', gw('i'), (web.address() as net.AddressInfo).port), 'TIMEOUT');
      assert.equal(await from(SIDES.a.ns, 'tcp', gw('a'), (webA.address() as net.AddressInfo).port), 'host', 'a normal network reaches the host');
      // The host still reaches the internal namespace (its answers come back in).
      assert.equal(await from(undefined, 'tcp', ip('i'), 80), `I saw ${gw('i')}`);
    } finally {
      dns.close();
      web.close();
      webA.close();
    }
  });

  it('removeAll() leaves no Berth chain or jump', async () => {
    nat.apply(state);
    assert.ok(berthLines().length > 0);
    nat.removeAll();
    assert.deepEqual(berthLines(), []);
    assert.equal(await from(undefined, 'tcp', '127.0.0.1', hostPort('80/tcp', '127.0.0.1')), 'ERR ECONNRESET');
    nat.removeAll(); // nothing to remove: no error
  });
});
