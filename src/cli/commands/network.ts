/** network create/ls/inspect/rm/connect/disconnect/prune. */
import { type Define, action, collect, confirm, eachName, filtersJson, prunedText } from '../context.js';
import { parseSubnet, subnetContains } from '../../network/ipam.js';
import { FlagError, formatList, goTime, keyValues, naturalCompare, shortId } from '../format.js';
import { networkInspect } from './inspect.js';

const enc = encodeURIComponent;

type IpamConfig = { Subnet: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> };

/**
 * --subnet, --ip-range and --gateway as the docker CLI's consolidateIpam pairs them: each range
 * and gateway goes with the subnet that holds it, and is refused, in its words, when none does.
 */
export function ipamConfigs(subnets: string[], ranges: string[], gateways: string[]): IpamConfig[] {
  if (subnets.length < ranges.length || subnets.length < gateways.length) throw new FlagError('every ip-range or gateway must have a corresponding subnet');
  const configs = subnets.map((s): IpamConfig => ({ Subnet: s }));
  const holds = (subnet: string, data: string): boolean => {
    let parsed;
    try {
      parsed = parseSubnet(subnet);
    } catch (err) {
      throw new FlagError(`invalid subnet: ${(err as Error).message}`);
    }
    return subnetContains(parsed, data.split('/')[0]!);
  };
  for (const [values, key, what] of [[ranges, 'IPRange', 'range'], [gateways, 'Gateway', 'gateway']] as const) {
    for (const v of values) {
      const home = configs.filter((c) => holds(c.Subnet, v));
      if (home.length === 0) throw new FlagError(`no matching subnet for ${what} ${v}`);
      for (const c of home) {
        if (c[key]) throw new FlagError(key === 'IPRange' ? `cannot configure multiple ranges (${v}, ${c[key]}) on the same subnet (${c.Subnet})` : `cannot configure multiple gateways (${v}, ${c[key]}) for the same subnet (${c.Subnet})`);
        c[key] = v;
      }
    }
  }
  return configs;
}

export const create: Define = (cmd, ctx, set) =>
  cmd
    .argument('<name>')
    .option('--attachable', 'Enable manual container attachment')
    .option('--aux-address <name=ip>', 'Auxiliary IPv4 or IPv6 addresses used by Network driver', collect)
    .option('--config-from <network>', 'The network from which to copy the configuration')
    .option('--config-only', 'Create a configuration only network')
    .option('-d, --driver <driver>', 'Driver to manage the Network', 'bridge')
    .option('--gateway <ip>', 'IPv4 or IPv6 Gateway for the master subnet', collect)
    .option('--internal', 'Restrict external access to the network')
    .option('--ip-range <range>', 'Allocate container ip from a sub-range', collect)
    .option('--ipam-opt <opt>', 'Set IPAM driver specific options', collect)
    .option('--ipv6', 'Enable or disable IPv6 networking')
    .option('--label <label>', 'Set metadata on a network', collect)
    .option('-o, --opt <opt>', 'Set driver specific options', collect)
    .option('--scope <scope>', "Control the network's scope")
    .option('--subnet <subnet>', 'Subnet in CIDR format that represents a network segment', collect)
    .action(
      action(
        set,
        async (
          name: string,
          o: { attachable?: boolean; auxAddress?: string[]; configFrom?: string; configOnly?: boolean; driver: string; gateway?: string[]; internal?: boolean; ipRange?: string[]; ipamOpt?: string[]; ipv6?: boolean; label?: string[]; opt?: string[]; scope?: string; subnet?: string[] },
        ) => {
          const config = ipamConfigs(o.subnet ?? [], o.ipRange ?? [], o.gateway ?? []);
          // As the docker CLI: each auxiliary address goes with the subnet that holds it.
          for (const [host, ip] of Object.entries(keyValues(o.auxAddress))) {
            const home = config.find((c) => {
              try {
                return subnetContains(parseSubnet(c.Subnet), ip);
              } catch {
                return false;
              }
            });
            if (!home) throw new FlagError(`no matching subnet for aux-address ${ip}`);
            home.AuxiliaryAddresses = { ...home.AuxiliaryAddresses, [host]: ip };
          }
          const r = await ctx.client.post<{ Id: string; Warning?: string }>('/networks/create', undefined, {
            Name: name,
            CheckDuplicate: true,
            Driver: o.driver,
            Scope: o.scope ?? '',
            Options: keyValues(o.opt),
            IPAM: { Driver: 'default', Options: keyValues(o.ipamOpt), Config: config },
            Internal: !!o.internal,
            Attachable: !!o.attachable,
            EnableIPv6: !!o.ipv6,
            ConfigOnly: !!o.configOnly,
            ...(o.configFrom ? { ConfigFrom: { Network: o.configFrom } } : {}),
            Labels: keyValues(o.label),
          });
          if (r.Warning) ctx.err(`WARNING: ${r.Warning}\n`);
          ctx.out(`${r.Id}\n`);
        },
      ),
    );

