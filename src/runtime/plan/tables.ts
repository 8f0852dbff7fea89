/**
 * Kernel constant tables for Linux on x86_64 and aarch64 (the "generic" ABI values; mips,
 * sparc, alpha and parisc differ and are not supported). Pure data plus small parsers that
 * turn OCI config strings into these numbers. Nothing here touches the system.
 */

import { InvalidArgumentError } from '../../common/errors.js';
import type { NamespaceType } from '../spec/config.js';

// ---------------------------------------------------------------------------------------------
// Capabilities (include/uapi/linux/capability.h)

/** Capability name -> bit number, in kernel order. */
export const CAPABILITIES: Record<string, number> = Object.freeze({
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
});

/** Highest capability number this table knows (CAP_LAST_CAP of Linux 5.9+). */
export const LAST_CAP = 40;

/** The bit number of a capability name such as `CAP_CHOWN`; unknown names are input errors. */
export function capabilityNumber(name: string, field: string): number {
  // Object.hasOwn: a name like `toString` must not resolve through the prototype.
  if (typeof name === 'string' && Object.hasOwn(CAPABILITIES, name)) return CAPABILITIES[name];
  throw new InvalidArgumentError(`unknown capability ${JSON.stringify(name)}`, field);
}

// ---------------------------------------------------------------------------------------------
// Resource limits (include/uapi/asm-generic/resource.h)

/** OCI rlimit type -> resource number for setrlimit/prlimit. */
export const RLIMITS: Record<string, number> = Object.freeze({
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
});

// ---------------------------------------------------------------------------------------------
// mount(2) flags (include/uapi/linux/mount.h)

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_POSIXACL = 0x10000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_I_VERSION = 0x800000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

/** Propagation-type flags: mount(2) accepts only one of these per call (plus MS_REC). */
export const MS_PROPAGATION_MASK = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

// mount_setattr(2) attributes (include/uapi/linux/mount.h)
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
/** Mask of the access-time "enum"; setting one of its values requires clearing this. */
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_RELATIME = 0x0;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR_NODIRATIME = 0x80;
export const MOUNT_ATTR_IDMAP = 0x100000;
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

export interface ParsedMountOptions {
  /** MS_* flags to pass to mount(2). */
  flags: number;
  /** MS_* flags explicitly cleared by an option (`rw`, `suid`, ...): matter when remounting a bind. */
  clearFlags: number;
  /** Propagation changes (MS_SHARED|MS_REC etc.), each a separate mount(2) call, applied in order. */
  propagation: number[];
  /** Options passed to the filesystem as the data argument, in order (join with ','). */
  data: string[];
  /** `rbind`: MS_BIND|MS_REC is in flags. */
  recursiveBind: boolean;
  /** `bind` or `rbind`. */
  bind: boolean;
  /** MOUNT_ATTR_* to set recursively with mount_setattr(AT_RECURSIVE) (`rro`, `rnosuid`, ...). */
  attrSet: number;
  /** MOUNT_ATTR_* to clear recursively; includes MOUNT_ATTR__ATIME when an atime mode is set. */
  attrClr: number;
  /** `idmap` or `ridmap`: the mount is id-mapped with the mount's (or the container's) mappings. */
  idmap: boolean;
  /** `ridmap`: the id-mapping applies to the whole bind tree. */
  recursiveIdmap: boolean;
  /** `tmpcopyup`: copy the destination's previous contents into the new tmpfs. */
  tmpcopyup: boolean;
}

/** Option -> [clears?, MS_* flag]. Same table as runc's specconv `mountFlags`. */
const MOUNT_FLAG_OPTIONS: Readonly<Record<string, readonly [boolean, number]>> = Object.freeze({
  async: [true, MS_SYNCHRONOUS],
  atime: [true, MS_NOATIME],
  bind: [false, MS_BIND],
  dev: [true, MS_NODEV],
  diratime: [true, MS_NODIRATIME],
  dirsync: [false, MS_DIRSYNC],
  exec: [true, MS_NOEXEC],
  iversion: [false, MS_I_VERSION],
  lazytime: [false, MS_LAZYTIME],
  loud: [true, MS_SILENT],
  mand: [false, MS_MANDLOCK],
  noatime: [false, MS_NOATIME],
  nodev: [false, MS_NODEV],
  nodiratime: [false, MS_NODIRATIME],
  noexec: [false, MS_NOEXEC],
  noiversion: [true, MS_I_VERSION],
  nolazytime: [true, MS_LAZYTIME],
  nomand: [true, MS_MANDLOCK],
  norelatime: [true, MS_RELATIME],
  nostrictatime: [true, MS_STRICTATIME],
  nosuid: [false, MS_NOSUID],
  nosymfollow: [false, MS_NOSYMFOLLOW], // kernel 5.10+
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  silent: [false, MS_SILENT],
  strictatime: [false, MS_STRICTATIME],
  suid: [true, MS_NOSUID],
  symfollow: [true, MS_NOSYMFOLLOW],
  sync: [false, MS_SYNCHRONOUS],
});

