/**
 * Networks in the lifecycle manager: the predefined ones (bridge when berthd has a default
 * bridge, host, none) and user-defined bridge networks; each container's endpoints on them
 * (veth, address from the network's IPAM, routes); published ports (reserved host ports plus
 * kernel NAT); the embedded DNS server on user-defined networks. No HTTP here: the API layer
 * calls these methods, the container service calls attach/release around a container's run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { checkObject, optionalBoolean, optionalString } from '../../common/checks.js';
import { goParseBool } from '../../common/units.js';
import { ConflictError, ForbiddenError, InvalidArgumentError, NOT_A_SWARM_MANAGER, NotFoundError, UnavailableError, UnsupportedError } from '../../common/errors.js';
import { filterMatch, invalidFilter, pruneMatcher } from '../image-filters.js';
import { attachToBridge, detachVeth, detachVethAsync, enableHairpin, ensureBridge, hasDefaultRoute, hostRoutes, interfacesOf, isolatePort, macFor, removeBridge, setSysctls, vethName } from '../../network/bridge.js';
import { type AddressPool, DEFAULT_ADDRESS_POOLS, Ipam, ipToInt, parseCidr, parseRange, parseSubnet, poolSubnets, subnetCidr, subnetContains, subnetsOverlap, type Subnet } from '../../network/ipam.js';
import type { EmbeddedDns } from '../../network/dns.js';
import { EMBEDDED_DNS_ADDRESS, redirectDns } from '../../network/dns-redirect.js';
import type { HostNat } from '../../network/nat.js';
import { bindingsOf, type PortBinding, type PortMap, type PortPublisher } from '../../network/ports.js';
import type { EventBus } from '../events.js';
import { matchesLabels } from '../image-filters.js';
import { type EndpointConfig, type EndpointState, ipamConfigOf, type NetworkRecord } from './record.js';
import { NetworkStore } from './store.js';

/** What the network service needs to know of a container. */
export interface NetworkMember {
  id: string;
  /** Without Docker's leading slash. */
  name: string;
  /** Running, or starting with its endpoints already plugged. */
  running: boolean;
  /** Networks it wants, by name, in attach order (the first gives eth0, routes and ports). */
  endpoints: Record<string, EndpointConfig>;
  /** Its endpoints while it runs. */
  networks: Record<string, EndpointState>;
  /** Its --dns servers: the embedded DNS server forwards its queries there. */
  dns?: string[];
}

/** The parts of src/network this service drives (narrow, so that tests can pass fakes). */
export type NatApplier = Pick<HostNat, 'apply' | 'removeAll'>;
export type DnsListener = Pick<EmbeddedDns, 'listen' | 'unlisten' | 'close'>;
export type PortReserver = Pick<PortPublisher, 'publish' | 'unpublish' | 'natPorts' | 'close'>;

export interface NetworkServiceOptions {
  /** `<data-root>/network`: network records and each bridge network's address allocations. */
  dir: string;
  /**
   * Containers on user-defined networks get Docker's resolver address, 127.0.0.11, redirected in
   * their namespace to the server on the gateway (network/dns-redirect.ts); else the gateway itself.
   */
  dnsRedirect?: boolean;
  /** Where networks without a subnet get one (dockerd's default-address-pools); default Docker's. */
  addressPools?: readonly AddressPool[];
  /** Driver options new networks get unless they set them, by driver (dockerd's default-network-opts). */
  defaultOptions?: Record<string, Record<string, string>>;
  /** The default bridge (berthd's --bridge/--bip and its settings); none: no "bridge" network. */
  defaultBridge?: DefaultBridge;
  /** Kernel NAT and filtering; undefined with --iptables=false. */
  nat?: NatApplier;
  dns?: DnsListener;
  ports: PortReserver;
  events: EventBus;
}

/** The default bridge network as the daemon's flags make it (dockerd's --bridge, --bip, --icc, --ip-masq, --ip, --mtu, --fixed-cidr). */
export interface DefaultBridge {
  name: string;
  cidr: string;
  icc?: boolean;
  ipMasq?: boolean;
  hostBindingIp?: string;
  mtu?: number;
  fixedCidr?: string;
}

export interface CreateNetworkRequest {
  Name?: unknown;
  Driver?: unknown;
  Internal?: unknown;
  Attachable?: unknown;
  EnableIPv6?: unknown;
  Ingress?: unknown;
  /** Deprecated (dockerd always checks since 1.44); a boolean if given. */
  CheckDuplicate?: unknown;
  Labels?: unknown;
  Options?: unknown;
  IPAM?: { Driver?: string; Options?: unknown; Config?: Array<{ Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }> | null } | null;
  /** "" or "local" here; "swarm" and "global" need swarm mode. */
  Scope?: unknown;
  /** A configuration-only network: IPAM config and options for `ConfigFrom` networks, no bridge. */
  ConfigOnly?: unknown;
  ConfigFrom?: { Network?: unknown } | null;
}

/** moby's answer when an endpoint is asked on a configuration-only network. */
export const CONFIG_ONLY_ENDPOINT = 'cannot create endpoint on configuration-only network';

/** How a container's network mode resolves. */
export type NetworkModeKind = { kind: 'private' } | { kind: 'host' } | { kind: 'container'; ref: string };

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MTU_OPTION = 'com.docker.network.driver.mtu';
const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
const ICC_OPTION = 'com.docker.network.bridge.enable_icc';
const MASQUERADE_OPTION = 'com.docker.network.bridge.enable_ip_masquerade';
const HOST_BINDING_OPTION = 'com.docker.network.bridge.host_binding_ipv4';

