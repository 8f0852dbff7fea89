/**
 * berthd's configuration file (dockerd's daemon.json keys) checked as dockerd checks it: a key
 * no daemon knows is refused by name (a typo would otherwise be silently without effect), each
 * key berthd uses must have its type, and dockerd keys berthd accepts without acting on them
 * are reported so that the log says so. Also the containers' defaults the file or the flags give
 * (DNS, ulimits, /dev/shm size, IPC and cgroup namespace modes, no_new_privs), the default
 * bridge's settings and the daemon's labels. Pure: no file system.
 */
import { InvalidArgumentError } from '../common/errors.js';
import { goParseBool, parseUlimitSpec, ramInBytes } from '../common/units.js';
import type { ContainerDefaults } from '../engine/containers/defaults.js';
import type { TransferLimits } from '../engine/images.js';
import { type Mirror, parseMirror } from '../images/registry/mirrors.js';
import { type AddressPool, checkAddressPool, ipToInt } from '../network/ipam.js';

export interface DaemonConfig {
  hosts?: string[];
  'data-root'?: string;
  'exec-root'?: string;
  pidfile?: string;
  'insecure-registries'?: string[];
  group?: string;
  'cgroup-parent'?: string;
  'userns-remap'?: string;
  bridge?: string;
  bip?: string;
  iptables?: boolean;
  'resolv-conf'?: string;
  'cgroup-favordynmods'?: boolean;
  'exec-root-tmpfs'?: boolean;
  debug?: boolean;
  'log-level'?: string;
  'log-driver'?: string;
  'log-opts'?: Record<string, string>;
  dns?: string[];
  'dns-search'?: string[];
  'dns-opts'?: string[];
  'default-ulimits'?: Record<string, { Name?: string; Hard?: number; Soft?: number }>;
  'default-shm-size'?: string;
  'default-ipc-mode'?: string;
  'default-cgroupns-mode'?: string;
  icc?: boolean;
  ip?: string;
  'ip-masq'?: boolean;
  mtu?: number;
  'fixed-cidr'?: string;
  'no-new-privileges'?: boolean;
  'seccomp-profile'?: string;
  labels?: string[];
  'default-address-pools'?: Array<{ base?: unknown; size?: unknown }>;
  'registry-mirrors'?: string[];
  'max-concurrent-downloads'?: number;
  'max-concurrent-uploads'?: number;
  'max-download-attempts'?: number;
  'default-network-opts'?: Record<string, Record<string, string>>;
  'ip-forward'?: boolean;
}

type Kind = 'string' | 'boolean' | 'strings' | 'object' | 'integer' | 'objects';

/** The keys berthd reads, by the type dockerd gives them. */
const USED: Record<keyof DaemonConfig, Kind> = {
  hosts: 'strings',
  'data-root': 'string',
  'exec-root': 'string',
  pidfile: 'string',
  'insecure-registries': 'strings',
  group: 'string',
  'cgroup-parent': 'string',
  'userns-remap': 'string',
  bridge: 'string',
  bip: 'string',
  iptables: 'boolean',
  'resolv-conf': 'string',
  'cgroup-favordynmods': 'boolean',
  'exec-root-tmpfs': 'boolean',
  debug: 'boolean',
  'log-level': 'string',
  'log-driver': 'string',
  'log-opts': 'object',
  dns: 'strings',
  'dns-search': 'strings',
  'dns-opts': 'strings',
  'default-ulimits': 'object',
  'default-shm-size': 'string',
  'default-ipc-mode': 'string',
  'default-cgroupns-mode': 'string',
  icc: 'boolean',
  ip: 'string',
  'ip-masq': 'boolean',
  mtu: 'integer',
  'fixed-cidr': 'string',
  'no-new-privileges': 'boolean',
  'seccomp-profile': 'string',
  labels: 'strings',
  'default-address-pools': 'objects',
  'registry-mirrors': 'strings',
  'max-concurrent-downloads': 'integer',
  'max-concurrent-uploads': 'integer',
  'max-download-attempts': 'integer',
  'default-network-opts': 'object',
  'ip-forward': 'boolean',
};

/**
 * dockerd keys berthd takes without acting on them: what they ask is what berthd does anyway
 * (live-restore, the overlay2 driver, no userland proxy), or it has no such part (swarm, TLS on
 * TCP sockets, plugins, metrics, mirrors).
 */
