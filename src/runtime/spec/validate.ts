/**
 * Parsing and structural validation of an OCI bundle's config.json (runtime-spec 1.x, Linux).
 *
 * Every error is an InvalidArgumentError whose `field` is the JSON path of the offending value
 * (`process.args[0]`, `linux.namespaces[2].type`). Besides types and ranges this applies the
 * cross-field rules runc's libcontainer/configs/validate enforces without touching the system
 * (hostname needs a UTS namespace, sysctls need their namespace, ...). Checks that need the
 * host (does the rootfs exist, is a netns path the host's) belong to the runtime, not here.
 *
 * Unknown properties are kept and ignored, as the spec requires; the returned object is the
 * parsed JSON itself.
 */

import { InvalidArgumentError } from '../../common/errors.js';
import type { HookName, IdMapping, Namespace, NamespaceType, Process, Spec } from './config.js';
import { CAPABILITIES, RLIMITS, parseMountOptions } from '../plan/tables.js';

export interface ParseSpecOptions {
  /** Called for accepted-but-deprecated input (runc logs these as warnings). */
  onWarning?: (message: string, field: string) => void;
}

export const NAMESPACE_TYPES: readonly NamespaceType[] = Object.freeze([
  'pid',
  'network',
  'mount',
  'ipc',
  'uts',
  'user',
  'cgroup',
  'time',
]);

export const HOOK_NAMES: readonly HookName[] = Object.freeze([
  'prestart',
  'createRuntime',
  'createContainer',
  'startContainer',
  'poststart',
  'poststop',
]);

export const SECCOMP_ACTIONS: readonly string[] = Object.freeze([
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
]);

export const SECCOMP_OPERATORS: readonly string[] = Object.freeze([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);

/** Architecture names the runtime spec lists (libseccomp 2.6); which ones we compile is features.ts' business. */
export const SECCOMP_ARCHITECTURES: readonly string[] = Object.freeze([
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_LOONGARCH64',
  'SCMP_ARCH_M68K',
  'SCMP_ARCH_SH',
  'SCMP_ARCH_SHEB',
]);

export const SECCOMP_FLAGS: readonly string[] = Object.freeze([
  'SECCOMP_FILTER_FLAG_TSYNC',
  'SECCOMP_FILTER_FLAG_LOG',
  'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
  'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
]);

/** Values runc accepts for linux.rootfsPropagation (the spec lists the first four). */
export const ROOTFS_PROPAGATIONS: readonly string[] = Object.freeze([
  'shared',
  'slave',
  'private',
  'unbindable',
  'rshared',
  'rslave',
  'rprivate',
  'runbindable',
]);

const SCHEDULER_POLICIES = [
  'SCHED_OTHER',
  'SCHED_FIFO',
  'SCHED_RR',
  'SCHED_BATCH',
  'SCHED_ISO',
  'SCHED_IDLE',
  'SCHED_DEADLINE',
];
const SCHEDULER_FLAGS = [
  'SCHED_FLAG_RESET_ON_FORK',
  'SCHED_FLAG_RECLAIM',
  'SCHED_FLAG_DL_OVERRUN',
  'SCHED_FLAG_KEEP_POLICY',
  'SCHED_FLAG_KEEP_PARAMS',
  'SCHED_FLAG_UTIL_CLAMP_MIN',
  'SCHED_FLAG_UTIL_CLAMP_MAX',
];
const IO_PRIORITY_CLASSES = ['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE'];
const PERSONALITY_DOMAINS = ['LINUX', 'LINUX32'];
/** Clocks a time namespace can offset (time_namespaces(7)). */
const TIME_NAMESPACE_CLOCKS = ['monotonic', 'boottime'];
/** IPC sysctls runc allows in a private IPC namespace, besides `fs.mqueue.*`. */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);
/** Kernel limit on uid_map/gid_map lines (since Linux 4.15). */
const MAX_ID_MAPPINGS = 340;

const UINT32_MAX = 0xffff_ffff;
const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
// JSON numbers beyond 2^53 lose precision; 2^64-1 (e.g. RLIM_INFINITY) parses to exactly 2^64.
const UINT64_LIMIT = 2 ** 64;
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

// ---------------------------------------------------------------------------------------------
// Small typed readers: each checks one value and names it in the error.

type JsonObject = Record<string, unknown>;

