import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';

import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import { bindingsFor, bindingsOf, checkPortBindings, PortPublisher } from './ports.js';

function listen(port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => s.end('hello from the container'));
    server.once('error', reject).listen(port, '127.0.0.1', () => resolve(server));
  });
}
const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;
const close = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

/** What a TCP client gets: the data, or the error code. */
function talk(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const c = net.connect(port, host);
    c.on('data', (b: Buffer) => (data += b.toString()));
    c.on('end', () => resolve(data));
    c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Whether the port can be bound now (TCP or UDP) on 127.0.0.1. */
function free(proto: 'tcp' | 'udp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'tcp') {
      const s = net.createServer();
      s.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    } else {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false)).bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    }
  });
}

describe('checkPortBindings (at create)', () => {
  it('takes what docker sends and refuses bad keys, host ports and shapes, naming the field', () => {
    checkPortBindings(undefined);
    checkPortBindings({ '80/tcp': [{ HostIp: '', HostPort: '' }], '53/udp': [{ HostPort: '5353' }], '8000': [{ HostPort: '9000-9010' }], '81/tcp': null });
    assert.throws(() => checkPortBindings({ '80/tcp': [{ HostPort: 'x' }] }), /invalid port specification: "x"/);
    assert.throws(() => checkPortBindings({ '80/tcp': [{ HostPort: '70000' }] }), /invalid port specification/);
    assert.throws(() => checkPortBindings({ '99999/tcp': [] }), /invalid port "99999\/tcp"/);
    assert.throws(() => checkPortBindings({ '80/tcp': 'x' }), (err: unknown) => err instanceof InvalidArgumentError && /PortBindings\["80\/tcp"\]/.test(err.message));
    assert.throws(() => checkPortBindings([]), /must be an object/);
  });
});

