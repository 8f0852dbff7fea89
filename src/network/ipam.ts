/**
 * Addresses of one IPv4 subnet, handed out to containers and persisted (`<file>`, replaced
 * atomically), so that an address stays reserved across daemon restarts and is never given
 * twice. Pure but for the file.
 */
import fs from 'node:fs';
import path from 'node:path';

import { InvalidArgumentError, SystemError } from '../common/errors.js';
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

export class Ipam {
  private allocations: Record<string, string>;

  constructor(
    private readonly file: string,
    readonly subnet: Subnet,
  ) {
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

  /** The container's address: the one it has, or the lowest free one. */
  allocate(owner: string): string {
    const existing = this.allocations[owner];
    if (existing) return existing;
    const size = 2 ** (32 - this.subnet.prefix);
    const network = Math.floor(ipToInt(this.subnet.gateway) / size) * size;
    const used = new Set(Object.values(this.allocations));
    used.add(this.subnet.gateway);
    for (let n = network + 1; n < network + size - 1; n++) {
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
