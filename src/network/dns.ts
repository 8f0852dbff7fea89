/**
 * The embedded DNS server of user-defined networks (issue 5), after Docker's (moby's
 * libnetwork/resolver.go). It listens on each network's gateway address, port 53 UDP and TCP (as
 * podman's aardvark-dns does), and containers' /etc/resolv.conf names that address. It answers
 * container names and aliases itself (the `lookup` given by the engine) and forwards everything
 * else to the host's resolvers, from the daemon, so that loopback resolvers such as
 * systemd-resolved's 127.0.0.53, which a container cannot reach, still serve containers.
 *
 * Docker's behaviour kept here:
 * - A for a known name: every address, shuffled (aliases shared by several containers), TTL 600,
 *   RA set and AA not (nslookup says "Non-authoritative answer", as with Docker).
 * - AAAA (and MX) for a known name without such addresses: NOERROR with no answer, never forwarded
 *   (an NXDOMAIN from upstream would make clients drop the A answer too).
 * - PTR for a known address: the name the engine gives; unknown ones are forwarded.
 * - Forwarding: the query as sent, to at most 3 upstreams in order (resolv.conf's limit), each
 *   with its own timeout, over the protocol the client used; an upstream's SERVFAIL or REFUSED
 *   tries the next; the answer goes back verbatim (its TC bit included, so that the client
 *   retries over TCP); nothing answered: SERVFAIL.
 * - A listener without forwarding (an internal network) answers SERVFAIL for unknown names, as
 *   dockerd does when no upstream may be used (moby's TestInternalNetworkDNS expects SERVFAIL).
 * - Our own listening addresses are never used as upstreams (moby's TestIntDNAsExtDNS).
 * - Local answers over UDP are truncated (TC) to 512 bytes or the client's EDNS size.
 * - Too many forwards under way: REFUSED, so a container cannot exhaust the daemon's sockets.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';

import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';

import { SystemError } from '../common/errors.js';

/** The addresses for a name asked by a container (its address `client`), or undefined when the name is not a container/alias on the client's networks: then the query is forwarded (if forwarding is on for that listener). The name comes lower-case, without a trailing dot. */
export type DnsLookup = (name: string, client: string) => string[] | undefined;
/** Reverse: the name for a container address (PTR queries for in-addr.arpa of known addresses), or undefined → forwarded. */
export type DnsReverse = (ip: string, client: string) => string | undefined;

export interface EmbeddedDnsOptions {
  lookup: DnsLookup;
  reverse?: DnsReverse;
  /**
   * The host's resolvers, read when needed (host's resolv.conf may change): "ip", "ip:port" or
   * "[v6]:port". `client` is the asking container's address, for per-container servers (--dns).
   */
  upstreams: (client: string) => string[];
  /** Default 53; tests use another. */
  port?: number;
  /** Per upstream, default 4000 ms (Docker's). */
  timeoutMs?: number;
  /** Forwarded queries under way at once (all listeners; a quarter of it per client); past it: REFUSED. Default 256. */
  maxForwards?: number;
  /** Problems worth an operator's attention (listener errors, a failing lookup, the forward limit). */
  log?: (line: string) => void;
}

const TTL = 600; // Docker's respTTL
const MAX_UPSTREAMS = 3; // glibc's MAXNS, Docker's maxExtDNS
const TCP_IDLE_MS = 10_000; // a client keeping a TCP connection open for nothing is dropped
const MAX_TCP_CONNECTIONS = 128; // per listener
const MAX_TCP_BACKLOG = 1 << 20; // bytes of answers queued for a client that does not read them
const MAX_UDP_PAYLOAD = 65_507; // an IPv4 datagram's largest payload

const QR = 0x8000;
const OPCODE = 0x7800;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const CD = 0x0010;
const FORMERR = 1;
const SERVFAIL = 2;
const NOTIMP = 4;
const REFUSED = 5;

interface Upstream {
  host: string;
  port: number;
}

interface Listener {
  address: string;
  forward: boolean;
  udp: dgram.Socket;
  tcp: net.Server;
  connections: Set<net.Socket>;
  /** Cancels each forward under way for this listener: unlisten must not wait for timeouts. */
  pending: Set<() => void>;
  closed: boolean;
}

type Proto = 'udp' | 'tcp';

export class EmbeddedDns {
  private readonly listeners = new Map<string, Promise<Listener>>();
  private readonly port: number;
  private readonly timeoutMs: number;
  private readonly maxForwards: number;
  private forwards = 0;
  private readonly forwardsBy = new Map<string, number>();
  private lastLimitLog = 0;