describe('PortPublisher', () => {
  it('holds TCP and UDP host ports, reports them as Docker does, and lists them as NAT input', async () => {
    const p = new PortPublisher();
    const map = await p.publish('c1', { ip: '10.1.2.3', bridge: 'br1' }, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '0' }], '443/tcp': null });
    const tcp = Number(map['80/tcp']![0]!.HostPort);
    const udp = Number(map['53/udp']![0]!.HostPort);
    assert.ok(tcp > 0 && udp > 0);
    assert.deepEqual(map['443/tcp']!.map((b) => b.HostIp), ['0.0.0.0', '::'], 'on all addresses: IPv4 and its IPv6 twin, as dockerd shows them');
    assert.equal(map['443/tcp']![0]!.HostPort, map['443/tcp']![1]!.HostPort);
    assert.equal(await free('tcp', tcp), false, 'the TCP port is held');
    assert.equal(await free('udp', udp), false, 'the UDP port is held');
    assert.deepEqual(
      p.natPorts().map((x) => ({ ...x, hostPort: x.hostPort > 0 })),
      [
        { proto: 'tcp', hostIp: '127.0.0.1', hostPort: true, containerIp: '10.1.2.3', containerPort: 80, bridge: 'br1' },
        { proto: 'udp', hostIp: '127.0.0.1', hostPort: true, containerIp: '10.1.2.3', containerPort: 53, bridge: 'br1' },
        { proto: 'tcp', hostIp: '0.0.0.0', hostPort: true, containerIp: '10.1.2.3', containerPort: 443, bridge: 'br1' },
      ],
    );
    // Not DNATed (no rules in this test): the held socket resets the connection, forwards nothing.
    assert.equal(await talk(tcp), 'ECONNRESET');
    await p.unpublish('c1');
    assert.deepEqual(p.natPorts(), []);
    assert.equal(await free('tcp', tcp), true, 'released');
    assert.equal(await free('udp', udp), true, 'released');
    await p.close();
  });

  it('refuses a port taken by another program or container with dockerd’s words, and keeps nothing of a failed publish', async () => {
    const other = await listen();
    const taken = portOf(other);
    const p = new PortPublisher();
    const first = Number((await p.publish('a', { ip: '10.1.2.3', bridge: 'br1' }, { '81/tcp': [{ HostIp: '127.0.0.1' }] }))['81/tcp']![0]!.HostPort);
    await assert.rejects(
      p.publish('b', { ip: '10.1.2.4', bridge: 'br1' }, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }], '90/tcp': [{ HostIp: '127.0.0.1', HostPort: String(taken) }] }),
      (err: unknown) => err instanceof ConflictError && err.message === `Bind for 127.0.0.1:${taken} failed: port is already allocated`,
    );
    await assert.rejects(p.publish('c', { ip: '10.1.2.5', bridge: 'br1' }, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: String(first) }] }), /port is already allocated/, 'another container’s port, on all addresses');
    assert.deepEqual(
      p.natPorts().map((x) => x.containerIp),
      ['10.1.2.3'],
      'only the first container’s',
    );
    // UDP too.
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    await assert.rejects(p.publish('d', { ip: '10.1.2.6', bridge: 'br1' }, { '53/udp': [{ HostIp: '127.0.0.1', HostPort: String(udp.address().port) }] }), ConflictError);
    udp.close();
    await close(other);
    await p.close();
  });

  it('takes the first free port of a HostPort range, and refuses bad input', async () => {
    const other = await listen();
    const taken = portOf(other);
    const p = new PortPublisher();
    const map = await p.publish('a', { ip: '10.1.2.3', bridge: 'br1' }, { '80': [{ HostIp: '127.0.0.1', HostPort: `${taken}-${taken + 1}` }] });
    assert.deepEqual(map, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(taken + 1) }] });
    await assert.rejects(p.publish('b', { ip: '10.1.2.3', bridge: 'br1' }, { '80/sctp': [{}] }), (err: unknown) => err instanceof InvalidArgumentError && /sctp ports is not supported/.test(err.message));
    await assert.rejects(p.publish('b', { ip: '10.1.2.3', bridge: 'br1' }, { '80/tcp': [{ HostIp: '::', HostPort: '' }] }), /only IPv4/);
    await assert.rejects(p.publish('b', { ip: '10.1.2.3', bridge: 'br1' }, { '80/tcp': [{ HostPort: 'x' }] }), /invalid port specification: "x"/);
    await assert.rejects(p.publish('b', { ip: '10.1.2.3', bridge: 'br1' }, { '70000/tcp': [{}] }), /invalid port "70000\/tcp"/);
    await close(other);
    await p.close();
  });

  it('forwards TCP in userland for a caller that gives only the address (bridge unknown)', async () => {
    const container = await listen();
    const p = new PortPublisher();
    const map = await p.publish('a', '127.0.0.1', { [`${portOf(container)}/tcp`]: [{ HostIp: '127.0.0.1' }] });
    const port = Number(map[`${portOf(container)}/tcp`]![0]!.HostPort);
    assert.equal(await talk(port), 'hello from the container');
    assert.equal(p.natPorts()[0]!.bridge, '');
    await p.close();
    assert.equal(await talk(port), 'ECONNREFUSED', 'the port closes with unpublish');
    await close(container);
  });

  it("forwards a binding's IPv6 twin in userland, TCP and UDP (no NAT rules for IPv6), and releases it", async (t) => {
    if (!(await new Promise<boolean>((r) => net.createServer().once('error', () => r(false)).listen(0, '::1', function (this: net.Server) { this.close(() => r(true)); })))) return t.skip('no IPv6 loopback');
    const container = await listen();
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, from) => echo.send(Buffer.concat([Buffer.from('echo '), m]), from.port, from.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
    const p = new PortPublisher();
    const map = await p.publish('a', { ip: '127.0.0.1', bridge: 'br1' }, { [`${portOf(container)}/tcp`]: [{ HostIp: '', HostPort: '' }], [`${echo.address().port}/udp`]: [{}] });
    const tcp = map[`${portOf(container)}/tcp`]!;
    const udp = map[`${echo.address().port}/udp`]!;
    assert.deepEqual([tcp.map((b) => b.HostIp), udp.map((b) => b.HostIp)], [['0.0.0.0', '::'], ['0.0.0.0', '::']]);
    assert.deepEqual(p.natPorts().map((x) => x.hostIp), ['0.0.0.0', '0.0.0.0'], 'the NAT rules are IPv4 only');
    assert.equal(await talk(Number(tcp[1]!.HostPort), '::1'), 'hello from the container');
    const client = dgram.createSocket('udp6');
    const answer = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
    client.send('ping', Number(udp[1]!.HostPort), '::1');
    assert.equal(await answer, 'echo ping');
    client.close();
    await p.unpublish('a');
    assert.equal(await talk(Number(tcp[1]!.HostPort), '::1'), 'ECONNREFUSED');
    echo.close();
    await close(container);
    await p.close();
  });

  it('bindingsOf: what publish showed, asked for again (an IPv6 twin folded into its binding on all addresses)', () => {
    assert.deepEqual(
      bindingsOf({ '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }], '90/tcp': [{ HostIp: '0.0.0.0', HostPort: '9090' }], '91/tcp': null }),
      { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }], '90/tcp': [{ HostIp: '0.0.0.0', HostPort: '9090' }], '91/tcp': [] },
    );
  });

  it('bindingsFor: PortBindings plus, with -P, each exposed port on a free one', () => {
    assert.deepEqual(bindingsFor({ '80': [{ HostPort: '8080' }], '53/udp': null }, { '80/tcp': {}, '443/tcp': {} }, true), {
      '80/tcp': [{ HostPort: '8080' }],
      '53/udp': [{}],
      '443/tcp': [{ HostIp: '', HostPort: '' }],
    });
  });
});
