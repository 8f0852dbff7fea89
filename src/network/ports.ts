/**
 * Published ports (-p, -P) through a userland TCP proxy in the daemon: a listener on the host
 * address and port, each connection piped to the container's address on the bridge. This is
 * what dockerd's docker-proxy does for the host's loopback address, which kernel NAT cannot
 * reach without route_localnet. Not yet (issue 5): kernel NAT rules for other hosts, UDP, and
 * listeners that outlive the daemon (a restarted daemon publishes again; between the two, the
 * ports are closed).
 */
import net from 'node:net';

import { ConflictError, InvalidArgumentError } from '../common/errors.js';

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** "80/tcp" → the bindings Docker shows in NetworkSettings.Ports. */
export type PortMap = Record<string, Array<{ HostIp: string; HostPort: string }> | null>;

interface Published {
  servers: net.Server[];
  sockets: Set<net.Socket>;
}

function parsePortKey(key: string): { port: number; proto: string } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(key);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new InvalidArgumentError(`invalid port ${JSON.stringify(key)}`, 'HostConfig.PortBindings');
  return { port: Number(m[1]), proto: m[2] ?? 'tcp' };
}

export class PortPublisher {
  private readonly published = new Map<string, Published>();

  /**
   * Listens for each binding and forwards to containerIp. HostPort "" or "0" picks a free port.
   * Resolves with the actual bindings; on any failure nothing stays open.
   */
  async publish(owner: string, containerIp: string, bindings: Record<string, PortBinding[] | null | undefined>): Promise<PortMap> {
    await this.unpublish(owner);
    const state: Published = { servers: [], sockets: new Set() };
    const result: PortMap = {};
    try {
      for (const [key, list] of Object.entries(bindings)) {
        const { port, proto } = parsePortKey(key);
        const name = `${port}/${proto}`;
        result[name] = [];
        if (proto !== 'tcp') throw new InvalidArgumentError(`publishing ${proto} ports is not supported yet`, 'HostConfig.PortBindings');
        for (const b of list ?? [{}]) {
          const hostIp = b.HostIp || '0.0.0.0';
          const wanted = b.HostPort ? Number(b.HostPort) : 0;
          if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) throw new InvalidArgumentError(`invalid host port ${JSON.stringify(b.HostPort)}`, 'HostConfig.PortBindings');
          const server = net.createServer((client) => {
            const upstream = net.connect(port, containerIp);
            state.sockets.add(client);
            state.sockets.add(upstream);
            const done = (): void => {
              client.destroy();
              upstream.destroy();
              state.sockets.delete(client);
              state.sockets.delete(upstream);
            };
            client.on('error', done).on('close', done);
            upstream.on('error', done).on('close', done);
            client.pipe(upstream);
            upstream.pipe(client);
          });
          await new Promise<void>((resolve, reject) => {
            server.once('error', (err: NodeJS.ErrnoException) =>
              reject(err.code === 'EADDRINUSE' ? new ConflictError(`Bind for ${hostIp}:${wanted} failed: port is already allocated`) : new InvalidArgumentError(`cannot listen on ${hostIp}:${wanted}: ${err.message}`, 'HostConfig.PortBindings')),
            );
            server.listen(wanted, hostIp, () => resolve());
          });
          state.servers.push(server);
          const address = server.address() as net.AddressInfo;
          result[name]!.push({ HostIp: hostIp, HostPort: String(address.port) });
        }
      }
    } catch (err) {
      for (const s of state.servers) s.close();
      throw err;
    }
    this.published.set(owner, state);
    return result;
  }

  async unpublish(owner: string): Promise<void> {
    const state = this.published.get(owner);
    if (!state) return;
    this.published.delete(owner);
    for (const socket of state.sockets) socket.destroy();
    await Promise.all(state.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  async close(): Promise<void> {
    for (const owner of [...this.published.keys()]) await this.unpublish(owner);
  }
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