  constructor(private readonly opts: EmbeddedDnsOptions) {
    this.port = opts.port ?? 53;
    this.timeoutMs = opts.timeoutMs ?? 4000;
    this.maxForwards = opts.maxForwards ?? 256;
  }

  /**
   * Answers on address:port, UDP and TCP. forward=false (internal networks): unknown names get
   * SERVFAIL, never forwarded (what dockerd answers there). Idempotent for the same address; a
   * second call only changes `forward` (as dockerd's SetForwardingPolicy).
   */
  async listen(address: string, opts: { forward?: boolean } = {}): Promise<void> {
    const forward = opts.forward ?? true;
    const existing = this.listeners.get(address);
    if (existing) {
      (await existing).forward = forward;
      return;
    }
    const opening = this.open(address, forward);
    this.listeners.set(address, opening);
    try {
      await opening;
    } catch (err) {
      if (this.listeners.get(address) === opening) this.listeners.delete(address);
      throw err;
    }
  }

  async unlisten(address: string): Promise<void> {
    const opening = this.listeners.get(address);
    if (!opening) return;
    this.listeners.delete(address);
    const l = await opening.catch(() => undefined);
    if (!l) return;
    l.closed = true;
    for (const cancel of l.pending) cancel();
    for (const socket of l.connections) socket.destroy();
    await Promise.all([new Promise<void>((resolve) => l.udp.close(() => resolve())), new Promise<void>((resolve) => l.tcp.close(() => resolve()))]);
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((address) => this.unlisten(address)));
  }

  private async open(address: string, forward: boolean): Promise<Listener> {
    const l: Listener = {
      address,
      forward,
      udp: dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4'),
      tcp: net.createServer((socket) => this.serveTcp(l, socket)),
      connections: new Set(),
      pending: new Set(),
      closed: false,
    };
    l.tcp.maxConnections = MAX_TCP_CONNECTIONS;
    const where = `DNS on ${address}:${this.port}`;
    try {
      await new Promise<void>((resolve, reject) => {
        l.udp.once('error', reject);
        l.udp.bind(this.port, address, () => resolve());
      });
      await new Promise<void>((resolve, reject) => {
        l.tcp.once('error', reject);
        l.tcp.listen(this.port, address, () => resolve());
      });
    } catch (err) {
      l.udp.close();
      l.tcp.close();
      throw new SystemError(`${where}: ${(err as Error).message}`, { cause: err });
    }
    // Errors after the bind must not crash the daemon (an 'error' without a listener throws).
    l.udp.removeAllListeners('error').on('error', (err) => this.opts.log?.(`${where}: ${err.message}`));
    l.tcp.removeAllListeners('error').on('error', (err) => this.opts.log?.(`${where}: ${err.message}`));
    l.udp.on('message', (msg, peer) => {
      void this.serve(l, msg, peer.address, 'udp')
        .then((reply) => {
          if (reply && !l.closed) l.udp.send(reply, peer.port, peer.address, () => {});
        })
        .catch((err: Error) => this.opts.log?.(`${where}: ${err.message}`));
    });
    return l;
  }

  private serveTcp(l: Listener, socket: net.Socket): void {
    l.connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy()).on('close', () => l.connections.delete(socket));
    const client = socket.remoteAddress ?? '';
    const frames = new FrameReader();
    socket.on('data', (chunk) => {
      for (const msg of frames.push(chunk)) {
        void this.serve(l, msg, client, 'tcp')
          .then((reply) => {
            if (!reply || socket.destroyed) return;
            socket.write(frame(reply));
            if (socket.writableLength > MAX_TCP_BACKLOG) socket.destroy();
          })
          .catch((err: Error) => this.opts.log?.(`DNS on ${l.address}: ${err.message}`));
      }
    });
  }

  /** The reply to one message, or undefined for none. Never rejects: a client's bytes must not crash the daemon. */
  private async serve(l: Listener, msg: Buffer, client: string, proto: Proto): Promise<Buffer | undefined> {
    // Without a header there is no ID to answer to; a response is never answered (no loops between servers).
    if (msg.length < 12 || (msg.readUInt16BE(2) & QR) !== 0) return undefined;
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return errorReply(msg, FORMERR);
    }
    if ((msg.readUInt16BE(2) & OPCODE) !== 0) return errorReply(msg, NOTIMP);
    if (query.questions?.length !== 1) return errorReply(msg, FORMERR);
    try {
      const local = this.answer(query, client, proto);
      if (local) return local;
    } catch (err) {
      this.opts.log?.(`DNS: lookup of ${JSON.stringify(query.questions[0]!.name)} failed: ${(err as Error).message}`);
      return errorReply(msg, SERVFAIL);
    }
    if (!l.forward) return errorReply(msg, SERVFAIL);
    // Bounded in all and per client, so that one container can neither exhaust the daemon's
    // sockets nor starve the others' lookups.
    const mine = this.forwardsBy.get(client) ?? 0;
    if (this.forwards >= this.maxForwards || mine >= Math.max(1, this.maxForwards >> 2)) {
      if (Date.now() - this.lastLimitLog > 2000) {
        this.lastLimitLog = Date.now();
        this.opts.log?.(`DNS: too many forwarded queries under way (${this.forwards}, ${mine} from ${client}), refusing more`);
      }
      return errorReply(msg, REFUSED);
    }
    this.forwards++;
    this.forwardsBy.set(client, mine + 1);
    try {
      for (const upstream of this.upstreamsFor(client)) {
        const reply = await exchange(upstream, msg, proto, this.timeoutMs, l.pending);
        if (l.closed) return undefined;
        if (!reply) continue;
        const rcode = reply.readUInt16BE(2) & 0xf;
        if (rcode === SERVFAIL || rcode === REFUSED) continue; // maybe passing: the next one may know
        return reply;
      }
      return errorReply(msg, SERVFAIL);
    } catch (err) {
      this.opts.log?.(`DNS: forwarding failed: ${(err as Error).message}`);
      return errorReply(msg, SERVFAIL);
    } finally {
      this.forwards--;
      const left = this.forwardsBy.get(client)! - 1;
      if (left) this.forwardsBy.set(client, left);
      else this.forwardsBy.delete(client);
    }
  }

  /** A reply from what the engine knows, or undefined to forward. */
  private answer(query: DecodedPacket, client: string, proto: Proto): Buffer | undefined {
    const q = query.questions![0]!;
    // Names we could answer are printable ASCII; anything else goes upstream as sent.
    if (q.class !== 'IN' || !/^[!-~]+$/.test(q.name)) return undefined;
    const name = q.name.toLowerCase().replace(/\.+$/, '');
    if (!name) return undefined; // the root
    const answers: Answer[] = [];
    switch (q.type) {
      case 'A':
      case 'AAAA': {
        const found = this.opts.lookup(name, client);
        if (!found) return undefined;
        const family = q.type === 'A' ? 4 : 6;
        const ips = shuffle([...new Set(found.filter((ip) => net.isIP(ip) === family))]);
        for (const ip of ips) answers.push({ type: q.type, name: q.name, class: 'IN', ttl: TTL, data: ip });
        break;
      }
      case 'MX':
        // A known name has no MX: NOERROR and no answer, so that mailers fall back to its A record (RFC 5321).
        if (!this.opts.lookup(name, client)) return undefined;
        break;
      case 'PTR': {
        const ip = ptrAddress(name);
        const host = ip && this.opts.reverse?.(ip, client);
        if (!host) return undefined;
        answers.push({ type: 'PTR', name: q.name, class: 'IN', ttl: TTL, data: host.replace(/\.$/, '') });
        break;
      }
      default:
        return undefined;
    }
    return encodeReply(query, answers, proto);
  }

  /** The upstreams to try for a client: valid, not ourselves, at most 3. */
  private upstreamsFor(client: string): Upstream[] {
    const own = new Set([...this.listeners.keys()].map(canonicalIp));
    const out: Upstream[] = [];
    for (const text of this.opts.upstreams(client)) {
      const upstream = parseUpstream(text);
      if (!upstream || (upstream.port === this.port && own.has(canonicalIp(upstream.host)))) continue;
      out.push(upstream);
      if (out.length === MAX_UPSTREAMS) break;
    }
    return out;
  }
}

