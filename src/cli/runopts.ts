/**
 * `run`/`create` flags → the body of `POST /containers/create`, as the docker CLI (v28)
 * builds it. Pure: the environment, files and terminal size come in as parameters, so unit
 * tests compare the result with bodies captured from a real `docker run`.
 */
import { parseGoDuration } from '../common/duration.js';
import net from 'node:net';

import { FlagError, integerFlag, keyValues, parseRamSize, ramFlag } from './format.js';

export interface RunFlags {
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  name?: string;
  env?: string[];
  envFile?: string[];
  volume?: string[];
  mount?: string[];
  tmpfs?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  label?: string[];
  /** Lines of --label-file files, read by the caller (as --env-file). */
  labelFileLines?: string[];
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  network?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  ulimit?: string[];
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  init?: boolean;
  restart?: string;
  stopSignal?: string;
  stopTimeout?: string;
  device?: string[];
  userns?: string;
  platform?: string;
  attach?: string[];
  dns?: string[];
  addHost?: string[];
  networkAlias?: string[];
  ip?: string;
  /** --mac-address: the MAC on the container's network (Config.MacAddress, which berthd and dockerd put there). */
  macAddress?: string;
  link?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  shmSize?: string;
  groupAdd?: string[];
  logDriver?: string;
  logOpt?: string[];
  pid?: string;
  ipc?: string;
  uts?: string;
  cgroupns?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  memoryReservation?: string;
  memorySwap?: string;
  memorySwappiness?: string;
  oomKillDisable?: boolean;
  oomScoreAdj?: string;
  blkioWeight?: string;
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  deviceReadIops?: string[];
  deviceWriteIops?: string[];
  sysctl?: string[];
  domainname?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  noHealthcheck?: boolean;
  volumesFrom?: string[];
}

export interface CreateRequest {
  name?: string;
  platform?: string;
  body: {
    Hostname: string;
    Domainname: string;
    User: string;
    AttachStdin: boolean;
    AttachStdout: boolean;
    AttachStderr: boolean;
    ExposedPorts?: Record<string, object>;
    MacAddress?: string;
    Healthcheck?: Record<string, unknown>;
    Tty: boolean;
    OpenStdin: boolean;
    StdinOnce: boolean;
    Env: string[] | null;
    Cmd: string[] | null;
    Image: string;
    Volumes: Record<string, object>;
    WorkingDir: string;
    Entrypoint: string[] | null;
    Labels: Record<string, string>;
    StopSignal?: string;
    StopTimeout?: number;
    HostConfig: Record<string, unknown>;
    NetworkingConfig: { EndpointsConfig: Record<string, object> };
  };
}

export { FlagError };

/** Reads an --env-file's lines: `KEY=value`, `KEY` (taken from env), comments and blanks skipped. */
export function parseEnvFile(text: string, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    if (line.includes('=')) out.push(line);
    else if (env[line.trim()] !== undefined) out.push(`${line.trim()}=${env[line.trim()]}`);
  }
  return out;
}

const SYSCTLS_ALLOWED = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/**
 * The values the docker CLI checks as it parses its flags (opts.ValidateEnv, ValidateLabel,
 * ValidateExtraHost, ValidateIPAddress, ValidateSysctl), refused in its words.
 */
function checkFlagValues(flags: RunFlags): void {
  const bad = (value: string, flag: string, why: string): FlagError => new FlagError(`invalid argument "${value}" for "${flag}" flag: ${why}`);
  for (const e of flags.env ?? []) if (e.split('=')[0] === '') throw bad(e, '-e, --env', `invalid environment variable: ${e}`);
  for (const l of flags.label ?? []) if (l.split('=')[0] === '') throw bad(l, '-l, --label', `invalid label '${l}': empty name`);
  for (const h of flags.addHost ?? []) {
    let sep = h.indexOf('=');
    if (sep < 0) sep = h.indexOf(':');
    const name = sep < 0 ? '' : h.slice(0, sep);
    let ip = h.slice(sep + 1);
    if (sep < 0 || name === '' || name.includes(':')) throw bad(h, '--add-host', `bad format for add-host: ${JSON.stringify(h)}`);
    if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (ip !== 'host-gateway' && !net.isIP(ip.trim())) throw bad(h, '--add-host', `invalid IP address in add-host: ${JSON.stringify(ip)}`);
  }
  for (const d of flags.dns ?? []) if (!net.isIP(d.trim())) throw bad(d, '--dns', `IP address is not correctly formatted: ${d}`);
  for (const s of flags.sysctl ?? []) {
    const key = s.split('=')[0]!;
    if (!s.includes('=') || !(SYSCTLS_ALLOWED.includes(key) || key.startsWith('net.') || key.startsWith('fs.mqueue.'))) throw bad(s, '--sysctl', `sysctl '${s}' is not allowed`);
  }
}

