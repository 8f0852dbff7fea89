// The embedded DNS server on loopback addresses only: a fake upstream of the test's own on
// 127.0.0.1 stands in for the host's resolvers, so nothing leaves the machine (the host's
// /etc/resolv.conf is never read). 192.0.2.0/24 and 10.88.0.0/16 are answers here, never contacted.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, RecordType } from 'dns-packet';

import { EmbeddedDns, nameserversOf, type EmbeddedDnsOptions } from './dns.js';

const DNS_ADDR = '127.0.53.1'; // the "gateway" our server listens on
const CLIENT_ADDR = '127.0.53.10'; // the "container" asking
const OUTSIDE_IP = '192.0.2.7';

/** A fake upstream resolver on 127.0.0.1 (UDP and TCP on one port) that records what it was asked. */
class FakeUpstream {
  readonly seen: Array<{ name: string; proto: 'udp' | 'tcp' }> = [];
  private readonly udp = dgram.createSocket('udp4');
  private readonly tcp = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const reply = this.reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), 'tcp');
      const len = Buffer.alloc(2);
      len.writeUInt16BE(reply.length);
      socket.end(Buffer.concat([len, reply]));
    });
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.bind(0, '127.0.0.1', () => resolve()));
    this.port = this.udp.address().port;
    this.udp.on('message', (msg, peer) => {
      try {
        this.udp.send(this.reply(msg, 'udp'), peer.port, peer.address);
      } catch {
        // the garbage test's mangled queries may reach here: no answer
      }
    });
    await new Promise<void>((resolve, reject) => this.tcp.once('error', reject).listen(this.port, '127.0.0.1', () => resolve()));
  }

  private reply(msg: Buffer, proto: 'udp' | 'tcp'): Buffer {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    this.seen.push({ name: question.name, proto });
    const base = { type: 'response' as const, id: q.id, questions: q.questions };
    const RA = dnsPacket.RECURSION_AVAILABLE;
    if (question.name === 'outside.test') return dnsPacket.encode({ ...base, flags: RA, answers: [{ type: 'A', name: question.name, ttl: 30, data: OUTSIDE_IP }] });
    // Too big for UDP: a truncated answer there, the whole one over TCP.
    if (question.name === 'big.test') {
      if (proto === 'udp') return dnsPacket.encode({ ...base, flags: RA | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
      return dnsPacket.encode({ ...base, flags: RA, answers: Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, name: question.name, ttl: 30, data: `192.0.2.${i + 1}` })) });
    }
    if (question.name === 'fail.test') return dnsPacket.encode({ ...base, flags: RA | 2, answers: [] });
    return dnsPacket.encode({ ...base, flags: RA | 3, answers: [] }); // NXDOMAIN
  }

  names(): string[] {
    return this.seen.map((s) => s.name);
  }

  async stop(): Promise<void> {
    this.udp.close();
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }
}

/** A UDP socket that reads queries and never answers: an upstream that is down. */
async function blackHole(): Promise<{ address: string; close: () => void; count: () => number }> {
  const socket = dgram.createSocket('udp4');
  let count = 0;
  socket.on('message', () => count++);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { address: `127.0.0.1:${socket.address().port}`, close: () => socket.close(), count: () => count };
}

interface Ask {
  type?: RecordType;
  proto?: 'udp' | 'tcp';
  from?: string;
  edns?: number;
  timeoutMs?: number;
}

function encodeQuery(name: string, opts: Ask): Packet & { id: number } {
  const packet: Packet & { id: number } = { type: 'query', id: randomBytes(2).readUInt16BE(0), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: opts.type ?? 'A', name, class: 'IN' }] };
  if (opts.edns) packet.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
  return packet;
}