const ACCEPTED = new Set([
  'live-restore',
  'storage-driver',
  'storage-opts',
  'features',
  'experimental',
  'userland-proxy',
  'userland-proxy-path',
  'ipv6',
  'fixed-cidr-v6',
  'default-gateway',
  'selinux-enabled',
  'shutdown-timeout',
  'oom-score-adjust',
  'containerd',
  'containerd-namespace',
  'exec-opts',
  'default-runtime',
  'runtimes',
  'metrics-addr',
  'tls',
  'tlsverify',
  'tlscacert',
  'tlscert',
  'tlskey',
  'builder',
  'authorization-plugins',
  'allow-nondistributable-artifacts',
  'dns-options',
  'raw-logs',
  'log-format',
]);

export interface CheckedConfig {
  config: DaemonConfig;
  /** dockerd keys present that berthd does not act on, for the log. */
  ignored: string[];
}

/** Checks a parsed daemon.json: an object, its keys known, the ones berthd uses of their types. */
export function checkConfig(parsed: unknown): CheckedConfig {
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('not a JSON object');
  const entries = Object.entries(parsed as Record<string, unknown>);
  const unknown = entries.filter(([k]) => !(k in USED) && !ACCEPTED.has(k)).map(([k]) => k);
  // dockerd's words for the same mistake.
  if (unknown.length) throw new InvalidArgumentError(`the following directives don't match any configuration option: ${unknown.join(', ')}`);
  for (const [key, value] of entries) {
    const kind = USED[key as keyof DaemonConfig];
    if (!kind) continue;
    const ok =
      kind === 'strings'
        ? Array.isArray(value) && value.every((v) => typeof v === 'string')
        : kind === 'object'
          ? !!value && typeof value === 'object' && !Array.isArray(value)
          : kind === 'integer'
            ? Number.isSafeInteger(value)
            : kind === 'objects'
              ? Array.isArray(value) && value.every((v) => !!v && typeof v === 'object' && !Array.isArray(v))
              : typeof value === kind;
    const what = { strings: 'a list of strings', object: 'an object', integer: 'an integer', objects: 'a list of objects', string: 'a string', boolean: 'a boolean' }[kind];
    if (!ok) throw new InvalidArgumentError(`must be ${what}`, key);
  }
  if ('storage-driver' in (parsed as object) && (parsed as { 'storage-driver': unknown })['storage-driver'] !== 'overlay2') {
    throw new InvalidArgumentError('berthd has only the overlay2 storage driver', 'storage-driver');
  }
  // A default runtime berthd cannot run would be taken without effect: containers meant for it
  // (a GPU runtime's, say) would run without what it adds.
  const runtime = (parsed as { 'default-runtime'?: unknown })['default-runtime'];
  if (runtime !== undefined && runtime !== 'berth-oci' && runtime !== 'runc') {
    throw new InvalidArgumentError(`berthd runs containers with its own runtime, berth-oci (or under runc's name), not ${JSON.stringify(runtime)}`, 'default-runtime');
  }
  // Fail closed: plugins that are there to refuse requests, taken without effect, would let
  // every request through.
  const authz = (parsed as { 'authorization-plugins'?: unknown })['authorization-plugins'];
  if (authz !== undefined && authz !== null && !(Array.isArray(authz) && authz.length === 0)) {
    throw new InvalidArgumentError('berthd has no authorization plugins, and will not serve a configuration that counts on them to refuse requests', 'authorization-plugins');
  }
  return { config: parsed as DaemonConfig, ignored: entries.filter(([k]) => ACCEPTED.has(k)).map(([k]) => k) };
}

/** The default bridge's settings (dockerd's --icc, --ip-masq, --ip, --mtu, --fixed-cidr), as its network's options show them. */
export interface BridgeSettings {
  /** false: containers on it cannot reach one another (com.docker.network.bridge.enable_icc). */
  icc: boolean;
  /** false: no masquerade of its traffic leaving the host (com.docker.network.bridge.enable_ip_masquerade). */
  ipMasq: boolean;
  /** Where its containers' ports are published when the binding names no address (com.docker.network.bridge.host_binding_ipv4). */
  hostBindingIp: string;
  mtu?: number;
  /** The part of the subnet containers' addresses come from. */
  fixedCidr?: string;
}

/** Go's strconv.ParseBool, as dockerd's boolean flags read "--icc=false". */
function boolFlag(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  const parsed = goParseBool(value);
  if (parsed === undefined) throw new InvalidArgumentError(`invalid boolean value ${JSON.stringify(value)}`, `--${flag}`);
  return parsed;
}