/**
 * A bridge network's driver options as libnetwork's bridge driver reads them: whether its
 * containers reach one another (enable_icc), whether its traffic out is masqueraded
 * (enable_ip_masquerade), and the host address its ports are published on when a binding
 * names none (host_binding_ipv4). Throws on a value the driver would refuse.
 */
export function bridgeDriverOptions(options: Record<string, string>): { icc: boolean; masquerade: boolean; hostBindingIp: string } {
  const bool = (key: string): boolean => {
    const value = options[key];
    const parsed = value === undefined ? true : goParseBool(value);
    if (parsed === undefined) throw new InvalidArgumentError(`invalid value ${JSON.stringify(value)}: expected a boolean`, `Options.${key}`);
    return parsed;
  };
  const hostBindingIp = options[HOST_BINDING_OPTION] || '0.0.0.0';
  try {
    ipToInt(hostBindingIp);
  } catch {
    throw new InvalidArgumentError(`invalid value ${JSON.stringify(hostBindingIp)}: expected an IPv4 address`, `Options.${HOST_BINDING_OPTION}`);
  }
  return { icc: bool(ICC_OPTION), masquerade: bool(MASQUERADE_OPTION), hostBindingIp };
}

const PREDEFINED = ['bridge', 'host', 'none'];

/** An endpoint's per-interface sysctls (API 1.46; the docker CLI sends them as a driver option). */
const ENDPOINT_SYSCTLS_OPTION = 'com.docker.network.endpoint.sysctls';

/**
 * An endpoint's interface sysctls, as moby's validateEndpointSettings reads them:
 * "net.ipv4.conf.IFNAME.log_martians=1,...", the interface named IFNAME (or ifname: the CLI lower-cases it).
 */
export function parseEndpointSysctls(text: string | undefined, field: string): Array<{ key: string; value: string }> {
  if (text === undefined || text === '') return [];
  return text.split(',').map((sysctl) => {
    const eq = sysctl.indexOf('=');
    const key = eq < 0 ? sysctl : sysctl.slice(0, eq);
    const value = eq < 0 ? '' : sysctl.slice(eq + 1);
    const parts = key.split('.');
    // Each part a plain name: the key becomes a path under /proc/sys.
    const ok = eq > 0 && parts.length >= 5 && parts[0] === 'net' && ['ipv4', 'ipv6', 'mpls'].includes(parts[1]!) && ['IFNAME', 'ifname'].includes(parts[3]!) && parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p)) && !/[\n\0]/.test(value);
    if (!ok) throw new InvalidArgumentError(`unrecognised network interface sysctl '${sysctl}'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'`, field);
    return { key: parts.join('.'), value };
  });
}

function labelsOf(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) throw new InvalidArgumentError('must be an object of strings', field);
  return { ...(value as Record<string, string>) };
}

export class NetworkService {
  readonly store: NetworkStore;
  private readonly ipams = new Map<string, Ipam>();
  /** The containers, as the container service sees them (set by the engine). */
  members: () => NetworkMember[] = () => [];

  constructor(private readonly opts: NetworkServiceOptions) {
    this.store = new NetworkStore(path.join(opts.dir, 'networks'));
    this.ensurePredefined();
    for (const n of this.bridgeNetworks()) ensureBridge(n.bridge!, this.subnetOf(n), n.mtu);
  }

  // ---- the networks ----------------------------------------------------------------------

  private ensurePredefined(): void {
    const make = (name: string, driver: NetworkRecord['driver'], extra: Partial<NetworkRecord> = {}): void => {
      const existing = this.store.byName(name);
      const record: NetworkRecord = { id: existing?.id ?? this.store.newId(), name, driver, created: existing?.created ?? new Date().toISOString(), builtin: true, internal: false, attachable: false, labels: {}, options: {}, ...extra };
      if (JSON.stringify(existing) !== JSON.stringify(record)) this.store.save(record);
    };
    make('host', 'host');
    make('none', 'null');
    const bridge = this.opts.defaultBridge;
    if (bridge) {
      const subnet = parseCidr(bridge.cidr);
      if (bridge.fixedCidr) parseRange(bridge.fixedCidr, subnet, 'fixed-cidr');
      // Its settings as dockerd shows them among the default bridge's options.
      const options = {
        'com.docker.network.bridge.default_bridge': 'true',
        [ICC_OPTION]: String(bridge.icc ?? true),
        [MASQUERADE_OPTION]: String(bridge.ipMasq ?? true),
        [HOST_BINDING_OPTION]: bridge.hostBindingIp ?? '0.0.0.0',
        [BRIDGE_NAME_OPTION]: bridge.name,
        [MTU_OPTION]: String(bridge.mtu ?? 1500),
      };
      make('bridge', 'bridge', { bridge: bridge.name, subnet: subnetCidr(subnet), gateway: subnet.gateway, options, ...(bridge.mtu ? { mtu: bridge.mtu } : {}), ...(bridge.fixedCidr ? { ipRange: bridge.fixedCidr } : {}) });
    } else {
      const stale = this.store.byName('bridge');
      if (stale?.builtin) this.store.delete(stale.id);
    }
  }

  private bridgeNetworks(): NetworkRecord[] {
    return this.store.list().filter((n) => n.driver === 'bridge' && n.bridge && n.subnet);
  }

  private subnetOf(n: NetworkRecord): Subnet {
    return { gateway: n.gateway!, prefix: Number(n.subnet!.split('/')[1]) };
  }

  private ipam(n: NetworkRecord): Ipam {
    let ipam = this.ipams.get(n.id);
    if (!ipam) {
      ipam = new Ipam(path.join(this.opts.dir, `${n.bridge}.json`), this.subnetOf(n), { range: n.ipRange, reserved: Object.values(n.auxAddresses ?? {}) });
      this.ipams.set(n.id, ipam);
    }
    return ipam;
  }

