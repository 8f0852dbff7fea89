/**
 * Compiles a validated OCI config into the plan that berth-nsexec carries out.
 * Pure: everything it needs from the host (rootfs path, cgroup paths, whether a bind
 * source is a directory, the compiled seccomp filter) comes in through the context.
 */
import path from 'node:path';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { Hook, IdMapping, LinuxDevice, Mount, Namespace, NamespaceType, Process, Spec } from '../spec/config.js';
import { LOOPBACK_ANNOTATION } from '../spec/config.js';
import { DEFAULT_DEVICES, DEFAULT_DEVICE_SYMLINKS } from '../spec/defaults.js';
import { mask64, nulList, type PlanOp } from './plan.js';
import {
  capabilityNumber,
  CLONE_NEWTIME,
  CLONE_NEWUSER,
  MS_BIND,
  MS_REC,
  MS_SLAVE,
  MS_NOSUID,
  MS_NODEV,
  MS_NOEXEC,
  MS_RDONLY,
  MS_RELATIME,
  NAMESPACE_CLONE_FLAGS,
  NAMESPACE_PROC_NAMES,
  parseMountOptions,
  PROPAGATION_OPTIONS,
  RLIMITS,
} from './tables.js';

/** What the host side knows and the pure compiler cannot look up itself. */
export interface HostFacts {
  /** Highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap). */
  lastCap: number;
  /** Whether a bind-mount source is a directory (decides what to create at the target). */
  isDirectory(hostPath: string): boolean;
  /** Whether a host path exists (e.g. /proc/kcore for the /dev/core link). */
  exists(hostPath: string): boolean;
  /** Linux security modules the host has enabled. */
  apparmor?: boolean;
  selinux?: boolean;
}

/**
 * A requested AppArmor profile or SELinux label that cannot be applied is an error, never
 * silently skipped: the caller asked for that confinement.
 */
function checkSecurityModules(spec: Spec, process: Process, host: HostFacts): void {
  if (process.apparmorProfile && !host.apparmor) throw new UnsupportedError('process.apparmorProfile: AppArmor is not enabled on this host');
  if (process.selinuxLabel && !host.selinux) throw new UnsupportedError('process.selinuxLabel: SELinux is not enabled on this host');
  if (spec.linux?.mountLabel && !host.selinux) throw new UnsupportedError('linux.mountLabel: SELinux is not enabled on this host');
}

/** A seccomp filter already compiled to BPF (src/runtime/seccomp). */
export interface CompiledSeccomp {
  filter: Buffer;
  flags: number;
}

export interface CgroupPlacement {
  /** cgroup.procs files to write "0" into, joining the cgroup before clone. */
  procsFiles: string[];
  /** cgroup.procs files whose failure is tolerated (runc: named and unified hierarchies in v1). */
  optionalProcsFiles?: string[];
  /** Hierarchy name ('memory', 'cpu', 'unified', ...) -> the container's cgroup directory on the host. */
  paths: Record<string, string>;
  /** cgroup v2 device rules as an eBPF program (cgroups/devices-bpf.ts), attached to this directory. */
  deviceFilter?: { cgroupDir: string; program: Buffer };
  mode: 'v1' | 'hybrid' | 'v2';
}

export interface CreatePlanContext {
  bundle: string;
  /** Absolute rootfs path on the host. */
  rootfs: string;
  /** Path of the exec fifo in the state directory; none: the process runs its program once set up (create and start in one). */
  execFifo?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  /** Stage 0 waits for the container and exits with its status (`run` without --detach). */
  foreground: boolean;
  preserveFds: number;
  cgroup?: CgroupPlacement;
  seccomp?: CompiledSeccomp;
  host: HostFacts;
}


/** setns order: the user namespace first (it grants the rights for the rest), mount last (it changes path lookup). */
const JOIN_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'mount'];