/** The default bridge's settings from the flags (winning) and the file, checked. */
export function bridgeSettings(flags: { icc?: string; ip?: string; 'ip-masq'?: string; mtu?: string; 'fixed-cidr'?: string }, config: DaemonConfig): BridgeSettings {
  const hostBindingIp = flags.ip ?? config.ip ?? '0.0.0.0';
  try {
    ipToInt(hostBindingIp);
  } catch {
    throw new InvalidArgumentError(`${JSON.stringify(hostBindingIp)} is not an IPv4 address (berthd publishes IPv4 ports)`, 'ip');
  }
  const mtuText = flags.mtu ?? (config.mtu !== undefined ? String(config.mtu) : undefined);
  const mtu = mtuText === undefined ? undefined : Number(mtuText);
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw new InvalidArgumentError(`invalid MTU ${JSON.stringify(mtuText)} (68 to 65535)`, 'mtu');
  return {
    icc: boolFlag(flags.icc, 'icc') ?? config.icc ?? true,
    ipMasq: boolFlag(flags['ip-masq'], 'ip-masq') ?? config['ip-masq'] ?? true,
    hostBindingIp,
    ...(mtu !== undefined ? { mtu } : {}),
    ...((flags['fixed-cidr'] ?? config['fixed-cidr']) ? { fixedCidr: flags['fixed-cidr'] ?? config['fixed-cidr'] } : {}),
  };
}

/**
 * Where networks made without a subnet get one: dockerd's --default-address-pool
 * "base=10.10.0.0/16,size=24" (repeatable) or daemon.json's default-address-pools; undefined:
 * Docker's defaults.
 */
export function addressPools(flags: string[] | undefined, config: DaemonConfig): AddressPool[] | undefined {
  if (flags?.length) {
    return flags.map((text, i) => {
      const fields = Object.fromEntries(text.split(',').map((kv) => kv.split('=', 2).map((x) => x.trim()) as [string, string]));
      const unknown = Object.keys(fields).filter((k) => k !== 'base' && k !== 'size');
      if (unknown.length) throw new InvalidArgumentError(`unexpected key ${JSON.stringify(unknown[0])} in ${JSON.stringify(text)} (base=CIDR,size=N)`, 'default-address-pool');
      return checkAddressPool({ base: fields.base, size: /^\d+$/.test(fields.size ?? '') ? Number(fields.size) : NaN }, `default-address-pool[${i}]`);
    });
  }
  const pools = config['default-address-pools'];
  return pools?.length ? pools.map((p, i) => checkAddressPool(p, `default-address-pools[${i}]`)) : undefined;
}

/** How many blobs a pull or push moves at once, and attempts per download, from the flags or the file (each at least 1, as dockerd checks). */
export function transferLimits(flags: { 'max-concurrent-downloads'?: string; 'max-concurrent-uploads'?: string; 'max-download-attempts'?: string }, config: DaemonConfig): TransferLimits {
  const limits: TransferLimits = {};
  const pick = (key: 'max-concurrent-downloads' | 'max-concurrent-uploads' | 'max-download-attempts'): number | undefined => {
    const text = flags[key] ?? (config[key] !== undefined ? String(config[key]) : undefined);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError(`invalid value ${JSON.stringify(text)}: a positive integer`, key);
    return Number(text);
  };
  const downloads = pick('max-concurrent-downloads');
  const uploads = pick('max-concurrent-uploads');
  const attempts = pick('max-download-attempts');
  if (downloads !== undefined) limits.downloads = downloads;
  if (uploads !== undefined) limits.uploads = uploads;
  if (attempts !== undefined) limits.downloadAttempts = attempts;
  return limits;
}

/**
 * Driver options new networks get unless they set them (dockerd's --default-network-opt
 * "bridge=com.docker.network.driver.mtu=1400", daemon.json default-network-opts), by driver.
 */
export function defaultNetworkOptions(flags: string[] | undefined, config: DaemonConfig): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  if (flags?.length) {
    for (const text of flags) {
      const m = /^([^=]+)=([^=]+)=(.*)$/.exec(text);
      if (!m) throw new InvalidArgumentError(`invalid value ${JSON.stringify(text)}: expected DRIVER=KEY=VALUE`, 'default-network-opt');
      (out[m[1]!] ??= {})[m[2]!] = m[3]!;
    }
    return out;
  }
  for (const [driver, options] of Object.entries(config['default-network-opts'] ?? {})) {
    if (!options || typeof options !== 'object' || Array.isArray(options) || Object.values(options).some((v) => typeof v !== 'string')) {
      throw new InvalidArgumentError('must be an object of strings', `default-network-opts.${driver}`);
    }
    out[driver] = { ...options };
  }
  return out;
}

/** Docker Hub's mirrors (dockerd --registry-mirror, daemon.json registry-mirrors), checked as dockerd checks them. */
export function registryMirrors(flags: string[] | undefined, config: DaemonConfig): Mirror[] {
  return (flags ?? config['registry-mirrors'] ?? []).map(parseMirror);
}

