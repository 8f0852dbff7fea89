/**
 * Published ports (-p, -P). The traffic goes through the kernel (DNAT rules from `natPorts()`,
 * written by HostNat in nat.ts); the daemon only holds each host port: a listening TCP socket
 * or a bound UDP socket per binding, as docker-proxy does, so that no other program (nor another
 * container) takes a port a container publishes, and a taken one fails the way dockerd's does.
 * What reaches a held TCP socket was not DNATed (the rules are not applied yet); it is reset,
 * or, with `proxy` (and for a caller that does not name the bridge), forwarded in userland.
 */
import dgram from 'node:dgram';
import net from 'node:net';

import { ConflictError, InvalidArgumentError } from '../common/errors.js';
import { ipToInt } from './ipam.js';
import type { NatPort } from './nat.js';

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** "80/tcp" → the bindings Docker shows in NetworkSettings.Ports. */
export type PortMap = Record<string, Array<{ HostIp: string; HostPort: string }> | null>;

/** The container's address and bridge. */
export interface PublishTarget {
  ip: string;
  bridge: string;
  /** The host address of a binding that names none (the network's host_binding_ipv4; default all of them). */
  defaultHostIp?: string;
}

export interface PortPublisherOptions {
  /** Forward TCP connections that reach a held port (not DNATed) to the container. */
  proxy?: boolean;
}

interface Held {
  port: NatPort;
  handle: net.Server | dgram.Socket;
}

interface Published {
  held: Held[];
  /** The IPv6 twins of bindings on all addresses: forwarded in userland (the NAT rules are IPv4's). */
  v6: Array<net.Server | dgram.Socket>;
  sockets: Set<net.Socket | dgram.Socket>;
}

const FIELD = 'HostConfig.PortBindings';

function parsePortKey(key: string): { port: number; proto: string } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(key);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new InvalidArgumentError(`invalid port ${JSON.stringify(key)}`, FIELD);
  return { port: Number(m[1]), proto: m[2] ?? 'tcp' };
}

/** HostPort: "" or "0" (any free port), "8080", or a range "8000-8010" (the first free one). */
function hostPorts(spec: string | undefined): number[] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(spec ?? '');
  const first = Number(m?.[1] ?? 0);
  const last = m?.[2] === undefined ? first : Number(m[2]);
  if ((spec && !m) || first > 65535 || last > 65535 || last < first || (first === 0 && last !== 0)) throw new InvalidArgumentError(`invalid port specification: ${JSON.stringify(spec)}`, FIELD);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/**
 * HostConfig.PortBindings checked at create, as dockerd refuses a bad one there (not at start):
 * each key a port with an optional protocol, each HostPort a port or a range.
 */
export function checkPortBindings(bindings: unknown): void {
  if (bindings === undefined || bindings === null) return;
  if (typeof bindings !== 'object' || Array.isArray(bindings)) throw new InvalidArgumentError('must be an object', FIELD);
  for (const [key, list] of Object.entries(bindings)) {
    parsePortKey(key);
    if (list === null) continue;
    if (!Array.isArray(list)) throw new InvalidArgumentError('must be a list of bindings', `${FIELD}[${JSON.stringify(key)}]`);
    for (const b of list as Array<{ HostPort?: unknown } | null>) {
      if (b?.HostPort !== undefined && b.HostPort !== null && typeof b.HostPort !== 'string') throw new InvalidArgumentError('must be a string', `${FIELD}[${JSON.stringify(key)}].HostPort`);
      hostPorts((b?.HostPort as string | undefined) ?? '');
    }
  }
}

function inUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
}

/** Binds one host port: a listening TCP socket or a bound UDP socket ("::": IPv6 only). */
function hold(proto: 'tcp' | 'udp', hostIp: string, port: number): Promise<net.Server | dgram.Socket> {
  const v6 = hostIp === '::';
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const server = net.createServer();
      server.once('error', reject);
      server.listen({ port, host: hostIp, exclusive: true, ipv6Only: v6 }, () => {
        server.off('error', reject);
        resolve(server);
      });
    } else {
      const socket = dgram.createSocket(v6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
      socket.once('error', reject);
      socket.bind({ port, address: hostIp, exclusive: true }, () => {
        socket.off('error', reject);
        socket.on('error', () => undefined); // datagrams not DNATed are dropped; nothing to report
        resolve(socket);
      });
    }
  });
}

