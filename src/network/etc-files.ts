/**
 * A container's /etc/hosts and /etc/resolv.conf, as Docker writes them. Pure: the host's
 * resolv.conf and the container's addresses come in as arguments.
 */
import net from 'node:net';

import { optionalStringList } from '../common/checks.js';
import { InvalidArgumentError } from '../common/errors.js';

const LOCALHOST = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

/** `--add-host name:ip` entries; "host-gateway" means the given gateway address. */
export function parseExtraHosts(extraHosts: readonly string[] | null | undefined, hostGateway: string | undefined): Array<{ name: string; ip: string }> {
  return (optionalStringList(extraHosts, 'HostConfig.ExtraHosts') ?? []).map((entry) => {
    const sep = entry.search(/[:=]/);
    if (sep <= 0) throw new InvalidArgumentError(`invalid extra host ${JSON.stringify(entry)} (expected name:ip)`, 'HostConfig.ExtraHosts');
    const name = entry.slice(0, sep);
    let ip = entry.slice(sep + 1).replace(/^\[(.*)\]$/, '$1');
    if (ip === 'host-gateway') {
      if (!hostGateway) throw new InvalidArgumentError('unable to derive the IP value for host-gateway: no default bridge', 'HostConfig.ExtraHosts');
      ip = hostGateway;
    }
    if (!/^[\d.]+$/.test(ip) && !/^[0-9a-fA-F:]+$/.test(ip)) throw new InvalidArgumentError(`invalid IP address in extra host ${JSON.stringify(entry)}`, 'HostConfig.ExtraHosts');
    return { name, ip };
  });
}

export interface HostsInput {
  hostname: string;
  domainname?: string;
  /** The container's address on its first network; none on --network none. */
  ip?: string;
  /** Legacy links on the default bridge: alias names for another container's address. */
  links?: Array<{ ip: string; names: string[] }>;
  extraHosts?: Array<{ name: string; ip: string }>;
}

export function hostsFile(input: HostsInput): string {
  let text = LOCALHOST;
  for (const link of input.links ?? []) text += `${link.ip}\t${link.names.join(' ')}\n`;
  for (const h of input.extraHosts ?? []) text += `${h.ip}\t${h.name}\n`;
  if (input.ip) text += `${input.ip}\t${input.domainname ? `${input.hostname}.${input.domainname} ` : ''}${input.hostname}\n`;
  return text;
}

export interface ResolvInput {
  /** The host's resolv.conf text. */
  host: string;
  /** The embedded DNS server's address (user-defined networks), if the container uses it. */
  embedded?: string;
  dns?: readonly string[] | null;
  dnsSearch?: readonly string[] | null;
  dnsOptions?: readonly string[] | null;
}

/** The addresses on nameserver lines of a resolv.conf (IPv4 and IPv6), in order. */
export function nameservers(resolvConf: string): string[] {
  return resolvConf.split('\n').flatMap((l) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    return m && net.isIP(m[1]!) ? [m[1]!] : [];
  });
}

function lineValues(resolvConf: string, keyword: string): string[] {
  return resolvConf.split('\n').flatMap((l) => {
    const m = new RegExp(`^\\s*${keyword}\\s+(.*)$`).exec(l);
    return m ? m[1]!.trim().split(/\s+/) : [];
  });
}

/**
 * Docker's rules: the embedded server on user-defined networks (it forwards to the host's
 * resolvers, loopback ones included); otherwise --dns, else the host's nameservers without the
 * loopback ones a container cannot reach. Search domains and options from the flags, else the
 * host's.
 */
export function resolvConf(input: ResolvInput): string {
  const servers = input.embedded ? [input.embedded] : input.dns?.length ? [...input.dns] : nameservers(input.host).filter((s) => !/^(127\.|::1$)/.test(s));
  const search = input.dnsSearch?.length ? [...input.dnsSearch] : lineValues(input.host, 'search');
  const options = input.dnsOptions?.length ? [...input.dnsOptions] : lineValues(input.host, 'options');
  if (input.embedded && !options.some((o) => o.startsWith('ndots:'))) options.push('ndots:0');
  // dockerd's order (libnetwork's resolvconf.Build): search, the name servers, options.
  // `--dns-search .` alone means no search domains at all (libnetwork writes no search line).
  let text = search.length && search.join(' ').trim() !== '.' ? `search ${search.join(' ')}\n` : '';
  text += servers.map((s) => `nameserver ${s}\n`).join('');
  if (options.length) text += `options ${options.join(' ')}\n`;
  return text;
}
