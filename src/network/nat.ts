/**
 * Kernel NAT and filtering for Berth's bridge networks and published ports, in Docker's iptables
 * model with chains of our own (BERTH-*):
 *
 *   nat     PREROUTING  -m addrtype --dst-type LOCAL → BERTH-PREROUTING  DNAT per published port
 *           OUTPUT      -m addrtype --dst-type LOCAL → BERTH-OUTPUT      the same, for the host's own
 *                                                                        connections (127.0.0.1 too)
 *           POSTROUTING                              → BERTH-POSTROUTING MASQUERADE: outbound, from the
 *                                                                        host's loopback, hairpin
 *   filter  FORWARD (first rule)                     → BERTH-FORWARD     replies, published ports,
 *                                                                        within a network, outbound;
 *                                                                        drops between networks and
 *                                                                        in or out of internal ones
 *           INPUT (first rule)                       → BERTH-INPUT       internal networks reach only
 *                                                                        DNS on their gateway
 *
 * Why iptables and not an nft table of our own: a packet that any base chain on a hook drops is
 * gone, whatever another table accepted. dockerd (which runs on the same hosts, and in our tests)
 * sets the FORWARD policy to DROP; only an ACCEPT in that same filter FORWARD chain, reached first,
 * lets our networks' traffic through. iptables-nft writes these rules to the kernel's nf_tables
 * like dockerd's, and iptables-legacy hosts work the same way.
 *
 * Every apply() is one `iptables-restore --noflush` transaction: each BERTH chain is declared
 * (`:BERTH-X - [0:0]`, which flushes it; checked on iptables 1.8.9 nf_tables) and written anew,
 * and the jumps from the built-in chains are added when missing and deduplicated in the same
 * transaction, from what `iptables-save` shows. A failed restore changes nothing. So apply() is
 * idempotent and, run at daemon start, repairs whatever a killed daemon left.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { InvalidArgumentError, SystemError } from '../common/errors.js';
import { intToIp, ipToInt } from './ipam.js';

export interface NatNetwork {
  /** The Linux bridge, e.g. "berth0". */
  bridge: string;
  /** The network's CIDR, e.g. "10.1.2.0/24" (a host address in it is taken as its network). */
  subnet: string;
  /** The bridge's own address, e.g. "10.1.2.1". */
  gateway: string;
  /** No traffic in or out but among its members, and DNS to the gateway. */
  internal: boolean;
  /** false: no traffic between its members (enable_icc=false; with br_netfilter, else the bridge ports' isolation does it). */
  icc?: boolean;
  /** false: its traffic leaves the host with its own addresses (enable_ip_masquerade=false). */
  masquerade?: boolean;
}

export interface NatPort {
  proto: 'tcp' | 'udp';
  /** "0.0.0.0" = all host addresses, or one address e.g. "127.0.0.1". */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  /** The container's bridge; "" when not known (then the rules do not name it). */
  bridge: string;
}

export interface NatState {
  networks: NatNetwork[];
  ports: NatPort[];
}

/** Berth's chains, per table, with the built-in chain that jumps to each and the jump's match. */
const JUMPS = {
  nat: [
    { chain: 'BERTH-PREROUTING', from: 'PREROUTING', match: '-m addrtype --dst-type LOCAL' },
    { chain: 'BERTH-OUTPUT', from: 'OUTPUT', match: '-m addrtype --dst-type LOCAL' },
    { chain: 'BERTH-POSTROUTING', from: 'POSTROUTING', match: '' },
  ],
  filter: [
    { chain: 'BERTH-FORWARD', from: 'FORWARD', match: '' },
    { chain: 'BERTH-INPUT', from: 'INPUT', match: '' },
  ],
} as const;

type Table = keyof typeof JUMPS;
const TABLES: Table[] = ['filter', 'nat'];
const PREFIX = 'BERTH-';

/**
 * The chain prefix of the daemon with this data root: "BERTH-" for the default one, a tag of
 * the data root for others ("BERTH-1a2b3c-"), so that two daemons on one host (a test's and
 * the system's) never rewrite or remove each other's chains.
 */
export function natChainPrefix(dataRoot: string): string {
  return path.resolve(dataRoot) === '/var/lib/berth' ? PREFIX : `${PREFIX}${crypto.createHash('sha256').update(path.resolve(dataRoot)).digest('hex').slice(0, 6)}-`;
}

/**
 * Whether a chain is one of this daemon's: its prefix and then only capitals ("BERTH-FORWARD"
 * is the default daemon's, "BERTH-1a2b3c-FORWARD" is not; a chain an older version left,
 * "BERTH-OLD", is still recognised as stale).
 */
function isOwnChain(name: string, prefix: string): boolean {
  return name.startsWith(prefix) && /^[A-Z]+$/.test(name.slice(prefix.length));
}

