/**
 * Docker's resolver address inside a container, 127.0.0.11, served by the daemon's one DNS
 * server (dns.ts, on each user-defined network's gateway) rather than by a server in each
 * container's namespace as dockerd runs one. Applications and configurations name that
 * address (nginx's `resolver 127.0.0.11`), so containers on user-defined networks see it in
 * their resolv.conf, and a small nftables table in their network namespace sends what goes
 * there to the gateway:
 *
 *   output       127.0.0.11:53 (udp, tcp)  → DNAT to <gateway>:53
 *   postrouting  from 127.0.0.0/8, not out lo → masquerade: the container's own address on
 *                that network, by which the server knows who asks (and answers with its names)
 *   input        to 127.0.0.0/8, not in on lo, not an answer → drop
 *
 * A packet from 127.0.0.1 may leave an interface only with route_localnet=1 in that namespace,
 * which would also let a neighbour on the bridge reach the container's loopback services; the
 * input rule keeps them out (only answers to the container's own DNAT'd queries pass).
 *
 * At a start the runtime sets route_localnet with the spec's other sysctls, and one
 * `nsenter -n nft -f -` process, started alongside the veth's `ip -batch`, adds the table: the
 * start waits for the longer of the two, not both (~5 ms more per start on a user network here). The table
 * is defined at a start, and replaced whole (add, delete, define: one nft transaction) when a
 * running container's networks change, so applying it again with another gateway is safe.
 */
import { spawn, spawnSync } from 'node:child_process';

import { SystemError } from '../common/errors.js';
import { ipToInt } from './ipam.js';

/** The resolver address containers on user-defined networks are given, as Docker gives it. */
export const EMBEDDED_DNS_ADDRESS = '127.0.0.11';

const TABLE = 'berth_dns';

/**
 * The nft script that defines the table for a resolver reached at `gateway`; with `replace`, one
 * that may be there already is replaced (add, delete, define in one transaction). Only then:
 * a delete costs ~12 ms here, and a new namespace has nothing to replace.
 */
export function dnsRedirectRules(gateway: string, replace = false): string {
  ipToInt(gateway); // an IPv4 address, nothing else, goes into the script
  return [
    ...(replace ? [`add table ip ${TABLE}`, `delete table ip ${TABLE}`] : []),
    `table ip ${TABLE} {`,
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr ${EMBEDDED_DNS_ADDRESS} udp dport 53 dnat to ${gateway}:53`,
    `    ip daddr ${EMBEDDED_DNS_ADDRESS} tcp dport 53 dnat to ${gateway}:53`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    '    ip saddr 127.0.0.0/8 oifname != "lo" masquerade',
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    '    iifname != "lo" ip daddr 127.0.0.0/8 ct state != { established, related } drop',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The sysctl the redirect needs in the container's namespace; the runtime sets it at a start (see redirectDns). */
export const ROUTE_LOCALNET_SYSCTL = 'net.ipv4.conf.all.route_localnet';

/** `nft -f -` in the namespace of `pid`; with `setSysctl`, route_localnet first (through sh: a process more). */
function nsenterArgs(pid: number, setSysctl: boolean): string[] {
  const nft = ['nft', '-f', '-'];
  return ['-t', String(pid), '-n', '--', ...(setSysctl ? ['sh', '-c', `echo 1 > /proc/sys/${ROUTE_LOCALNET_SYSCTL.replace(/\./g, '/')} && exec nft -f -`] : nft)];
}

/** Whether this host can redirect (nft installed): without it containers are given the gateway itself. */
export function dnsRedirectAvailable(): boolean {
  return spawnSync('nft', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Starts redirecting 127.0.0.11 in the network namespace of `pid`; resolves once it is in place.
 * `atStart`: a container's start, whose runtime has set route_localnet and whose namespace is
 * new (nothing to replace); else (a running container's networks changed) both are done here.
 */
export function redirectDns(pid: number, gateway: string, atStart = false): Promise<void> {
  const rules = dnsRedirectRules(gateway, !atStart);
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', nsenterArgs(pid, !atStart), { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => (stderr += s));
    child.on('error', (err) => reject(new SystemError(`redirecting ${EMBEDDED_DNS_ADDRESS} in the namespace of ${pid}: ${err.message}`, { cause: err })));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`redirecting ${EMBEDDED_DNS_ADDRESS} in the namespace of ${pid}: ${stderr.trim() || `exit status ${code}`}`))));
    child.stdin.on('error', () => undefined); // a failed start reports through 'close'
    child.stdin.end(rules);
  });
}
