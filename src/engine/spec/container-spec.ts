/**
 * Image config + Docker-style create options -> the OCI runtime Spec berth-oci runs, with
 * Docker's defaults (moby's oci/defaults.go, daemon/oci_linux.go, oci/caps, runconfig's merge).
 * Pure: what comes from the host (its capabilities and devices, cgroup version, existing sysctls,
 * the init binary, id mappings) or from the rootfs (the resolved user) is a parameter.
 *
 * Bad input is an InvalidArgumentError naming the field as the Docker API spells it:
 * `Env[2]`, `HostConfig.CapAdd[1]`, `HostConfig.Memory`.
 *
 * Not done here (no input for them yet): networks beyond the namespace and ports, volumes and bind mounts, links,
 * blkio, device requests, console size, AppArmor's docker-default profile and SELinux labels.
 * Another container's namespaces (PidMode/IpcMode/NetworkMode "container:<id>") come in resolved
 * to paths (`network`, `join`).
 */

import { checkObject, checkString, checkStringMap, integer, optionalBoolean, optionalString, optionalStringList } from '../../common/checks.js';
import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { goParseBool } from '../../common/units.js';
import type { ImageConfig } from '../../images/types.js';
import { CAPABILITIES, parseSignal } from '../../runtime/plan/tables.js';
import { LOOPBACK_ANNOTATION, OCI_VERSION } from '../../runtime/spec/config.js';
import type { DeviceCgroupRule, IdMapping, LinuxDevice, Mount, Namespace, Rlimit, Seccomp, Spec } from '../../runtime/spec/config.js';
import { defaultSeccompProfile, parseSeccompProfile } from './seccomp-default.js';

// ---------------------------------------------------------------------------------------------
// Input

/** The container config fields of `POST /containers/create` this function reads. */
export interface CreateConfig {
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Hostname?: string;
  Domainname?: string;
  Tty?: boolean;
  OpenStdin?: boolean;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer?: string;
  CgroupPermissions?: string;
}

/** The HostConfig fields this function reads. */
export interface HostConfig {
  Privileged?: boolean;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  SecurityOpt?: string[] | null;
  ReadonlyRootfs?: boolean;
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean | null;
  CpusetMems?: string;
  BlkioWeight?: number;
  /** Ignored: kmem limits are deprecated in cgroup v1 and absent in v2 (info says KernelMemory false). */
  KernelMemory?: number;
  BlkioWeightDevice?: Array<{ Path?: string; Weight?: number }> | null;
  BlkioDeviceReadBps?: ThrottleDevice[] | null;
  BlkioDeviceWriteBps?: ThrottleDevice[] | null;
  BlkioDeviceReadIOps?: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps?: ThrottleDevice[] | null;
  NanoCpus?: number;
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  CpusetCpus?: string;
  PidsLimit?: number | null;
  Ulimits?: Ulimit[] | null;
  Devices?: DeviceMapping[] | null;
  Tmpfs?: Record<string, string> | null;
  ShmSize?: number;
  Init?: boolean | null;
  OomScoreAdj?: number;
  Sysctls?: Record<string, string> | null;
  CgroupnsMode?: string;
  UsernsMode?: string;
  PidMode?: string;
  IpcMode?: string;
  UTSMode?: string;
  CgroupParent?: string;
  DeviceCgroupRules?: string[] | null;
  DeviceRequests?: unknown[] | null;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  Annotations?: Record<string, string> | null;
  StorageOpt?: Record<string, string> | null;
}

/** A block device and a rate (bytes or operations per second), as --device-read-bps and friends give them. */
export interface ThrottleDevice {
  Path?: string;
  Rate?: number;
}