function rename(text: string, prefix: string): string {
  return prefix === PREFIX ? text : text.replace(/\bBERTH-/g, prefix);
}

/** The jump rule as iptables-save prints it, without "-A <chain> ". */
function jumpSpec(j: { chain: string; match: string }): string {
  return `${j.match ? `${j.match} ` : ''}-j ${j.chain}`;
}

function checkBridge(name: string, field: string): string {
  // The name goes into iptables-restore input and a /proc/sys path: nothing but an interface name.
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === '.' || name === '..') throw new InvalidArgumentError(`invalid bridge name ${JSON.stringify(name)}`, field);
  return name;
}

function checkIp(ip: string, field: string): string {
  try {
    return intToIp(ipToInt(ip));
  } catch {
    throw new InvalidArgumentError(`invalid IPv4 address ${JSON.stringify(ip)}`, field);
  }
}

function checkPort(port: number, field: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`invalid port ${JSON.stringify(port)}`, field);
  return port;
}

/** "10.1.2.7/24" → "10.1.2.0/24", as iptables-save prints it. */
function networkCidr(cidr: string, field: string): string {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const prefix = Number(m?.[2]);
  if (!m || prefix > 32) throw new InvalidArgumentError(`invalid CIDR ${JSON.stringify(cidr)} (expected e.g. 10.1.2.0/24)`, field);
  const size = 2 ** (32 - prefix);
  return `${intToIp(Math.floor(ipToInt(checkIp(m[1]!, field)) / size) * size)}/${prefix}`;
}

interface TableRules {
  chains: string[];
  rules: string[];
}

/** The rules of each table, in the canonical form iptables-save prints them. */
function tableRules(state: NatState): Record<Table, TableRules> {
  const networks = state.networks.map((n, i) => ({
    bridge: checkBridge(n.bridge, `networks[${i}].bridge`),
    subnet: networkCidr(n.subnet, `networks[${i}].subnet`),
    gateway: checkIp(n.gateway, `networks[${i}].gateway`),
    internal: n.internal === true,
    icc: n.icc !== false,
    masquerade: n.masquerade !== false,
  }));
  const seen = new Set<string>();
  for (const n of networks) {
    if (seen.has(n.bridge)) throw new InvalidArgumentError(`two networks on bridge ${n.bridge}`, 'networks');
    seen.add(n.bridge);
  }
  const internal = new Set(networks.filter((n) => n.internal).map((n) => n.bridge));
  const ports = state.ports
    .map((p, i) => {
      const field = `ports[${i}]`;
      if (p.proto !== 'tcp' && p.proto !== 'udp') throw new InvalidArgumentError(`invalid protocol ${JSON.stringify(p.proto)}`, `${field}.proto`);
      return {
        proto: p.proto,
        hostIp: checkIp(p.hostIp, `${field}.hostIp`),
        hostPort: checkPort(p.hostPort, `${field}.hostPort`),
        containerIp: checkIp(p.containerIp, `${field}.containerIp`),
        containerPort: checkPort(p.containerPort, `${field}.containerPort`),
        bridge: p.bridge === '' ? '' : checkBridge(p.bridge, `${field}.bridge`),
      };
    })
    // Docker publishes no port of a container on an internal network: nothing may reach it.
    .filter((p) => !internal.has(p.bridge));

  const nat: string[] = [];
  for (const p of ports) {
    // No `! -i <bridge>` (Docker's rule with its userland proxy): without a proxy, containers
    // reach published ports through the host's addresses only by this DNAT (hairpin).
    const dnat = `${p.hostIp === '0.0.0.0' ? '' : `-d ${p.hostIp}/32 `}-p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.containerIp}:${p.containerPort}`;
    nat.push(`-A BERTH-PREROUTING ${dnat}`, `-A BERTH-OUTPUT ${dnat}`);
  }
  for (const n of networks.filter((x) => !x.internal)) {
    // Outbound: the host's address on the way out.
    if (n.masquerade) nat.push(`-A BERTH-POSTROUTING -s ${n.subnet} ! -o ${n.bridge} -j MASQUERADE`);
    // From the host's loopback (DNAT of 127.0.0.1:port): the container could not answer 127.0.0.1.
    nat.push(`-A BERTH-POSTROUTING -o ${n.bridge} -m addrtype --src-type LOCAL -j MASQUERADE`);
  }
  // Hairpin: a container reaching its own published port through a host address must see the
  // answer come from the host, not from itself.
  for (const p of ports) nat.push(`-A BERTH-POSTROUTING -s ${p.containerIp}/32 -d ${p.containerIp}/32 -p ${p.proto} -m ${p.proto} --dport ${p.containerPort} -j MASQUERADE`);

  const fwd: string[] = [];
  const input: string[] = [];
  for (const n of networks.filter((x) => x.internal)) {
    fwd.push(`-A BERTH-FORWARD -i ${n.bridge} ! -o ${n.bridge} -j DROP`, `-A BERTH-FORWARD ! -i ${n.bridge} -o ${n.bridge} -j DROP`);
  }
  for (const n of networks.filter((x) => !x.internal)) fwd.push(`-A BERTH-FORWARD -o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  // Only what was DNATed: a published port is not a way around the isolation between networks.
  for (const p of ports) fwd.push(`-A BERTH-FORWARD -d ${p.containerIp}/32 ${p.bridge ? `-o ${p.bridge} ` : ''}-p ${p.proto} -m ${p.proto} --dport ${p.containerPort} -m conntrack --ctstate DNAT -j ACCEPT`);
  for (const n of networks) fwd.push(`-A BERTH-FORWARD -i ${n.bridge} -o ${n.bridge} -j ${n.icc ? 'ACCEPT' : 'DROP'}`);
  // Nothing else enters a network: not from another Berth network (Docker's isolation), not
  // routed from elsewhere to an unpublished port.
  for (const n of networks.filter((x) => !x.internal)) fwd.push(`-A BERTH-FORWARD ! -i ${n.bridge} -o ${n.bridge} -j DROP`);
  for (const n of networks.filter((x) => !x.internal)) fwd.push(`-A BERTH-FORWARD -i ${n.bridge} ! -o ${n.bridge} -j ACCEPT`);

  for (const n of networks) {
    // route_localnet (needed for DNAT from 127.0.0.1) would also let a container send to the
    // host's 127.0.0.0/8 through the bridge; only answers to the host's own connections may.
    input.push(`-A BERTH-INPUT -d 127.0.0.0/8 -i ${n.bridge} -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP`);
  }
  for (const n of networks.filter((x) => x.internal)) {
    input.push(
      `-A BERTH-INPUT -i ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      // The embedded DNS server listens on each network's gateway.
      `-A BERTH-INPUT -d ${n.gateway}/32 -i ${n.bridge} -p udp -m udp --dport 53 -j ACCEPT`,
      `-A BERTH-INPUT -d ${n.gateway}/32 -i ${n.bridge} -p tcp -m tcp --dport 53 -j ACCEPT`,
      `-A BERTH-INPUT -i ${n.bridge} -j DROP`,
    );
  }
  return {
    filter: { chains: JUMPS.filter.map((j) => j.chain), rules: [...fwd, ...input] },
    nat: { chains: JUMPS.nat.map((j) => j.chain), rules: nat },
  };
}

