/**
 * Addresses of one IPv4 subnet, handed out to containers and persisted (`<file>`, replaced
 * atomically), so that an address stays reserved across daemon restarts and is never given
 * twice. Pure but for the file.
 */
import fs from 'node:fs';
import path from 'node:path';

import { ConflictError, InvalidArgumentError, SystemError } from '../common/errors.js';
import { writeFileAtomicSync } from '../common/fsutil.js';

export interface Subnet {
  /** The gateway (the bridge's address), e.g. "172.29.0.1". */
  gateway: string;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new InvalidArgumentError(`invalid IPv4 address ${JSON.stringify(ip)}`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** "172.29.0.1/16" → gateway and prefix. */
export function parseCidr(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new InvalidArgumentError(`invalid CIDR ${JSON.stringify(cidr)} (expected e.g. 172.29.0.1/16)`, 'bip');
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new InvalidArgumentError(`prefix /${prefix} must be between /8 and /30`, 'bip');
  ipToInt(m[1]!);
  return { gateway: m[1]!, prefix };
}

/** The first address and the size of the subnet. */
export function subnetBounds(subnet: Subnet): { network: number; size: number } {
  const size = 2 ** (32 - subnet.prefix);
  return { network: Math.floor(ipToInt(subnet.gateway) / size) * size, size };
}

/** "10.1.2.0/24", as Docker shows a network's subnet. */
export function subnetCidr(subnet: Subnet): string {
  return `${intToIp(subnetBounds(subnet).network)}/${subnet.prefix}`;
}

export function subnetContains(subnet: Subnet, ip: string): boolean {
  const { network, size } = subnetBounds(subnet);
  const n = ipToInt(ip);
  return n >= network && n < network + size;
}

export function subnetsOverlap(a: Subnet, b: Subnet): boolean {
  const x = subnetBounds(a);
  const y = subnetBounds(b);
  return x.network < y.network + y.size && y.network < x.network + x.size;
}

/**
 * A network's subnet as `docker network create --subnet 10.1.2.0/24 [--gateway 10.1.2.1]`
 * gives it: the gateway defaults to the first address, and must be a host address inside.
 */
export function parseSubnet(cidr: string, gateway?: string, field = 'IPAM.Config.Subnet'): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new InvalidArgumentError(`invalid subnet ${JSON.stringify(cidr)} (expected e.g. 10.1.2.0/24)`, field);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new InvalidArgumentError(`prefix /${prefix} must be between /8 and /30`, field);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipToInt(m[1]!) / size) * size;
  const subnet = { gateway: gateway || intToIp(network + 1), prefix };
  const g = ipToInt(subnet.gateway);
  if (!subnetContains(subnet, subnet.gateway) || subnetBounds(subnet).network !== network || g === network || g === network + size - 1) {
    throw new InvalidArgumentError(`gateway ${subnet.gateway} is not a host address of ${intToIp(network)}/${prefix}`, 'IPAM.Config.Gateway');
  }
  return subnet;
}

/** Where networks made without a subnet get one (dockerd's default-address-pools): `base` cut into /`size` subnets. */
export interface AddressPool {
  base: string;
  size: number;
}

/**
 * Docker's default pools, but for 172.17.0.0/16 (docker0's on a host that also runs dockerd):
 * 172.18–31.0.0/16, then 192.168.0.0/16 in /20s.
 */
export const DEFAULT_ADDRESS_POOLS: readonly AddressPool[] = Object.freeze([
  ...Array.from({ length: 14 }, (_, i) => ({ base: `172.${18 + i}.0.0/16`, size: 16 })),
  { base: '192.168.0.0/16', size: 20 },
]);

/** Checks a pool as dockerd does: a base CIDR, and a size no shorter than its prefix (and here no longer than /30). */
export function checkAddressPool(pool: unknown, field: string): AddressPool {
  const p = pool as Partial<AddressPool> | null;
  if (!p || typeof p !== 'object' || typeof p.base !== 'string' || !Number.isInteger(p.size)) throw new InvalidArgumentError('an address pool needs a base CIDR and an integer size', field);
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(p.base);
  if (!m) throw new InvalidArgumentError(`invalid base ${JSON.stringify(p.base)} (expected e.g. 10.10.0.0/16)`, field);
  ipToInt(m[1]!);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new InvalidArgumentError(`base prefix /${prefix} must be between /8 and /30`, field);
  if (p.size! < prefix || p.size! > 30) throw new InvalidArgumentError(`size ${p.size} must be between the base's prefix (/${prefix}) and /30`, field);
  return { base: p.base, size: p.size! };
}