/** Propagation option -> MS_* flags; also the values of `linux.rootfsPropagation`. */
export const PROPAGATION_OPTIONS: Readonly<Record<string, number>> = Object.freeze({
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
});

/** Option -> [clears?, MOUNT_ATTR_* flag], applied recursively via mount_setattr (kernel 5.12+). */
const RECURSIVE_ATTR_OPTIONS: Readonly<Record<string, readonly [boolean, number]>> = Object.freeze({
  rro: [false, MOUNT_ATTR_RDONLY],
  rrw: [true, MOUNT_ATTR_RDONLY],
  rnosuid: [false, MOUNT_ATTR_NOSUID],
  rsuid: [true, MOUNT_ATTR_NOSUID],
  rnodev: [false, MOUNT_ATTR_NODEV],
  rdev: [true, MOUNT_ATTR_NODEV],
  rnoexec: [false, MOUNT_ATTR_NOEXEC],
  rexec: [true, MOUNT_ATTR_NOEXEC],
  rnodiratime: [false, MOUNT_ATTR_NODIRATIME],
  rdiratime: [true, MOUNT_ATTR_NODIRATIME],
  rrelatime: [false, MOUNT_ATTR_RELATIME],
  rnorelatime: [true, MOUNT_ATTR_RELATIME],
  rnoatime: [false, MOUNT_ATTR_NOATIME],
  ratime: [true, MOUNT_ATTR_NOATIME],
  rstrictatime: [false, MOUNT_ATTR_STRICTATIME],
  rnostrictatime: [true, MOUNT_ATTR_STRICTATIME],
  rnosymfollow: [false, MOUNT_ATTR_NOSYMFOLLOW], // kernel 5.14+
  rsymfollow: [true, MOUNT_ATTR_NOSYMFOLLOW],
});

/** Options that are neither MS_* flags nor fs data but handled by the runtime itself. */
const RUNTIME_OPTIONS = Object.freeze(['defaults', 'idmap', 'ridmap', 'tmpcopyup']);

/** Every mount option the runtime interprets (everything else goes to the filesystem as data). */
export const KNOWN_MOUNT_OPTIONS: readonly string[] = Object.freeze(
  [
    ...Object.keys(MOUNT_FLAG_OPTIONS),
    ...Object.keys(PROPAGATION_OPTIONS),
    ...Object.keys(RECURSIVE_ATTR_OPTIONS),
    ...RUNTIME_OPTIONS,
  ].sort(),
);

/**
 * Splits OCI mount options the way runc does: MS_* flags (later options override earlier ones),
 * propagation changes, recursive mount_setattr attributes, id-mapping, tmpcopyup, and the rest
 * as filesystem data. `defaults` is a no-op (runc would pass it to the filesystem, which most
 * reject). `field` names the options array for errors.
 */