function release(handle: net.Server | dgram.Socket): Promise<void> {
  return new Promise((resolve) => (handle instanceof net.Server ? handle.close(() => resolve()) : handle.close(() => resolve())));
}

/** The first free port of the HostPort spec on hostIp (0: one the kernel picks). */
async function holdOne(proto: 'tcp' | 'udp', hostIp: string, spec: string | undefined): Promise<{ handle: net.Server | dgram.Socket; port: number }> {
  for (const wanted of hostPorts(spec)) {
    try {
      const handle = await hold(proto, hostIp, wanted);
      const address = handle instanceof net.Server ? (handle.address() as net.AddressInfo) : handle.address();
      return { handle, port: address.port };
    } catch (err) {
      if (inUse(err)) continue;
      throw new InvalidArgumentError(`cannot bind ${proto} ${hostIp}:${wanted}: ${(err as Error).message}`, FIELD);
    }
  }
  throw new ConflictError(`Bind for ${hostIp}:${spec} failed: port is already allocated`);
}

export class PortPublisher {
  private readonly published = new Map<string, Published>();

  constructor(private readonly opts: PortPublisherOptions = {}) {}

  /**
   * Holds each host port for the container at `target` (a bare address: bridge not known, and
   * TCP forwarded in userland, as before kernel NAT). HostPort "" or "0" picks a free port.
   * Resolves with the PortMap Docker shows; on any failure nothing stays held.
   */
  async publish(owner: string, target: string | PublishTarget, bindings: Record<string, PortBinding[] | null | undefined>): Promise<PortMap> {
    await this.unpublish(owner);
    const { ip: containerIp, bridge, defaultHostIp = '0.0.0.0' } = typeof target === 'string' ? { ip: target, bridge: '' } : target;
    const proxy = this.opts.proxy === true || typeof target === 'string';
    const state: Published = { held: [], v6: [], sockets: new Set() };
    const result: PortMap = {};
    try {
      for (const [key, list] of Object.entries(bindings)) {
        const { port: containerPort, proto } = parsePortKey(key);
        if (proto !== 'tcp' && proto !== 'udp') throw new InvalidArgumentError(`publishing ${proto} ports is not supported`, FIELD);
        const shown: Array<{ HostIp: string; HostPort: string }> = [];
        result[`${containerPort}/${proto}`] = shown;
        for (const b of list ?? [{}]) {
          const hostIp = b.HostIp || defaultHostIp;
          try {
            ipToInt(hostIp);
          } catch {
            throw new InvalidArgumentError(`host address ${JSON.stringify(hostIp)}: only IPv4 addresses can be published`, FIELD);
          }
          const { handle, port: hostPort } = await holdOne(proto, hostIp, b.HostPort);
          state.held.push({ port: { proto, hostIp, hostPort, containerIp, containerPort, bridge }, handle });
          if (handle instanceof net.Server) handle.on('connection', (client) => (proxy ? forward(client, containerIp, containerPort, state.sockets) : client.resetAndDestroy()));
          shown.push({ HostIp: hostIp, HostPort: String(hostPort) });
          // A binding on all addresses takes IPv6's as well, as dockerd's docker-proxy does
          // ("[::]:8080"); a host without IPv6, or with that port taken there, has only IPv4's.
          if (!b.HostIp && hostIp === '0.0.0.0') {
            const twin = await hold(proto, '::', hostPort).catch(() => undefined);
            if (twin) {
              state.v6.push(twin);
              if (twin instanceof net.Server) twin.on('connection', (client) => forward(client, containerIp, containerPort, state.sockets));
              else relayDatagrams(twin, containerIp, containerPort, state.sockets);
              shown.push({ HostIp: '::', HostPort: String(hostPort) });
            }
          }
        }
      }
    } catch (err) {
      await Promise.all([...state.held.map((h) => h.handle), ...state.v6].map(release));
      throw err;
    }
    this.published.set(owner, state);
    return result;
  }