export function idMapText(maps: IdMapping[] | undefined): string {
  return (maps ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function envValue(env: string[] | undefined, name: string): string | undefined {
  const prefix = name + '=';
  const entry = (env ?? []).find((e) => e.startsWith(prefix));
  return entry?.slice(prefix.length);
}

/**
 * The environment execve() gets, as runc prepares it: one entry per name, the last one given (in
 * its place), so that `-e A=2` after `--env-file`'s A=1 wins for getenv(), which takes the first;
 * an entry without "=" stays as it is. A missing or empty HOME is left to the C side
 * (home_from_passwd), which reads the container's /etc/passwd.
 */
export function execEnvironment(given: readonly string[] | undefined): { env: string[]; needsHome: boolean } {
  const list = given ?? [];
  const seen = new Set<string>();
  const kept: string[] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const entry = list[i]!;
    const at = entry.indexOf('=');
    if (at >= 0) {
      const name = entry.slice(0, at);
      if (seen.has(name)) continue;
      seen.add(name);
    }
    kept.push(entry);
  }
  kept.reverse();
  const needsHome = !kept.some((e) => e.startsWith('HOME=') && e.length > 'HOME='.length);
  return { env: needsHome ? kept.filter((e) => e !== 'HOME=') : kept, needsHome };
}

/** The default PATH when the process env has none (as runc/Go's exec.LookPath sees it). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function hookOp(hook: Hook): PlanOp {
  const argv = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  return ['hook', hook.path, hook.timeout ?? 0, nulList(argv), nulList(hook.env ?? [])];
}

function stage0Ops(cgroup: CgroupPlacement | undefined, joinPaths: Map<NamespaceType, string>): PlanOp[] {
  const ops: PlanOp[] = [];
  // The device filter before anyone joins: no moment without it.
  if (cgroup?.deviceFilter) ops.push(['bpf_devices', cgroup.deviceFilter.cgroupDir, cgroup.deviceFilter.program]);
  // Join the cgroup first: after setns into a user namespace the write may be refused.
  for (const file of cgroup?.procsFiles ?? []) ops.push(['write', file, '0']);
  for (const file of cgroup?.optionalProcsFiles ?? []) ops.push(['try_write', file, '0']);
  for (const type of JOIN_ORDER) {
    const nsPath = joinPaths.get(type);
    if (nsPath) ops.push(['setns', nsPath, NAMESPACE_CLONE_FLAGS[type]]);
  }
  return ops;
}

/** Namespaces: those to create (clone flags) and those to join (paths), from the config. */
export function splitNamespaces(namespaces: Namespace[] | undefined): { cloneFlags: number; join: Map<NamespaceType, string>; created: Set<NamespaceType> } {
  let cloneFlags = 0;
  const join = new Map<NamespaceType, string>();
  const created = new Set<NamespaceType>();
  for (const ns of namespaces ?? []) {
    if (ns.path) join.set(ns.type, ns.path);
    else {
      created.add(ns.type);
      cloneFlags |= NAMESPACE_CLONE_FLAGS[ns.type];
    }
  }
  return { cloneFlags, join, created };
}

function cgroupMountOps(mount: Mount, index: number, cgroup: CgroupPlacement | undefined, newCgroupNs: boolean): PlanOp[] {
  if (!cgroup) return [];
  const opts = parseMountOptions(mount.options, `mounts[${index}].options`);
  const readOnly = (opts.flags & MS_RDONLY) !== 0;
  const baseFlags = (opts.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME)) | (readOnly ? MS_RDONLY : 0);
  const dest = mount.destination;
  if (cgroup.mode === 'v2') {
    if (newCgroupNs) return [['mount', 'cgroup', dest, 'cgroup2', baseFlags, '', 'dir']];
    return [['mount', cgroup.paths.unified, dest, '', MS_BIND | MS_REC | baseFlags, '', 'dir']];
  }
  // v1: a tmpfs holding one bind mount of the container's own directory per v1 hierarchy. Not
  // hybrid's cgroup2 directory (the container joins it all the same), as runc mounts only the v1
  // hierarchies: what a container sees, systemd's idea of the host's mode among it, is Docker's.
  const ops: PlanOp[] = [['mount', 'tmpfs', dest, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=755', 'dir']];
  for (const [name, hostDir] of Object.entries(cgroup.paths).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (name === 'unified') continue;
    const subdir = name.startsWith('name=') ? name.slice(5) : name;
    ops.push(['mount', hostDir, path.posix.join(dest, subdir), '', MS_BIND | MS_REC | baseFlags, '', 'dir']);
  }
  if (readOnly) ops.push(['remount', dest, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC]);
  return ops;
}

/** The /proc files lxcfs emulates, which runc lets a mount cover (checkProcMount's validProcMounts). */
const LXCFS_PROC_FILES = new Set(['/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg', '/proc/slabinfo', '/proc/pressure/cpu', '/proc/pressure/io', '/proc/pressure/memory', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid']);

/** Whether a mount's target must be checked for lying inside /proc: any but /proc itself and lxcfs's files. */
function mayBeInsideProc(dest: string): boolean {
  return dest !== '/proc' && !LXCFS_PROC_FILES.has(dest);
}

function mountOps(spec: Spec, ctx: CreatePlanContext, newCgroupNs: boolean): PlanOp[] {
  const ops: PlanOp[] = [];
  (spec.mounts ?? []).forEach((mount, index) => {
    const field = `mounts[${index}]`;
    const dest = path.posix.normalize(mount.destination.startsWith('/') ? mount.destination : '/' + mount.destination);
    const type = mount.type ?? '';
    if (type === 'cgroup' || type === 'cgroup2') {
      ops.push(...cgroupMountOps({ ...mount, destination: dest }, index, ctx.cgroup, newCgroupNs));
      return;
    }
    const opts = parseMountOptions(mount.options, `${field}.options`);
    if (opts.idmap) throw new UnsupportedError(`${field}.options: idmap mounts are not supported yet`);
    if (opts.tmpcopyup) throw new UnsupportedError(`${field}.options: tmpcopyup is not supported yet`);
    const isBind = opts.bind || type === 'bind';
    let source = mount.source ?? '';
    let create = 'dir';
    let flags = opts.flags;
    if (isBind) {
      if (!source) throw new InvalidArgumentError('a bind mount needs a source', `${field}.source`);
      source = path.resolve(ctx.bundle, source);
      create = ctx.host.isDirectory(source) ? 'dir' : 'file';
      flags |= MS_BIND;
    }
    if (mayBeInsideProc(dest)) {
      // runc's checkProcMount: by the path here, and again in the C stage the way the mount will
      // resolve it (an image's symlink may lead there).
      const shown = path.posix.join(ctx.rootfs, dest);
      if (dest.startsWith('/proc/')) throw new InvalidArgumentError(`${JSON.stringify(shown)} cannot be mounted because it is inside /proc`, `${field}.destination`);
      ops.push(['outside_proc', dest, shown]);
    }
    ops.push(['mount', source, dest, isBind ? '' : type, flags, opts.data.join(','), create]);
    for (const propagation of opts.propagation) ops.push(['propagate', dest, propagation]);
    if (opts.attrSet || opts.attrClr) ops.push(['setattr', dest, opts.attrSet, opts.attrClr]);
  });
  return ops;
}

/** runc skips creating devices when /dev itself is a bind mount (e.g. --privileged engines bind the host's /dev). */
function needsDevSetup(spec: Spec): boolean {
  return !(spec.mounts ?? []).some((m) => path.posix.normalize(m.destination) === '/dev' && (m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')));
}

function deviceOps(spec: Spec, ctx: CreatePlanContext, newUserNs: boolean): PlanOp[] {
  if (!needsDevSetup(spec)) return [];
  const devices = new Map<string, LinuxDevice>();
  for (const d of DEFAULT_DEVICES) devices.set(d.path, d);
  for (const d of spec.linux?.devices ?? []) devices.set(path.posix.normalize(d.path), d);
  const ops: PlanOp[] = [];
  for (const d of devices.values()) {
    if (newUserNs) {
      // mknod is not allowed in a user namespace: bind the host's node instead.
      ops.push(['mount', d.path, d.path, '', MS_BIND, '', 'file']);
    } else {
      const type = d.type === 'u' ? 'c' : d.type;
      ops.push(['mknod', d.path, type, d.major ?? 0, d.minor ?? 0, d.fileMode ?? 0o666, d.uid ?? 0, d.gid ?? 0]);
    }
  }
  for (const link of DEFAULT_DEVICE_SYMLINKS) {
    if (link.onlyIfTargetExists && !ctx.host.exists(link.target)) continue;
    ops.push(['symlink', link.target, link.path]);
  }
  return ops;
}

function capabilityMasks(process: Process, lastCap: number): PlanOp {
  const caps = process.capabilities ?? {};
  const set = (names: string[] | undefined, field: string): string =>
    mask64((names ?? []).map((n, i) => capabilityNumber(n, `process.capabilities.${field}[${i}]`)).filter((n) => n <= lastCap));
  return [
    'caps',
    lastCap,
    set(caps.bounding, 'bounding'),
    set(caps.effective, 'effective'),
    set(caps.permitted, 'permitted'),
    set(caps.inheritable, 'inheritable'),
    set(caps.ambient, 'ambient'),
  ];
}

/**
 * The ops that shape the process itself, shared by `create` and `exec`: limits, identity,
 * capabilities, seccomp, then program lookup. Order matters: seccomp without
 * noNewPrivileges must be loaded while CAP_SYS_ADMIN is still held; with it, as late as possible.
 */
export function processOps(process: Process, opts: { lastCap: number; seccomp?: CompiledSeccomp; environment: ReturnType<typeof execEnvironment> }): PlanOp[] {
  const ops: PlanOp[] = [];
  (process.rlimits ?? []).forEach((r, i) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new InvalidArgumentError(`unknown rlimit ${r.type}`, `process.rlimits[${i}].type`);
    ops.push(['rlimit', resource, rlimitValue(r.soft), rlimitValue(r.hard)]);
  });
  ops.push(['chdir', process.cwd]);
  const args = process.args ?? [];
  ops.push(['resolve_exec', args[0], envValue(opts.environment.env, 'PATH') ?? DEFAULT_PATH]);
  if (opts.environment.needsHome) ops.push(['home_from_passwd', process.user.uid]);
  if (process.noNewPrivileges) ops.push(['no_new_privs']);
  if (opts.seccomp && !process.noNewPrivileges) ops.push(['seccomp', opts.seccomp.flags, opts.seccomp.filter]);
  const groups = process.user.additionalGids ?? [];
  ops.push(['user', process.user.uid, process.user.gid, groups.join(','), 1]);
  if (process.user.umask !== undefined) ops.push(['umask', process.user.umask]);
  else ops.push(['umask', 0o022]);
  ops.push(capabilityMasks(process, opts.lastCap));
  if (opts.seccomp && process.noNewPrivileges) ops.push(['seccomp', opts.seccomp.flags, opts.seccomp.filter]);
  return ops;
}

/** RLIM_INFINITY (2^64-1) arrives from JSON.parse as 2^64; the C side takes -1 for it. */
function rlimitValue(value: number): number {
  return value < 0 || value >= 2 ** 63 ? -1 : value;
}

/** Clone flags, maps and mode: the boundary between stage 0 and the container process. */
function cloneOp(flags: number, spec: Spec, foreground: boolean): PlanOp {
  const userNs = (flags & CLONE_NEWUSER) !== 0;
  return ['clone', flags & ~CLONE_NEWTIME, userNs ? idMapText(spec.linux?.uidMappings) : '', userNs ? idMapText(spec.linux?.gidMappings) : '', foreground ? 'foreground' : 'detach'];
}

/** The plan for `create` (and `run`): a new container process, stopped before exec until `start`. */
export function compileCreatePlan(spec: Spec, ctx: CreatePlanContext): PlanOp[] {
  const process = spec.process;
  if (!process) throw new InvalidArgumentError('a container needs a process', 'process');
  if (!process.args || process.args.length === 0) throw new InvalidArgumentError('must not be empty', 'process.args');
  checkSecurityModules(spec, process, ctx.host);
  const { cloneFlags, join, created } = splitNamespaces(spec.linux?.namespaces);
  // Without a mount namespace of its own the container shares the runtime's: its mounts are
  // made there (as runc does; delete unmounts them) and it enters the rootfs with chroot.
  const sharedMountNs = !created.has('mount') && !join.has('mount');
  const newUserNs = created.has('user');
  if (process.terminal && !ctx.consoleSocket) {
    throw new InvalidArgumentError('process.terminal is true but no --console-socket was given', '--console-socket');
  }

  // By stage 0, first: the value is inherited through clone, and written from the host's user
  // namespace, before joining any. Inside a new user namespace the write fails (the process is
  // not dumpable there, so its /proc files belong to the host's root), as runc knows: it writes
  // the value from its parent.
  const ops: PlanOp[] = process.oomScoreAdj !== undefined ? [['write', '/proc/self/oom_score_adj', String(process.oomScoreAdj)]] : [];
  ops.push(...stage0Ops(ctx.cgroup, join));
  if (created.has('time')) {
    ops.push(['unshare', CLONE_NEWTIME]);
    const offsets = Object.entries(spec.linux?.timeOffsets ?? {})
      .map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`)
      .join('');
    if (offsets) ops.push(['write', '/proc/self/timens_offsets', offsets]);
  }
  // Opened here, by the host's root: in a user namespace the container could not open it.
  if (ctx.execFifo) ops.push(['mkfifo', ctx.execFifo, 0o622], ['exec_fifo', ctx.execFifo]);
  if (process.terminal && ctx.consoleSocket) ops.push(['console_connect', ctx.consoleSocket]);
  ops.push(cloneOp(cloneFlags, spec, ctx.foreground));

  // --- the container process from here on ---
  const propagation = spec.linux?.rootfsPropagation;
  const rootPropagation = propagation ? PROPAGATION_OPTIONS[propagation] : MS_SLAVE | MS_REC;
  if (rootPropagation === undefined) throw new InvalidArgumentError(`unknown propagation ${propagation}`, 'linux.rootfsPropagation');
  ops.push(sharedMountNs ? ['rootfs_shared', ctx.rootfs] : ['rootfs', ctx.rootfs, rootPropagation]);
  ops.push(...mountOps(spec, ctx, created.has('cgroup')));
  ops.push(...deviceOps(spec, ctx, newUserNs));
  const hooks = spec.hooks ?? {};
  if ((hooks.prestart?.length ?? 0) + (hooks.createRuntime?.length ?? 0) > 0) ops.push(['sync', 'createRuntime']);
  for (const hook of hooks.createContainer ?? []) ops.push(hookOp(hook));
  ops.push(sharedMountNs ? ['chroot'] : ctx.noPivot ? ['move_root'] : ['pivot_root']);
  if (propagation === 'shared' || propagation === 'rshared') ops.push(['root_propagation', rootPropagation]);
  // The working directory is made if missing, inside the new root (so a symlink in the image
  // cannot lead it out) and before anything is made read-only, as runc does (docker run -w).
  if (process.cwd) ops.push(['mkdir_all', process.cwd]);
  if (process.terminal) ops.push(['console_setup', process.consoleSize?.height ?? 0, process.consoleSize?.width ?? 0]);
  // Sysctls before masked/readonly paths, as runc: /proc/sys becomes read-only below.
  for (const [key, value] of Object.entries(spec.linux?.sysctl ?? {})) {
    ops.push(['write', '/proc/sys/' + key.replace(/\./g, '/'), value]);
  }
  for (const p of spec.linux?.maskedPaths ?? []) ops.push(['mask', p]);
  for (const p of spec.linux?.readonlyPaths ?? []) ops.push(['readonly', p]);
  if (spec.root?.readonly) ops.push(['readonly_root']);
  // The engine asks for lo up (Docker's sandboxes have it; runc leaves a new namespace's down).
  if (spec.annotations?.[LOOPBACK_ANNOTATION] === 'up' && spec.linux?.namespaces?.some((ns) => ns.type === 'network')) ops.push(['loopback_up']);
  if (spec.hostname !== undefined && spec.hostname !== '') ops.push(['sethostname', spec.hostname]);
  if (spec.domainname !== undefined && spec.domainname !== '') ops.push(['setdomainname', spec.domainname]);
  const environment = execEnvironment(process.env); // once: the lookup and execve use the same
  ops.push(...processOps(process, { lastCap: ctx.host.lastCap, seccomp: ctx.seccomp, environment }));
  // startContainer hooks run after "ready" closed the sync socket: fetch their state before.
  if (hooks.startContainer?.length) ops.push(['load_state']);
  ops.push(['ready']);
  ops.push(['wait_start']);
  for (const hook of hooks.startContainer ?? []) ops.push(hookOp(hook));
  ops.push(['exec', nulList(process.args), nulList(environment.env), ctx.preserveFds]);
  return ops;
}

export interface ExecPlanContext {
  /** Host pid of the container's init, whose namespaces the new process joins. */
  initPid: number;
  /** Namespace types the container has (created or joined); the exec'd process joins each. */
  namespaces: NamespaceType[];
  consoleSocket?: string;
  foreground: boolean;
  preserveFds: number;
  cgroup?: CgroupPlacement;
  seccomp?: CompiledSeccomp;
  lastCap: number;
}

/** The plan for `exec`: a new process in every namespace and cgroup of a running container. */
export function compileExecPlan(process: Process, ctx: ExecPlanContext): PlanOp[] {
  if (!process.args || process.args.length === 0) throw new InvalidArgumentError('must not be empty', 'process.args');
  if (process.terminal && !ctx.consoleSocket) {
    throw new InvalidArgumentError('process.terminal is true but no --console-socket was given', '--console-socket');
  }
  const join = new Map<NamespaceType, string>();
  for (const type of ctx.namespaces) join.set(type, `/proc/${ctx.initPid}/ns/${NAMESPACE_PROC_NAMES[type]}`);
  const ops: PlanOp[] = [];
  // The console socket is a host path: connect before entering the container's mount namespace.
  if (process.terminal && ctx.consoleSocket) ops.push(['console_connect', ctx.consoleSocket]);
  ops.push(...stage0Ops(ctx.cgroup, join));
  ops.push(['clone', 0, '', '', ctx.foreground ? 'foreground' : 'detach']);
  if (process.terminal) ops.push(['console_setup', process.consoleSize?.height ?? 0, process.consoleSize?.width ?? 0]);
  const environment = execEnvironment(process.env);
  ops.push(...processOps(process, { lastCap: ctx.lastCap, seccomp: ctx.seccomp, environment }));
  ops.push(['ready']);
  ops.push(['exec', nulList(process.args), nulList(environment.env), ctx.preserveFds]);
  return ops;
}