/** Sends raw bytes and resolves with the raw reply (undefined when none comes within the timeout). */
function send(port: number, msg: Buffer, opts: { proto?: 'udp' | 'tcp'; from?: string; to?: string; timeoutMs?: number } = {}): Promise<Buffer | undefined> {
  const to = opts.to ?? DNS_ADDR;
  const from = opts.from ?? (net.isIPv6(to) ? '::1' : CLIENT_ADDR);
  return new Promise((resolve, reject) => {
    let close = (): void => {};
    let done = false;
    const finish = (reply: Buffer | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      close();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), opts.timeoutMs ?? 3000);
    if ((opts.proto ?? 'udp') === 'udp') {
      const socket = dgram.createSocket(net.isIPv6(to) ? 'udp6' : 'udp4');
      close = () => socket.close();
      socket.on('error', reject).on('message', (reply) => finish(reply));
      socket.bind(0, from, () => socket.send(msg, port, to));
    } else {
      const socket = net.connect({ host: to, port, localAddress: from });
      close = () => socket.destroy();
      let buf = Buffer.alloc(0);
      socket.on('error', reject).on('close', () => finish(undefined));
      socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg])));
      socket.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      });
    }
  });
}

/** dns-packet's decode gives rcode too; its types leave it out. */
type Reply = DecodedPacket & { rcode: string; raw: Buffer };

async function ask(port: number, name: string, opts: Ask & { to?: string } = {}): Promise<Reply> {
  const query = encodeQuery(name, opts);
  const raw = await send(port, dnsPacket.encode(query), opts);
  assert.ok(raw, `an answer to ${name}`);
  const reply = dnsPacket.decode(raw) as Reply;
  assert.equal(reply.id, query.id, 'the reply carries the query ID');
  assert.equal(reply.type, 'response');
  reply.raw = raw;
  return reply;
}

const addresses = (reply: DecodedPacket): string[] => (reply.answers ?? []).map((a) => ('data' in a ? String(a.data) : a.type));

/** An EmbeddedDns on a free high port of the address (UDP and TCP on the same port). */
async function startDns(opts: Omit<EmbeddedDnsOptions, 'port'>, listenOpts?: { forward?: boolean }, address = DNS_ADDR): Promise<{ dns: EmbeddedDns; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const dns = new EmbeddedDns({ ...opts, port });
    try {
      await dns.listen(address, listenOpts);
      return { dns, port };
    } catch (err) {
      await dns.close();
      if (attempt === 10) throw err;
    }
  }
}

const records: Record<string, string[]> = {
  web: ['10.88.0.2'],
  db: ['10.88.0.3', '10.88.0.4'], // an alias shared by two containers
  many: Array.from({ length: 100 }, (_, i) => `10.88.1.${i + 1}`),
  v6only: ['fd00::5'],
};
const names: Record<string, string> = { '10.88.0.2': 'web.mynet' };