export function parseMountOptions(options: string[] | undefined, field: string): ParsedMountOptions {
  const parsed: ParsedMountOptions = {
    flags: 0,
    clearFlags: 0,
    propagation: [],
    data: [],
    recursiveBind: false,
    bind: false,
    attrSet: 0,
    attrClr: 0,
    idmap: false,
    recursiveIdmap: false,
    tmpcopyup: false,
  };
  if (options === undefined) return parsed;
  if (!Array.isArray(options)) throw new InvalidArgumentError('must be an array of strings', field);
  options.forEach((option, index) => {
    if (typeof option !== 'string') throw new InvalidArgumentError('must be a string', `${field}[${index}]`);
    if (option === '') throw new InvalidArgumentError('must not be empty', `${field}[${index}]`);
    if (Object.hasOwn(MOUNT_FLAG_OPTIONS, option)) {
      const [clears, flag] = MOUNT_FLAG_OPTIONS[option];
      if (clears) {
        parsed.flags &= ~flag;
        parsed.clearFlags |= flag;
      } else {
        parsed.flags |= flag;
        parsed.clearFlags &= ~flag;
      }
    } else if (Object.hasOwn(PROPAGATION_OPTIONS, option)) {
      parsed.propagation.push(PROPAGATION_OPTIONS[option]);
    } else if (Object.hasOwn(RECURSIVE_ATTR_OPTIONS, option)) {
      const [clears, attr] = RECURSIVE_ATTR_OPTIONS[option];
      if (clears) {
        parsed.attrClr |= attr;
        parsed.attrSet &= ~attr;
      } else {
        parsed.attrSet |= attr;
        parsed.attrClr &= ~attr;
      }
      // mount_setattr(2): an access-time mode in attr_set needs MOUNT_ATTR__ATIME in attr_clr.
      if ((attr & MOUNT_ATTR__ATIME) === attr) parsed.attrClr |= MOUNT_ATTR__ATIME;
    } else if (option === 'idmap' || option === 'ridmap') {
      parsed.idmap = true;
      parsed.recursiveIdmap = option === 'ridmap';
    } else if (option === 'tmpcopyup') {
      parsed.tmpcopyup = true;
    } else if (option === 'defaults') {
      // The fstab placeholder: no flags, no data.
    } else {
      parsed.data.push(option);
    }
  });
  // Flags are unsigned in C; keep them non-negative in JS after `&= ~x`.
  parsed.flags >>>= 0;
  parsed.clearFlags >>>= 0;
  parsed.attrSet >>>= 0;
  parsed.attrClr >>>= 0;
  parsed.bind = (parsed.flags & MS_BIND) !== 0;
  parsed.recursiveBind = parsed.bind && (parsed.flags & MS_REC) !== 0;
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Namespaces (include/uapi/linux/sched.h)

export const CLONE_NEWTIME = 0x80;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWCGROUP = 0x2000000;
export const CLONE_NEWUTS = 0x4000000;
export const CLONE_NEWIPC = 0x8000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

/** OCI namespace type -> clone/unshare/setns flag. */
export const NAMESPACE_CLONE_FLAGS: Readonly<Record<NamespaceType, number>> = Object.freeze({
  pid: CLONE_NEWPID,
  network: CLONE_NEWNET,
  mount: CLONE_NEWNS,
  ipc: CLONE_NEWIPC,
  uts: CLONE_NEWUTS,
  user: CLONE_NEWUSER,
  cgroup: CLONE_NEWCGROUP,
  time: CLONE_NEWTIME,
});

/** OCI namespace type -> file name under /proc/<pid>/ns/. */
export const NAMESPACE_PROC_NAMES: Readonly<Record<NamespaceType, string>> = Object.freeze({
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
});

// ---------------------------------------------------------------------------------------------
// Signals (x86_64/aarch64 numbering; glibc reserves 32 and 33, so SIGRTMIN is 34)

export const SIGNALS: Readonly<Record<string, number>> = Object.freeze({
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGIOT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPOLL: 29,
  SIGPWR: 30,
  SIGSYS: 31,
});

export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/**
 * Parses a signal as `kill` and `docker kill` accept it: `KILL`, `SIGKILL`, `sigkill`, `9`,
 * `RTMIN`, `SIGRTMIN+3`, `RTMAX-1`.
 */
export function parseSignal(s: string): number {
  const field = 'signal';
  if (typeof s !== 'string' || s.trim() === '') throw new InvalidArgumentError('signal must not be empty', field);
  const text = s.trim();
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number < 1 || number > SIGRTMAX) throw new InvalidArgumentError(`invalid signal number ${text}`, field);
    return number;
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (Object.hasOwn(SIGNALS, name)) return SIGNALS[name];
  const realtime = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (realtime) {
    const [, base, sign, offsetText] = realtime;
    const offset = offsetText === undefined ? 0 : Number(offsetText) * (sign === '-' ? -1 : 1);
    const number = (base === 'MIN' ? SIGRTMIN : SIGRTMAX) + offset;
    if (number >= SIGRTMIN && number <= SIGRTMAX) return number;
  }
  throw new InvalidArgumentError(`unknown signal ${JSON.stringify(s)}`, field);
}