/** `-e KEY` takes KEY's value from the environment when set; else it stays `KEY` (as docker v28 sends it). */
function envEntry(e: string, env: NodeJS.ProcessEnv): string {
  if (e.includes('=')) return e;
  return env[e] !== undefined ? `${e}=${env[e]}` : e;
}

/** -p [ip:][hostPort:]containerPort[/proto], with ranges. */
export function parsePublish(specs: string[]): { exposed: Record<string, object>; bindings: Record<string, { HostIp: string; HostPort: string }[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const spec of specs) {
    let [rest, proto = 'tcp'] = spec.split('/');
    let ip = '';
    // An IPv6 host address is bracketed: [::1]:80:80
    const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
    if (v6) {
      ip = v6[1];
      rest = v6[2];
    }
    const parts = rest.split(':');
    let hostPort = '';
    let containerPort: string;
    if (parts.length === 1) containerPort = parts[0];
    else if (parts.length === 2) [hostPort, containerPort] = parts;
    else if (parts.length === 3 && !v6) [ip, hostPort, containerPort] = parts;
    else throw new FlagError(`invalid publish spec: ${spec}`);
    const portRange = (p: string): boolean => /^\d+(-\d+)?$/.test(p) && p.split('-').every((n) => Number(n) <= 65535);
    if (!portRange(containerPort)) throw new FlagError(`invalid containerPort: ${containerPort}`);
    if (hostPort && !portRange(hostPort)) throw new FlagError(`invalid hostPort: ${hostPort}`);
    proto = proto.toLowerCase();
    const [cStart, cEnd = cStart] = containerPort.split('-').map(Number);
    const [hStart, hEnd] = hostPort ? hostPort.split('-').map(Number) : [NaN, NaN];
    const count = cEnd - cStart + 1;
    for (let i = 0; i < count; i++) {
      const key = `${cStart + i}/${proto}`;
      exposed[key] = {};
      let hp = '';
      if (hostPort) hp = hEnd !== undefined && !Number.isNaN(hEnd) && hEnd !== hStart ? (count === 1 ? `${hStart}-${hEnd}` : String(hStart + i)) : String(hStart + i);
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hp });
    }
  }
  return { exposed, bindings };
}

const truthyValue = (v: string | undefined): boolean => v === undefined || v === '' || v === 'true' || v === '1';