function fail(message: string, field: string): never {
  throw new InvalidArgumentError(message, field);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expectObject(value: unknown, field: string): JsonObject {
  if (!isObject(value)) fail('must be an object', field);
  return value;
}

function optionalObject(value: unknown, field: string): JsonObject | undefined {
  return value === undefined ? undefined : expectObject(value, field);
}

function expectString(value: unknown, field: string): string {
  if (typeof value !== 'string') fail('must be a string', field);
  // Strings end up in C strings and netlink messages: an embedded NUL would silently truncate.
  if (value.includes('\0')) fail('must not contain a NUL byte', field);
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  return value === undefined ? undefined : expectString(value, field);
}

function expectNonEmptyString(value: unknown, field: string): string {
  const text = expectString(value, field);
  if (text === '') fail('must not be empty', field);
  return text;
}

function expectAbsolutePath(value: unknown, field: string): string {
  const path = expectString(value, field);
  if (!path.startsWith('/')) fail(`must be an absolute path, got ${JSON.stringify(path)}`, field);
  return path;
}

function optionalBoolean(value: unknown, field: string): void {
  if (value !== undefined && typeof value !== 'boolean') fail('must be a boolean', field);
}

function expectInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail('must be an integer', field);
  if (value < min || value > max) fail(`must be between ${min} and ${max}, got ${value}`, field);
  return value;
}

function optionalInteger(value: unknown, field: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : expectInteger(value, field, min, max);
}

const expectUint32 = (value: unknown, field: string) => expectInteger(value, field, 0, UINT32_MAX);
const optionalUint32 = (value: unknown, field: string) => optionalInteger(value, field, 0, UINT32_MAX);
const optionalUint64 = (value: unknown, field: string) => optionalInteger(value, field, 0, UINT64_LIMIT);
const optionalInt64 = (value: unknown, field: string) => optionalInteger(value, field, INT64_MIN, INT64_MAX);

function expectArray(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) fail('must be an array', field);
  return value;
}

function optionalArray(value: unknown, field: string): unknown[] | undefined {
  return value === undefined ? undefined : expectArray(value, field);
}

function optionalStringArray(value: unknown, field: string): string[] | undefined {
  const items = optionalArray(value, field);
  items?.forEach((item, index) => expectString(item, `${field}[${index}]`));
  return items as string[] | undefined;
}

function expectOneOf(value: unknown, allowed: readonly string[], field: string): string {
  const text = expectString(value, field);
  if (!allowed.includes(text)) fail(`unknown value ${JSON.stringify(text)} (expected one of ${allowed.join(', ')})`, field);
  return text;
}

function optionalStringMap(value: unknown, field: string): Record<string, string> | undefined {
  const map = optionalObject(value, field);
  if (map) for (const [key, item] of Object.entries(map)) expectString(item, `${field}.${key}`);
  return map as Record<string, string> | undefined;
}

/** `0-3,7`: the kernel's cpu/node list syntax. */
function optionalCpuList(value: unknown, field: string): void {
  const list = optionalString(value, field);
  if (list === undefined || list === '') return;
  for (const part of list.split(',')) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!range || (range[2] !== undefined && Number(range[2]) < Number(range[1]))) {
      fail(`invalid CPU list ${JSON.stringify(list)}`, field);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Parses and validates config.json text. */
export function parseSpec(text: string, options: ParseSpecOptions = {}): Spec {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`config.json: invalid JSON: ${(error as Error).message}`);
  }
  return validateSpec(parsed, options);
}

/** Validates an already parsed config (e.g. one built in memory); returns it typed. */
export function validateSpec(value: unknown, options: ParseSpecOptions = {}): Spec {
  const warn = options.onWarning ?? (() => {});
  const spec = expectObject(value, 'config');

  validateOciVersion(spec.ociVersion);

  const root = expectObject(spec.root, 'root');
  expectNonEmptyString(root.path, 'root.path');
  optionalBoolean(root.readonly, 'root.readonly');

  const linux = optionalObject(spec.linux, 'linux');
  const namespaces = validateNamespaces(linux?.namespaces);
  const has = (type: NamespaceType) => namespaces.some((ns) => ns.type === type);
  const creates = (type: NamespaceType) => namespaces.some((ns) => ns.type === type && ns.path === undefined);

  optionalArray(spec.mounts, 'mounts')?.forEach((mount, index) =>
    validateMount(mount, `mounts[${index}]`, has('user'), warn),
  );

  if (spec.process !== undefined) validateProcess(spec.process, 'process');

  // runc: hostname and domainname can only be set in a UTS namespace of the container's own.
  if (optionalString(spec.hostname, 'hostname') && !has('uts')) {
    fail('cannot set hostname without a private UTS namespace', 'hostname');
  }
  if (optionalString(spec.domainname, 'domainname') && !has('uts')) {
    fail('cannot set domainname without a private UTS namespace', 'domainname');
  }

  validateHooks(spec.hooks);

  const annotations = optionalStringMap(spec.annotations, 'annotations');
  if (annotations && Object.hasOwn(annotations, '')) fail('keys must not be empty', 'annotations');

  if (linux) validateLinux(linux, namespaces, has, creates);
  return spec as unknown as Spec;
}