  list(filters: Record<string, string[]> = {}): NetworkRecord[] {
    for (const key of Object.keys(filters)) {
      if (!['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'].includes(key)) throw invalidFilter(key);
    }
    // dockerd's words (a filter value it cannot match anything with).
    for (const type of filters.type ?? []) if (type !== 'custom' && type !== 'builtin') throw new InvalidArgumentError(`invalid filter: 'type'='${type}'`);
    const used = new Set(this.members().flatMap((m) => (m.running ? Object.keys(m.networks) : [])));
    return this.store.list().filter((n) => {
      if (filters.driver && !filters.driver.includes(n.driver)) return false;
      if (filters.id && !filters.id.some((id) => n.id.startsWith(id))) return false;
      if (filters.name && !filters.name.some((name) => filterMatch(name, n.name))) return false;
      if (filters.scope && !filters.scope.includes('local')) return false;
      if (filters.type && !filters.type.includes(n.builtin ? 'builtin' : 'custom')) return false;
      if (filters.label && !matchesLabels(filters.label, n.labels)) return false;
      if (filters.dangling) {
        const dangling = ['1', 'true'].includes(filters.dangling[0] ?? '');
        if (dangling !== (!n.builtin && !used.has(n.name))) return false;
      }
      return true;
    });
  }

  get(ref: string): NetworkRecord {
    return this.store.get(ref);
  }

  /** The network by ID, name or ID prefix, if there is one. */
  find(ref: string): NetworkRecord | undefined {
    return this.store.find(ref);
  }

  /** The running containers on a network, with their endpoints. */
  endpointsOn(network: NetworkRecord): Array<{ id: string; name: string; endpoint: EndpointState }> {
    return this.members().flatMap((m) => {
      const endpoint = m.running ? m.networks[network.name] : undefined;
      return endpoint ? [{ id: m.id, name: m.name, endpoint }] : [];
    });
  }