/** --mount type=bind|volume|tmpfs,source=..,target=..,readonly,... → a Mount object. */
export function parseMount(spec: string): Record<string, unknown> {
  const m: Record<string, unknown> = { Type: 'volume' };
  const volumeOpts: Record<string, unknown> = {};
  const bindOpts: Record<string, unknown> = {};
  const tmpfsOpts: Record<string, unknown> = {};
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    switch (key) {
      case 'type':
        m.Type = val;
        break;
      case 'source':
      case 'src':
        m.Source = val;
        break;
      case 'target':
      case 'destination':
      case 'dst':
        m.Target = val;
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = truthyValue(val);
        break;
      case 'consistency':
        m.Consistency = val;
        break;
      case 'bind-propagation':
        bindOpts.Propagation = val;
        break;
      // The docker CLI's words for BindOptions' recursion fields.
      case 'bind-recursive':
        switch (val ?? 'enabled') {
          case 'enabled':
            break;
          case 'disabled':
            bindOpts.NonRecursive = true;
            break;
          case 'writable':
            bindOpts.ReadOnlyNonRecursive = true;
            break;
          case 'readonly':
            bindOpts.ReadOnlyForceRecursive = true;
            break;
          default:
            throw new FlagError(`invalid argument "${spec}" for "--mount" flag: invalid value for ${key}: ${val}`);
        }
        break;
      case 'bind-nonrecursive':
        bindOpts.NonRecursive = truthyValue(val);
        break;
      case 'bind-create-mountpoint':
        bindOpts.CreateMountpoint = truthyValue(val);
        break;
      case 'volume-nocopy':
        volumeOpts.NoCopy = truthyValue(val);
        break;
      case 'volume-subpath':
        volumeOpts.Subpath = val;
        break;
      case 'volume-label': {
        const [k, v = ''] = (val ?? '').split(/=(.*)/s);
        ((volumeOpts.Labels ??= {}) as Record<string, string>)[k] = v;
        break;
      }
      case 'volume-driver':
        volumeOpts.DriverConfig = { ...(volumeOpts.DriverConfig as object), Name: val };
        break;
      case 'volume-opt': {
        const [k, v = ''] = (val ?? '').split(/=(.*)/s);
        const dc = (volumeOpts.DriverConfig ??= {}) as Record<string, unknown>;
        ((dc.Options ??= {}) as Record<string, string>)[k] = v;
        break;
      }
      case 'tmpfs-size':
        tmpfsOpts.SizeBytes = parseRamSize(val ?? '');
        break;
      case 'tmpfs-mode':
        tmpfsOpts.Mode = parseInt(val ?? '', 8);
        break;
      default:
        throw new FlagError(`invalid argument "${spec}" for "--mount" flag: unexpected key '${key}' in '${field}'`);
    }
  }
  if (!m.Target) throw new FlagError(`invalid argument "${spec}" for "--mount" flag: target is required`);
  if (Object.keys(bindOpts).length) m.BindOptions = bindOpts;
  if (Object.keys(volumeOpts).length) m.VolumeOptions = volumeOpts;
  if (Object.keys(tmpfsOpts).length) m.TmpfsOptions = tmpfsOpts;
  return m;
}