/** The subnets of the pools, in order, each with its first address as gateway; lazily (a /8 in /30s is 4 million). */
export function* poolSubnets(pools: readonly AddressPool[]): Generator<Subnet> {
  for (const pool of pools) {
    const [ip, prefix] = pool.base.split('/') as [string, string];
    const baseSize = 2 ** (32 - Number(prefix));
    const start = Math.floor(ipToInt(ip) / baseSize) * baseSize;
    const step = 2 ** (32 - pool.size);
    for (let n = start; n < start + baseSize; n += step) yield { gateway: intToIp(n + 1), prefix: pool.size };
  }
}

/** A range of a subnet ("10.1.2.128/25"), where it must lie within the subnet. */
export function parseRange(cidr: string, subnet: Subnet, field = 'IPAM.Config.IPRange'): { network: number; size: number } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new InvalidArgumentError(`invalid IP range ${JSON.stringify(cidr)} (expected e.g. 10.1.2.128/25)`, field);
  const size = 2 ** (32 - Number(m[2]));
  const network = Math.floor(ipToInt(m[1]!) / size) * size;
  const outer = subnetBounds(subnet);
  if (Number(m[2]) > 32 || network < outer.network || network + size > outer.network + outer.size) {
    throw new InvalidArgumentError(`IP range ${cidr} is not within the subnet ${subnetCidr(subnet)}`, field);
  }
  return { network, size };
}

export class Ipam {
  private allocations: Record<string, string>;
  private readonly range: { network: number; size: number } | undefined;
  private readonly reserved: Set<string>;

  constructor(
    private readonly file: string,
    readonly subnet: Subnet,
    /** IPRange (dynamic addresses come from it only) and AuxiliaryAddresses (never given). */
    opts: { range?: string; reserved?: string[] } = {},
  ) {
    this.range = opts.range ? parseRange(opts.range, subnet) : undefined;
    this.reserved = new Set(opts.reserved ?? []);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    try {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { allocations?: Record<string, string> };
      this.allocations = saved.allocations ?? {};
    } catch {
      this.allocations = {};
    }
  }

  private save(): void {
    writeFileAtomicSync(this.file, JSON.stringify({ subnet: this.subnet, allocations: this.allocations }));
  }

  /** The container's address: the one it has, the one it asks for (`--ip`), or the lowest free one. */
  allocate(owner: string, preferred?: string): string {
    const existing = this.allocations[owner];
    if (existing && (!preferred || preferred === existing)) return existing;
    const { network, size } = subnetBounds(this.subnet);
    const used = new Set(Object.entries(this.allocations).flatMap(([o, ip]) => (o === owner ? [] : [ip])));
    used.add(this.subnet.gateway);
    for (const ip of this.reserved) used.add(ip);
    if (preferred) {
      const n = ipToInt(preferred);
      if (n <= network || n >= network + size - 1) throw new InvalidArgumentError(`no configured subnet contains IP address ${preferred}`, 'IPAMConfig.IPv4Address');
      if (used.has(preferred)) throw new ConflictError(`Address already in use: ${preferred}`);
      this.allocations[owner] = preferred;
      this.save();
      return preferred;
    }
    const first = Math.max(network + 1, this.range?.network ?? 0);
    const end = Math.min(network + size - 1, this.range ? this.range.network + this.range.size : Infinity);
    for (let n = first; n < end; n++) {
      const ip = intToIp(n);
      if (used.has(ip)) continue;
      this.allocations[owner] = ip;
      this.save();
      return ip;
    }
    throw new SystemError(`no free address left in ${this.subnet.gateway}/${this.subnet.prefix}`);
  }

  release(owner: string): void {
    if (!(owner in this.allocations)) return;
    delete this.allocations[owner];
    this.save();
  }

  /** Every address in use, by owner. */
  list(): Record<string, string> {
    return { ...this.allocations };
  }

  /** Drops allocations whose owner no longer exists (after a crash between start and record). */
  retain(owners: Set<string>): void {
    let changed = false;
    for (const owner of Object.keys(this.allocations)) {
      if (!owners.has(owner)) {
        delete this.allocations[owner];
        changed = true;
      }
    }
    if (changed) this.save();
  }
}