export const ls: Define = (cmd, ctx, set) =>
  cmd
    .option('-f, --filter <filter>', 'Provide filter values (e.g. "driver=bridge")', collect)
    .option('--format <format>', 'Format output using a custom template')
    .option('--no-trunc', 'Do not truncate the output')
    .option('-q, --quiet', 'Only display network IDs')
    .action(
      action(set, async (o: { filter?: string[]; format?: string; trunc: boolean; quiet?: boolean }) => {
        const nets = await ctx.client.get<{ Id: string; Name: string; Driver: string; Scope: string; Created?: string; EnableIPv4?: boolean; EnableIPv6?: boolean; Internal?: boolean; Labels?: Record<string, string> | null }[]>('/networks', {
          filters: filtersJson(o.filter),
        });
        const rows = nets
          .sort((a, b) => naturalCompare(a.Name, b.Name))
          .map((n) => {
            const row = {
              ID: o.trunc ? shortId(n.Id) : n.Id,
              Name: n.Name,
              Driver: n.Driver,
              Scope: n.Scope,
              // EnableIPv4 comes from API 1.47 on; before it, docker shows false.
              IPv4: String(!!n.EnableIPv4),
              IPv6: String(!!n.EnableIPv6),
              Internal: String(!!n.Internal),
              Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).sort().join(','),
              CreatedAt: n.Created ? goTime(n.Created) : '',
            };
            Object.defineProperty(row, 'Label', { value: (key: unknown) => n.Labels?.[String(key)] ?? '' });
            return row;
          });
        if (o.quiet && (!o.format || o.format === 'table')) {
          ctx.out(rows.map((r) => r.ID + '\n').join(''));
          return;
        }
        ctx.out(
          formatList(rows, {
            format: o.quiet ? '{{.ID}}' : o.format,
            table: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
            headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv4: 'IPV4', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED' },
            goType: '*formatter.networkContext',
          }),
        );
      }),
    );

export const inspect = networkInspect;

export const rm: Define = (cmd, ctx, set) =>
  cmd
    .argument('<network...>')
    .option('-f, --force', 'Do not error if the network does not exist')
    .action(
      action(set, async (names: string[], o: { force?: boolean }) =>
        eachName(ctx, names, async (n) => {
          try {
            await ctx.client.delete(`/networks/${enc(n)}`);
          } catch (e) {
            if (o.force && (e as { status?: number }).status === 404) return undefined;
            throw e;
          }
          return n;
        }),
      ),
    );

export const connect: Define = (cmd, ctx, set) =>
  cmd
    .argument('<network>')
    .argument('<container>')
    .option('--alias <alias>', 'Add network-scoped alias for the container', collect)
    .option('--ip <ip>', 'IPv4 address (e.g., "172.30.100.104")')
    .option('--ip6 <ip>', 'IPv6 address (e.g., "2001:db8::33")')
    .action(
      action(set, async (network: string, container: string, o: { alias?: string[]; ip?: string; ip6?: string }) => {
        const ipam = o.ip || o.ip6 ? { IPv4Address: o.ip ?? '', IPv6Address: o.ip6 ?? '' } : undefined;
        await ctx.client.post(`/networks/${enc(network)}/connect`, undefined, { Container: container, EndpointConfig: { IPAMConfig: ipam, Aliases: o.alias ?? null } });
      }),
    );

export const disconnect: Define = (cmd, ctx, set) =>
  cmd
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'Force the container to disconnect from a network')
    .action(
      action(set, async (network: string, container: string, o: { force?: boolean }) => {
        await ctx.client.post(`/networks/${enc(network)}/disconnect`, undefined, { Container: container, Force: !!o.force });
      }),
    );

export const prune: Define = (cmd, ctx, set) =>
  cmd
    .option('--filter <filter>', 'Provide filter values (e.g. "until=<timestamp>")', collect)
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(
      action(set, async (o: { filter?: string[]; force?: boolean }) => {
        if (!(await confirm(ctx, 'WARNING! This will remove all custom networks not used by at least one container.', o.force))) return;
        const r = await ctx.client.post<{ NetworksDeleted?: string[] | null }>('/networks/prune', { filters: filtersJson(o.filter) });
        ctx.out(prunedText('Networks', r.NetworksDeleted).replace(/\n\n$/, '\n'));
      }),
    );
