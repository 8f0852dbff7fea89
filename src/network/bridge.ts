/**
 * Bridge networks on the host: a Linux bridge with the gateway address, and one veth pair per
 * container and network, its inside end moved into the container's network namespace (eth0,
 * eth1, ...) with the container's address and, on its first routed network, a default route
 * through the gateway. iproute2 does the netlink work (`ip -batch`: one process for the host
 * side, one inside the namespace through nsenter); a netlink library for Node would be a native
 * addon to build.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';

import { SystemError } from '../common/errors.js';
import { ipToInt, type Subnet } from './ipam.js';

/** Runs a command; undefined if it succeeded, else what it said. */
function tryRun(file: string, args: string[], input?: string): string | undefined {
  const r = spawnSync(file, args, { input, encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `exit status ${r.status}`).trim();
}

function run(file: string, args: string[], input?: string): void {
  const err = tryRun(file, args, input);
  if (err !== undefined) throw new SystemError(`${file} ${args.join(' ')}: ${err}`);
}

/**
 * Deletes a link if it exists. One `ip` process and no check before: a container's veth may be
 * going away on its own (the kernel removes it with the namespace, asynchronously), and on a
 * busy host each process costs 5-25 ms of the container's start or exit.
 */
function deleteLink(name: string): void {
  const err = tryRun('ip', ['link', 'del', 'dev', name]);
  if (err !== undefined && !/Cannot find device|No such device/.test(err)) throw new SystemError(`ip link del dev ${name}: ${err}`);
}

export function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;
}

/** Makes the bridge (if missing) with the gateway address, up. */
export function ensureBridge(name: string, subnet: Subnet, mtu?: number): void {
  if (!linkExists(name)) run('ip', ['link', 'add', 'name', name, ...(mtu ? ['mtu', String(mtu)] : []), 'type', 'bridge']);
  const r = spawnSync('ip', ['-o', '-4', 'addr', 'show', 'dev', name], { encoding: 'utf8' });
  if (!r.stdout.includes(` ${subnet.gateway}/${subnet.prefix} `)) run('ip', ['addr', 'add', `${subnet.gateway}/${subnet.prefix}`, 'dev', name]);
  run('ip', ['link', 'set', name, 'up']);
  bridgeIndexes.delete(name);
  bridgeIndex(name);
}

export function removeBridge(name: string): void {
  bridgeIndexes.delete(name);
  deleteLink(name);
}

/** Host-side veth name of a container on a network: at most 15 characters, stable. */
export function vethName(containerId: string, networkId: string): string {
  return `vb${crypto.createHash('sha256').update(`${containerId}/${networkId}`).digest('hex').slice(0, 12)}`;
}

/** Docker's MAC for an address: 02:42 and the four bytes of the IPv4 address. */
export function macFor(ip: string): string {
  const n = ipToInt(ip);
  return ['02', '42', ...[24, 16, 8, 0].map((shift) => (Math.floor(n / 2 ** shift) % 256).toString(16).padStart(2, '0'))].join(':');
}

export interface VethRequest {
  bridge: string;
  /** The container's PID 1: its network namespace gets the inside end. */
  pid: number;
  hostVeth: string;
  /** The name inside: eth0, eth1, ... */
  ifname: string;
  ip: string;
  /** The inside end's MAC (default: Docker's, from the address). */
  mac?: string;
  subnet: Subnet;
  mtu?: number;
  /** A default route through this network's gateway (its first routed network). */
  defaultRoute: boolean;
}

/**
 * Wires a container to a bridge in one process, inside the container's namespace: the pair is
 * made there and its host end sent to the daemon's namespace, already on the bridge (named by
 * index, "if<N>": the bridge has no name in there) and up. Two processes (one per namespace)
 * cost 10-25 ms more per start on a busy host. Hairpin mode, needed only with published ports,
 * is set by enableHairpin().
 */