function validateOciVersion(value: unknown): void {
  const field = 'ociVersion';
  if (value === undefined) fail('is required', field);
  const version = expectString(value, field);
  const semver = /^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.exec(version);
  if (!semver) fail(`must be a SemVer version, got ${JSON.stringify(version)}`, field);
  // Compatibility holds within a major version only.
  if (semver[1] !== '1') fail(`unsupported major version in ${JSON.stringify(version)} (expected 1.x)`, field);
}

/**
 * Validates a process object: config.json's `process`, or a process.json given to `exec`.
 */
export function validateProcess(p: unknown, field = 'process'): Process {
  const process = expectObject(p, field);
  optionalBoolean(process.terminal, `${field}.terminal`);
  const consoleSize = optionalObject(process.consoleSize, `${field}.consoleSize`);
  if (consoleSize) {
    expectUint32(consoleSize.height, `${field}.consoleSize.height`);
    expectUint32(consoleSize.width, `${field}.consoleSize.width`);
  }

  const user = expectObject(process.user, `${field}.user`);
  expectUint32(user.uid, `${field}.user.uid`);
  expectUint32(user.gid, `${field}.user.gid`);
  optionalInteger(user.umask, `${field}.user.umask`, 0, 0o777);
  optionalArray(user.additionalGids, `${field}.user.additionalGids`)?.forEach((gid, index) =>
    expectUint32(gid, `${field}.user.additionalGids[${index}]`),
  );
  optionalString(user.username, `${field}.user.username`);

  // Linux needs an executable: args is optional only on Windows (commandLine).
  const args = expectArray(process.args ?? fail('is required', `${field}.args`), `${field}.args`);
  if (args.length === 0) fail('must contain at least one entry', `${field}.args`);
  args.forEach((arg, index) => expectString(arg, `${field}.args[${index}]`));
  if (args[0] === '') fail('must not be empty', `${field}.args[0]`);
  optionalString(process.commandLine, `${field}.commandLine`);

  optionalArray(process.env, `${field}.env`)?.forEach((entry, index) => {
    const envField = `${field}.env[${index}]`;
    const text = expectString(entry, envField);
    const equals = text.indexOf('=');
    if (equals < 0) fail(`invalid environment variable ${JSON.stringify(text)}: missing '='`, envField);
    if (equals === 0) fail(`invalid environment variable ${JSON.stringify(text)}: empty name`, envField);
  });

  if (process.cwd === undefined) fail('is required', `${field}.cwd`);
  expectAbsolutePath(process.cwd, `${field}.cwd`);

  const capabilities = optionalObject(process.capabilities, `${field}.capabilities`);
  if (capabilities) {
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      optionalStringArray(capabilities[set], `${field}.capabilities.${set}`)?.forEach((name, index) => {
        if (!Object.hasOwn(CAPABILITIES, name)) {
          fail(`unknown capability ${JSON.stringify(name)}`, `${field}.capabilities.${set}[${index}]`);
        }
      });
    }
  }

  const seenRlimits = new Set<string>();
  optionalArray(process.rlimits, `${field}.rlimits`)?.forEach((item, index) => {
    const rlimitField = `${field}.rlimits[${index}]`;
    const rlimit = expectObject(item, rlimitField);
    const type = expectString(rlimit.type, `${rlimitField}.type`);
    if (!Object.hasOwn(RLIMITS, type)) fail(`unknown rlimit type ${JSON.stringify(type)}`, `${rlimitField}.type`);
    if (seenRlimits.has(type)) fail(`duplicate rlimit type ${type}`, `${rlimitField}.type`);
    seenRlimits.add(type);
    const soft = expectInteger(rlimit.soft, `${rlimitField}.soft`, 0, UINT64_LIMIT);
    const hard = expectInteger(rlimit.hard, `${rlimitField}.hard`, 0, UINT64_LIMIT);
    if (soft > hard) fail(`soft limit ${soft} exceeds hard limit ${hard}`, `${rlimitField}.soft`);
  });

  optionalBoolean(process.noNewPrivileges, `${field}.noNewPrivileges`);
  optionalString(process.apparmorProfile, `${field}.apparmorProfile`);
  optionalString(process.selinuxLabel, `${field}.selinuxLabel`);
  optionalInteger(process.oomScoreAdj, `${field}.oomScoreAdj`, -1000, 1000);

  const ioPriority = optionalObject(process.ioPriority, `${field}.ioPriority`);
  if (ioPriority) {
    expectOneOf(ioPriority.class, IO_PRIORITY_CLASSES, `${field}.ioPriority.class`);
    expectInteger(ioPriority.priority, `${field}.ioPriority.priority`, 0, 7);
  }

  const scheduler = optionalObject(process.scheduler, `${field}.scheduler`);
  if (scheduler) validateScheduler(scheduler, `${field}.scheduler`);

  const affinity = optionalObject(process.execCPUAffinity, `${field}.execCPUAffinity`);
  if (affinity) {
    optionalCpuList(affinity.initial, `${field}.execCPUAffinity.initial`);
    optionalCpuList(affinity.final, `${field}.execCPUAffinity.final`);
  }
  return process as unknown as Process;
}