const ULIMIT_NAMES = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** --ulimit name=soft[:hard], as go-units' ParseUlimit reads and refuses it. */
export function parseUlimit(spec: string): { Name: string; Hard: number; Soft: number } {
  const bad = (why: string): FlagError => new FlagError(`invalid argument "${spec}" for "--ulimit" flag: ${why}`);
  const eq = spec.indexOf('=');
  if (eq < 0) throw bad(`invalid ulimit argument: ${spec}`);
  const name = spec.slice(0, eq);
  if (!ULIMIT_NAMES.includes(name)) throw bad(`invalid ulimit type: ${name}`);
  const values = spec.slice(eq + 1).split(':');
  if (values.length > 2) throw bad(`too many limit value arguments - ${spec.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const int = (v: string): number => {
    if (!/^[+-]?\d+$/.test(v)) throw bad(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
    return Number(v);
  };
  const hard = values.length === 2 ? int(values[1]!) : undefined;
  const soft = int(values[0]!);
  if (hard !== undefined && hard !== -1 && soft > hard) throw bad(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: name, Hard: hard ?? soft, Soft: soft };
}

/** --restart no|always|unless-stopped|on-failure[:N]. */
export function parseRestart(spec: string | undefined): { Name: string; MaximumRetryCount: number } {
  if (!spec) return { Name: 'no', MaximumRetryCount: 0 };
  // As the docker CLI's ParseRestartPolicy: the name is the daemon's to judge, the count must be a number.
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const count = colon < 0 ? '' : spec.slice(colon + 1);
  if (colon >= 0 && name === '') throw new FlagError('invalid restart policy format: no policy provided before colon');
  if (count !== '' && !/^[+-]?\d+$/.test(count)) throw new FlagError('invalid restart policy format: maximum retry count must be an integer');
  return { Name: name, MaximumRetryCount: count ? Number(count) : 0 };
}

/** --device /dev/x[:/dev/y][:rwm]. */
export function parseDevice(spec: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const parts = spec.split(':');
  const host = parts[0];
  let inContainer = host;
  let perms = 'rwm';
  if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1])) perms = parts[1];
    else inContainer = parts[1];
  } else if (parts.length === 3) {
    inContainer = parts[1];
    perms = parts[2];
  } else if (parts.length > 3) throw new FlagError(`invalid device specification: ${spec}`);
  return { PathOnHost: host, PathInContainer: inContainer, CgroupPermissions: perms };
}

const capName = (c: string): string => (c.toUpperCase() === 'ALL' ? 'ALL' : c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`);

/**
 * The create request for `run`/`create` flags. `fromRun` distinguishes `run -d` (nothing
 * attached) from `create` (stdout/stderr attached, as docker create sends).
 */
export function buildCreateRequest(
  flags: RunFlags,
  image: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; envFiles?: string[]; consoleSize?: [number, number] } = {},
): CreateRequest {
  const env = opts.env ?? {};
  checkFlagValues(flags);
  const envList = [...(opts.envFiles ?? []), ...(flags.env ?? []).map((e) => envEntry(e, env))];

  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of flags.volume ?? []) {
    // A lone container path is an anonymous volume; anything with a source is a bind or named volume.
    const parts = v.split(':');
    if (parts.length === 1) volumes[v] = {};
    else if (parts.length <= 3) binds.push(v);
    else throw new FlagError(`invalid volume specification: '${v}'`);
  }
  const tmpfs: Record<string, string> = {};
  for (const t of flags.tmpfs ?? []) {
    const i = t.indexOf(':');
    tmpfs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1);
  }
  // Labels from --label-file first, then -l, as the docker CLI merges them.
  const labels = keyValues([...(flags.labelFileLines ?? []), ...(flags.label ?? [])]);
  const { exposed, bindings } = parsePublish(flags.publish ?? []);
  for (const e of flags.expose ?? []) {
    const [p, proto = 'tcp'] = e.split('/');
    exposed[`${p}/${proto}`] = {};
  }

  const attachList = (flags.attach ?? []).map((a) => a.toLowerCase());
  for (const a of attachList) if (!['stdin', 'stdout', 'stderr'].includes(a)) throw new FlagError(`invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`);
  const detach = !!flags.detach;
  if (detach && attachList.length) throw new FlagError('Conflicting options: -a and -d');
  if (detach && flags.rm === undefined) {
    /* --rm with -d is allowed since API 1.25 */
  }
  const attachStdin = attachList.length ? attachList.includes('stdin') : !!flags.interactive && !detach;
  const attachStdout = attachList.length ? attachList.includes('stdout') : !detach;
  const attachStderr = attachList.length ? attachList.includes('stderr') : !detach;

  let nanoCpus = 0;
  if (flags.cpus !== undefined) {
    const n = Number(flags.cpus);
    // Go's big.Rat reads the value: a decimal or a fraction.
    if (!Number.isFinite(n) || n < 0 || flags.cpus.trim() === '') throw new FlagError(`invalid argument "${flags.cpus}" for "--cpus" flag: failed to parse ${flags.cpus} as a rational number`);
    nanoCpus = Math.round(n * 1e9);
  }
  let stopTimeout: number | undefined;
  if (flags.stopTimeout !== undefined) {
    stopTimeout = Number(flags.stopTimeout);
    if (!Number.isInteger(stopTimeout)) throw new FlagError(`invalid argument "${flags.stopTimeout}" for "--stop-timeout" flag: strconv.ParseInt: parsing "${flags.stopTimeout}": invalid syntax`);
  }
  const network = flags.network ?? 'default';
  const builtinNetworks = ['default', 'bridge', 'host', 'none'];
  if (builtinNetworks.includes(network) && (flags.ip || flags.networkAlias?.length)) {
    throw new FlagError(flags.ip ? 'user specified IP address is supported on user defined networks only' : 'network-scoped aliases are only supported for user-defined networks');
  }

  const hostConfig: Record<string, unknown> = {
    Binds: binds.length ? binds : null,
    LogConfig: { Type: flags.logDriver ?? '', Config: keyValues(flags.logOpt) },
    NetworkMode: network,
    PortBindings: bindings,
    RestartPolicy: parseRestart(flags.restart),
    AutoRemove: !!flags.rm,
    ConsoleSize: opts.consoleSize ?? [0, 0],
    CapAdd: flags.capAdd?.length ? flags.capAdd.map(capName) : null,
    CapDrop: flags.capDrop?.length ? flags.capDrop.map(capName) : null,
    Dns: flags.dns ?? [],
    DnsSearch: flags.dnsSearch ?? [],
    DnsOptions: flags.dnsOption ?? [],
    Links: flags.link?.length && builtinNetworks.includes(network) ? flags.link : null,
    ExtraHosts: flags.addHost?.length ? flags.addHost : null,
    GroupAdd: flags.groupAdd?.length ? flags.groupAdd : null,
    Privileged: !!flags.privileged,
    PublishAllPorts: !!flags.publishAll,
    ReadonlyRootfs: !!flags.readOnly,
    SecurityOpt: flags.securityOpt?.length ? flags.securityOpt : null,
    UsernsMode: flags.userns ?? '',
    ShmSize: flags.shmSize ? ramFlag(flags.shmSize, '--shm-size') : 0,
    Memory: flags.memory ? ramFlag(flags.memory, '-m, --memory') : 0,
    MemorySwappiness: -1,
    NanoCpus: nanoCpus,
    Devices: (flags.device ?? []).map(parseDevice),
    PidsLimit: flags.pidsLimit !== undefined ? integerFlag(flags.pidsLimit, '--pids-limit') : 0,
    Ulimits: (flags.ulimit ?? []).map(parseUlimit),
  };
  if (Object.keys(tmpfs).length) hostConfig.Tmpfs = tmpfs;
  if (flags.mount?.length) hostConfig.Mounts = flags.mount.map(parseMount);
  if (flags.init) hostConfig.Init = true;
  Object.assign(hostConfig, namespaceAndResourceFlags(flags));

  const body: CreateRequest['body'] = {
    Hostname: flags.hostname ?? '',
    Domainname: flags.domainname ?? '',
    User: flags.user ?? '',
    AttachStdin: attachStdin,
    AttachStdout: attachStdout,
    AttachStderr: attachStderr,
    Tty: !!flags.tty,
    OpenStdin: !!flags.interactive,
    StdinOnce: !!flags.interactive && attachStdin,
    Env: envList.length ? envList : null,
    Cmd: args.length ? args : null,
    Image: image,
    Volumes: volumes,
    WorkingDir: flags.workdir ?? '',
    Entrypoint: flags.entrypoint !== undefined ? [flags.entrypoint] : null,
    Labels: labels,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: builtinNetworks.includes(network) ? {} : { [network]: endpointConfig(flags) } },
  };
  if (Object.keys(exposed).length) body.ExposedPorts = exposed;
  if (flags.macAddress) {
    if (!/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(flags.macAddress)) throw new FlagError(`${flags.macAddress} is not a valid mac address`);
    body.MacAddress = flags.macAddress;
  }
  const healthcheck = healthcheckFlags(flags);
  if (healthcheck) body.Healthcheck = healthcheck;
  if (flags.stopSignal) body.StopSignal = flags.stopSignal;
  if (stopTimeout !== undefined) body.StopTimeout = stopTimeout;
  const req: CreateRequest = { body };
  if (flags.name) req.name = flags.name;
  if (flags.platform) req.platform = flags.platform;
  return req;
}