export function attachToBridge(req: VethRequest): void {
  const mtu = req.mtu ? ` mtu ${req.mtu}` : '';
  const route = req.defaultRoute ? `route add default via ${req.subnet.gateway}\n` : '';
  const batch = (index: number): string =>
    `link add ${req.hostVeth}${mtu} netns ${process.pid} master if${index} up type veth peer name ${req.ifname}${mtu} address ${req.mac ?? macFor(req.ip)}\n` +
    `addr add ${req.ip}/${req.subnet.prefix} dev ${req.ifname}\nlink set ${req.ifname} up\n${route}`; // lo: up already (the plan's loopback_up)
  const args = ['-t', String(req.pid), '-n', 'ip', '-batch', '-'];
  const err = tryRun('nsenter', args, batch(bridgeIndex(req.bridge)));
  if (err === undefined) return;
  // Checked only on failure, to spare every start a process: a veth of the same name left by a
  // crashed start (replaced), or a bridge made again since its index was cached.
  if (/File exists/.test(err) && linkExists(req.hostVeth)) deleteLink(req.hostVeth);
  else if (/No such device|Cannot find device|not found/i.test(err)) bridgeIndexes.delete(req.bridge);
  else throw new SystemError(`ip -batch in the namespace of ${req.pid} (${req.hostVeth}): ${err}`);
  run('nsenter', args, batch(bridgeIndex(req.bridge)));
}

/**
 * Interface indexes of bridges, cached (read by ensureBridge): /sys/class/net shows the
 * namespace that mounted sysfs, not necessarily the daemon's, and `ip` is a process.
 */
const bridgeIndexes = new Map<string, number>();

function bridgeIndex(name: string): number {
  let index = bridgeIndexes.get(name);
  if (index === undefined) {
    const r = spawnSync('ip', ['-o', 'link', 'show', 'dev', name], { encoding: 'utf8' });
    index = Number(/^(\d+):/.exec(r.stdout)?.[1]);
    if (r.status !== 0 || !index) throw new SystemError(`the bridge ${name} does not exist`);
    bridgeIndexes.set(name, index);
  }
  return index;
}

/** Lets traffic leave a bridge port the way it came (a container reaching its own published port through a host address). */
export function enableHairpin(hostVeth: string): void {
  run('ip', ['link', 'set', 'dev', hostVeth, 'type', 'bridge_slave', 'hairpin', 'on']);
}

/** Makes a bridge port isolated: it reaches the bridge itself but no other isolated port (a network's enable_icc=false). */
export function isolatePort(hostVeth: string): void {
  run('ip', ['link', 'set', 'dev', hostVeth, 'type', 'bridge_slave', 'isolated', 'on']);
}

/** Sets sysctls in the network namespace of `pid` (an endpoint's interface sysctls); keys and values already checked. */
export function setSysctls(pid: number, sysctls: Array<{ key: string; value: string }>): void {
  run('nsenter', ['-t', String(pid), '-n', '--', 'sysctl', '-q', '-w', ...sysctls.map(({ key, value }) => `${key}=${value}`)]);
}

/** Unplugs a container from a bridge: deleting the host end deletes the pair. */
export function detachVeth(hostVeth: string): void {
  deleteLink(hostVeth);
}

/** As detachVeth, off the caller's path: resolves once the veth is gone (or was gone already). */
export function detachVethAsync(hostVeth: string): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['link', 'del', 'dev', hostVeth], { stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('exit', () => resolve());
  });
}

/** Names of the interfaces inside the namespace of `pid` (to pick the next ethN). */
export function interfacesOf(pid: number): string[] {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', 'ip', '-o', 'link', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').flatMap((l) => {
    const m = /^\d+:\s+([^:@]+)/.exec(l);
    return m ? [m[1]!] : [];
  });
}

/** Whether the namespace of `pid` has a default route. */
export function hasDefaultRoute(pid: number): boolean {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', 'ip', '-4', 'route', 'show', 'default'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

/** IPv4 routes of the host (`ip -4 route`), to choose subnets that do not collide with them. */
export function hostRoutes(): string[] {
  const r = spawnSync('ip', ['-4', '-o', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  return r.stdout.split('\n').flatMap((l) => {
    const m = /^(?:\w+\s+)?(\d+\.\d+\.\d+\.\d+(?:\/\d+)?)\s/.exec(l);
    return m && !m[1]!.startsWith('127.') ? [m[1]!.includes('/') ? m[1]! : `${m[1]}/32`] : [];
  });
}