/** What the caller knows about the host. Every field has a default that assumes nothing of the host. */
export interface HostFacts {
  /** The major and minor numbers of a device node (blkio's per-device weights and throttles). Default: none known. */
  deviceNumbers?: (path: string) => { major: number; minor: number } | 'missing' | undefined;
  /** Whether the kernel's blkio controller takes weights (blkio.weight: CFQ/BFQ). Default false: they are discarded, as dockerd does. */
  blkioWeight?: boolean;
  /** false: the host has no AppArmor, and a container's profile is left out, as dockerd does. Default: kept (the runtime decides). */
  apparmor?: boolean;
  /** Capabilities "ALL" means (the daemon's bounding set). Default: every capability Berth knows. */
  capabilities?: string[];
  /** The host's device nodes: what a privileged container gets, and where HostConfig.Devices are looked up. */
  devices?: LinuxDevice[];
  /** Default 2. Decides the default cgroup namespace mode (private on v2, host on v1), as dockerd. */
  cgroupVersion?: 1 | 2;
  /** Architecture for the seccomp profile (Go's, the kernel's or Node's name). Default: this process's. */
  arch?: string;
  /** Kernel release, for seccomp rules that need a minimum kernel. */
  kernel?: string;
  /** Sysctls that exist on the host: Docker's default network sysctls are set only if they exist. */
  sysctls?: string[];
  /** Host path of the init binary bind-mounted at /sbin/docker-init for HostConfig.Init. */
  initPath?: string;
  /** The daemon's user namespace remapping (dockerd --userns-remap). */
  idMappings?: { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
  /** CPUs the daemon may run on (its affinity): the most NanoCpus can ask for. Default: not checked. */
  cpuCount?: number;
  /** The host's CPUs and memory nodes ("0-1"), which CpusetCpus and CpusetMems must be among. Default: not checked. */
  cpusetCpus?: string;
  cpusetMems?: string;
  /** The daemon's --no-new-privileges: containers get it unless their security options say otherwise. */
  noNewPrivileges?: boolean;
  /** The daemon's --seccomp-profile for containers that name none: "unconfined", or a profile's JSON. Default: Docker's. */
  seccompProfile?: string;
}

export interface ContainerSpecInput {
  image: ImageConfig;
  create: CreateConfig;
  host: HostConfig;
  /** Absolute path of the container's root filesystem. */
  rootfs: string;
  /** The user, already resolved from the image's /etc/passwd and /etc/group by the caller. */
  user: { uid: number; gid: number; additionalGids?: number[] };
  cgroupsPath: string;
  id: string;
  facts?: HostFacts;
  /**
   * The container's network namespace: its own (default; "none" and, until networks exist,
   * "bridge"), the host's ("host"), or another container's, by its path ("container:<id>").
   */
  network?: { mode: 'private' } | { mode: 'host' } | { mode: 'join'; path: string };
  /**
   * For PidMode and IpcMode "container:<id>", that container's namespaces by path (and its
   * /dev/shm as a path to bind), known once it runs. Without them (a create's check), the
   * modes are only checked.
   */
  join?: { pid?: string; ipc?: { path: string; shm?: string } };
  /**
   * IpcMode "shareable": a host directory (a tmpfs the engine mounted) bound as /dev/shm, so
   * that containers joining its IPC namespace can bind the same one.
   */
  shm?: string;
  /** Variables of legacy links (engine's), after PATH, HOSTNAME and TERM, before the container's Env. */
  linkEnv?: string[];
}

// ---------------------------------------------------------------------------------------------
// Docker's defaults

/** Docker's default capabilities (oci/caps/defaults.go). */
export const DOCKER_DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

/** Every capability Berth knows, in kernel order. */
export const ALL_CAPABILITIES: readonly string[] = Object.freeze(
  Object.entries(CAPABILITIES)
    .sort(([, a], [, b]) => a - b)
    .map(([name]) => name),
);

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';
/**
 * Mount points the runtime makes in a container's writable layer for its default mounts, where
 * the image lacks them. Docker has them in its "init" layer, under the container's own, so that
 * `docker diff` and `docker commit` do not show them: neither do ours (snapshotter.mountPointsOnly).
 */
export const INIT_MOUNT_POINTS: readonly string[] = Object.freeze(['proc', 'sys', 'dev', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf']);
const MIN_MEMORY = 6 * 1024 * 1024;

export const DOCKER_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
]);

export const DOCKER_READONLY_PATHS: readonly string[] = Object.freeze(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['rw', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['rw', 'nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['rw', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['rw', 'nosuid', 'noexec', 'nodev', 'mode=1777'] },
  ];
}

/** Docker's default device cgroup rules (oci/defaults.go); runc-style runtimes add their own allow list after them. */
function defaultDeviceRules(): DeviceCgroupRule[] {
  const allow = (major: number, minor: number): DeviceCgroupRule => ({ allow: true, type: 'c', major, minor, access: 'rwm' });
  return [
    { allow: false, access: 'rwm' },
    allow(1, 5), // /dev/zero
    allow(1, 3), // /dev/null
    allow(1, 9), // /dev/urandom
    allow(1, 8), // /dev/random
    allow(5, 0), // /dev/tty
    allow(5, 1), // /dev/console
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' }, // /dev/fuse
  ];
}

// ---------------------------------------------------------------------------------------------
// The spec

interface NamespaceModes {
  pid: 'private' | 'host' | 'container';
  ipc: 'private' | 'none' | 'host' | 'container';
  uts: 'private' | 'host';
}

/**
 * HostConfig.PidMode ("", host, container:<id>), IpcMode ("", private, shareable, none, host,
 * container:<id>) and UTSMode ("", host), as dockerd takes them; "shareable" is private here
 * (another container joins it by its namespace path).
 */
function namespaceModes(host: HostConfig): NamespaceModes {
  const containerRef = (value: string, field: string): boolean => {
    if (!value.startsWith('container:')) return false;
    if (value === 'container:') throw new InvalidArgumentError(`invalid ${field.split('.')[1]}: container name or ID is empty`, field);
    return true;
  };
  const pidMode = optionalString(host.PidMode, 'HostConfig.PidMode') ?? '';
  let pid: NamespaceModes['pid'];
  if (pidMode === '') pid = 'private';
  else if (pidMode === 'host') pid = 'host';
  else if (containerRef(pidMode, 'HostConfig.PidMode')) pid = 'container';
  else throw new InvalidArgumentError(`invalid PID mode: ${pidMode}`, 'HostConfig.PidMode');
  const ipcMode = optionalString(host.IpcMode, 'HostConfig.IpcMode') ?? '';
  let ipc: NamespaceModes['ipc'];
  if (['', 'private', 'shareable'].includes(ipcMode)) ipc = 'private';
  else if (ipcMode === 'none' || ipcMode === 'host') ipc = ipcMode;
  else if (containerRef(ipcMode, 'HostConfig.IpcMode')) ipc = 'container';
  else throw new InvalidArgumentError(`Invalid IPC mode: ${ipcMode}`);
  const utsMode = optionalString(host.UTSMode, 'HostConfig.UTSMode') ?? '';
  if (utsMode !== '' && utsMode !== 'host') throw new InvalidArgumentError(`invalid UTS mode: ${utsMode}`, 'HostConfig.UTSMode');
  return { pid, ipc, uts: utsMode === 'host' ? 'host' : 'private' };
}

/**
 * /dev/shm by IPC mode: the container's own tmpfs (private), or a host one bound (shareable);
 * none for "none"; the host's for "host", the donor's for "container:<id>", bound (as dockerd
 * binds them). A /dev/shm of the user's own (a tmpfs or volume there) is left alone.
 */
function shmMount(mounts: Mount[], ipc: NamespaceModes['ipc'], boundShm: string | undefined): Mount[] {
  const own = mounts.find((m) => m.destination === '/dev/shm' && m.source === 'shm');
  if (!own) return mounts;
  if (ipc === 'none') return mounts.filter((m) => m !== own);
  const source = ipc === 'host' ? '/dev/shm' : boundShm;
  if (!source) return mounts; // private; or a create's check, the donor's not known yet
  return mounts.map((m) => (m === own ? { destination: '/dev/shm', type: 'bind', source, options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'noexec'] } : m));
}

function networkNamespace(network: NonNullable<ContainerSpecInput['network']>): Namespace[] {
  if (network.mode === 'host') return [];
  if (network.mode === 'join') return [{ type: 'network', path: network.path }];
  return [{ type: 'network' }];
}

/** A process's supplementary groups as runc sets them: its primary group first, then the others, once each (the container's process and an exec's). */
export function supplementaryGroups(gid: number, additional: readonly number[] = []): number[] {
  return [...new Set([gid, ...additional])];
}

export function containerSpec(input: ContainerSpecInput): Spec {
  const { image, create, host, user } = input;
  const facts = input.facts ?? {};
  checkObject(create, 'Config');
  checkObject(host, 'HostConfig');
  if (typeof input.id !== 'string' || input.id === '') throw new InvalidArgumentError('must not be empty', 'id');
  if (typeof input.rootfs !== 'string' || !input.rootfs.startsWith('/')) throw new InvalidArgumentError('must be an absolute path', 'rootfs');
  const imageConfig = image.config ?? {};
  const privileged = optionalBoolean(host.Privileged, 'HostConfig.Privileged') ?? false;
  const tty = optionalBoolean(create.Tty, 'Tty') ?? false;
  optionalBoolean(create.OpenStdin, 'OpenStdin');
  checkStringMap(create.Labels, 'Labels');
  if (create.StopSignal !== undefined && create.StopSignal !== '') {
    try {
      parseSignal(checkString(create.StopSignal, 'StopSignal'));
    } catch {
      throw new InvalidArgumentError(`Invalid signal: ${String(create.StopSignal)}`); // dockerd's words
    }
  }
  if (create.User !== undefined) checkString(create.User, 'User');

  // Namespaces first: other defaults depend on them.
  const security = parseSecurityOpt(host.SecurityOpt, facts.noNewPrivileges === true);
  const network = input.network ?? { mode: 'private' };
  const modes = namespaceModes(host);
  const namespaces: Namespace[] = [{ type: 'mount' }, ...networkNamespace(network)];
  if (modes.uts === 'private') namespaces.push({ type: 'uts' });
  if (modes.pid === 'private') namespaces.push({ type: 'pid' });
  else if (modes.pid === 'container') namespaces.push(input.join?.pid ? { type: 'pid', path: input.join.pid } : { type: 'pid' });
  if (modes.ipc === 'container') namespaces.push(input.join?.ipc ? { type: 'ipc', path: input.join.ipc.path } : { type: 'ipc' });
  else if (modes.ipc !== 'host') namespaces.push({ type: 'ipc' });
  const usernsMode = optionalString(host.UsernsMode, 'HostConfig.UsernsMode') ?? '';
  if (!['', 'host', 'private'].includes(usernsMode)) throw new InvalidArgumentError(`invalid user namespace mode ${JSON.stringify(usernsMode)}`, 'HostConfig.UsernsMode');
  if (usernsMode === 'private' && !facts.idMappings) {
    throw new InvalidArgumentError('a private user namespace needs the daemon to have id mappings (userns-remap)', 'HostConfig.UsernsMode');
  }
  const userns = usernsMode !== 'host' && facts.idMappings !== undefined;
  if (userns && privileged) {
    throw new InvalidArgumentError('privileged mode is incompatible with user namespaces; use UsernsMode "host"', 'HostConfig.Privileged');
  }
  // As dockerd with user namespaces: the host's namespaces belong to the host's user namespace,
  // where the container's root is nobody (its /proc, mqueue and sysfs mounts would be refused).
  if (userns) {
    const shared = (
      [
        [network.mode === 'host', 'network', 'HostConfig.NetworkMode'],
        [modes.pid === 'host', 'PID', 'HostConfig.PidMode'],
        [modes.ipc === 'host', 'IPC', 'HostConfig.IpcMode'],
        [modes.uts === 'host', 'UTS', 'HostConfig.UTSMode'],
      ] as const
    ).find(([host]) => host);
    if (shared) throw new InvalidArgumentError(`cannot share the host's ${shared[1]} namespace when user namespaces are enabled; use UsernsMode "host"`, shared[2]);
  }
  if (userns) namespaces.push({ type: 'user' });
  const cgroupnsMode = optionalString(host.CgroupnsMode, 'HostConfig.CgroupnsMode') ?? '';
  if (!['', 'private', 'host'].includes(cgroupnsMode)) throw new InvalidArgumentError(`invalid cgroup namespace mode ${JSON.stringify(cgroupnsMode)}`, 'HostConfig.CgroupnsMode');
  const cgroupVersion = facts.cgroupVersion ?? 2;
  if ((cgroupnsMode || (cgroupVersion === 2 ? 'private' : 'host')) === 'private') namespaces.push({ type: 'cgroup' });

  // Process
  const args = commandLine(imageConfig, create);
  const hostname = optionalString(create.Hostname, 'Hostname') || input.id.slice(0, 12);
  const domainname = optionalString(create.Domainname, 'Domainname') ?? '';
  const env = environment(imageConfig.Env, create.Env, hostname, tty, input.linkEnv ?? []);
  const cwd = workingDir(imageConfig.WorkingDir, create.WorkingDir);
  const capabilities = tweakCapabilities(host.CapAdd, host.CapDrop, privileged, facts.capabilities ?? ALL_CAPABILITIES);
  checkId(user?.uid, 'user.uid');
  checkId(user?.gid, 'user.gid');
  (user.additionalGids ?? []).forEach((gid, index) => checkId(gid, `user.additionalGids[${index}]`));
  const additionalGids = supplementaryGroups(user.gid, user.additionalGids);

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    root: { path: input.rootfs, readonly: optionalBoolean(host.ReadonlyRootfs, 'HostConfig.ReadonlyRootfs') ?? false },
    process: {
      terminal: tty,
      user: { uid: user.uid, gid: user.gid, additionalGids },
      args,
      env,
      cwd,
      // Current Docker: no inheritable or ambient set; a non-root user gets only the bounding
      // set, so that it holds capabilities only as execve would grant them (file capabilities).
      capabilities:
        user.uid === 0 ? { bounding: [...capabilities], effective: [...capabilities], permitted: [...capabilities] } : { bounding: [...capabilities] },
    },
    // Without a UTS namespace of its own the container has the host's names.
    ...(modes.uts === 'private' ? { hostname } : {}),
    mounts: [],
    linux: {
      namespaces,
      cgroupsPath: checkString(input.cgroupsPath, 'cgroupsPath'),
      maskedPaths: [...DOCKER_MASKED_PATHS],
      readonlyPaths: [...DOCKER_READONLY_PATHS],
      devices: [],
      resources: {},
      sysctl: {},
    },
  };
  const process = spec.process!;
  const linux = spec.linux!;
  if (domainname && modes.uts === 'private') spec.domainname = domainname;
  if (userns) {
    linux.uidMappings = facts.idMappings!.uidMappings.map((m) => ({ ...m }));
    linux.gidMappings = facts.idMappings!.gidMappings.map((m) => ({ ...m }));
  }
  if (security.noNewPrivileges) process.noNewPrivileges = true;
  if (security.apparmorProfile && facts.apparmor !== false) process.apparmorProfile = security.apparmorProfile;
  const rlimits = ulimits(host.Ulimits);
  if (rlimits.length > 0) process.rlimits = rlimits;
  if (host.OomScoreAdj !== undefined) {
    const adj = integer(host.OomScoreAdj, 'HostConfig.OomScoreAdj');
    if (adj < -1000 || adj > 1000) throw new InvalidArgumentError(`Invalid value ${adj}, range for oom score adj is [-1000, 1000]`);
    process.oomScoreAdj = adj;
  }

