/**
 * The default bridge network on the host: a Linux bridge with the gateway address, and one veth
 * pair per container, its inside end moved into the container's network namespace as eth0 with
 * the container's address and a default route through the gateway. iproute2 does the netlink
 * work (`ip -batch`: one process for the host side, one inside the namespace through nsenter);
 * a netlink library for Node would be a native addon to build.
 *
 * Not here yet (issue 5): NAT for outbound traffic, port publishing, user-defined networks, DNS.
 */
import { spawnSync } from 'node:child_process';

import { SystemError } from '../common/errors.js';
import type { Subnet } from './ipam.js';

function run(file: string, args: string[], input?: string): void {
  const r = spawnSync(file, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new SystemError(`${file} ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;
}

/** Makes the bridge (if missing) with the gateway address, up. */
export function ensureBridge(name: string, subnet: Subnet): void {
  if (!linkExists(name)) run('ip', ['link', 'add', 'name', name, 'type', 'bridge']);
  const r = spawnSync('ip', ['-o', '-4', 'addr', 'show', 'dev', name], { encoding: 'utf8' });
  if (!r.stdout.includes(` ${subnet.gateway}/${subnet.prefix} `)) run('ip', ['addr', 'add', `${subnet.gateway}/${subnet.prefix}`, 'dev', name]);
  run('ip', ['link', 'set', name, 'up']);
}

export function removeBridge(name: string): void {
  if (linkExists(name)) run('ip', ['link', 'del', name]);
}

/** Host-side veth name for a container: at most 15 characters. */
export function vethName(containerId: string): string {
  return `vb${containerId.slice(0, 12)}`;
}

/** Wires a container (its PID 1 in a fresh network namespace) to the bridge. */
export function attachToBridge(opts: { bridge: string; pid: number; containerId: string; ip: string; subnet: Subnet }): void {
  const host = vethName(opts.containerId);
  const peer = `vc${opts.containerId.slice(0, 12)}`;
  if (linkExists(host)) run('ip', ['link', 'del', host]); // left by a crashed start
  run('ip', ['-batch', '-'], `link add ${host} type veth peer name ${peer} netns ${opts.pid}\nlink set ${host} master ${opts.bridge}\nlink set ${host} up\n`);
  run('nsenter', ['-t', String(opts.pid), '-n', 'ip', '-batch', '-'], `link set ${peer} name eth0\naddr add ${opts.ip}/${opts.subnet.prefix} dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via ${opts.subnet.gateway}\n`);
}