  async unpublish(owner: string): Promise<void> {
    const state = this.published.get(owner);
    if (!state) return;
    this.published.delete(owner);
    for (const socket of state.sockets) (socket instanceof net.Socket ? socket.destroy() : socket.close());
    await Promise.all([...state.held.map((h) => h.handle), ...state.v6].map(release));
  }

  /** Every current binding, as HostNat's input. */
  natPorts(): NatPort[] {
    return [...this.published.values()].flatMap((p) => p.held.map((h) => ({ ...h.port })));
  }

  async close(): Promise<void> {
    for (const owner of [...this.published.keys()]) await this.unpublish(owner);
  }
}

/** How long a UDP peer's relay socket lives without traffic (docker-proxy's UDP timeout). */
const UDP_IDLE_MS = 90_000;

/**
 * UDP in userland: each peer gets a socket of its own towards the container, whose answers go
 * back to that peer, until it has been quiet for UDP_IDLE_MS.
 */
function relayDatagrams(socket: dgram.Socket, ip: string, port: number, sockets: Set<net.Socket | dgram.Socket>): void {
  const peers = new Map<string, { upstream: dgram.Socket; timer: NodeJS.Timeout }>();
  socket.on('message', (message, from) => {
    const key = `[${from.address}]:${from.port}`;
    let peer = peers.get(key);
    if (!peer) {
      const upstream = dgram.createSocket('udp4');
      const close = (): void => {
        clearTimeout(entry.timer);
        peers.delete(key);
        sockets.delete(upstream);
        upstream.close();
      };
      const entry = { upstream, timer: setTimeout(close, UDP_IDLE_MS).unref() };
      upstream.on('error', close);
      upstream.on('message', (answer) => {
        entry.timer.refresh();
        socket.send(answer, from.port, from.address, () => undefined);
      });
      peers.set(key, entry);
      sockets.add(upstream);
      peer = entry;
    }
    peer.timer.refresh();
    peer.upstream.send(message, port, ip, () => undefined);
  });
  socket.on('close', () => {
    for (const peer of peers.values()) clearTimeout(peer.timer);
  });
}

/** The userland path: one connection piped to the container. */
function forward(client: net.Socket, ip: string, port: number, sockets: Set<net.Socket | dgram.Socket>): void {
  const upstream = net.connect(port, ip);
  sockets.add(client);
  sockets.add(upstream);
  const done = (): void => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', done).on('close', done);
  upstream.on('error', done).on('close', done);
  client.pipe(upstream);
  upstream.pipe(client);
}

/**
 * The bindings that give `shown` (what publish resolved) again, for a daemon that restarted: a
 * binding on all addresses shows twice, "0.0.0.0" and its IPv6 twin "::", and is asked for as one.
 */
export function bindingsOf(shown: PortMap): Record<string, PortBinding[]> {
  const out: Record<string, PortBinding[]> = {};
  for (const [key, list] of Object.entries(shown)) {
    const twins = new Set((list ?? []).filter((b) => b.HostIp === '::').map((b) => b.HostPort));
    out[key] = (list ?? []).filter((b) => b.HostIp !== '::').map((b) => (b.HostIp === '0.0.0.0' && twins.has(b.HostPort) ? { HostIp: '', HostPort: b.HostPort } : b));
  }
  return out;
}

/** The bindings to publish: PortBindings, plus with PublishAllPorts every exposed port not bound, on a free port. */
export function bindingsFor(portBindings: Record<string, PortBinding[] | null> | null | undefined, exposed: Record<string, object> | null | undefined, publishAll: boolean): Record<string, PortBinding[]> {
  const out: Record<string, PortBinding[]> = {};
  for (const [key, list] of Object.entries(portBindings ?? {})) out[key.includes('/') ? key : `${key}/tcp`] = list ?? [{}];
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const name = key.includes('/') ? key : `${key}/tcp`;
      out[name] ??= [{ HostIp: '', HostPort: '' }];
    }
  }
  return out;
}