/** nameserver lines of a resolv.conf (IPv4 and IPv6), in order. */
export { nameservers as nameserversOf } from './etc-files.js';

/** "ip", "ip:port", "[v6]" or "[v6]:port"; undefined for anything else. */
function parseUpstream(text: string): Upstream | undefined {
  if (net.isIP(text)) return { host: text, port: 53 };
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([^:]+):(\d{1,5})$/.exec(text);
  if (!m || !net.isIP(m[1]!)) return undefined;
  const port = m[2] === undefined ? 53 : Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/** One spelling per IPv6 address ("2001:0db8::0001" → "2001:db8::1"), so that comparisons hold. */
function canonicalIp(ip: string): string {
  if (!net.isIPv6(ip)) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip; // a zone index ("fe80::1%eth0"), which URL refuses
  }
}

/** The address of a reverse name: "4.3.2.1.in-addr.arpa" → "1.2.3.4"; IPv6 from its 32 nibbles. */
function ptrAddress(name: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (v4) {
    const ip = [v4[4], v4[3], v4[2], v4[1]].join('.');
    return net.isIPv4(ip) ? ip : undefined;
  }
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(name);
  if (!v6) return undefined;
  const hex = v6[1]!.replaceAll('.', '').split('').reverse().join('');
  return canonicalIp(hex.match(/.{4}/g)!.join(':'));
}