/** dockerd's --ip-forward (default true): whether berthd turns net.ipv4.ip_forward on. */
export function ipForwardSetting(flag: string | undefined, config: DaemonConfig): boolean {
  return boolFlag(flag, 'ip-forward') ?? config['ip-forward'] ?? true;
}

/** The daemon's labels (dockerd --label, daemon.json labels), each "key=value" or "key" as dockerd takes them. */
export function daemonLabels(flags: string[] | undefined, config: DaemonConfig): string[] {
  const labels = flags ?? config.labels ?? [];
  for (const label of labels) if (label === '' || label.startsWith('=')) throw new InvalidArgumentError(`invalid label ${JSON.stringify(label)}`, 'label');
  return labels;
}

/** --default-ulimit nofile=1024:2048 → a Ulimit. */
export function parseUlimitFlag(text: string): { Name: string; Soft: number; Hard: number } {
  const u = parseUlimitSpec(text);
  if (!u) throw new InvalidArgumentError(`invalid ulimit argument: ${text}`, 'default-ulimit');
  return u;
}

/** The containers' defaults from the flags (winning) and the file. */
export function containerDefaults(
  flags: { dns?: string[]; 'dns-search'?: string[]; 'dns-opt'?: string[]; 'default-ulimit'?: string[]; 'default-shm-size'?: string; 'default-ipc-mode'?: string; 'default-cgroupns-mode'?: string; 'no-new-privileges'?: boolean },
  config: DaemonConfig,
): ContainerDefaults {
  const defaults: ContainerDefaults = {};
  if (flags['no-new-privileges'] ?? config['no-new-privileges']) defaults.noNewPrivileges = true;
  const dns = flags.dns ?? config.dns;
  if (dns?.length) defaults.dns = dns;
  const search = flags['dns-search'] ?? config['dns-search'];
  if (search?.length) defaults.dnsSearch = search;
  const opts = flags['dns-opt'] ?? config['dns-opts'];
  if (opts?.length) defaults.dnsOptions = opts;
  const ulimits = flags['default-ulimit']?.map(parseUlimitFlag) ?? Object.entries(config['default-ulimits'] ?? {}).map(([name, u]) => ({ Name: u?.Name ?? name, Soft: Number(u?.Soft), Hard: Number(u?.Hard) }));
  for (const u of ulimits) if (!Number.isInteger(u.Soft) || !Number.isInteger(u.Hard)) throw new InvalidArgumentError(`${u.Name}: Soft and Hard must be integers`, 'default-ulimits');
  if (ulimits.length) defaults.ulimits = ulimits;
  const shm = flags['default-shm-size'] ?? config['default-shm-size'];
  if (shm !== undefined) {
    const size = ramInBytes(shm);
    if (size === undefined) throw new InvalidArgumentError(`invalid size: '${shm}'`, 'default-shm-size');
    defaults.shmSize = size;
  }
  const ipc = flags['default-ipc-mode'] ?? config['default-ipc-mode'];
  if (ipc !== undefined) {
    if (ipc !== 'private' && ipc !== 'shareable') throw new InvalidArgumentError(`invalid default IPC mode: ${ipc} (private or shareable)`, 'default-ipc-mode');
    defaults.ipcMode = ipc;
  }
  const cgroupns = flags['default-cgroupns-mode'] ?? config['default-cgroupns-mode'];
  if (cgroupns !== undefined) {
    if (cgroupns !== 'private' && cgroupns !== 'host') throw new InvalidArgumentError(`invalid default cgroup namespace mode: ${cgroupns} (private or host)`, 'default-cgroupns-mode');
    defaults.cgroupnsMode = cgroupns;
  }
  return defaults;
}

/** Flags berthd reads beside the file (node:util parseArgs values, dockerd's names). */
export type DaemonFlags = Parameters<typeof containerDefaults>[0] &
  Parameters<typeof bridgeSettings>[0] &
  Parameters<typeof transferLimits>[0] & { label?: string[]; 'default-address-pool'?: string[]; 'registry-mirror'?: string[]; 'default-network-opt'?: string[]; 'ip-forward'?: string };

/** Every setting berthd takes from the flags and the file beside the paths, each checked (the first bad one throws). */
export function daemonSettings(flags: DaemonFlags, config: DaemonConfig) {
  return {
    containerDefaults: containerDefaults(flags, config),
    bridge: bridgeSettings(flags, config),
    labels: daemonLabels(flags.label, config),
    addressPools: addressPools(flags['default-address-pool'], config),
    registryMirrors: registryMirrors(flags['registry-mirror'], config),
    transfers: transferLimits(flags, config),
    defaultNetworkOptions: defaultNetworkOptions(flags['default-network-opt'], config),
    ipForward: ipForwardSetting(flags['ip-forward'], config),
  };
}