/** --device-read-bps /dev/sda:1mb (a size) or --device-read-iops /dev/sda:100 (a number). */
function throttleDevices(list: string[] | undefined, flag: string, size: boolean): Array<{ Path: string; Rate: number }> {
  return (list ?? []).map((spec) => {
    const i = spec.lastIndexOf(':');
    const devicePath = spec.slice(0, i);
    const rate = spec.slice(i + 1);
    if (i <= 0 || !devicePath.startsWith('/dev/')) throw new FlagError(`invalid argument "${spec}" for "${flag}" flag: bad format: ${spec}`);
    return { Path: devicePath, Rate: size ? parseRamSize(rate) : integerFlag(rate, flag) };
  });
}

/** --pid/--ipc/--uts/--cgroupns and the cpu, memory, blkio and sysctl flags, as HostConfig fields (only those given). */
function namespaceAndResourceFlags(flags: RunFlags): Record<string, unknown> {
  const h: Record<string, unknown> = {};
  if (flags.pid) h.PidMode = flags.pid;
  if (flags.ipc) h.IpcMode = flags.ipc;
  if (flags.uts) h.UTSMode = flags.uts;
  if (flags.cgroupns) h.CgroupnsMode = flags.cgroupns;
  if (flags.cpuShares) h.CpuShares = integerFlag(flags.cpuShares, '--cpu-shares');
  if (flags.cpusetCpus) h.CpusetCpus = flags.cpusetCpus;
  if (flags.cpusetMems) h.CpusetMems = flags.cpusetMems;
  if (flags.cpuPeriod) h.CpuPeriod = integerFlag(flags.cpuPeriod, '--cpu-period');
  if (flags.cpuQuota) h.CpuQuota = integerFlag(flags.cpuQuota, '--cpu-quota');
  if (flags.memoryReservation) h.MemoryReservation = ramFlag(flags.memoryReservation, '--memory-reservation');
  if (flags.memorySwap) h.MemorySwap = flags.memorySwap === '-1' ? -1 : ramFlag(flags.memorySwap, '--memory-swap');
  if (flags.memorySwappiness) h.MemorySwappiness = integerFlag(flags.memorySwappiness, '--memory-swappiness');
  if (flags.oomKillDisable) h.OomKillDisable = true;
  if (flags.oomScoreAdj) h.OomScoreAdj = integerFlag(flags.oomScoreAdj, '--oom-score-adj');
  if (flags.blkioWeight) {
    if (!/^\+?\d+$/.test(flags.blkioWeight)) throw new FlagError(`invalid argument "${flags.blkioWeight}" for "--blkio-weight" flag: strconv.ParseUint: parsing ${JSON.stringify(flags.blkioWeight)}: invalid syntax`);
    h.BlkioWeight = Number(flags.blkioWeight);
  }
  const throttles = [
    ['BlkioDeviceReadBps', flags.deviceReadBps, '--device-read-bps', true],
    ['BlkioDeviceWriteBps', flags.deviceWriteBps, '--device-write-bps', true],
    ['BlkioDeviceReadIOps', flags.deviceReadIops, '--device-read-iops', false],
    ['BlkioDeviceWriteIOps', flags.deviceWriteIops, '--device-write-iops', false],
  ] as const;
  for (const [key, list, flag, size] of throttles) if (list?.length) h[key] = throttleDevices(list, flag, size);
  if (flags.sysctl?.length) h.Sysctls = keyValues(flags.sysctl);
  if (flags.volumesFrom?.length) h.VolumesFrom = flags.volumesFrom;
  return h;
}