/** Rules of sched_setattr(2), as runc checks them. */
function validateScheduler(scheduler: JsonObject, field: string): void {
  if (scheduler.policy === undefined) fail('is required', `${field}.policy`);
  const policy = expectOneOf(scheduler.policy, SCHEDULER_POLICIES, `${field}.policy`);
  const nice = optionalInteger(scheduler.nice, `${field}.nice`, INT32_MIN, INT32_MAX) ?? 0;
  const priority = optionalInteger(scheduler.priority, `${field}.priority`, INT32_MIN, INT32_MAX) ?? 0;
  optionalStringArray(scheduler.flags, `${field}.flags`)?.forEach((flag, index) =>
    expectOneOf(flag, SCHEDULER_FLAGS, `${field}.flags[${index}]`),
  );
  const runtime = optionalUint64(scheduler.runtime, `${field}.runtime`) ?? 0;
  const deadline = optionalUint64(scheduler.deadline, `${field}.deadline`) ?? 0;
  const period = optionalUint64(scheduler.period, `${field}.period`) ?? 0;
  if ((policy === 'SCHED_OTHER' || policy === 'SCHED_BATCH') && (nice < -20 || nice > 19)) {
    fail(`must be between -20 and 19 for ${policy}, got ${nice}`, `${field}.nice`);
  }
  if (priority !== 0 && policy !== 'SCHED_FIFO' && policy !== 'SCHED_RR') {
    fail('can only be set for SCHED_FIFO or SCHED_RR', `${field}.priority`);
  }
  if (policy !== 'SCHED_DEADLINE' && (runtime !== 0 || deadline !== 0 || period !== 0)) {
    fail('runtime, deadline and period can only be set for SCHED_DEADLINE', field);
  }
}

function validateMount(
  value: unknown,
  field: string,
  hasUserNamespace: boolean,
  warn: (message: string, field: string) => void,
): void {
  const mount = expectObject(value, field);
  if (mount.destination === undefined) fail('is required', `${field}.destination`);
  const destination = expectNonEmptyString(mount.destination, `${field}.destination`);
  if (!destination.startsWith('/')) {
    // The spec deprecates but allows relative destinations (relative to "/"); runc warns.
    warn(`mount destination ${JSON.stringify(destination)} is not absolute; it is taken relative to "/"`, `${field}.destination`);
  }
  optionalString(mount.source, `${field}.source`);
  optionalString(mount.type, `${field}.type`);
  const options = parseMountOptions(optionalStringArray(mount.options, `${field}.options`), `${field}.options`);

  // The kernel ignores filesystem data on bind mounts; runc 1.1 accepts and drops it, so do we, with a warning.
  if (options.bind && options.data.length > 0) {
    warn(`bind mounts ignore filesystem-specific options (${options.data.join(',')})`, `${field}.options`);
  }

  const uidMappings = optionalArray(mount.uidMappings, `${field}.uidMappings`);
  const gidMappings = optionalArray(mount.gidMappings, `${field}.gidMappings`);
  if (uidMappings) validateIdMappings(uidMappings, `${field}.uidMappings`);
  if (gidMappings) validateIdMappings(gidMappings, `${field}.gidMappings`);
  if ((uidMappings === undefined) !== (gidMappings === undefined)) {
    fail('uidMappings and gidMappings must be given together', uidMappings ? `${field}.gidMappings` : `${field}.uidMappings`);
  }
  // Mappings imply an id-mapped mount even without `idmap` (runc does the same).
  const idmapped = options.idmap || uidMappings !== undefined;
  if (idmapped) {
    if (!options.bind) fail('id-mapped mounts are only supported for bind mounts', `${field}.options`);
    if (uidMappings === undefined && !hasUserNamespace) {
      fail('idmap without uidMappings/gidMappings needs a user namespace to take the mapping from', `${field}.options`);
    }
  }
}