describe('EmbeddedDns', () => {
  const upstream = new FakeUpstream();
  let dns: EmbeddedDns;
  let port: number;
  const lookups: Array<[string, string]> = [];
  let upstreams: string[] = [];

  before(async () => {
    await upstream.start();
    upstreams = [`127.0.0.1:${upstream.port}`];
    ({ dns, port } = await startDns({
      lookup: (name, client) => {
        lookups.push([name, client]);
        return records[name];
      },
      reverse: (ip) => names[ip],
      upstreams: () => upstreams,
      timeoutMs: 300,
    }));
  });
  after(async () => {
    await dns.close();
    await upstream.stop();
  });

  it('answers a container name with its address, TTL 600, recursion available and not authoritative (as Docker)', async () => {
    const reply = await ask(port, 'web');
    assert.equal(reply.rcode, 'NOERROR');
    assert.deepEqual(addresses(reply), ['10.88.0.2']);
    assert.equal(reply.answers![0]!.type, 'A');
    assert.equal((reply.answers![0] as { ttl: number }).ttl, 600);
    assert.equal(reply.flag_ra, true);
    assert.equal(reply.flag_rd, true, 'RD copied from the query');
    assert.equal(reply.flag_aa, false);
    assert.deepEqual(lookups.at(-1), ['web', CLIENT_ADDR], 'the lookup is told which container asks');
    assert.deepEqual(upstream.names(), []);
  });

  it('matches names case-insensitively, with or without a trailing dot, and answers with the name as asked', async () => {
    for (const name of ['WEB', 'Web.', 'web.']) {
      const reply = await ask(port, name);
      assert.deepEqual(addresses(reply), ['10.88.0.2'], name);
      assert.equal(reply.answers![0]!.name, name.replace(/\.$/, ''));
    }
    await ask(port, 'Web', { proto: 'tcp' }).then((reply) => assert.deepEqual(addresses(reply), ['10.88.0.2']));
    assert.deepEqual(upstream.names(), []);
  });

  it('answers an alias with every address, in shuffled order', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const reply = await ask(port, 'db');
      assert.deepEqual([...addresses(reply)].sort(), ['10.88.0.3', '10.88.0.4']);
      orders.add(addresses(reply).join(','));
    }
    assert.equal(orders.size, 2, 'both orders seen in 30 replies');
  });

  it('answers AAAA (and MX) for a known name with NOERROR and no answer, not forwarded', async () => {
    for (const type of ['AAAA', 'MX'] as const) {
      const reply = await ask(port, 'web', { type });
      assert.equal(reply.rcode, 'NOERROR', type);
      assert.deepEqual(reply.answers, [], type);
    }
    const v6 = await ask(port, 'v6only', { type: 'AAAA' });
    assert.deepEqual(addresses(v6), ['fd00::5'], 'IPv6 addresses the lookup gives go in AAAA');
    assert.deepEqual(addresses(await ask(port, 'v6only')), [], 'and not in A');
    assert.deepEqual(upstream.names(), []);
  });

  it('answers PTR for a known address and forwards unknown ones', async () => {
    const reply = await ask(port, '2.0.88.10.in-addr.arpa', { type: 'PTR' });
    assert.equal(reply.rcode, 'NOERROR');
    assert.deepEqual(reply.answers?.map((a) => [a.type, 'data' in a ? a.data : undefined]), [['PTR', 'web.mynet']]);
    const unknown = await ask(port, '9.0.88.10.IN-ADDR.ARPA.', { type: 'PTR' });
    assert.equal(unknown.rcode, 'NXDOMAIN', 'the upstream said so');
    assert.deepEqual(upstream.names().splice(0), ['9.0.88.10.IN-ADDR.ARPA']);
    upstream.seen.length = 0;
  });

  it('forwards unknown names over UDP, and over TCP when asked over TCP, with the client ID', async () => {
    const udp = await ask(port, 'outside.test');
    assert.deepEqual(addresses(udp), [OUTSIDE_IP]);
    const tcp = await ask(port, 'outside.test', { proto: 'tcp' });
    assert.deepEqual(addresses(tcp), [OUTSIDE_IP]);
    assert.deepEqual(upstream.seen.splice(0), [
      { name: 'outside.test', proto: 'udp' },
      { name: 'outside.test', proto: 'tcp' },
    ]);
  });

  it('passes upstream truncation through, so that the client retries over TCP', async () => {
    const udp = await ask(port, 'big.test');
    assert.equal(udp.flag_tc, true);
    const tcp = await ask(port, 'big.test', { proto: 'tcp' });
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers?.length, 60);
    upstream.seen.length = 0;
  });

  it('forwards a name with a search domain appended and relays NXDOMAIN, so that the client tries the next candidate', async () => {
    const reply = await ask(port, 'web.search.example');
    assert.equal(reply.rcode, 'NXDOMAIN');
    assert.deepEqual(upstream.names().splice(0), ['web.search.example']);
    assert.deepEqual(lookups.at(-1), ['web.search.example', CLIENT_ADDR]);
    upstream.seen.length = 0;
  });

  it('truncates a local answer to 512 bytes over UDP (or the EDNS size) and gives it whole over TCP', async () => {
    const udp = await ask(port, 'many');
    assert.equal(udp.flag_tc, true);
    assert.ok(udp.raw.length <= 512 && udp.answers!.length > 5 && udp.answers!.length < 100, `${udp.answers!.length} answers in ${udp.raw.length} bytes`);
    const edns = await ask(port, 'many', { edns: 4096 });
    assert.equal(edns.flag_tc, false);
    assert.equal(edns.answers?.length, 100);
    const tcp = await ask(port, 'many', { proto: 'tcp' });
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers?.length, 100);
  });

  it('falls through an upstream that does not answer, or answers SERVFAIL, to the next within the timeout', async () => {
    const hole = await blackHole();
    try {
      upstreams = [hole.address, `127.0.0.1:${upstream.port}`];
      const started = Date.now();
      assert.deepEqual(addresses(await ask(port, 'outside.test')), [OUTSIDE_IP]);
      const took = Date.now() - started;
      assert.ok(took >= 250 && took < 2000, `took ${took} ms with a 300 ms timeout`);
      assert.equal(hole.count(), 1, 'the first upstream was asked');
      // A closed port (ICMP unreachable) and garbage entries are skipped as well.
      upstreams = ['not-an-ip', '127.0.0.1:1', `127.0.0.1:${upstream.port}`];
      assert.deepEqual(addresses(await ask(port, 'outside.test', { proto: 'tcp' })), [OUTSIDE_IP]);
      // An upstream's SERVFAIL: the next one is asked; when none answers, SERVFAIL.
      upstreams = [`127.0.0.1:${upstream.port}`, hole.address];
      assert.equal((await ask(port, 'fail.test')).rcode, 'SERVFAIL');
      assert.equal(hole.count(), 2);
      upstreams = [];
      assert.equal((await ask(port, 'outside.test')).rcode, 'SERVFAIL', 'no upstream at all');
    } finally {
      upstreams = [`127.0.0.1:${upstream.port}`];
      hole.close();
      upstream.seen.length = 0;
    }
  });

  it('never forwards to itself', async () => {
    try {
      upstreams = [`${DNS_ADDR}:${port}`];
      const started = Date.now();
      assert.equal((await ask(port, 'outside.test')).rcode, 'SERVFAIL');
      assert.ok(Date.now() - started < 250, 'answered at once, not after a timeout');
      upstreams = [`${DNS_ADDR}:${port}`, `127.0.0.1:${upstream.port}`];
      assert.deepEqual(addresses(await ask(port, 'outside.test')), [OUTSIDE_IP]);
      assert.equal(upstream.seen.length, 1, 'the upstream was asked once: no loop through ourselves');
    } finally {
      upstreams = [`127.0.0.1:${upstream.port}`];
      upstream.seen.length = 0;
    }
  });

  it('survives garbage: random bytes, FORMERR for what it cannot read, NOTIMP for other opcodes, silence for responses', async () => {
    // Random datagrams from one socket, half of them with the QR bit clear, as queries have it.
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, CLIENT_ADDR, () => resolve()));
    const seeds = (['A', 'AAAA', 'PTR', 'MX', 'TXT'] as const).map((type) => dnsPacket.encode(encodeQuery(type === 'PTR' ? '2.0.88.10.in-addr.arpa' : 'web', { type, edns: 1232 })));
    for (let i = 0; i < 1000; i++) {
      let junk = randomBytes(Math.floor(Math.random() * 600));
      if (i % 2 === 0) {
        // A real query with a few bytes changed, cut or lengthened: it gets past the header.
        junk = Buffer.concat([seeds[i % seeds.length]!, junk.subarray(0, i % 7 === 0 ? 20 : 0)]);
        for (let k = 0; k < 1 + (i % 4); k++) junk[Math.floor(Math.random() * junk.length)] = Math.floor(Math.random() * 256);
        if (i % 5 === 0) junk = junk.subarray(0, Math.floor(Math.random() * junk.length));
      }
      if (junk.length >= 12 && i % 3 !== 0) junk[2]! &= 0x7f;
      udp.send(junk, port, DNS_ADDR);
    }
    // And a TCP stream of random frames.
    const tcp = net.connect({ host: DNS_ADDR, port, localAddress: CLIENT_ADDR });
    tcp.on('error', () => {});
    tcp.on('data', () => {});
    for (let i = 0; i < 50; i++) {
      const junk = randomBytes(2 + Math.floor(Math.random() * 300));
      junk.writeUInt16BE(junk.length - 2, 0);
      if (junk.length >= 14) junk[4]! &= 0x7f;
      tcp.write(junk);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    udp.close();
    tcp.destroy();
    // A question cut short: FORMERR with the client's ID.
    const good = dnsPacket.encode(encodeQuery('web', {}));
    const cut = await send(port, good.subarray(0, good.length - 3));
    assert.ok(cut);
    assert.equal(cut.readUInt16BE(0), good.readUInt16BE(0));
    assert.equal(cut.readUInt16BE(2) & 0x800f, 0x8001, 'a response, FORMERR');
    // No question at all.
    const empty = Buffer.from(good.subarray(0, 12));
    empty.writeUInt16BE(0, 4);
    assert.equal((await send(port, empty))!.readUInt16BE(2) & 0xf, 1);
    // Opcode STATUS (2): NOTIMP, the question echoed.
    const status = Buffer.from(good);
    status[2] = (status[2]! & 0x87) | (2 << 3);
    const notimp = await send(port, status);
    assert.equal(notimp!.readUInt16BE(2) & 0xf, 4);
    assert.deepEqual(notimp!.subarray(12), good.subarray(12), 'the question echoed');
    // A response (QR set) is not answered: no ping-pong between two servers.
    const response = Buffer.from(good);
    response[2]! |= 0x80;
    assert.equal(await send(port, response, { timeoutMs: 200 }), undefined);
    // A TCP client that sends half a frame and goes, and one that sends a zero-length frame.
    for (const bytes of [Buffer.from([0x01]), Buffer.from([0x00, 0x00]), Buffer.from([0xff, 0xff, 1, 2, 3])]) {
      const socket = net.connect({ host: DNS_ADDR, port, localAddress: CLIENT_ADDR });
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.on('connect', () => socket.end(bytes, () => resolve())));
    }
    assert.deepEqual(addresses(await ask(port, 'web')), ['10.88.0.2'], 'still serving');
    upstream.seen.length = 0;
  });

  it('answers many pipelined queries on one TCP connection', async () => {
    const queries = ['web', 'outside.test', 'db', 'WEB'].map((name) => encodeQuery(name, {}));
    const socket = net.connect({ host: DNS_ADDR, port, localAddress: CLIENT_ADDR });
    const replies: DecodedPacket[] = [];
    await new Promise<void>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          replies.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (replies.length === queries.length) resolve();
      });
      // All in one write, the last frame split in two writes.
      const frames = Buffer.concat(queries.map((q) => dnsPacket.streamEncode(q)));
      socket.write(frames.subarray(0, frames.length - 5));
      setTimeout(() => socket.write(frames.subarray(frames.length - 5)), 20);
    });
    socket.destroy();
    assert.deepEqual(replies.map((r) => r.id).sort(), queries.map((q) => q.id).sort());
    assert.deepEqual(addresses(replies.find((r) => r.id === queries[1]!.id)!), [OUTSIDE_IP]);
    upstream.seen.length = 0;
  });
});