function render(table: string, chains: string[], lines: string[]): string {
  return [`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...lines, 'COMMIT', ''].join('\n');
}

/** Pure: the iptables-restore input (per table) for the state. */
export function natRules(state: NatState, prefix = PREFIX): { filter: string; nat: string } {
  const t = tableRules(state);
  return { filter: rename(render('filter', t.filter.chains, t.filter.rules), prefix), nat: rename(render('nat', t.nat.chains, t.nat.rules), prefix) };
}

/** What iptables-save shows of Berth: its chains, and the rules of other chains that jump to them. */
interface Found {
  chains: Set<string>;
  /** "<chain> <spec>" of each rule of a non-Berth chain jumping to a Berth chain, in order. */
  jumps: string[];
}

/** Parses iptables-save output: per table, Berth's chains and the jumps to them. */
export function berthRulesIn(save: string, prefix = PREFIX): Record<string, Found> {
  const own = { has: (name: string): boolean => isOwnChain(name, prefix) };
  const out: Record<string, Found> = {};
  let current: Found | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Set(), jumps: [] };
      out[line.slice(1).trim()] = current;
    } else if (!current) {
      continue;
    } else if (line.startsWith(':') && own.has(line.slice(1).split(' ')[0]!)) {
      current.chains.add(line.slice(1).split(' ')[0]!);
    } else if (line.startsWith('-A ')) {
      const [, chain, ...rest] = line.trim().split(' ');
      if (!own.has(chain!) && rest.some((w, i) => (w === '-j' || w === '-g') && own.has(rest[i + 1] ?? ''))) current.jumps.push(`${chain} ${rest.join(' ')}`);
    }
  }
  return out;
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException;
}

/** How HostNat reaches the system; tests pass one that records. */
export interface CommandRunner {
  run(file: string, args: string[], input?: string): CommandResult;
  /** The value of /proc/sys/<path> (e.g. "net/ipv4/ip_forward"), undefined if there is none. */
  readSysctl(path: string): string | undefined;
  writeSysctl(path: string, value: string): void;
}

export const systemRunner: CommandRunner = {
  run(file, args, input) {
    const r = spawnSync(file, args, { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error as NodeJS.ErrnoException } : {}) };
  },
  readSysctl(path) {
    try {
      return fs.readFileSync(`/proc/sys/${path}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  writeSysctl(path, value) {
    try {
      fs.writeFileSync(`/proc/sys/${path}`, value);
    } catch (err) {
      throw new SystemError(`cannot set /proc/sys/${path} to ${value}: ${(err as Error).message}`, { cause: err });
    }
  },
};

export class HostNat {
  /** `prefix`: this daemon's chains (natChainPrefix); it never touches chains of another prefix. */
  constructor(
    private readonly runner: CommandRunner = systemRunner,
    private readonly prefix = PREFIX,
    /** false: ip_forward is the host's to set (dockerd's --ip-forward=false); the rules are written all the same. */
    private readonly ipForward = true,
  ) {
    if (!/^BERTH-([0-9a-f]{6}-)?$/.test(prefix)) throw new InvalidArgumentError(`invalid chain prefix ${JSON.stringify(prefix)}`, 'prefix');
  }

  private exec(file: string, args: string[], input?: string): CommandResult {
    const r = this.runner.run(file, args, input);
    if (r.error?.code === 'ENOENT') throw new SystemError(`${file} not found: Berth's bridge networks need iptables (iptables-save and iptables-restore) on the PATH`);
    return r;
  }

  private save(): Record<string, Found> {
    const r = this.exec('iptables-save', []);
    if (r.status !== 0) throw new SystemError(`iptables-save: ${(r.stderr || r.error?.message || `exit status ${r.status}`).trim()}`);
    return berthRulesIn(r.stdout, this.prefix);
  }

  private restore(input: string): CommandResult {
    return this.exec('iptables-restore', ['-w', '--noflush'], input);
  }

  /**
   * One transaction over the tables from what iptables-save showed; retried once on failure,
   * since another program (dockerd, firewalld) may have changed a rule we delete in between.
   */
  private transact(build: (found: Record<string, Found>) => string): void {
    let r: CommandResult | undefined;
    let input = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      input = build(this.save());
      if (!input) return;
      r = this.restore(input);
      if (r.status === 0) return;
    }
    throw new SystemError(`iptables-restore: ${(r?.stderr || r?.error?.message || `exit status ${r?.status}`).trim()}\n--- input ---\n${input}`);
  }

  /** Makes the kernel's rules exactly the state (see the file's comment), then the sysctls. */
  apply(state: NatState): void {
    const t = tableRules(state); // checked before anything changes
    this.transact((found) =>
      TABLES.map((table) => {
        const have = found[table] ?? { chains: new Set<string>(), jumps: [] };
        const chains = t[table].chains.map((c) => rename(c, this.prefix));
        const ours = new Set(chains);
        const stale = [...have.chains].filter((c) => !ours.has(c));
        const lines: string[] = [];
        const wanted = JUMPS[table].map((j) => rename(`${j.from} ${jumpSpec(j)}`, this.prefix));
        for (const jump of have.jumps) {
          const kept = wanted.includes(jump) && have.jumps.indexOf(jump) === have.jumps.lastIndexOf(jump);
          if (!kept) lines.push(`-D ${jump}`);
        }
        // Duplicates of a wanted jump: every copy above was deleted; add it once more below.
        for (const jump of wanted) if (have.jumps.filter((j) => j === jump).length !== 1) lines.push(`-I ${jump.replace(' ', ' 1 ')}`);
        lines.push(...t[table].rules.map((r) => rename(r, this.prefix)), ...stale.map((c) => `-X ${c}`));
        return render(table, [...chains, ...stale], lines);
      }).join(''),
    );
    // After the rules, so that nothing is forwarded, or routed from 127.0.0.1, unfiltered.
    if (this.ipForward && this.runner.readSysctl('net/ipv4/ip_forward') !== '1') this.runner.writeSysctl('net/ipv4/ip_forward', '1');
    for (const n of state.networks) {
      const path = `net/ipv4/conf/${n.bridge}/route_localnet`;
      // Lets DNAT send 127.0.0.1's connections out the bridge (the kernel drops a loopback
      // source on another interface as martian otherwise). A bridge not made yet has no
      // containers; the next apply() after it is made sets it.
      const value = this.runner.readSysctl(path);
      if (value !== undefined && value !== '1') this.runner.writeSysctl(path, '1');
    }
  }

  /** Removes this daemon's chains and every jump to one (from any table). */
  removeAll(): void {
    this.transact((found) =>
      Object.entries(found)
        .filter(([, f]) => f.chains.size > 0 || f.jumps.length > 0)
        .map(([table, f]) => render(table, [...f.chains], [...f.jumps.map((j) => `-D ${j}`), ...[...f.chains].map((c) => `-X ${c}`)]))
        .join(''),
    );
  }
}