/** uid/gid mappings: in range, no overflow, no overlap (the kernel rejects overlapping extents). */
function validateIdMappings(items: unknown[], field: string): IdMapping[] {
  if (items.length > MAX_ID_MAPPINGS) fail(`at most ${MAX_ID_MAPPINGS} mappings are allowed`, field);
  const mappings = items.map((item, index) => {
    const entryField = `${field}[${index}]`;
    const mapping = expectObject(item, entryField);
    const containerID = expectUint32(mapping.containerID, `${entryField}.containerID`);
    const hostID = expectUint32(mapping.hostID, `${entryField}.hostID`);
    const size = expectUint32(mapping.size, `${entryField}.size`);
    if (size === 0) fail('must be greater than 0', `${entryField}.size`);
    if (containerID + size - 1 > UINT32_MAX) fail('containerID + size overflows 32 bits', `${entryField}.size`);
    if (hostID + size - 1 > UINT32_MAX) fail('hostID + size overflows 32 bits', `${entryField}.size`);
    return { containerID, hostID, size };
  });
  for (let i = 0; i < mappings.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = mappings[i];
      const b = mappings[j];
      if (a.containerID < b.containerID + b.size && b.containerID < a.containerID + a.size) {
        fail(`containerID range overlaps ${field}[${j}]`, `${field}[${i}]`);
      }
      if (a.hostID < b.hostID + b.size && b.hostID < a.hostID + a.size) {
        fail(`hostID range overlaps ${field}[${j}]`, `${field}[${i}]`);
      }
    }
  }
  return mappings;
}

function validateHooks(value: unknown): void {
  const hooks = optionalObject(value, 'hooks');
  if (!hooks) return;
  for (const name of HOOK_NAMES) {
    optionalArray(hooks[name], `hooks.${name}`)?.forEach((item, index) => {
      const field = `hooks.${name}[${index}]`;
      const hook = expectObject(item, field);
      if (hook.path === undefined) fail('is required', `${field}.path`);
      expectAbsolutePath(hook.path, `${field}.path`);
      optionalStringArray(hook.args, `${field}.args`);
      optionalStringArray(hook.env, `${field}.env`);
      optionalInteger(hook.timeout, `${field}.timeout`, 1, INT32_MAX);
    });
  }
}

function validateNamespaces(value: unknown): Namespace[] {
  const items = optionalArray(value, 'linux.namespaces') ?? [];
  const seen = new Map<string, number>();
  return items.map((item, index) => {
    const field = `linux.namespaces[${index}]`;
    const namespace = expectObject(item, field);
    if (namespace.type === undefined) fail('is required', `${field}.type`);
    const type = expectOneOf(namespace.type, NAMESPACE_TYPES, `${field}.type`) as NamespaceType;
    if (seen.has(type)) fail(`duplicate namespace type ${type} (also linux.namespaces[${seen.get(type)}])`, `${field}.type`);
    seen.set(type, index);
    if (namespace.path !== undefined) expectAbsolutePath(namespace.path, `${field}.path`);
    return namespace as unknown as Namespace;
  });
}

