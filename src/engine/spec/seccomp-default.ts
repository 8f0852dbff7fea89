/**
 * Berth's default seccomp profile, with the semantics of moby's default profile
 * (profiles/seccomp/default.json, default_linux.go): everything not listed fails with EPERM; a
 * large allow list; syscalls allowed only with a capability (mount and friends with
 * CAP_SYS_ADMIN, ptrace with CAP_SYS_PTRACE, module loading with CAP_SYS_MODULE, clock changes with
 * CAP_SYS_TIME, ...); argument rules for personality, socket (no AF_ALG, no AF_VSOCK) and clone (no namespace
 * flags without CAP_SYS_ADMIN); clone3 returns ENOSYS without CAP_SYS_ADMIN so that libc falls back
 * to clone, whose flags the filter can read.
 *
 * The data is kept compact (space-separated names, one group per line) and turned into an OCI
 * `Seccomp` for one architecture and one capability set, as moby does before it hands the profile
 * to the runtime. Pure: nothing here reads the system.
 *
 * `seccompFromSecurityOpt` reads `--security-opt seccomp=...`: `unconfined`, or a profile as JSON in
 * Docker's format (archMap, includes/excludes, name or names) or plain OCI form.
 */

import { InvalidArgumentError } from '../../common/errors.js';
import { compileSeccomp } from '../../runtime/seccomp/compile.js';
import type { Seccomp, SeccompArg, SeccompSyscall } from '../../runtime/spec/config.js';

const EPERM = 1;
const ENOSYS = 38;

/** Namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const AF_ALG = 38;
const AF_NFC = 39;
const AF_VSOCK = 40;
/** personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Syscalls every container may make. */
const ALLOWED = words(`
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
  dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
  epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
  fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
  fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
  fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
  futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
  geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
  getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
  get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
  getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
  io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
  io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
  lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr _llseek
  lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create
  memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
  mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
  mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall
  munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
  pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
  pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
  pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
  remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe
  rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
  rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
  sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
  sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
  sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64
  send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
  setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
  setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
  set_thread_area set_tid_address setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget
  shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
  stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
  tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
  timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
  times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat
  utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`);

/** A group of rules with the conditions moby's profile expresses as includes/excludes. */
interface Group {
  names: string;
  action?: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
  /** Only on these Go architectures. */
  arches?: string[];
  /** Not on these Go architectures. */
  notArches?: string[];
  /** Only when every one of these capabilities is held. */
  caps?: string[];
  /** Only when none of these capabilities is held. */
  notCaps?: string[];
  /** Only on kernels at least this version. */
  minKernel?: string;
}