/** --health-* and --no-healthcheck as Config.Healthcheck (durations in nanoseconds). */
function healthcheckFlags(flags: RunFlags): Record<string, unknown> | undefined {
  const durations = [
    ['Interval', flags.healthInterval, '--health-interval'],
    ['Timeout', flags.healthTimeout, '--health-timeout'],
    ['StartPeriod', flags.healthStartPeriod, '--health-start-period'],
    ['StartInterval', flags.healthStartInterval, '--health-start-interval'],
  ] as const;
  const given = flags.healthCmd !== undefined || flags.healthRetries !== undefined || durations.some(([, v]) => v !== undefined);
  if (flags.noHealthcheck) {
    if (given) throw new FlagError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!given) return undefined;
  const hc: Record<string, unknown> = {};
  if (flags.healthCmd !== undefined) hc.Test = ['CMD-SHELL', flags.healthCmd];
  for (const [key, value, flag] of durations) {
    if (value === undefined) continue;
    try {
      hc[key] = parseGoDuration(value);
    } catch {
      throw new FlagError(`invalid argument "${value}" for "${flag}" flag: time: invalid duration "${value}"`);
    }
  }
  if (flags.healthRetries !== undefined) hc.Retries = integerFlag(flags.healthRetries, '--health-retries');
  return hc;
}

/** --network-alias, --ip and --link on a user-defined network, as the docker CLI sends them. */
function endpointConfig(flags: RunFlags): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  if (flags.networkAlias?.length) config.Aliases = flags.networkAlias;
  if (flags.ip) config.IPAMConfig = { IPv4Address: flags.ip };
  if (flags.link?.length) config.Links = flags.link;
  return config;
}