  // Init (docker run --init): the init binary from the host runs as PID 1 and starts the command.
  const mounts = defaultMounts();
  if (optionalBoolean(host.Init ?? undefined, 'HostConfig.Init')) {
    if (!facts.initPath) throw new UnsupportedError('HostConfig.Init: no init binary is configured');
    process.args = [INIT_PATH_IN_CONTAINER, '--', ...args];
    mounts.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: facts.initPath, options: ['bind', 'ro'] });
  }
  spec.mounts = shmMount(containerMounts(mounts, host, spec.root!.readonly === true, privileged, userns || security.writableCgroups), modes.ipc, modes.ipc === 'private' ? input.shm : input.join?.ipc?.shm);
  if (privileged || security.unconfinedPaths) {
    linux.maskedPaths = [];
    linux.readonlyPaths = [];
  } else {
    // API 1.30+: the paths a client chose instead of Docker's (dockerd fills its defaults in at create).
    if (host.MaskedPaths !== undefined && host.MaskedPaths !== null) linux.maskedPaths = absolutePaths(host.MaskedPaths, 'HostConfig.MaskedPaths');
    if (host.ReadonlyPaths !== undefined && host.ReadonlyPaths !== null) linux.readonlyPaths = absolutePaths(host.ReadonlyPaths, 'HostConfig.ReadonlyPaths');
  }
  const annotations = checkStringMap(host.Annotations, 'HostConfig.Annotations');
  if (annotations && Object.keys(annotations).length) spec.annotations = { ...annotations };
  // A network namespace of its own (none, or a bridge's): lo up, as dockerd's sandboxes have it.
  if (network.mode === 'private') spec.annotations = { ...spec.annotations, [LOOPBACK_ANNOTATION]: 'up' };
  // Windows' isolation modes; dockerd's words on Linux.
  const isolation = optionalString((host as { Isolation?: unknown }).Isolation, 'HostConfig.Isolation') ?? '';
  if (isolation !== '' && isolation.toLowerCase() !== 'default') throw new InvalidArgumentError(`Invalid isolation: ${JSON.stringify(isolation)} - linux only supports 'default'`);
  if (host.StorageOpt && Object.keys(checkStringMap(host.StorageOpt, 'HostConfig.StorageOpt') ?? {}).length) {
    // dockerd's overlay2 answer on anything but XFS with project quotas.
    throw new InvalidArgumentError("--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
  }
  if (host.DeviceRequests !== undefined && host.DeviceRequests !== null && !Array.isArray(host.DeviceRequests)) throw new InvalidArgumentError('must be a list', 'HostConfig.DeviceRequests');
  if (Array.isArray(host.DeviceRequests) && host.DeviceRequests.length > 0) {
    throw new UnsupportedError('HostConfig.DeviceRequests: could not select device driver "" with capabilities: [[gpu]] (berthd has no device drivers such as NVIDIA\'s)');
  }

  // Resources and devices
  linux.resources = resources(host, facts);
  const { devices, rules } = deviceSetup(host.Devices, privileged, facts.devices ?? []);
  linux.devices = devices;
  linux.resources.devices = privileged ? rules : [...rules, ...deviceCgroupRules(host.DeviceCgroupRules)];

  // Sysctls: Docker's defaults for a private network namespace when the host has them, then the user's.
  const hostSysctls = new Set(facts.sysctls ?? []);
  // (Never in the host's network namespace: these are per namespace, and would change the host's.)
  if (network.mode !== 'host') {
    if (!userns && hostSysctls.has('net.ipv4.ping_group_range')) linux.sysctl!['net.ipv4.ping_group_range'] = '0 2147483647';
    if (hostSysctls.has('net.ipv4.ip_unprivileged_port_start')) linux.sysctl!['net.ipv4.ip_unprivileged_port_start'] = '0';
  }
  for (const [key, value] of Object.entries(checkStringMap(host.Sysctls, 'HostConfig.Sysctls') ?? {})) {
    checkSysctl(key);
    if (network.mode === 'host' && key.startsWith('net.')) throw new InvalidArgumentError(`sysctl ${JSON.stringify(key)} not allowed in host network namespace`); // runc's words, as dockerd passes them on
    linux.sysctl![key] = value;
  }

  // Seccomp: Docker's default unless privileged or unconfined.
  const seccomp = seccompFor(security, privileged, capabilities, facts);
  if (seccomp) linux.seccomp = seccomp;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Command, environment, working directory

/** runconfig's merge: an Entrypoint given at create resets the image's Cmd too. */
function commandLine(imageConfig: NonNullable<ImageConfig['config']>, create: CreateConfig): string[] {
  const createEntrypoint = optionalStringList(create.Entrypoint, 'Entrypoint');
  const createCmd = optionalStringList(create.Cmd, 'Cmd');
  let entrypoint = createEntrypoint;
  let cmd = createCmd;
  if (!createEntrypoint || createEntrypoint.length === 0) {
    if (!createCmd || createCmd.length === 0) cmd = optionalStringList(imageConfig.Cmd, 'image.config.Cmd');
    if (createEntrypoint === undefined) entrypoint = optionalStringList(imageConfig.Entrypoint, 'image.config.Entrypoint');
  }
  // `docker run --entrypoint ""` sends [""]: no entrypoint, and not the image's Cmd either.
  if (entrypoint && entrypoint.length === 1 && entrypoint[0] === '') entrypoint = [];
  const args = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (args.length === 0 || args[0] === '') throw new InvalidArgumentError('No command specified'); // dockerd's words
  return args;
}

/**
 * Docker's environment: PATH, HOSTNAME and (with a tty) TERM first, then the legacy links' variables, then the container's Env
 * (create's, then the image's variables create did not set), each replacing a default of the same
 * name or appended; a bare NAME unsets a default.
 */
function environment(imageEnv: string[] | undefined, createEnv: string[] | null | undefined, hostname: string, tty: boolean, linkEnv: readonly string[]): string[] {
  const user = optionalStringList(createEnv, 'Env') ?? [];
  const fromImage = optionalStringList(imageEnv, 'image.config.Env') ?? [];
  user.forEach((entry, index) => checkEnv(entry, `Env[${index}]`));
  fromImage.forEach((entry, index) => checkEnv(entry, `image.config.Env[${index}]`));
  const merged = [...user];
  if (user.length === 0) merged.push(...fromImage);
  else {
    const keys = new Set(user.map(envKey));
    for (const entry of fromImage) if (!keys.has(envKey(entry))) merged.push(entry);
  }
  const result = [DEFAULT_PATH_ENV, `HOSTNAME=${hostname}`];
  if (tty) result.push('TERM=xterm');
  result.push(...linkEnv);
  const index = new Map(result.map((entry, i) => [envKey(entry), i]));
  const unset = new Set<number>();
  for (const entry of merged) {
    const at = index.get(envKey(entry));
    if (!entry.includes('=')) {
      if (at !== undefined) unset.add(at);
    } else if (at !== undefined) {
      result[at] = entry;
      unset.delete(at);
    } else result.push(entry);
  }
  return result.filter((_, i) => !unset.has(i));
}

function envKey(entry: string): string {
  const at = entry.indexOf('=');
  return at < 0 ? entry : entry.slice(0, at);
}

function checkEnv(entry: string, field: string): void {
  if (envKey(entry) === '') throw new InvalidArgumentError(`invalid environment variable ${JSON.stringify(entry)}`, field);
  if (entry.includes('\0')) throw new InvalidArgumentError('must not contain NUL', field);
}

function workingDir(imageDir: string | undefined, createDir: string | undefined): string {
  const given = optionalString(createDir, 'WorkingDir');
  if (given) {
    if (!given.startsWith('/')) throw new InvalidArgumentError(`the working directory '${given}' is invalid, it needs to be an absolute path`);
    return cleanPath(given);
  }
  const fromImage = optionalString(imageDir, 'image.config.WorkingDir');
  return fromImage ? cleanPath(`/${fromImage}`) : '/';
}

function cleanPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/** moby's NormalizeLegacyCapabilities: upper case, CAP_ prefix added, "ALL" kept. */
function normalizeCapabilities(list: string[] | null | undefined, field: string): string[] {
  return (optionalStringList(list, field) ?? []).map((raw) => {
    const upper = raw.toUpperCase();
    if (upper === 'ALL') return upper;
    const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    // dockerd's words: "invalid CapAdd: unknown capability: \"CAP_X\"".
    if (!Object.hasOwn(CAPABILITIES, name)) throw new InvalidArgumentError(`invalid ${field.replace(/^HostConfig\./, '')}: unknown capability: ${JSON.stringify(name)}`);
    return name;
  });
}

/** moby's TweakCapabilities. */
export function tweakCapabilities(
  capAdd: string[] | null | undefined,
  capDrop: string[] | null | undefined,
  privileged: boolean,
  all: readonly string[] = ALL_CAPABILITIES,
): string[] {
  const adds = normalizeCapabilities(capAdd, 'HostConfig.CapAdd');
  const drops = normalizeCapabilities(capDrop, 'HostConfig.CapDrop');
  if (privileged) return [...all];
  let caps: string[];
  if (adds.includes('ALL')) caps = all.filter((cap) => !drops.includes(cap));
  else if (drops.includes('ALL')) caps = [...adds];
  else caps = [...DOCKER_DEFAULT_CAPABILITIES.filter((cap) => !drops.includes(cap)), ...adds];
  return [...new Set(caps)];
}

// ---------------------------------------------------------------------------------------------
// Security options

interface SecurityOptions {
  noNewPrivileges: boolean;
  /** undefined: the default profile; 'unconfined'; or a profile's JSON. */
  seccomp?: string;
  seccompField?: string;
  apparmorProfile?: string;
  writableCgroups: boolean;
  unconfinedPaths: boolean;
}

function parseBool(value: string, field: string): boolean {
  const parsed = goParseBool(value);
  if (parsed === undefined) throw new InvalidArgumentError(`invalid boolean ${JSON.stringify(value)}`, field);
  return parsed;
}

function parseSecurityOpt(list: string[] | null | undefined, daemonNoNewPrivileges: boolean): SecurityOptions {
  const result: SecurityOptions = { noNewPrivileges: daemonNoNewPrivileges, writableCgroups: false, unconfinedPaths: false };
  (optionalStringList(list, 'HostConfig.SecurityOpt') ?? []).forEach((opt, index) => {
    const field = `HostConfig.SecurityOpt[${index}]`;
    if (opt === 'no-new-privileges') {
      result.noNewPrivileges = true;
      return;
    }
    if (opt === 'disable') return; // label=disable, legacy form
    const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : undefined;
    if (!sep) throw new InvalidArgumentError(`invalid security option ${JSON.stringify(opt)}`, field);
    const at = opt.indexOf(sep);
    const key = opt.slice(0, at);
    const value = opt.slice(at + 1);
    switch (key) {
      case 'no-new-privileges':
        result.noNewPrivileges = parseBool(value, field);
        break;
      case 'seccomp':
        if (value === '') throw new InvalidArgumentError('seccomp needs "unconfined" or a profile', field);
        result.seccomp = value; // "builtin": Docker's, even where the daemon has a profile of its own
        result.seccompField = field;
        break;
      case 'apparmor':
        result.apparmorProfile = value === 'unconfined' ? undefined : value;
        break;
      case 'label':
        if (value !== 'disable') throw new UnsupportedError(`${field}: SELinux labels are not supported yet`);
        break;
      case 'writable-cgroups':
        result.writableCgroups = parseBool(value, field);
        break;
      case 'systempaths':
        if (value !== 'unconfined') throw new InvalidArgumentError(`invalid --security-opt 2: ${JSON.stringify(opt)}`); // dockerd's words
        result.unconfinedPaths = true;
        break;
      default:
        throw new InvalidArgumentError(`invalid --security-opt 2: ${JSON.stringify(opt)}`); // dockerd's words
    }
  });
  return result;
}

function seccompFor(security: SecurityOptions, privileged: boolean, capabilities: string[], facts: HostFacts): Seccomp | undefined {
  const arch = facts.arch ?? globalThis.process.arch;
  // The container's own choice, else the daemon's (dockerd --seccomp-profile), else Docker's.
  const chosen = security.seccomp ?? facts.seccompProfile;
  const field = security.seccomp !== undefined ? security.seccompField! : 'seccomp-profile';
  if (chosen === 'unconfined') return undefined;
  if (chosen !== undefined && chosen !== 'builtin') {
    // An explicit profile is parsed even for a privileged container, so that errors show.
    const profile = parseSeccompProfile(chosen, { capabilities, arch, kernel: facts.kernel, field });
    return privileged ? undefined : profile;
  }
  if (privileged) return undefined;
  return defaultSeccompProfile({ capabilities, arch, kernel: facts.kernel });
}

// ---------------------------------------------------------------------------------------------
// Mounts

function containerMounts(mounts: Mount[], host: HostConfig, readonlyRoot: boolean, privileged: boolean, writableCgroups: boolean): Mount[] {
  const shmSize = host.ShmSize === undefined || host.ShmSize === 0 ? DEFAULT_SHM_SIZE : integer(host.ShmSize, 'HostConfig.ShmSize', 1);
  const tmpfs = tmpfsMounts(host.Tmpfs);
  const userDestinations = new Set(tmpfs.map((m) => m.destination));
  const userDev = userDestinations.has('/dev');
  const result: Mount[] = [];
  for (const mount of mounts) {
    if (userDestinations.has(mount.destination)) continue;
    if (userDev && mount.destination.startsWith('/dev/')) continue;
    if (mount.destination === '/dev/shm') mount.options = [...mount.options!, `size=${shmSize}`];
    result.push(mount);
  }
  result.push(...tmpfs);
  for (const mount of result) {
    const exempt = ['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev'].includes(mount.destination) || userDestinations.has(mount.destination);
    if (readonlyRoot && !exempt && !mount.options!.includes('ro')) mount.options!.push('ro');
    if (privileged && mount.destination === '/sys') mount.options = mount.options!.filter((o) => o !== 'ro');
    if ((privileged || writableCgroups) && mount.type === 'cgroup') mount.options = mount.options!.filter((o) => o !== 'ro');
  }
  return result;
}

/** HostConfig.Tmpfs: destination -> options; Docker's defaults noexec,nosuid,nodev,rprivate, the user's win. */
function tmpfsMounts(tmpfs: Record<string, string> | null | undefined): Mount[] {
  const mounts: Mount[] = [];
  for (const [destination, data] of Object.entries(checkStringMap(tmpfs, 'HostConfig.Tmpfs') ?? {})) {
    const field = `HostConfig.Tmpfs[${JSON.stringify(destination)}]`;
    if (!destination.startsWith('/')) throw new InvalidArgumentError('the mount point must be an absolute path', field);
    const clean = cleanPath(destination);
    if (clean === '/') throw new InvalidArgumentError('cannot mount a tmpfs on /', field);
    if (mounts.some((m) => m.destination === clean)) throw new InvalidArgumentError('duplicate mount point', field);
    const options = ['noexec', 'nosuid', 'nodev', 'rprivate', ...data.split(',').filter(Boolean)];
    mounts.push({ destination: clean, type: 'tmpfs', source: 'tmpfs', options: mergeTmpfsOptions(options) });
  }
  return mounts.sort(byMountDepth);
}

/**
 * moby's order of a container's mounts: by depth, so that a parent is mounted before what is
 * beneath it (a volume on /etc before /etc/hosts); stable, so equal depths keep their order.
 */
export function byMountDepth(a: { destination: string }, b: { destination: string }): number {
  const depth = (m: { destination: string }): number => m.destination.split('/').filter(Boolean).length;
  return depth(a) - depth(b);
}

const FLAG_GROUPS: string[][] = [
  ['ro', 'rw'],
  ['exec', 'noexec'],
  ['suid', 'nosuid'],
  ['dev', 'nodev'],
  ['sync', 'async'],
  ['atime', 'noatime'],
  ['diratime', 'nodiratime'],
  ['relatime', 'norelatime'],
  ['strictatime', 'nostrictatime'],
  ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable'],
];
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol', 'huge', 'inode64', 'noswap']);

/** moby's MergeTmpfsOptions: the last of conflicting flags and of repeated data options wins. */
export function mergeTmpfsOptions(options: string[]): string[] {
  const seen = new Set<string>();
  const merged: string[] = [];
  for (let i = options.length - 1; i >= 0; i--) {
    const option = options[i];
    if (option === 'defaults') continue;
    const group = FLAG_GROUPS.find((g) => g.includes(option));
    let key: string;
    if (group) key = group[0];
    else {
      key = option.split('=')[0];
      if (!TMPFS_DATA.has(key)) throw new InvalidArgumentError(`invalid tmpfs option [${JSON.stringify(option)}]`); // dockerd's words
    }
    if (seen.has(key)) continue;
    seen.add(key);
    merged.unshift(option);
  }
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Resources

/** HostConfig's resource fields → OCI linux.resources, checked as dockerd does (also for `docker update`). */
/** The numbers a cpuset list names ("0-2,5" → 0 1 2 5). */
function cpusetNumbers(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.split(',').filter(Boolean)) {
    const [a, b = a] = part.split('-').map(Number);
    for (let n = a!; n <= b! && out.size <= 65536; n++) out.add(n);
  }
  return out;
}

/** dockerd's check (sysinfo.IsCpusetCpusAvailable): every one asked for is the host's. */
function checkCpusetAvailable(requested: string, available: string | undefined, what: string): void {
  if (available === undefined) return;
  const have = cpusetNumbers(available);
  if ([...cpusetNumbers(requested)].some((n) => !have.has(n))) throw new InvalidArgumentError(`Requested ${what} are not available - requested ${requested}, available: ${available}`);
}

export function resources(host: HostConfig, facts: Pick<HostFacts, 'deviceNumbers' | 'blkioWeight' | 'cpuCount' | 'cpusetCpus' | 'cpusetMems'> = {}): NonNullable<NonNullable<Spec['linux']>['resources']> {
  const result: NonNullable<NonNullable<Spec['linux']>['resources']> = {};
  const memory = host.Memory === undefined ? 0 : integer(host.Memory, 'HostConfig.Memory');
  let swap = host.MemorySwap === undefined ? 0 : integer(host.MemorySwap, 'HostConfig.MemorySwap', -1);
  // A negative limit too (dockerd's check: anything but 0 below 6 MB).
  if (memory !== 0 && memory < MIN_MEMORY) throw new InvalidArgumentError('Minimum memory limit allowed is 6MB');
  if (memory === 0 && swap > 0) throw new InvalidArgumentError('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (memory > 0 && swap > 0 && swap < memory) throw new InvalidArgumentError('Minimum memoryswap limit should be larger than memory limit, see usage');
  // dockerd: by default, swap is as large as the memory limit (MemorySwap = 2 * Memory).
  if (memory > 0 && swap === 0) swap = memory * 2;
  const reservation = host.MemoryReservation === undefined ? 0 : integer(host.MemoryReservation, 'HostConfig.MemoryReservation', 0);
  if (reservation > 0 && reservation < MIN_MEMORY) throw new InvalidArgumentError('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > memory) throw new InvalidArgumentError('Minimum memory limit can not be less than memory reservation limit, see usage');
  const swappiness = host.MemorySwappiness === undefined || host.MemorySwappiness === null ? -1 : integer(host.MemorySwappiness, 'HostConfig.MemorySwappiness', -1);
  if (swappiness > 100) throw new InvalidArgumentError(`invalid value: ${swappiness}, valid memory swappiness range is 0-100`, 'HostConfig.MemorySwappiness');
  const noOomKiller = optionalBoolean(host.OomKillDisable ?? undefined, 'HostConfig.OomKillDisable') ?? false;
  if (memory > 0 || swap !== 0 || reservation > 0 || swappiness >= 0 || noOomKiller) {
    result.memory = {};
    if (memory > 0) result.memory.limit = memory;
    if (swap !== 0) result.memory.swap = swap;
    if (reservation > 0) result.memory.reservation = reservation;
    if (swappiness >= 0) result.memory.swappiness = swappiness;
    if (noOomKiller) result.memory.disableOOMKiller = true;
  }

  const cpu: NonNullable<typeof result.cpu> = {};
  const nanoCpus = host.NanoCpus === undefined ? 0 : integer(host.NanoCpus, 'HostConfig.NanoCpus', 0);
  const period = host.CpuPeriod === undefined ? 0 : integer(host.CpuPeriod, 'HostConfig.CpuPeriod', 0);
  const quota = host.CpuQuota === undefined ? 0 : integer(host.CpuQuota, 'HostConfig.CpuQuota', -1);
  if (nanoCpus > 0 && period > 0) throw new InvalidArgumentError('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nanoCpus > 0 && quota > 0) throw new InvalidArgumentError('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (period !== 0 && (period < 1000 || period > 1_000_000)) {
    throw new InvalidArgumentError('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  }
  if (quota > 0 && quota < 1000) throw new InvalidArgumentError('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  // dockerd's range (verifyPlatformContainerResources), in its words: --cpus 99 on 2 CPUs is refused.
  if (nanoCpus > 0 && facts.cpuCount && (nanoCpus < 1e7 || nanoCpus > facts.cpuCount * 1e9)) {
    throw new InvalidArgumentError(`Range of CPUs is from 0.01 to ${facts.cpuCount}.00, as there are only ${facts.cpuCount} CPUs available`);
  }
  if (nanoCpus > 0) {
    // As dockerd: a 100ms period, and the quota NanoCpus * period / 1e9 (integer division).
    cpu.period = 100_000;
    cpu.quota = Math.floor((nanoCpus * 100_000) / 1e9);
    if (cpu.quota < 1000) throw new InvalidArgumentError('range of CPUs starts at 0.01', 'HostConfig.NanoCpus');
  }
  if (period !== 0) cpu.period = period;
  if (quota !== 0) cpu.quota = quota;
  if (host.CpuShares !== undefined && host.CpuShares !== 0) cpu.shares = integer(host.CpuShares, 'HostConfig.CpuShares', 0);
  const cpus = optionalString(host.CpusetCpus, 'HostConfig.CpusetCpus');
  if (cpus) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(cpus)) throw new InvalidArgumentError(`Invalid value ${cpus} for cpuset cpus: invalid format: ${cpus}`);
    checkCpusetAvailable(cpus, facts.cpusetCpus, 'CPUs');
    cpu.cpus = cpus;
  }
  const rtPeriod = host.CpuRealtimePeriod === undefined ? 0 : integer(host.CpuRealtimePeriod, 'HostConfig.CpuRealtimePeriod', 0);
  const rtRuntime = host.CpuRealtimeRuntime === undefined ? 0 : integer(host.CpuRealtimeRuntime, 'HostConfig.CpuRealtimeRuntime', -1);
  if (rtPeriod && rtRuntime > rtPeriod) throw new InvalidArgumentError('cpu real-time runtime cannot be higher than cpu real-time period');
  if (rtPeriod) cpu.realtimePeriod = rtPeriod;
  if (rtRuntime) cpu.realtimeRuntime = rtRuntime;
  const mems = optionalString(host.CpusetMems, 'HostConfig.CpusetMems');
  if (mems) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(mems)) throw new InvalidArgumentError(`Invalid value ${mems} for cpuset mems: invalid format: ${mems}`);
    checkCpusetAvailable(mems, facts.cpusetMems, 'memory nodes');
    cpu.mems = mems;
  }
  if (Object.keys(cpu).length > 0) result.cpu = cpu;

  const blockIO = blkio(host, facts);
  if (blockIO) result.blockIO = blockIO;

  if (host.PidsLimit !== undefined && host.PidsLimit !== null) {
    const limit = integer(host.PidsLimit, 'HostConfig.PidsLimit');
    // The API takes 0 and negative values as "unlimited".
    result.pids = { limit: limit <= 0 ? -1 : limit };
  }
  return result;
}

/**
 * The blkio fields: a weight (10-1000) overall and per device, and per-device read/write
 * limits in bytes or operations per second, devices named by path (dockerd stats them). Weights
 * need a kernel whose blkio takes them; without, dockerd discards them with a warning, as here
 * (see resourceWarnings).
 */
function blkio(host: HostConfig, facts: Pick<HostFacts, 'deviceNumbers' | 'blkioWeight'>): NonNullable<NonNullable<Spec['linux']>['resources']>['blockIO'] | undefined {
  const result: NonNullable<NonNullable<Spec['linux']>['resources']>['blockIO'] = {};
  const device = (p: unknown, field: string): { major: number; minor: number } => {
    const devicePath = checkString(p, field);
    const numbers = facts.deviceNumbers?.(devicePath);
    // dockerd stats the path (its words, which the docker CLI answers with 127).
    if (numbers === 'missing') throw new InvalidArgumentError(`stat ${devicePath}: no such file or directory`);
    if (!numbers) throw new InvalidArgumentError(`${devicePath} is not a block device on this host`, field);
    return numbers;
  };
  const weight = host.BlkioWeight === undefined ? 0 : integer(host.BlkioWeight, 'HostConfig.BlkioWeight', 0, 1000);
  // Without weights on this host it is discarded with a warning (resourceWarnings), unchecked, as dockerd does.
  if (weight > 0 && weight < 10 && facts.blkioWeight) throw new InvalidArgumentError('range of blkio weight is from 10 to 1000', 'HostConfig.BlkioWeight');
  if (weight > 0 && facts.blkioWeight) result.weight = weight;
  const list = <T>(value: T[] | null | undefined, field: string): T[] => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw new InvalidArgumentError('must be a list', field);
    return value;
  };
  // Discarded unchecked where the host has no weights (with resourceWarnings' warning), as dockerd does.
  const weights = list(facts.blkioWeight ? host.BlkioWeightDevice : [], 'HostConfig.BlkioWeightDevice').map((d, i) => {
    const field = `HostConfig.BlkioWeightDevice[${i}]`;
    checkObject(d, field);
    const w = integer(d.Weight, `${field}.Weight`, 10, 1000);
    return { ...device(d.Path, `${field}.Path`), weight: w };
  });
  if (weights.length && facts.blkioWeight) result.weightDevice = weights;
  for (const [key, field] of [
    ['throttleReadBpsDevice', 'BlkioDeviceReadBps'],
    ['throttleWriteBpsDevice', 'BlkioDeviceWriteBps'],
    ['throttleReadIOPSDevice', 'BlkioDeviceReadIOps'],
    ['throttleWriteIOPSDevice', 'BlkioDeviceWriteIOps'],
  ] as const) {
    const throttles = list(host[field], `HostConfig.${field}`).map((d, i) => {
      const f = `HostConfig.${field}[${i}]`;
      checkObject(d, f);
      return { ...device(d.Path, `${f}.Path`), rate: integer(d.Rate, `${f}.Rate`, 0) };
    });
    if (throttles.length) result[key] = throttles;
  }
  return Object.keys(result).length ? result : undefined;
}

/** dockerd's create warnings for resources the host cannot give (the docker CLI prints them). */
export function resourceWarnings(host: HostConfig, facts: Pick<HostFacts, 'blkioWeight'> = {}): string[] {
  const warnings: string[] = [];
  if (!facts.blkioWeight && (host.BlkioWeight ?? 0) > 0) warnings.push('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
  if (!facts.blkioWeight && Array.isArray(host.BlkioWeightDevice) && host.BlkioWeightDevice.length > 0) {
    warnings.push('Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.');
  }
  if ((host.KernelMemory ?? 0) > 0) warnings.push('Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.');
  if (host.OomKillDisable && !(host.Memory ?? 0)) warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.");
  return warnings;
}

const ULIMIT_NAMES = new Set(['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);
const RLIM_INFINITY = 2 ** 64;

function ulimits(list: Ulimit[] | null | undefined): Rlimit[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new InvalidArgumentError('must be a list', 'HostConfig.Ulimits');
  const seen = new Set<string>();
  return list.map((item, index) => {
    const field = `HostConfig.Ulimits[${index}]`;
    checkObject(item, field);
    const name = checkString(item.Name, `${field}.Name`);
    if (!ULIMIT_NAMES.has(name)) throw new InvalidArgumentError(`invalid ulimit type ${JSON.stringify(name)}`, `${field}.Name`);
    if (seen.has(name)) throw new InvalidArgumentError(`duplicate ulimit ${name}`, `${field}.Name`);
    seen.add(name);
    const soft = integer(item.Soft, `${field}.Soft`, -1);
    const hard = integer(item.Hard, `${field}.Hard`, -1);
    const value = (n: number) => (n === -1 ? RLIM_INFINITY : n);
    if (value(soft) > value(hard)) throw new InvalidArgumentError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`, `${field}.Soft`);
    return { type: `RLIMIT_${name.toUpperCase()}`, soft: value(soft), hard: value(hard) };
  });
}

function deviceSetup(list: DeviceMapping[] | null | undefined, privileged: boolean, hostDevices: LinuxDevice[]): { devices: LinuxDevice[]; rules: DeviceCgroupRule[] } {
  const devices: LinuxDevice[] = [];
  let rules = defaultDeviceRules();
  if (privileged) {
    devices.push(...hostDevices.map((d) => ({ ...d })));
    rules = [{ allow: true, access: 'rwm' }];
  }
  if (list !== undefined && list !== null && !Array.isArray(list)) throw new InvalidArgumentError('must be a list', 'HostConfig.Devices');
  (list ?? []).forEach((mapping, index) => {
    const field = `HostConfig.Devices[${index}]`;
    checkObject(mapping, field);
    const onHost = checkString(mapping.PathOnHost, `${field}.PathOnHost`);
    if (!onHost.startsWith('/')) throw new InvalidArgumentError('must be an absolute path', `${field}.PathOnHost`);
    const inContainer = optionalString(mapping.PathInContainer, `${field}.PathInContainer`) || onHost;
    if (!inContainer.startsWith('/')) throw new InvalidArgumentError('must be an absolute path', `${field}.PathInContainer`);
    const access = optionalString(mapping.CgroupPermissions, `${field}.CgroupPermissions`) || 'rwm';
    if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
      throw new InvalidArgumentError(`invalid device cgroup permissions ${JSON.stringify(access)}`, `${field}.CgroupPermissions`);
    }
    // Privileged containers have every host device already; only renamed ones are added.
    if (privileged && cleanPath(onHost) === cleanPath(inContainer)) return;
    const hostPath = cleanPath(onHost);
    const exact = hostDevices.find((d) => d.path === hostPath);
    const matches = exact ? [exact] : hostDevices.filter((d) => d.path.startsWith(`${hostPath}/`));
    // dockerd's words (the docker CLI then exits 127, as for a missing file).
    if (matches.length === 0) throw new InvalidArgumentError(`error gathering device information while adding custom device ${JSON.stringify(hostPath)}: no such file or directory`);
    for (const device of matches) {
      const path = exact ? cleanPath(inContainer) : cleanPath(`${inContainer}/${device.path.slice(hostPath.length + 1)}`);
      devices.push({ ...device, path });
      if (!privileged) rules.push({ allow: true, type: device.type, major: device.major, minor: device.minor, access });
    }
  });
  return { devices, rules };
}

function absolutePaths(list: unknown, field: string): string[] {
  if (!Array.isArray(list)) throw new InvalidArgumentError('must be a list', field);
  return list.map((p, i) => {
    if (typeof p !== 'string' || !p.startsWith('/')) throw new InvalidArgumentError('must be an absolute path', `${field}[${i}]`);
    return p;
  });
}

/** --device-cgroup-rule "c 10:229 rmw" (type a/b/c, major:minor each a number or *, access): allow rules. */
function deviceCgroupRules(list: string[] | null | undefined): DeviceCgroupRule[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new InvalidArgumentError('must be a list', 'HostConfig.DeviceCgroupRules');
  return list.map((rule, i) => {
    const m = typeof rule === 'string' ? /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule) : null;
    if (!m) throw new InvalidArgumentError(`invalid device cgroup rule format: '${String(rule)}'`, `HostConfig.DeviceCgroupRules[${i}]`);
    return { allow: true, type: m[1]!, ...(m[2] !== '*' ? { major: Number(m[2]) } : {}), ...(m[3] !== '*' ? { minor: Number(m[3]) } : {}), access: m[4]! };
  });
}

/** Sysctls a container may set: those of its own IPC or network namespace (Docker's list). */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

function checkSysctl(key: string): void {
  const name = key.replaceAll('/', '.');
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.') || name.startsWith('net.') || name === 'kernel.domainname') return;
  throw new InvalidArgumentError('sysctl is not namespaced, it cannot be set in a container', `HostConfig.Sysctls[${JSON.stringify(key)}]`);
}

// ---------------------------------------------------------------------------------------------
// Input checks

function checkId(value: unknown, field: string): void {
  integer(value, field, 0, 2 ** 32 - 2);
}