function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** A NOERROR reply with these answers; over UDP cut to the client's size, with TC set, as Docker does. */
function encodeReply(query: DecodedPacket, answers: Answer[], proto: Proto): Buffer {
  const opt = query.additionals?.find((a) => a.type === 'OPT');
  const limit = proto === 'tcp' ? 65_535 : Math.min(Math.max(512, opt && 'udpPayloadSize' in opt ? opt.udpPayloadSize : 0), MAX_UDP_PAYLOAD);
  const reply = { type: 'response' as const, id: query.id, flags: ((query.flags ?? 0) & (RD | CD)) | RA, questions: query.questions, answers };
  while (answers.length > 0 && dnsPacket.encodingLength(reply) > limit) {
    answers.pop();
    reply.flags |= TC;
  }
  return dnsPacket.encode(reply);
}

/** Where the one question of a message ends, or undefined when it cannot be read. */
function questionEnd(msg: Buffer): number | undefined {
  if (msg.readUInt16BE(4) !== 1) return undefined;
  for (let i = 12; i < msg.length; i += msg[i]! + 1) {
    if (msg[i] === 0) return i + 5 <= msg.length ? i + 5 : undefined;
    if (msg[i]! > 63) return undefined; // a compression pointer: not in a sane first question
  }
  return undefined;
}

/**
 * An error reply built from the query's bytes: its question is echoed as it came (resolvers drop
 * replies whose question differs), whether or not dns-packet could decode the rest.
 */
function errorReply(query: Buffer, rcode: number): Buffer {
  const end = questionEnd(query);
  const reply = Buffer.alloc(end ?? 12);
  query.copy(reply, 0, 0, end ?? 12);
  reply.writeUInt16BE(QR | (query.readUInt16BE(2) & (OPCODE | RD | CD)) | RA | rcode, 2);
  reply.writeUInt16BE(end ? 1 : 0, 4);
  reply.fill(0, 6, 12);
  return reply;
}

function frame(msg: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(msg.length);
  return Buffer.concat([length, msg]);
}

/** DNS over TCP: each message behind its 2-byte length, split across chunks as it comes. */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.buffered.length >= 2) {
      const end = 2 + this.buffered.readUInt16BE(0);
      if (this.buffered.length < end) break;
      out.push(this.buffered.subarray(2, end));
      this.buffered = this.buffered.subarray(end);
    }
    return out;
  }
}

/**
 * One query to one upstream, from a socket of its own (a fresh random port) and under a random ID
 * of our own, so that answers cannot be guessed or mixed up; the reply comes back with the
 * client's ID. Undefined on timeout, error, a reply that is not one, or when cancelled.
 */
function exchange(upstream: Upstream, query: Buffer, proto: Proto, timeoutMs: number, pending: Set<() => void>): Promise<Buffer | undefined> {
  const id = randomBytes(2).readUInt16BE(0);
  const out = Buffer.from(query);
  out.writeUInt16BE(id, 0);
  return new Promise((resolve) => {
    let release = (): void => {};
    let done = false;
    const finish = (reply?: Buffer): void => {
      if (done) return; // a socket being closed still reports errors and closes
      done = true;
      clearTimeout(timer);
      pending.delete(cancel);
      release();
      const ok = reply !== undefined && reply.length >= 12 && reply.readUInt16BE(0) === id && (reply.readUInt16BE(2) & QR) !== 0;
      if (ok) reply.writeUInt16BE(query.readUInt16BE(0), 0);
      resolve(ok ? reply : undefined);
    };
    const cancel = (): void => finish();
    const timer = setTimeout(cancel, timeoutMs);
    pending.add(cancel);
    if (proto === 'udp') {
      const socket = dgram.createSocket(net.isIPv6(upstream.host) ? 'udp6' : 'udp4');
      release = () => socket.close();
      socket.on('error', cancel);
      socket.on('message', (reply) => {
        if (reply.length >= 2 && reply.readUInt16BE(0) === id) finish(Buffer.from(reply));
      });
      socket.connect(upstream.port, upstream.host, () => done || socket.send(out, (err) => err && cancel()));
    } else {
      const socket = net.connect({ host: upstream.host, port: upstream.port });
      release = () => socket.destroy();
      const frames = new FrameReader();
      socket.on('error', cancel).on('close', cancel);
      socket.on('connect', () => socket.write(frame(out)));
      socket.on('data', (chunk) => {
        const [reply] = frames.push(chunk);
        if (reply) finish(Buffer.from(reply));
      });
    }
  });
}