function validateLinux(
  linux: JsonObject,
  namespaces: Namespace[],
  has: (type: NamespaceType) => boolean,
  creates: (type: NamespaceType) => boolean,
): void {
  // User namespace mappings: required to create one, meaningless without one.
  const uidMappings = optionalArray(linux.uidMappings, 'linux.uidMappings');
  const gidMappings = optionalArray(linux.gidMappings, 'linux.gidMappings');
  if (uidMappings) validateIdMappings(uidMappings, 'linux.uidMappings');
  if (gidMappings) validateIdMappings(gidMappings, 'linux.gidMappings');
  if (has('user')) {
    if (creates('user')) {
      if (!uidMappings?.length) fail('a new user namespace needs uid mappings', 'linux.uidMappings');
      if (!gidMappings?.length) fail('a new user namespace needs gid mappings', 'linux.gidMappings');
    }
  } else if (uidMappings || gidMappings) {
    fail('mappings given but no user namespace is configured', uidMappings ? 'linux.uidMappings' : 'linux.gidMappings');
  }

  const timeOffsets = optionalObject(linux.timeOffsets, 'linux.timeOffsets');
  if (timeOffsets) {
    if (!has('time')) fail('time offsets need a time namespace', 'linux.timeOffsets');
    const timeNamespace = namespaces.find((ns) => ns.type === 'time');
    if (timeNamespace?.path !== undefined) fail('cannot set time offsets when joining an existing time namespace', 'linux.timeOffsets');
    for (const [clock, item] of Object.entries(timeOffsets)) {
      const field = `linux.timeOffsets.${clock}`;
      if (!TIME_NAMESPACE_CLOCKS.includes(clock)) fail(`unknown clock (expected ${TIME_NAMESPACE_CLOCKS.join(' or ')})`, field);
      const offset = expectObject(item, field);
      optionalInt64(offset.secs, `${field}.secs`);
      optionalInteger(offset.nanosecs, `${field}.nanosecs`, 0, 999_999_999);
    }
  }

  optionalArray(linux.devices, 'linux.devices')?.forEach((item, index) => {
    const field = `linux.devices[${index}]`;
    const device = expectObject(item, field);
    if (device.path === undefined) fail('is required', `${field}.path`);
    expectAbsolutePath(device.path, `${field}.path`);
    if (device.type === undefined) fail('is required', `${field}.type`);
    const type = expectOneOf(device.type, ['c', 'b', 'u', 'p'], `${field}.type`);
    if (type !== 'p') {
      if (device.major === undefined) fail(`is required for type ${type}`, `${field}.major`);
      if (device.minor === undefined) fail(`is required for type ${type}`, `${field}.minor`);
    }
    // The kernel's dev_t has 12 bits of major and 20 bits of minor.
    optionalInteger(device.major, `${field}.major`, 0, 0xfff);
    optionalInteger(device.minor, `${field}.minor`, 0, 0xfffff);
    optionalUint32(device.fileMode, `${field}.fileMode`);
    optionalUint32(device.uid, `${field}.uid`);
    optionalUint32(device.gid, `${field}.gid`);
  });

  optionalString(linux.cgroupsPath, 'linux.cgroupsPath');
  const resources = optionalObject(linux.resources, 'linux.resources');
  if (resources) validateResources(resources, 'linux.resources');

  if (linux.rootfsPropagation !== undefined) {
    expectOneOf(linux.rootfsPropagation, ROOTFS_PROPAGATIONS, 'linux.rootfsPropagation');
  }

  const seccomp = optionalObject(linux.seccomp, 'linux.seccomp');
  if (seccomp) validateSeccomp(seccomp, 'linux.seccomp');

  const sysctl = optionalStringMap(linux.sysctl, 'linux.sysctl');
  if (sysctl) for (const key of Object.keys(sysctl)) validateSysctl(key, has);

  for (const list of ['maskedPaths', 'readonlyPaths'] as const) {
    const paths = optionalArray(linux[list], `linux.${list}`);
    paths?.forEach((path, index) => expectAbsolutePath(path, `linux.${list}[${index}]`));
    // Masking happens inside the container's mount namespace; without one it would hit the host.
    if (paths?.length && !has('mount')) fail('needs a private mount namespace', `linux.${list}`);
  }

  optionalString(linux.mountLabel, 'linux.mountLabel');

  const intelRdt = optionalObject(linux.intelRdt, 'linux.intelRdt');
  if (intelRdt) {
    const closID = optionalString(intelRdt.closID, 'linux.intelRdt.closID');
    if (closID !== undefined && (closID === '.' || closID === '..' || (closID.length > 1 && closID.includes('/')))) {
      fail(`invalid CLOS id ${JSON.stringify(closID)}`, 'linux.intelRdt.closID');
    }
    optionalString(intelRdt.l3CacheSchema, 'linux.intelRdt.l3CacheSchema');
    const memBwSchema = optionalString(intelRdt.memBwSchema, 'linux.intelRdt.memBwSchema');
    if (memBwSchema !== undefined && (!memBwSchema.startsWith('MB:') || memBwSchema.includes('\n'))) {
      fail('must start with "MB:" and be a single line', 'linux.intelRdt.memBwSchema');
    }
    optionalStringArray(intelRdt.schemata, 'linux.intelRdt.schemata');
    optionalBoolean(intelRdt.enableMonitoring, 'linux.intelRdt.enableMonitoring');
  }

  const personality = optionalObject(linux.personality, 'linux.personality');
  if (personality) {
    if (personality.domain === undefined) fail('is required', 'linux.personality.domain');
    expectOneOf(personality.domain, PERSONALITY_DOMAINS, 'linux.personality.domain');
    optionalStringArray(personality.flags, 'linux.personality.flags');
  }
}

/**
 * /proc/sys is only partly namespaced: a sysctl is allowed only if the container has its own
 * instance of it (runc's rules; `net/ipv4/ip_forward` spelling is accepted too).
 */
function validateSysctl(key: string, has: (type: NamespaceType) => boolean): void {
  const field = `linux.sysctl.${key}`;
  const name = normalizeSysctlName(key);
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) {
    if (!has('ipc')) fail(`sysctl ${name} is not allowed in the host's IPC namespace`, field);
    return;
  }
  if (name.startsWith('net.')) {
    // Joining a netns by path is accepted here; whether that path is the host's is a runtime check.
    if (!has('network')) fail(`sysctl ${name} is not allowed in the host's network namespace`, field);
    return;
  }
  if (has('uts')) {
    if (name === 'kernel.domainname') return;
    if (name === 'kernel.hostname') fail('sysctl kernel.hostname conflicts with the "hostname" field; use that', field);
  }
  if (name.startsWith('user.')) {
    // Without a user namespace these limits are the host's.
    if (!has('user')) fail(`sysctl ${name} needs a user namespace`, field);
    return;
  }
  fail(`sysctl ${name} is not in a separate kernel namespace`, field);
}