describe('EmbeddedDns listeners', () => {
  const lookup = (name: string): string[] | undefined => (name === 'web' ? ['10.88.0.2'] : undefined);

  it('does not forward on a listener without forwarding (internal networks: SERVFAIL, as dockerd), and listen again switches it', async () => {
    const upstream = new FakeUpstream();
    await upstream.start();
    const { dns, port } = await startDns({ lookup, upstreams: () => [`127.0.0.1:${upstream.port}`], timeoutMs: 300 }, { forward: false });
    try {
      assert.deepEqual(addresses(await ask(port, 'web')), ['10.88.0.2'], 'names still answered');
      assert.equal((await ask(port, 'outside.test')).rcode, 'SERVFAIL');
      assert.equal((await ask(port, 'outside.test', { proto: 'tcp' })).rcode, 'SERVFAIL');
      assert.equal((await ask(port, '1.2.0.192.in-addr.arpa', { type: 'PTR' })).rcode, 'SERVFAIL');
      assert.deepEqual(upstream.seen, [], 'the upstream never heard of it');
      await dns.listen(DNS_ADDR, { forward: true }); // the same address again: only the policy changes
      assert.deepEqual(addresses(await ask(port, 'outside.test')), [OUTSIDE_IP]);
      await dns.listen(DNS_ADDR, { forward: false });
      assert.equal((await ask(port, 'outside.test')).rcode, 'SERVFAIL');
      assert.equal(upstream.seen.length, 1);
    } finally {
      await dns.close();
      await upstream.stop();
    }
  });

  it('refuses forwards past its limits (per client and in all) instead of piling them up', async () => {
    const hole = await blackHole();
    const { dns, port } = await startDns({ lookup, upstreams: () => [hole.address], timeoutMs: 5000, maxForwards: 8 });
    try {
      const stuckQuery = (name: string, from: string): Promise<Buffer | undefined> => send(port, dnsPacket.encode(encodeQuery(name, {})), { timeoutMs: 600, from });
      const stuck = ['a', 'b'].map((name) => stuckQuery(`${name}.test`, CLIENT_ADDR));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(hole.count(), 2);
      assert.equal((await ask(port, 'c.test')).rcode, 'REFUSED', 'a client may have 8/4 forwards under way');
      assert.deepEqual(addresses(await ask(port, 'web')), ['10.88.0.2'], 'local names are still answered');
      for (let i = 0; i < 3; i++) stuck.push(...['a', 'b'].map((name) => stuckQuery(`${name}.test`, `127.0.53.${20 + i}`)));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(hole.count(), 8, 'other clients still forward');
      assert.equal((await ask(port, 'c.test', { from: '127.0.53.30' })).rcode, 'REFUSED', '8 in all');
      // close() cancels the forwards under way: no reply, no waiting for their 5 s timeout.
      const started = Date.now();
      await dns.close();
      assert.ok(Date.now() - started < 1000);
      assert.deepEqual(await Promise.all(stuck), Array(8).fill(undefined));
    } finally {
      await dns.close();
      hole.close();
    }
  });

  it('releases its UDP and TCP ports at unlisten and close, and listens on several addresses', async () => {
    const { dns, port } = await startDns({ lookup, upstreams: () => [] });
    const other = '127.0.53.2';
    await dns.listen(other);
    await dns.listen(other); // idempotent
    assert.deepEqual(addresses(await ask(port, 'web', { to: other })), ['10.88.0.2']);
    await dns.unlisten(other);
    await dns.unlisten(other); // and so is this
    assert.equal(await send(port, dnsPacket.encode(encodeQuery('web', {})), { to: other, timeoutMs: 200 }), undefined, 'no longer answering there');
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(port, '127.0.53.3', () => resolve()));
    await assert.rejects(dns.listen('127.0.53.3'), new RegExp(`DNS on 127\\.0\\.53\\.3:${port}: .*EADDRINUSE`));
    taken.close();
    assert.deepEqual(addresses(await ask(port, 'web')), ['10.88.0.2'], 'the first address still answers');
    await dns.close();
    for (const address of [DNS_ADDR, other]) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => udp.once('error', reject).bind(port, address, () => resolve()));
      udp.close();
      const tcp = net.createServer();
      await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(port, address, () => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  });

  it('serves and forwards over IPv6 ("[v6]:port" upstreams)', async (t) => {
    const probe = dgram.createSocket('udp6');
    const ok = await new Promise<boolean>((resolve) => probe.once('error', () => resolve(false)).bind(0, '::1', () => resolve(true)));
    probe.close();
    if (!ok) return t.skip('no ::1 here');
    const upstream = dgram.createSocket('udp6');
    await new Promise<void>((resolve) => upstream.bind(0, '::1', () => resolve()));
    upstream.on('message', (msg, peer) => {
      const q = dnsPacket.decode(msg);
      upstream.send(dnsPacket.encode({ type: 'response', id: q.id, flags: 0, questions: q.questions, answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 30, data: OUTSIDE_IP }] }), peer.port, peer.address);
    });
    const { dns, port: p } = await startDns({ lookup, upstreams: () => [`[::1]:${upstream.address().port}`], timeoutMs: 300 }, {}, '::1');
    try {
      assert.deepEqual(addresses(await ask(p, 'web', { to: '::1' })), ['10.88.0.2']);
      assert.deepEqual(addresses(await ask(p, 'outside.test', { to: '::1' })), [OUTSIDE_IP]);
    } finally {
      await dns.close();
      upstream.close();
    }
  });
});

describe('nameserversOf', () => {
  it('reads nameserver lines, IPv4 and IPv6, in order, and nothing else', () => {
    const conf = [
      '# Generated by NetworkManager',
      'search example.com',
      'nameserver 127.0.0.53',
      '  nameserver   192.0.2.1  # trailing comment',
      ';nameserver 192.0.2.99',
      'nameserver 2001:db8::53',
      'nameserver fe80::1%eth0',
      'nameserver not-an-address',
      'nameservers 192.0.2.98',
      'options edns0 trust-ad',
      'nameserver 192.0.2.2\r',
    ].join('\n');
    assert.deepEqual(nameserversOf(conf), ['127.0.0.53', '192.0.2.1', '2001:db8::53', 'fe80::1%eth0', '192.0.2.2']);
    assert.deepEqual(nameserversOf(''), []);
  });
});