const GROUPS: Group[] = [
  { names: 'process_vm_readv process_vm_writev ptrace', minKernel: '4.8' },
  // socket: every address family but AF_ALG (kernel crypto) and AF_VSOCK (host-guest communication).
  { names: 'socket', args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] },
  { names: 'socket', args: [{ index: 0, value: AF_NFC, op: 'SCMP_CMP_EQ' }] },
  { names: 'socket', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] },
  ...PERSONALITIES.map((value): Group => ({ names: 'personality', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
  { names: 'sync_file_range2 swapcontext', arches: ['ppc64le'] },
  { names: 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls', arches: ['arm', 'arm64'] },
  { names: 'arch_prctl', arches: ['amd64', 'x32'] },
  { names: 'modify_ldt', arches: ['amd64', 'x32', 'x86'] },
  { names: 's390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr', arches: ['s390', 's390x'] },
  { names: 'riscv_flush_icache', arches: ['riscv64'] },
  { names: 'open_by_handle_at', caps: ['CAP_DAC_READ_SEARCH'] },
  {
    names:
      'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr lsm_list_modules ' +
      'lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname ' +
      'sethostname setns syslog umount umount2 unshare',
    caps: ['CAP_SYS_ADMIN'],
  },
  // clone without namespace flags (the flags are the first argument, the second on s390).
  { names: 'clone', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }], notCaps: ['CAP_SYS_ADMIN'], notArches: ['s390', 's390x'] },
  { names: 'clone', args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }], notCaps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
  // clone3's flags are in memory the filter cannot read: ENOSYS makes libc fall back to clone.
  { names: 'clone3', action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, notCaps: ['CAP_SYS_ADMIN'] },
  { names: 'reboot', caps: ['CAP_SYS_BOOT'] },
  { names: 'chroot', caps: ['CAP_SYS_CHROOT'] },
  { names: 'delete_module init_module finit_module', caps: ['CAP_SYS_MODULE'] },
  { names: 'acct', caps: ['CAP_SYS_PACCT'] },
  { names: 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace', caps: ['CAP_SYS_PTRACE'] },
  { names: 'iopl ioperm', caps: ['CAP_SYS_RAWIO'] },
  { names: 'settimeofday stime clock_settime clock_settime64', caps: ['CAP_SYS_TIME'] },
  { names: 'vhangup', caps: ['CAP_SYS_TTY_CONFIG'] },
  { names: 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node', caps: ['CAP_SYS_NICE'] },
  { names: 'syslog', caps: ['CAP_SYSLOG'] },
  { names: 'bpf', caps: ['CAP_BPF'] },
  { names: 'perf_event_open', caps: ['CAP_PERFMON'] },
];

/** Go architecture name -> the SCMP_ARCH_* list the filter covers (native first), as moby's archMap. */
const ARCH_MAP: Record<string, string[]> = {
  amd64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  mips64: ['SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'],
  mips64le: ['SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  riscv64: ['SCMP_ARCH_RISCV64'],
  loong64: ['SCMP_ARCH_LOONGARCH64'],
};

/** SCMP_ARCH_* -> Go architecture, for profiles in Docker's format whose archMap names the native one. */
const SCMP_TO_GO: Record<string, string> = {
  SCMP_ARCH_X86_64: 'amd64',
  SCMP_ARCH_AARCH64: 'arm64',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPSEL64: 'mips64le',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_LOONGARCH64: 'loong64',
};

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** Node's, Go's and the kernel's names of an architecture -> Go's (moby's profile speaks Go). */
export function goArch(arch: string): string {
  switch (arch) {
    case 'x64':
    case 'x86_64':
    case 'amd64':
      return 'amd64';
    case 'arm64':
    case 'aarch64':
      return 'arm64';
    default:
      return arch;
  }
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length, 2); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

export interface ProfileOptions {
  /** The container's capabilities (bounding set), `CAP_` names. */
  capabilities: string[];
  /** Architecture: Go's (amd64, arm64), the kernel's (x86_64, aarch64) or Node's (x64). */
  arch: string;
  /** The host kernel's release (e.g. "6.1.0-18-amd64"); rules with a newer minimum are left out. Default: new enough for all. */
  kernel?: string;
}

/** Berth's default profile for one architecture and one capability set. */
export function defaultSeccompProfile(opts: ProfileOptions): Seccomp {
  const arch = goArch(opts.arch);
  const caps = new Set(opts.capabilities);
  const syscalls: SeccompSyscall[] = [{ names: [...ALLOWED], action: 'SCMP_ACT_ALLOW' }];
  for (const group of GROUPS) {
    if (!applies(group, arch, caps, opts.kernel)) continue;
    const rule: SeccompSyscall = { names: words(group.names), action: group.action ?? 'SCMP_ACT_ALLOW' };
    if (group.errnoRet !== undefined) rule.errnoRet = group.errnoRet;
    if (group.args) rule.args = group.args.map((arg) => ({ ...arg }));
    syscalls.push(rule);
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: [...(ARCH_MAP[arch] ?? [])],
    syscalls,
  };
}

function applies(group: Group, arch: string, caps: Set<string>, kernel: string | undefined): boolean {
  if (group.arches && !group.arches.includes(arch)) return false;
  if (group.notArches?.includes(arch)) return false;
  if (group.caps && !group.caps.every((cap) => caps.has(cap))) return false;
  if (group.notCaps?.some((cap) => caps.has(cap))) return false;
  if (group.minKernel && kernel !== undefined && compareVersions(kernel, group.minKernel) < 0) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Profiles given with --security-opt seccomp=<json>

interface Filter {
  caps?: unknown;
  arches?: unknown;
  minKernel?: unknown;
}

/**
 * A profile from `--security-opt seccomp=<json>` (the CLI sends the file's content), flattened
 * as moby does: archMap entries give the native architecture and its sub-architectures;
 * includes/excludes pick rules by architecture, capability and kernel version. The result is
 * checked by compiling it. `field` names the option in errors.
 */
export function parseSeccompProfile(json: string, opts: ProfileOptions & { field: string }): Seccomp {
  const { field } = opts;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new InvalidArgumentError(`seccomp profile is not valid JSON: ${(error as Error).message}`, field);
  }
  if (!isObject(raw)) throw new InvalidArgumentError('seccomp profile must be a JSON object', field);
  const arch = goArch(opts.arch);
  const caps = new Set(opts.capabilities);
  if (typeof raw.defaultAction !== 'string' || raw.defaultAction === '') {
    throw new InvalidArgumentError('seccomp profile: defaultAction is required', `${field}.defaultAction`);
  }
  const profile: Seccomp = { defaultAction: raw.defaultAction };
  if (raw.defaultErrnoRet !== undefined && raw.defaultErrnoRet !== null) profile.defaultErrnoRet = raw.defaultErrnoRet as number;
  if (raw.archMap !== undefined && raw.archMap !== null && raw.architectures !== undefined && raw.architectures !== null) {
    throw new InvalidArgumentError("seccomp profile: 'architectures' and 'archMap' cannot both be given", field);
  }
  if (Array.isArray(raw.archMap)) {
    raw.archMap.forEach((entry: unknown, index: number) => {
      if (!isObject(entry) || typeof entry.architecture !== 'string') {
        throw new InvalidArgumentError('must be an object with an architecture', `${field}.archMap[${index}]`);
      }
      if (SCMP_TO_GO[entry.architecture] === arch) {
        const subs = Array.isArray(entry.subArchitectures) ? (entry.subArchitectures as string[]) : [];
        profile.architectures = [entry.architecture, ...subs];
      }
    });
  } else if (raw.archMap !== undefined && raw.archMap !== null) {
    throw new InvalidArgumentError('must be a list', `${field}.archMap`);
  } else if (raw.architectures !== undefined && raw.architectures !== null) {
    if (!Array.isArray(raw.architectures) || raw.architectures.some((a) => typeof a !== 'string')) {
      throw new InvalidArgumentError('must be a list of strings', `${field}.architectures`);
    }
    profile.architectures = [...(raw.architectures as string[])];
  }
  if (raw.flags !== undefined && raw.flags !== null) profile.flags = raw.flags as string[];
  if (raw.syscalls !== undefined && raw.syscalls !== null) {
    if (!Array.isArray(raw.syscalls)) throw new InvalidArgumentError('must be a list', `${field}.syscalls`);
    profile.syscalls = [];
    raw.syscalls.forEach((call: unknown, index: number) => {
      const where = `${field}.syscalls[${index}]`;
      if (!isObject(call)) throw new InvalidArgumentError('must be an object', where);
      const hasName = typeof call.name === 'string' && call.name !== '';
      const hasNames = Array.isArray(call.names) && call.names.length > 0;
      if (hasName && hasNames) throw new InvalidArgumentError("use either 'name' or 'names'", where);
      if (!hasName && !hasNames) throw new InvalidArgumentError("a rule needs 'name' or 'names'", where);
      const includes = (call.includes ?? {}) as Filter;
      const excludes = (call.excludes ?? {}) as Filter;
      if (!isObject(includes)) throw new InvalidArgumentError('must be an object', `${where}.includes`);
      if (!isObject(excludes)) throw new InvalidArgumentError('must be an object', `${where}.excludes`);
      const list = (value: unknown, name: string): string[] | undefined => {
        if (value === undefined || value === null) return undefined;
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new InvalidArgumentError('must be a list of strings', `${where}.${name}`);
        return value as string[];
      };
      const group: Group = {
        names: '',
        arches: nonEmpty(list(includes.arches, 'includes.arches')),
        caps: nonEmpty(list(includes.caps, 'includes.caps')),
        notArches: list(excludes.arches, 'excludes.arches'),
        notCaps: list(excludes.caps, 'excludes.caps'),
        minKernel: typeof includes.minKernel === 'string' && includes.minKernel !== '' ? includes.minKernel : undefined,
      };
      if (!applies(group, arch, caps, opts.kernel)) return;
      const rule: SeccompSyscall = { names: hasName ? [call.name as string] : [...(call.names as string[])], action: call.action as string };
      if (call.errnoRet !== undefined && call.errnoRet !== null) rule.errnoRet = call.errnoRet as number;
      if (call.args !== undefined && call.args !== null) rule.args = call.args as SeccompArg[];
      profile.syscalls!.push(rule);
    });
  }
  try {
    compileSeccomp(profile, { nativeArch: arch === 'arm64' ? 'aarch64' : 'x86_64' });
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      throw new InvalidArgumentError(`invalid seccomp profile: ${error.message}`, field);
    }
    throw error;
  }
  return profile;
}

function nonEmpty(list: string[] | undefined): string[] | undefined {
  return list && list.length > 0 ? list : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