/** sysctl.d(5): when the first separator is '/', '/' and '.' swap roles. */
function normalizeSysctlName(key: string): string {
  const first = key.search(/[./]/);
  if (first < 0 || key[first] === '.') return key;
  return key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

function validateSeccomp(seccomp: JsonObject, field: string): void {
  // Actions that can carry an errno: the spec requires an error for errnoRet on the others.
  const takesErrno = (action: string) => action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE';
  if (seccomp.defaultAction === undefined) fail('is required', `${field}.defaultAction`);
  const defaultAction = expectOneOf(seccomp.defaultAction, SECCOMP_ACTIONS, `${field}.defaultAction`);
  if (optionalUint32(seccomp.defaultErrnoRet, `${field}.defaultErrnoRet`) !== undefined && !takesErrno(defaultAction)) {
    fail(`${defaultAction} does not take an errno`, `${field}.defaultErrnoRet`);
  }
  optionalStringArray(seccomp.architectures, `${field}.architectures`)?.forEach((arch, index) =>
    expectOneOf(arch, SECCOMP_ARCHITECTURES, `${field}.architectures[${index}]`),
  );
  optionalStringArray(seccomp.flags, `${field}.flags`)?.forEach((flag, index) =>
    expectOneOf(flag, SECCOMP_FLAGS, `${field}.flags[${index}]`),
  );
  const listenerPath = optionalString(seccomp.listenerPath, `${field}.listenerPath`);
  if (optionalString(seccomp.listenerMetadata, `${field}.listenerMetadata`) !== undefined && !listenerPath) {
    fail('needs listenerPath', `${field}.listenerMetadata`);
  }
  optionalArray(seccomp.syscalls, `${field}.syscalls`)?.forEach((item, index) => {
    const ruleField = `${field}.syscalls[${index}]`;
    const rule = expectObject(item, ruleField);
    const names = expectArray(rule.names ?? fail('is required', `${ruleField}.names`), `${ruleField}.names`);
    if (names.length === 0) fail('must contain at least one syscall', `${ruleField}.names`);
    names.forEach((name, nameIndex) => expectNonEmptyString(name, `${ruleField}.names[${nameIndex}]`));
    if (rule.action === undefined) fail('is required', `${ruleField}.action`);
    const action = expectOneOf(rule.action, SECCOMP_ACTIONS, `${ruleField}.action`);
    if (optionalUint32(rule.errnoRet, `${ruleField}.errnoRet`) !== undefined && !takesErrno(action)) {
      fail(`${action} does not take an errno`, `${ruleField}.errnoRet`);
    }
    optionalArray(rule.args, `${ruleField}.args`)?.forEach((argItem, argIndex) => {
      const argField = `${ruleField}.args[${argIndex}]`;
      const arg = expectObject(argItem, argField);
      expectInteger(arg.index, `${argField}.index`, 0, 5); // syscalls have six argument registers
      expectInteger(arg.value, `${argField}.value`, 0, UINT64_LIMIT);
      optionalUint64(arg.valueTwo, `${argField}.valueTwo`);
      if (arg.op === undefined) fail('is required', `${argField}.op`);
      expectOneOf(arg.op, SECCOMP_OPERATORS, `${argField}.op`);
    });
  });
}

function validateResources(resources: JsonObject, field: string): void {
  optionalArray(resources.devices, `${field}.devices`)?.forEach((item, index) => {
    const ruleField = `${field}.devices[${index}]`;
    const rule = expectObject(item, ruleField);
    if (typeof rule.allow !== 'boolean') fail('is required and must be a boolean', `${ruleField}.allow`);
    if (rule.type !== undefined) expectOneOf(rule.type, ['a', 'c', 'b'], `${ruleField}.type`);
    for (const key of ['major', 'minor']) {
      // null and -1 both mean "any" (the Go bindings use *int64 and runc maps -1 to a wildcard).
      if (rule[key] !== null) optionalInteger(rule[key], `${ruleField}.${key}`, -1, INT64_MAX);
    }
    const access = optionalString(rule.access, `${ruleField}.access`);
    if (access !== undefined && !/^[rwm]*$/.test(access)) fail(`must be made of r, w and m, got ${JSON.stringify(access)}`, `${ruleField}.access`);
  });

  const memory = optionalObject(resources.memory, `${field}.memory`);
  if (memory) {
    for (const key of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']) optionalInt64(memory[key], `${field}.memory.${key}`);
    optionalInteger(memory.swappiness, `${field}.memory.swappiness`, 0, 100);
    for (const key of ['disableOOMKiller', 'useHierarchy', 'checkBeforeUpdate']) optionalBoolean(memory[key], `${field}.memory.${key}`);
  }

  const cpu = optionalObject(resources.cpu, `${field}.cpu`);
  if (cpu) {
    for (const key of ['shares', 'burst', 'period', 'realtimePeriod']) optionalUint64(cpu[key], `${field}.cpu.${key}`);
    for (const key of ['quota', 'realtimeRuntime', 'idle']) optionalInt64(cpu[key], `${field}.cpu.${key}`);
    optionalCpuList(cpu.cpus, `${field}.cpu.cpus`);
    optionalCpuList(cpu.mems, `${field}.cpu.mems`);
    const quota = cpu.quota as number | undefined;
    const burst = cpu.burst as number | undefined;
    if (quota !== undefined && burst !== undefined && quota > 0 && burst > quota) {
      fail(`must not exceed quota ${quota}`, `${field}.cpu.burst`);
    }
  }

  const pids = optionalObject(resources.pids, `${field}.pids`);
  if (pids) optionalInt64(pids.limit, `${field}.pids.limit`);

  const blockIO = optionalObject(resources.blockIO, `${field}.blockIO`);
  if (blockIO) {
    optionalInteger(blockIO.weight, `${field}.blockIO.weight`, 0, 0xffff);
    optionalInteger(blockIO.leafWeight, `${field}.blockIO.leafWeight`, 0, 0xffff);
    optionalArray(blockIO.weightDevice, `${field}.blockIO.weightDevice`)?.forEach((item, index) => {
      const deviceField = `${field}.blockIO.weightDevice[${index}]`;
      const device = expectObject(item, deviceField);
      expectInteger(device.major, `${deviceField}.major`, 0, INT64_MAX);
      expectInteger(device.minor, `${deviceField}.minor`, 0, INT64_MAX);
      optionalInteger(device.weight, `${deviceField}.weight`, 0, 0xffff);
      optionalInteger(device.leafWeight, `${deviceField}.leafWeight`, 0, 0xffff);
      if (device.weight === undefined && device.leafWeight === undefined) fail('needs weight or leafWeight', deviceField);
    });
    for (const key of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice']) {
      optionalArray(blockIO[key], `${field}.blockIO.${key}`)?.forEach((item, index) => {
        const deviceField = `${field}.blockIO.${key}[${index}]`;
        const device = expectObject(item, deviceField);
        expectInteger(device.major, `${deviceField}.major`, 0, INT64_MAX);
        expectInteger(device.minor, `${deviceField}.minor`, 0, INT64_MAX);
        expectInteger(device.rate, `${deviceField}.rate`, 0, UINT64_LIMIT);
      });
    }
  }

  optionalArray(resources.hugepageLimits, `${field}.hugepageLimits`)?.forEach((item, index) => {
    const limitField = `${field}.hugepageLimits[${index}]`;
    const limit = expectObject(item, limitField);
    const pageSize = expectString(limit.pageSize, `${limitField}.pageSize`);
    if (!/^\d+[KMGTP]?B$/.test(pageSize)) fail(`must look like 2MB or 1GB, got ${JSON.stringify(pageSize)}`, `${limitField}.pageSize`);
    expectInteger(limit.limit, `${limitField}.limit`, 0, UINT64_LIMIT);
  });

  const network = optionalObject(resources.network, `${field}.network`);
  if (network) {
    optionalUint32(network.classID, `${field}.network.classID`);
    optionalArray(network.priorities, `${field}.network.priorities`)?.forEach((item, index) => {
      const priorityField = `${field}.network.priorities[${index}]`;
      const priority = expectObject(item, priorityField);
      expectNonEmptyString(priority.name, `${priorityField}.name`);
      expectUint32(priority.priority, `${priorityField}.priority`);
    });
  }

  const rdma = optionalObject(resources.rdma, `${field}.rdma`);
  if (rdma) {
    for (const [device, item] of Object.entries(rdma)) {
      const rdmaField = `${field}.rdma.${device}`;
      const limits = expectObject(item, rdmaField);
      optionalUint32(limits.hcaHandles, `${rdmaField}.hcaHandles`);
      optionalUint32(limits.hcaObjects, `${rdmaField}.hcaObjects`);
      if (limits.hcaHandles === undefined && limits.hcaObjects === undefined) fail('needs hcaHandles or hcaObjects', rdmaField);
    }
  }

  const unified = optionalStringMap(resources.unified, `${field}.unified`);
  if (unified) {
    for (const key of Object.keys(unified)) {
      // Keys are file names in the cgroup directory: no way out of it.
      if (key === '' || key.includes('/') || key === '.' || key === '..') fail('invalid cgroup file name', `${field}.unified.${key}`);
    }
  }
}