  create(req: CreateNetworkRequest): { id: string; warning: string } {
    const name = req.Name;
    if (typeof name !== 'string' || !name) throw new InvalidArgumentError('a network needs a name', 'Name');
    if (!NAME.test(name)) throw new InvalidArgumentError(`invalid network name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, 'Name');
    if (PREDEFINED.includes(name)) throw new ForbiddenError(`operation is not permitted on predefined ${name} network`);
    if (this.store.byName(name)) throw new ConflictError(`network with name ${name} already exists`);
    const driver = req.Driver === undefined || req.Driver === null || req.Driver === '' ? 'bridge' : req.Driver;
    // dockerd's answers for the drivers it has and berthd has not (host and null have their one network).
    if (driver === 'host' || driver === 'null') throw new ForbiddenError(`only one instance of "${driver}" network is allowed`);
    if (driver === 'overlay') throw new UnavailableError(NOT_A_SWARM_MANAGER);
    if (driver !== 'bridge') throw new NotFoundError(`plugin "${String(driver)}" not found`);
    for (const f of ['EnableIPv6', 'Ingress', 'Internal', 'Attachable', 'CheckDuplicate'] as const) optionalBoolean(req[f], f);
    optionalBoolean(req.ConfigOnly, 'ConfigOnly');
    optionalString(req.Scope, 'Scope');
    if (req.EnableIPv6 === true) throw new UnsupportedError('IPv6 networks are not supported yet');
    const configOnly = req.ConfigOnly === true;
    // libnetwork's validateConfiguration, then the scopes only a swarm has.
    if (configOnly && (req.Ingress === true || req.Internal === true || req.Attachable === true || req.Scope)) {
      throw new ForbiddenError('configuration network can only contain network specific fields. Network operator fields like [ ingress | internal | attachable | scope ] are not supported.');
    }
    if (req.Scope === 'swarm') throw new ForbiddenError('cannot create a swarm scoped network when swarm is not active');
    if (req.Scope && req.Scope !== 'local') throw new UnavailableError(NOT_A_SWARM_MANAGER);
    // dockerd's answers: an ingress network is a swarm one, global in scope.
    if (req.Ingress === true && req.Scope !== 'swarm' && req.Scope !== 'global') throw new ForbiddenError('Ingress network can only be global scope network');
    // The daemon's defaults for the driver under the request's own (not for a --config-from
    // network, whose options all come from its configuration network).
    const defaults = req.ConfigFrom?.Network ? {} : this.opts.defaultOptions?.[driver];
    let options = { ...defaults, ...labelsOf(req.Options, 'Options') };
    let labels = labelsOf(req.Labels, 'Labels');
    let ipamRequest = req.IPAM;
    let configFrom: string | undefined;
    if (req.ConfigFrom !== undefined && req.ConfigFrom !== null) {
      checkObject(req.ConfigFrom, 'ConfigFrom');
      optionalString(req.ConfigFrom.Network, 'ConfigFrom.Network');
      configFrom = (req.ConfigFrom.Network as string | undefined) || undefined;
    }
    if (configFrom !== undefined) {
      // libnetwork: the configuration comes whole from the configuration network.
      if (configOnly) throw new ForbiddenError('a configuration network cannot depend on another configuration network');
      const source = this.store.find(configFrom);
      if (!source?.configOnly) throw new NotFoundError(`configuration network ${JSON.stringify(configFrom)} does not exist`);
      if (Object.keys(labels).length || (req.IPAM?.Options && Object.keys(req.IPAM.Options).length) || req.IPAM?.Config?.length || (req.IPAM?.Driver && req.IPAM.Driver !== 'default')) {
        throw new ForbiddenError('user specified configurations are not supported if the network depends on a configuration network');
      }
      if (Object.keys(options).length) throw new ForbiddenError('network driver options are not supported if the network depends on a configuration network');
      configFrom = source.name;
      options = { ...source.options };
      labels = { ...source.labels };
      const sourceConfig = ipamConfigOf(source);
      ipamRequest = { ...(source.ipamOptions ? { Options: source.ipamOptions } : {}), Config: sourceConfig ? [sourceConfig] : [] };
    }
    bridgeDriverOptions(options);
    const mtu = options[MTU_OPTION] ? Number(options[MTU_OPTION]) : undefined;
    if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw new InvalidArgumentError(`invalid MTU ${JSON.stringify(options[MTU_OPTION])}`, `Options.${MTU_OPTION}`);
    // Kept as sent and shown back, as dockerd does ({} from the docker CLI, null when left out).
    const ipamOptions = ipamRequest?.Options === undefined || ipamRequest.Options === null ? undefined : labelsOf(ipamRequest.Options, 'IPAM.Options');
    const configs = ipamRequest?.Config ?? [];
    if (!Array.isArray(configs)) throw new InvalidArgumentError('must be a list', 'IPAM.Config');
    if (ipamRequest?.Driver && ipamRequest.Driver !== 'default') throw new NotFoundError(`plugin "${ipamRequest.Driver}" not found`);
    if (configs.length > 1) throw new UnsupportedError('one subnet per network is supported');
    const config = configs[0] ?? {};
    checkObject(config, 'IPAM.Config[0]');
    for (const f of ['Subnet', 'Gateway', 'IPRange'] as const) optionalString(config[f], `IPAM.Config.${f}`);
    if (!config.Subnet && config.Gateway) throw new InvalidArgumentError('a gateway needs a subnet', 'IPAM.Config.Gateway');
    if (!config.Subnet && (config.IPRange || Object.keys(config.AuxiliaryAddresses ?? {}).length)) throw new InvalidArgumentError('an IP range or auxiliary addresses need a subnet', 'IPAM.Config.Subnet');

    if (configOnly) return this.createConfigOnly(name, config, { options, labels, ipamOptions });

    const others = this.bridgeNetworks().map((n) => this.subnetOf(n));
    let subnet: Subnet;
    if (config.Subnet) {
      subnet = parseSubnet(config.Subnet, config.Gateway);
      const clash = this.bridgeNetworks().find((n) => subnetsOverlap(this.subnetOf(n), subnet));
      if (clash) throw new ForbiddenError(`invalid pool request: Pool overlaps with other one on this address space (network ${clash.name}, ${clash.subnet})`);
    } else {
      const routes = hostRoutes().map((r) => parseSubnet(r.endsWith('/32') ? `${r.slice(0, -3)}/30` : r, undefined, 'route'));
      let free: Subnet | undefined;
      for (const s of poolSubnets(this.opts.addressPools ?? DEFAULT_ADDRESS_POOLS)) {
        if (!others.some((o) => subnetsOverlap(o, s)) && !routes.some((r) => subnetsOverlap(r, s))) {
          free = s;
          break;
        }
      }
      if (!free) throw new ForbiddenError('all predefined address pools have been fully subnetted');
      subnet = free;
    }
    // docker-py (compose) sends null for the fields it leaves out.
    if (config.IPRange !== undefined && config.IPRange !== null && config.IPRange !== '') {
      if (typeof config.IPRange !== 'string') throw new InvalidArgumentError('must be a string', 'IPAM.Config.IPRange');
      parseRange(config.IPRange, subnet);
    }
    const aux = labelsOf(config.AuxiliaryAddresses, 'IPAM.Config.AuxiliaryAddresses');
    for (const [host, ip] of Object.entries(aux)) {
      if (!subnetContains(subnet, ip)) throw new InvalidArgumentError(`auxiliary address ${host}=${ip} is not within the subnet ${subnetCidr(subnet)}`, 'IPAM.Config.AuxiliaryAddresses');
    }
    const id = this.store.newId();
    const bridge = options[BRIDGE_NAME_OPTION] || `br-${id.slice(0, 12)}`;
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(bridge)) throw new InvalidArgumentError(`invalid bridge name ${JSON.stringify(bridge)}`, `Options.${BRIDGE_NAME_OPTION}`);
    if (this.bridgeNetworks().some((n) => n.bridge === bridge)) throw new ConflictError(`bridge ${bridge} is used by another network`);
    const record: NetworkRecord = {
      id,
      name,
      driver: 'bridge',
      created: new Date().toISOString(),
      builtin: false,
      internal: req.Internal === true,
      attachable: req.Attachable === true,
      labels,
      options,
      bridge,
      subnet: subnetCidr(subnet),
      gateway: subnet.gateway,
      ...(config.Subnet && !config.Gateway ? { gatewayGiven: false } : {}),
      ...(config.Subnet ? {} : { autoSubnet: true }),
      ...(configFrom ? { configFrom } : {}),
      ...(mtu ? { mtu } : {}),
      ...(config.IPRange ? { ipRange: config.IPRange } : {}),
      ...(Object.keys(aux).length ? { auxAddresses: aux } : {}),
      ...(ipamOptions ? { ipamOptions } : {}),
    };
    ensureBridge(bridge, subnet, mtu);
    try {
      this.store.save(record);
      this.applyNat();
    } catch (err) {
      this.store.delete(id);
      removeBridge(bridge);
      throw err;
    }
    void this.listenDns(record);
    this.opts.events.emit('network', 'create', id, { name, type: 'bridge' });
    return { id, warning: '' };
  }

  /**
   * A configuration-only network: its IPAM config (as given: nothing is allocated, so nothing
   * overlaps), options and labels, for networks made `--config-from` it. No bridge, no endpoints.
   */
  private createConfigOnly(
    name: string,
    config: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> },
    rest: { options: Record<string, string>; labels: Record<string, string>; ipamOptions?: Record<string, string> },
  ): { id: string; warning: string } {
    let subnet: Subnet | undefined;
    if (config.Subnet) subnet = parseSubnet(config.Subnet, config.Gateway);
    if (subnet && config.IPRange) parseRange(config.IPRange, subnet);
    const aux = labelsOf(config.AuxiliaryAddresses, 'IPAM.Config.AuxiliaryAddresses');
    const id = this.store.newId();
    this.store.save({
      id,
      name,
      driver: 'null',
      created: new Date().toISOString(),
      builtin: false,
      internal: false,
      attachable: false,
      configOnly: true,
      labels: rest.labels,
      options: rest.options,
      ...(subnet ? { subnet: subnetCidr(subnet), gateway: subnet.gateway, ...(config.Gateway ? {} : { gatewayGiven: false }) } : {}),
      ...(config.IPRange ? { ipRange: config.IPRange } : {}),
      ...(Object.keys(aux).length ? { auxAddresses: aux } : {}),
      ...(rest.ipamOptions ? { ipamOptions: rest.ipamOptions } : {}),
    });
    this.opts.events.emit('network', 'create', id, { name, type: 'null' });
    return { id, warning: '' };
  }

  async remove(ref: string): Promise<void> {
    const n = this.store.get(ref);
    if (n.builtin) throw new ForbiddenError(`${n.name} is a pre-defined network and cannot be removed`);
    if (n.configOnly) {
      if (this.store.list().some((o) => o.configFrom === n.name)) throw new ForbiddenError(`error while removing network: configuration network ${JSON.stringify(n.name)} is in use`);
      this.store.delete(n.id);
      this.opts.events.emit('network', 'destroy', n.id, { name: n.name, type: n.driver });
      return;
    }
    const active = this.endpointsOn(n);
    if (active.length) throw new ForbiddenError(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    await this.opts.dns?.unlisten(n.gateway!).catch(() => undefined);
    this.store.delete(n.id);
    this.ipams.delete(n.id);
    fs.rmSync(path.join(this.opts.dir, `${n.bridge}.json`), { force: true });
    this.applyNat();
    removeBridge(n.bridge!);
    this.opts.events.emit('network', 'destroy', n.id, { name: n.name, type: n.driver });
  }

  /** `docker network prune`: the user-defined networks no container is on that pass the filters (until, label, label!). */
  async prune(filters: Record<string, string[]> = {}): Promise<string[]> {
    const matches = pruneMatcher(filters);
    const unused = this.list({ type: ['custom'] }).filter((n) => this.endpointsOn(n).length === 0 && matches({ created: n.created, labels: n.labels }));
    const removed: string[] = [];
    for (const n of unused) {
      await this.remove(n.id).then(
        () => removed.push(n.name),
        () => undefined,
      );
    }
    return removed;
  }

  // ---- containers --------------------------------------------------------------------------

  /**
   * HostConfig.NetworkMode and NetworkingConfig.EndpointsConfig at create: the kind of
   * namespace and the networks to join, by name, the mode's network first. Unknown networks
   * are a 400 (a 404 from create makes the docker CLI go pulling the image).
   */
  resolveMode(mode: unknown, endpointsConfig: Record<string, EndpointConfig> | null | undefined): { kind: NetworkModeKind; endpoints: Record<string, EndpointConfig> } {
    if (mode !== undefined && mode !== null && typeof mode !== 'string') throw new InvalidArgumentError('must be a string', 'HostConfig.NetworkMode');
    const name = mode || 'default';
    if (name === 'host' || name === 'none' || name.startsWith('container:')) {
      // No endpoint of its own: an address or aliases asked for it are refused, as dockerd does.
      for (const config of Object.values(endpointsConfig ?? {})) {
        if (config?.IPAMConfig?.IPv4Address) throw new InvalidArgumentError('user specified IP address is supported on user defined networks only', 'IPAMConfig.IPv4Address');
        if (config?.Aliases?.length) throw new InvalidArgumentError('network-scoped alias is supported only for containers in user defined networks', 'Aliases');
      }
    }
    if (name === 'host') return { kind: { kind: 'host' }, endpoints: {} };
    if (name === 'none') return { kind: { kind: 'private' }, endpoints: {} };
    if (name.startsWith('container:')) return { kind: { kind: 'container', ref: name.slice('container:'.length) }, endpoints: {} };
    const primary = name === 'default' ? this.store.byName('bridge') : this.store.find(name);
    if (!primary && name !== 'default' && name !== 'bridge') throw new InvalidArgumentError(`network ${name} not found`); // dockerd's words
    const endpoints: Record<string, EndpointConfig> = {};
    const wanted = { ...(endpointsConfig ?? {}) };
    // The docker CLI repeats the mode's network in EndpointsConfig ("default" too): never a second network.
    delete wanted[name];
    if (name === 'default' || name === 'bridge') for (const alias of ['default', 'bridge']) delete wanted[alias];
    if (primary) {
      if (primary.configOnly) throw new ForbiddenError(CONFIG_ONLY_ENDPOINT);
      if (primary.driver !== 'bridge') throw new InvalidArgumentError(`container cannot be connected to network ${primary.name} as its network mode`, 'HostConfig.NetworkMode');
      const config = endpointsConfig?.[primary.name] ?? endpointsConfig?.[primary.id] ?? endpointsConfig?.[name] ?? {};
      delete wanted[primary.name];
      delete wanted[primary.id];
      delete wanted[name];
      endpoints[primary.name] = this.endpointConfig(primary, config);
    }
    for (const [ref, config] of Object.entries(wanted)) {
      const n = this.store.find(ref);
      if (!n) throw new InvalidArgumentError(`network ${ref} not found`, 'NetworkingConfig.EndpointsConfig');
      if (n.configOnly) throw new ForbiddenError(CONFIG_ONLY_ENDPOINT);
      if (n.driver !== 'bridge') throw new InvalidArgumentError(`container cannot be disconnected from host network or connected to host network`, 'NetworkingConfig.EndpointsConfig');
      if (!primary) throw new InvalidArgumentError('a container on no bridge network cannot join others at create', 'NetworkingConfig.EndpointsConfig');
      endpoints[n.name] = this.endpointConfig(n, config ?? {});
    }
    return { kind: { kind: 'private' }, endpoints };
  }

  /** Checks a container's wish to be on a network (create, connect); the config to persist. */
  endpointConfig(n: NetworkRecord, config: EndpointConfig): EndpointConfig {
    const ip = config.IPAMConfig?.IPv4Address;
    if (ip) {
      if (n.builtin) throw new InvalidArgumentError('user specified IP address is supported on user defined networks only', 'IPAMConfig.IPv4Address');
      // dockerd: a subnet it picked may change; an address in it is not the user's to keep.
      if (n.autoSubnet) throw new InvalidArgumentError('user specified IP address is supported only when connecting to networks with user configured subnets', 'IPAMConfig.IPv4Address');
      if (!subnetContains(this.subnetOf(n), ip)) throw new InvalidArgumentError(`no configured subnet contains IP address ${ip}`, 'IPAMConfig.IPv4Address');
    }
    for (const field of ['Aliases', 'Links'] as const) {
      const v = config[field];
      if (v !== undefined && v !== null && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) throw new InvalidArgumentError('must be a list of strings', `EndpointsConfig.${n.name}.${field}`);
    }
    if (n.builtin && config.Aliases?.length) throw new InvalidArgumentError('network-scoped alias is supported only for containers in user defined networks', `EndpointsConfig.${n.name}.Aliases`);
    const mac = config.MacAddress;
    if (mac !== undefined && mac !== '' && (typeof mac !== 'string' || !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac))) throw new InvalidArgumentError(`invalid MAC address: ${String(mac)}`, `EndpointsConfig.${n.name}.MacAddress`);
    if (typeof mac === 'string' && mac !== '' && parseInt(mac.slice(0, 2), 16) & 1) throw new InvalidArgumentError(`${mac} is a multicast address, not a unicast one`, `EndpointsConfig.${n.name}.MacAddress`);
    const driverOpts = config.DriverOpts as Record<string, unknown> | null | undefined;
    const sysctls = driverOpts?.[ENDPOINT_SYSCTLS_OPTION];
    if (sysctls !== undefined && typeof sysctls !== 'string') throw new InvalidArgumentError('must be a string', `EndpointsConfig.${n.name}.DriverOpts.${ENDPOINT_SYSCTLS_OPTION}`);
    parseEndpointSysctls(sysctls, `EndpointsConfig.${n.name}.DriverOpts`);
    const { berthJoined: _ignored, ...given } = config; // Berth's own field is not the client's to set
    return { ...given, ...(mac ? { MacAddress: mac.toLowerCase() } : {}), NetworkID: n.id };
  }

  /**
   * Plugs a started container (its PID 1 exists, its program not yet running) into each of
   * its networks, then publishes its ports on the first. On failure nothing stays.
   */
  async attach(c: { id: string; pid: number; endpoints: Record<string, EndpointConfig>; ports: Record<string, PortBinding[]> }): Promise<{ networks: Record<string, EndpointState>; ports?: PortMap }> {
    const networks: Record<string, EndpointState> = {};
    // 127.0.0.11's redirect, made in the container's namespace while the veths are plugged.
    const dnsGateway = this.opts.dnsRedirect ? this.dnsGatewayFor(Object.keys(c.endpoints)) : undefined;
    const dnsRedirected = dnsGateway ? redirectDns(c.pid, dnsGateway, true).then(() => undefined, (err: unknown) => err) : undefined;
    try {
      let routed = false;
      for (const [name, config] of Object.entries(c.endpoints)) {
        const n = this.store.find(config.NetworkID ?? name) ?? this.store.find(name);
        if (!n || n.driver !== 'bridge') throw new NotFoundError(`network ${name} not found`);
        networks[n.name] = this.plug(n, c.id, c.pid, `eth${Object.keys(networks).length}`, config, !routed && !n.internal);
        routed ||= !n.internal;
        // As dockerd: each network a starting container joins says so (compose and others follow them).
        this.opts.events.emit('network', 'connect', n.id, { container: c.id, name: n.name, type: n.driver });
      }
      const failed = await dnsRedirected;
      if (failed) throw failed;
      const primary = Object.values(networks)[0];
      let ports: PortMap | undefined;
      if (primary && Object.keys(c.ports).length) {
        const n = this.store.get(primary.networkId);
        ports = await this.opts.ports.publish(c.id, { ip: primary.ip, bridge: n.bridge!, defaultHostIp: bridgeDriverOptions(n.options).hostBindingIp }, c.ports);
        // Its own published ports through a host address: out the port the packet came in.
        enableHairpin(primary.hostVeth);
        this.applyNat();
      }
      return { networks, ...(ports ? { ports } : {}) };
    } catch (err) {
      await dnsRedirected; // never left running into a namespace being torn down
      (await this.release(c.id, networks))();
      throw err;
    }
  }

  private plug(n: NetworkRecord, containerId: string, pid: number, ifname: string, config: EndpointConfig, defaultRoute: boolean): EndpointState {
    const ipam = this.ipam(n);
    const ip = ipam.allocate(containerId, config.IPAMConfig?.IPv4Address || undefined);
    const subnet = this.subnetOf(n);
    const hostVeth = vethName(containerId, n.id);
    const mac = config.MacAddress || macFor(ip);
    try {
      attachToBridge({ bridge: n.bridge!, pid, hostVeth, ifname, ip, mac, subnet, mtu: n.mtu, defaultRoute });
      // enable_icc=false: an isolated bridge port reaches the bridge (the gateway, the way
      // out) but no other isolated port, i.e. no other container. This holds without
      // br_netfilter, which iptables rules between bridge ports would need.
      if (!bridgeDriverOptions(n.options).icc) isolatePort(hostVeth);
      // The endpoint's own interface sysctls (a process only for an endpoint that has some).
      const sysctls = parseEndpointSysctls((config.DriverOpts as Record<string, string> | null | undefined)?.[ENDPOINT_SYSCTLS_OPTION], 'DriverOpts');
      if (sysctls.length) setSysctls(pid, sysctls.map(({ key, value }) => ({ key: key.replace(/\.(IFNAME|ifname)\./, `.${ifname}.`), value })));
    } catch (err) {
      ipam.release(containerId);
      throw err;
    }
    return { networkId: n.id, endpointId: crypto.randomBytes(32).toString('hex'), ip, prefix: subnet.prefix, gateway: n.internal ? '' : subnet.gateway, mac, hostVeth, ifname };
  }

  /**
   * A container in `none` or `host` mode is on that network while it runs, as dockerd has it:
   * its start and its end say so (`network connect` and `disconnect`, type null or host).
   */
  modeEvent(action: 'connect' | 'disconnect', containerId: string, networkMode: unknown): void {
    if (networkMode !== 'none' && networkMode !== 'host') return;
    const n = this.store.byName(networkMode);
    if (n) this.opts.events.emit('network', action, n.id, { container: containerId, name: n.name, type: n.driver });
  }

  /**
   * After a container's run (or a failed start): ports closed now; veths deleted off the exit
   * path (the kernel removes a dead namespace's own a little later anyway), and the addresses
   * freed only once they are gone, so that no new container shares an address with a port
   * still on the bridge.
   */
  async release(containerId: string, networks: Record<string, EndpointState> | undefined, networkMode?: unknown): Promise<() => void> {
    const portsBefore = this.opts.ports.natPorts().length;
    await this.opts.ports.unpublish(containerId);
    if (this.opts.ports.natPorts().length !== portsBefore) this.applyNat();
    const free = (): void => {
      for (const n of this.bridgeNetworks()) this.ipam(n).release(containerId);
    };
    const veths = Object.values(networks ?? {}).map((e) => e.hostVeth);
    if (veths.length === 0) free();
    else void Promise.all(veths.map(detachVethAsync)).then(free);
    // `network disconnect` for each network, and for a none or host mode's: said by the caller
    // when it calls this (after `die`, in dockerd's order).
    return () => {
      for (const [name, e] of Object.entries(networks ?? {})) this.opts.events.emit('network', 'disconnect', e.networkId, { container: containerId, name, type: 'bridge' });
      this.modeEvent('disconnect', containerId, networkMode);
    };
  }


  /** `docker network connect` of a running container: a new interface now. */
  connectRunning(c: { id: string; pid: number; networks: Record<string, EndpointState> }, network: NetworkRecord, config: EndpointConfig): EndpointState {
    if (network.driver !== 'bridge') throw new ForbiddenError(`container cannot be disconnected from host network or connected to host network`);
    if (c.networks[network.name]) throw new ForbiddenError(`endpoint with name ${network.name} already exists in network ${network.name}`);
    const taken = new Set(interfacesOf(c.pid));
    let i = 0;
    while (taken.has(`eth${i}`)) i++;
    const state = this.plug(network, c.id, c.pid, `eth${i}`, config, !network.internal && !hasDefaultRoute(c.pid));
    this.opts.events.emit('network', 'connect', network.id, { container: c.id, name: network.name, type: network.driver });
    return state;
  }

  disconnectRunning(containerId: string, network: NetworkRecord, endpoint: EndpointState): void {
    detachVeth(endpoint.hostVeth);
    this.ipam(network).release(containerId);
    this.opts.events.emit('network', 'disconnect', network.id, { container: containerId, name: network.name, type: network.driver });
  }

  /** The embedded DNS server's address for a container: its first user-defined network's gateway. */
  dnsServerFor(endpoints: Record<string, EndpointConfig>): string | undefined {
    const gateway = this.dnsGatewayFor(Object.keys(endpoints));
    return gateway && this.opts.dnsRedirect ? EMBEDDED_DNS_ADDRESS : gateway;
  }

  /** The gateway whose DNS server a container on these networks asks: its first user-defined network's. */
  private dnsGatewayFor(networks: string[]): string | undefined {
    if (!this.opts.dns) return undefined;
    for (const name of networks) {
      const n = this.store.byName(name);
      if (n && !n.builtin && n.gateway) return n.gateway;
    }
    return undefined;
  }

  /**
   * Points a running container's 127.0.0.11 at the DNS server of its networks (now these), once
   * they changed by a connect or a disconnect. Nothing to do without a user-defined network.
   */
  async redirectDns(pid: number, networks: string[]): Promise<void> {
    const gateway = this.opts.dnsRedirect ? this.dnsGatewayFor(networks) : undefined;
    // The network change itself stands: a failure here is said, not thrown back at it.
    if (gateway) await redirectDns(pid, gateway).catch((err: Error) => process.emitWarning(`container ${pid}: ${err.message}`));
  }

  /** The default bridge's gateway (--add-host name:host-gateway). */
  hostGateway(): string | undefined {
    return this.store.byName('bridge')?.gateway;
  }

  /**
   * After a daemon (re)start, with the containers that still run: addresses of the others
   * freed, ports reserved again, kernel rules made exactly what they should be (nothing stale
   * from the dead daemon, nothing missing), DNS answering on each user-defined network.
   */
  async reconcile(): Promise<void> {
    const running = this.members().filter((m) => m.running);
    for (const n of this.bridgeNetworks()) this.ipam(n).retain(new Set(running.filter((m) => m.networks[n.name]).map((m) => m.id)));
    for (const n of this.bridgeNetworks()) void this.listenDns(n);
    this.applyNat();
  }

  /** Reserves a running container's published ports again (after a daemon restart). */
  async republish(containerId: string, networks: Record<string, EndpointState>, ports: PortMap): Promise<void> {
    const primary = Object.values(networks)[0];
    const n = primary && this.store.find(primary.networkId);
    if (!primary || !n) return;
    await this.opts.ports.publish(containerId, { ip: primary.ip, bridge: n.bridge!, defaultHostIp: bridgeDriverOptions(n.options).hostBindingIp }, bindingsOf(ports));
  }

  /** Makes the kernel's rules exactly what the networks and published ports need (iptables-restore, a few ms). */
  applyNat(): void {
    const networks = this.bridgeNetworks().map((n) => {
      const { icc, masquerade } = bridgeDriverOptions(n.options);
      return { bridge: n.bridge!, subnet: n.subnet!, gateway: n.gateway!, internal: n.internal, icc, masquerade };
    });
    const ports = this.opts.ports.natPorts();
    // No bridge at all (berthd --bridge none, no networks): no chains, and ip_forward left alone.
    if (networks.length === 0 && ports.length === 0) this.opts.nat?.removeAll();
    else this.opts.nat?.apply({ networks, ports });
  }

  private async listenDns(n: NetworkRecord): Promise<void> {
    if (!this.opts.dns || n.builtin || !n.gateway) return;
    await this.opts.dns.listen(n.gateway, { forward: !n.internal }).catch((err: Error) => process.emitWarning(`network ${n.name}: the embedded DNS server cannot listen on ${n.gateway}: ${err.message}`));
  }

  // ---- the embedded DNS server's view -------------------------------------------------------

  /** Addresses for a name asked by the container at `client`: names, aliases and links on the client's network. */
  lookup(name: string, client: string): string[] | undefined {
    const wanted = name.toLowerCase().replace(/\.$/, '');
    const members = this.members().filter((m) => m.running);
    const asking = members.flatMap((m) => Object.entries(m.networks).flatMap(([net, e]) => (e.ip === client ? [{ member: m, net }] : [])))[0];
    if (!asking) return undefined;
    // Every network the asking container is on, the one it asked from first: Docker's resolver
    // answers names of all of them (its sandbox's endpoints, in order).
    const nets = [asking.net, ...Object.keys(asking.member.networks).filter((n) => n !== asking.net)];
    for (const net of nets) {
      const found = this.lookupOn(net, wanted, asking.member, members);
      if (found) return found;
    }
    return undefined;
  }

  /** A name (lower case, no final dot) on one user-defined network, for `self` asking there. */
  private lookupOn(net: string, wanted: string, self: NetworkMember, members: NetworkMember[]): string[] | undefined {
    const network = this.store.byName(net);
    if (!network || network.builtin) return undefined;
    // "name.network" as well as "name", as Docker's resolver answers both.
    const suffix = `.${net.toLowerCase()}`;
    const bare = wanted.endsWith(suffix) ? wanted.slice(0, -suffix.length) : undefined;
    // --link target:alias on this network.
    for (const link of self.endpoints[net]?.Links ?? []) {
      const [target, alias] = link.split(':');
      if ((alias ?? target)!.toLowerCase() === wanted) {
        const t = members.find((m) => m.name === target!.replace(/^\//, ''));
        const ip = t?.networks[net]?.ip;
        if (ip) return [ip];
      }
    }
    const found = members.flatMap((m) => {
      const e = m.networks[net];
      if (!e) return [];
      const names = [m.name, m.id.slice(0, 12), ...(m.endpoints[net]?.Aliases ?? [])].map((x) => x.toLowerCase());
      return names.includes(wanted) || (bare !== undefined && names.includes(bare)) ? [e.ip] : [];
    });
    return found.length ? found : undefined;
  }

  /** The --dns servers of the container at `client`, if it has some. */
  dnsServersOf(client: string): string[] | undefined {
    const m = this.members().find((x) => x.running && Object.values(x.networks).some((e) => e.ip === client));
    return m?.dns?.length ? m.dns : undefined;
  }

  /** The name for a container's address on the client's network (PTR). */
  reverse(ip: string, client: string): string | undefined {
    for (const m of this.members()) {
      if (!m.running) continue;
      for (const [net, e] of Object.entries(m.networks)) {
        const n = this.store.byName(net);
        if (e.ip === ip && n && !n.builtin && this.members().some((x) => x.running && x.networks[net]?.ip === client)) return `${m.name}.${net}`;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.opts.dns?.close().catch(() => undefined);
    await this.opts.ports.close();
  }
}

