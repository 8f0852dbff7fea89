/**
 * The OCI runtime as a library: create, start, state, kill, delete, pause, resume, exec, ps.
 * The berth-oci CLI is a thin layer over this; the engine calls it in-process (no CLI start).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { mountPointsUnder } from '../common/mountinfo.js';
import { ConflictError, InvalidArgumentError, NotFoundError, SystemError, UnsupportedError } from '../common/errors.js';
import { PreparedShim, shimConsoleSocket, type ShimOptions } from '../shim/client.js';
import { compileDeviceFilter } from './cgroups/devices-bpf.js';
import { cgroupManagerFromDescriptor, normalizeDeviceRules, openCgroupManager } from './cgroups/index.js';
import type { CgroupManager } from './cgroups/types.js';
import { runHooks } from './hooks.js';
import { launch, PreparedLaunch, type Launched, type Stage0Starter } from './launch.js';
import { wantsFreshNetns, withNetnsPath, type NetnsSource, type TakenNetns } from './netns.js';
import { compileCreatePlan, compileExecPlan, type CgroupPlacement, type CompiledSeccomp, type HostFacts } from './plan/compile.js';
import type { PlanOp } from './plan/plan.js';
import { compileSeccomp } from './seccomp/compile.js';
import type { NamespaceType, Process, Resources, Seccomp, Spec, State, Status } from './spec/config.js';
import { DEFAULT_ALLOWED_DEVICE_RULES } from './spec/defaults.js';
import { parseSpec, validateSpec } from './spec/validate.js';
import { DEFAULT_ROOT, initAlive, readProcStat, StateStore, statusOf, toOciState, validateId, type ContainerRecord } from './state.js';

export type Stdio = Array<number | 'inherit' | 'ignore' | 'pipe'>;

export interface CreateOptions {
  bundle: string;
  /**
   * The bundle's config.json as its caller just wrote it (in-process: the daemon), validated
   * like the file but not read and parsed again. The caller must not change it afterwards.
   */
  config?: Spec;
  consoleSocket?: string;
  pidFile?: string;
  noPivot?: boolean;
  /** fds of this process passed to the container as 3, 4, ... */
  preserveFds?: number[];
  stdio?: Stdio;
  /** Keep stage 0 as the container's parent and return it (`run` without --detach). */
  foreground?: boolean;
  /**
   * The caller's preparation of the rootfs (its mount), under way: awaited before the
   * container's process is set up, after the cgroups and the plan are made; its failure fails
   * the create.
   */
  rootfsReady?: Promise<unknown>;
  /**
   * Create and start in one (as `runc run --detach`): the process runs its program as soon as it
   * is set up, with no exec fifo to wait on; poststart hooks run before create returns. For a
   * caller with nothing to do between the two (berthd, when no network or attach waits for it).
   */
  startNow?: boolean;
  /**
   * Start the container under a berth-shim (src/shim) that keeps its output in `dir`, reaps it
   * and outlives us. The returned `stage0` is then the shim. Not with foreground, stdio,
   * preserveFds or consoleSocket: with process.terminal, the shim takes the pty itself.
   */
  shim?: ShimOptions;
}

/** A create up to its process (Runtime.prepare): launch it, or abort it. */
export interface PreparedCreate {
  /** Starts the process as create does; `holdMs` as ShimOptions.holdMs (decided late). */
  launch(late?: { holdMs?: number }): Promise<Launched>;
  /** Undoes the preparation (the id, record, cgroups and shim go); a no-op once launched. */
  abort(): Promise<void>;
}

export interface ExecOptions {
  consoleSocket?: string;
  pidFile?: string;
  preserveFds?: number[];
  stdio?: Stdio;
  foreground?: boolean;
  /** Run the process under a berth-shim of its own, as for create (without log.json unless `log` says so). */
  shim?: ShimOptions;
}

/** The options a shim takes over: its process's stdio, terminal and parent are the shim's. */
function checkShimOptions(opts: CreateOptions | ExecOptions): void {
  if (opts.shim && (opts.foreground || opts.stdio || opts.preserveFds?.length || opts.consoleSocket)) {
    throw new InvalidArgumentError('a process under a shim has no foreground, stdio, preserved fds or console socket of its own', 'shim');
  }
  // sockaddr_un.sun_path: 108 bytes with the NUL.
  if (opts.shim && Buffer.byteLength(shimConsoleSocket(opts.shim.dir)) > 107) throw new InvalidArgumentError(`the shim's directory ${opts.shim.dir} is too long for a socket path`, 'shim.dir');
}

/**
 * A Runtime made with `runsHooks: false` met a container with hooks, before doing anything.
 * The berth-oci server (cli/server.ts) does not run hooks: a hook may call berth-oci, which
 * would then wait on the server that waits on the hook. Its client runs such a verb itself.
 */
export class HooksNotRunHereError extends UnsupportedError {
  constructor(id: string) {
    super(`container ${id} has hooks, which this runtime process does not run`);
  }
}

function hasHooks(spec: Spec): boolean {
  return Object.values(spec.hooks ?? {}).some((list) => Array.isArray(list) && list.length > 0);
}

export interface ListEntry extends State {
  created: string;
  owner: string;
}

/**
 * The device cgroup rules to apply: the config's, then an allow rule per configured device
 * node, then the default devices every container may use (runc's AllowedDevices).
 */
function withDefaultDeviceRules(spec: Spec): Resources {
  const resources = spec.linux?.resources ?? {};
  const deviceRules = [
    ...(resources.devices ?? []),
    ...(spec.linux?.devices ?? []).filter((d) => d.type !== 'p').map((d) => ({ allow: true, type: d.type === 'u' ? 'c' : d.type, major: d.major, minor: d.minor, access: 'rwm' })),
    ...DEFAULT_ALLOWED_DEVICE_RULES,
  ];
  return { ...resources, devices: deviceRules };
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Compiled seccomp filters by profile: an engine gives most containers the same default
 * profile, and compiling it costs ~1 ms of every start. The result is only read (encoded
 * into the plan). A few entries: custom profiles are rare.
 */
const seccompCache = new Map<string, CompiledSeccomp>();
function cachedSeccomp(profile: Seccomp): CompiledSeccomp {
  const key = JSON.stringify(profile);
  let compiled = seccompCache.get(key);
  if (!compiled) {
    compiled = compileSeccomp(profile);
    if (seccompCache.size >= 8) seccompCache.delete(seccompCache.keys().next().value!);
    seccompCache.set(key, compiled);
  }
  return compiled;
}

let cachedHostFacts: HostFacts | undefined;
function hostFacts(): HostFacts {
  cachedHostFacts ??= {
    lastCap: Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()),
    isDirectory: (p) => {
      try {
        return fs.statSync(p).isDirectory();
      } catch {
        return false;
      }
    },
    exists: (p) => fs.existsSync(p),
    apparmor: readTrimmed('/sys/module/apparmor/parameters/enabled') === 'Y',
    selinux: fs.existsSync('/sys/fs/selinux/enforce'),
  };
  return cachedHostFacts;
}

/**
 * Where the container's processes go. On cgroup v2, device rules travel along as an eBPF
 * program (there are no devices.allow files); exec'd processes join the same cgroup, so only
 * `create` passes the rules.
 */
function placement(manager: CgroupManager, resources?: Resources): CgroupPlacement {
  const descriptor = manager.toJSON();
  const entries = manager.procsFileEntries();
  const deviceFilter =
    descriptor.mode === 'v2' && resources?.devices && descriptor.paths.unified
      ? { cgroupDir: descriptor.paths.unified, program: compileDeviceFilter(normalizeDeviceRules(resources.devices)) }
      : undefined;
  return {
    procsFiles: entries.filter((e) => e.required).map((e) => e.file),
    optionalProcsFiles: entries.filter((e) => !e.required).map((e) => e.file),
    paths: descriptor.paths,
    mode: descriptor.mode,
    deviceFilter,
  };
}

function writePidFile(file: string | undefined, pid: number): void {
  if (!file) return;
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, String(pid));
  fs.renameSync(tmp, file);
}

/** Lazily unmounts everything mounted under dir, deepest first (a container without its own mount namespace). */
function unmountUnder(dir: string): void {
  for (const mountPoint of mountPointsUnder(dir)) spawnSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForExit(pid: number, startTime: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stat = readProcStat(pid);
    if (!stat || stat.state === 'Z' || stat.state === 'X' || stat.startTime !== startTime) return true;
    if (Date.now() > deadline) return false;
    await sleep(2);
  }
}

export class Runtime {
  readonly store: StateStore;
  private readonly keepCgroupParents: boolean;
  private readonly netns: NetnsSource | undefined;
  private readonly starter: Stage0Starter | undefined;
  private readonly runsHooks: boolean;

  /**
   * `keepCgroupParents`: parent cgroups that a create makes (the engine's --cgroup-parent) stay
   * when the container is deleted, as runc leaves them. An engine starts the next container
   * under the same parent: removing and making it again cost ~1 ms of every run (a directory in
   * each of ~10 hierarchies, and cpuset values). Without it (the berth-oci CLI), delete removes
   * the parents it made once nothing else is in them.
   *
   * `netns`: network namespaces made ahead of time, for containers that want a new one (and no
   * user namespace): clone() then has less to do (see NetnsPool).
   *
   * `starter`: where berth-nsexec runs (launch.ts, Stage0Starter); `runsHooks: false` refuses
   * containers with hooks (HooksNotRunHereError) before doing anything for them.
   */
  constructor(opts: { root?: string; keepCgroupParents?: boolean; netns?: NetnsSource; starter?: Stage0Starter; runsHooks?: boolean } = {}) {
    this.store = new StateStore(opts.root ?? DEFAULT_ROOT);
    this.keepCgroupParents = opts.keepCgroupParents ?? false;
    this.netns = opts.netns;
    this.starter = opts.starter;
    this.runsHooks = opts.runsHooks ?? true;
  }

  private checkHooks(id: string, spec: Spec): void {
    if (!this.runsHooks && hasHooks(spec)) throw new HooksNotRunHereError(id);
  }

  private cgroupOf(record: ContainerRecord): CgroupManager | undefined {
    return record.cgroup ? cgroupManagerFromDescriptor(record.cgroup) : undefined;
  }

  private statusOf(record: ContainerRecord): Status {
    return statusOf(record, fs.existsSync(this.store.fifoPath(record.id)), () => this.cgroupOf(record)?.isFrozen() ?? false);
  }

  /** Sets up the container and leaves its process waiting for `start`. */
  async create(id: string, opts: CreateOptions): Promise<Launched> {
    return (await this.prepare(id, opts)).launch();
  }

  /**
   * The part of create before the container's process exists: the id claimed, the state
   * record, the cgroups, the shim (or berth-nsexec) started and the plan compiled. `launch()`
   * then starts the process, as create does; `abort()` undoes it all. berthd prepares a start
   * this way while its client is between `create` and `start` (engine/containers/prepared.ts).
   */
  async prepare(id: string, opts: CreateOptions): Promise<PreparedCreate> {
    validateId(id);
    checkShimOptions(opts);
    // berth-nsexec (or, below, the shim) starts first; it waits for the plan made meanwhile.
    // Not before the hooks are checked when a container with hooks would be refused.
    const startEarly = (): PreparedLaunch | undefined =>
      opts.shim ? undefined : new PreparedLaunch({ stdio: opts.stdio ?? ['inherit', 'inherit', 'inherit'], preserveFds: opts.preserveFds, starter: this.starter });
    let early = this.runsHooks ? startEarly() : undefined;
    let spec: Spec;
    let rootfs: string;
    let seccomp: CompiledSeccomp | undefined;
    const bundle = path.resolve(opts.bundle);
    try {
      if (opts.config) {
        spec = validateSpec(opts.config);
      } else {
        let text: string;
        try {
          text = fs.readFileSync(path.join(bundle, 'config.json'), 'utf8');
        } catch (err) {
          throw new InvalidArgumentError(`cannot read config.json in bundle ${bundle}: ${(err as Error).message}`, '--bundle');
        }
        spec = parseSpec(text);
      }
      this.checkHooks(id, spec);
      early ??= startEarly();
      if (!spec.root?.path) throw new InvalidArgumentError('is required', 'root.path');
      rootfs = path.resolve(bundle, spec.root.path);
      if (!hostFacts().isDirectory(rootfs)) throw new InvalidArgumentError(`rootfs ${rootfs} is not a directory`, 'root.path');
      seccomp = spec.linux?.seccomp ? cachedSeccomp(spec.linux.seccomp) : undefined;
      this.store.reserve(id);
    } catch (err) {
      early?.abort();
      throw err;
    }
    const terminal = spec.process?.terminal === true;

    let cgroup: CgroupManager | undefined;
    let launched: Launched | undefined;
    let shim: PreparedShim | undefined;
    let pooledNetns: TakenNetns | undefined;
    /** Undoes the create: whatever of it exists goes (the process too, if there is one). */
    const undo = async (): Promise<void> => {
      pooledNetns?.release();
      early?.abort();
      await shim?.abort();
      if (launched?.pid) {
        try {
          process.kill(launched.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      cgroup?.signalAll('SIGKILL');
      if (launched?.pid) await waitForExit(launched.pid, readProcStat(launched.pid)?.startTime ?? '', 2000);
      cgroup?.destroy();
      this.store.remove(id);
    };
    let ops: PlanOp[];
    let record: ContainerRecord;
    try {
      // The shim starts now (through the spawner, another process), while we make the cgroups
      // and the plan; it waits for the plan on its socket.
      if (opts.shim) shim = new PreparedShim({ ...opts.shim, tty: terminal });
      cgroup = openCgroupManager({ cgroupsPath: spec.linux?.cgroupsPath, containerId: id });
      const resources = withDefaultDeviceRules(spec);
      // A record before the cgroup and any process exist: if this process dies mid-create,
      // `delete --force` still finds the cgroup, kills what joined it and removes it.
      record = { id, bundle, rootfs, pid: 0, pidStartTime: '', created: new Date().toISOString(), config: spec, cgroup: cgroup.toJSON(), owner: process.getuid?.() === 0 ? 'root' : String(process.getuid?.()) };
      this.store.save(record);
      cgroup.create(resources);
      record.cgroup = cgroup.toJSON(); // now with the parents it made, saved with the pid below
      if (this.keepCgroupParents && record.cgroup.createdDirs) {
        const leaves = Object.values(record.cgroup.paths);
        record.cgroup.createdDirs = record.cgroup.createdDirs.filter((dir) => leaves.includes(dir));
      }
      pooledNetns = this.netns && wantsFreshNetns(spec) ? this.netns.take() : undefined;
      ops = compileCreatePlan(pooledNetns ? withNetnsPath(spec, pooledNetns.path) : spec, {
        bundle,
        rootfs,
        execFifo: opts.startNow ? undefined : this.store.fifoPath(id),
        consoleSocket: opts.shim && terminal ? shimConsoleSocket(opts.shim.dir) : opts.consoleSocket,
        noPivot: opts.noPivot,
        foreground: opts.foreground ?? false,
        preserveFds: opts.preserveFds?.length ?? 0,
        cgroup: placement(cgroup, resources),
        seccomp,
        host: hostFacts(),
      });
    } catch (err) {
      await undo();
      throw err;
    }
    const stateFor = (pid: number): State => ({ ociVersion: spec.ociVersion, id, status: 'creating', pid, bundle, ...(spec.annotations ? { annotations: spec.annotations } : {}) });
    const onSync = (name: string, pid: number): void => {
      if (name !== 'createRuntime') return;
      runHooks('prestart', spec.hooks?.prestart, stateFor(pid));
      runHooks('createRuntime', spec.hooks?.createRuntime, stateFor(pid));
    };
    let used = false;
    const launch = async (late: { holdMs?: number } = {}): Promise<Launched> => {
      if (used) throw new ConflictError(`container ${id}: its create was launched or aborted already`);
      used = true;
      try {
        // The record with the process's pid is written while the process sets up, and put in
        // place once it is ready (a crash before that leaves a record of a create in progress).
        let staged: { pid: number; commit: () => void } | undefined;
        const onPid = (pid: number): void => {
          staged = { pid, commit: this.store.stage({ ...record, pid, pidStartTime: readProcStat(pid)?.startTime ?? '' }) };
        };
        if (opts.rootfsReady) await opts.rootfsReady;
        launched = shim ? await shim.launch({ ops, stateFor, onSync, onPid, holdMs: late.holdMs }) : await early!.launch({ ops, stateFor, onSync, onPid });
        pooledNetns?.release(); // the container's process is in it now
        pooledNetns = undefined;
        // Started at once, it may have run its program and exited already (it counts as stopped).
        if (!opts.startNow && !readProcStat(launched.pid)) throw new SystemError('container process exited during setup');
        if (staged?.pid !== launched.pid) onPid(launched.pid);
        staged!.commit();
        writePidFile(opts.pidFile, launched.pid);
        if (!opts.foreground && !opts.shim) await stage0Exited(launched.stage0);
        if (opts.startNow) {
          try {
            runHooks('poststart', spec.hooks?.poststart, { ...stateFor(launched.pid), status: 'running' });
          } catch (err) {
            process.emitWarning((err as Error).message);
          }
        }
        return launched;
      } catch (err) {
        await undo();
        throw err;
      }
    };
    const abort = async (): Promise<void> => {
      if (used) return;
      used = true;
      await undo();
    };
    return { launch, abort };
  }

  /** Whether a container with this id exists (in any state, a create in progress included). */
  has(id: string): boolean {
    return this.store.has(id);
  }

  /** Lets the created container's process exec the user's program. */
  async start(id: string): Promise<void> {
    const record = this.store.load(id);
    this.checkHooks(id, record.config);
    const status = this.statusOf(record);
    if (status === 'stopped') throw new ConflictError('cannot start a container that has stopped');
    if (status !== 'created') throw new ConflictError(`cannot start an already ${status} container`);
    const fifo = this.store.fifoPath(id);
    try {
      await awaitExec(fifo, () => initAlive(record));
    } finally {
      fs.rmSync(fifo, { force: true });
    }
    try {
      runHooks('poststart', record.config.hooks?.poststart, toOciState(record, 'running'));
    } catch (err) {
      process.emitWarning((err as Error).message);
    }
  }

  state(id: string): State {
    const record = this.store.load(id);
    return toOciState(record, this.statusOf(record));
  }

  list(): ListEntry[] {
    const entries: ListEntry[] = [];
    for (const id of this.store.list()) {
      try {
        const record = this.store.load(id);
        entries.push({ ...toOciState(record, this.statusOf(record)), created: record.created, owner: record.owner });
      } catch {
        /* removed meanwhile */
      }
    }
    return entries;
  }

  kill(id: string, signal: number, all = false): void {
    const record = this.store.load(id);
    const status = this.statusOf(record);
    if (status === 'stopped' || status === 'creating') throw new ConflictError(`container not running: ${status}`);
    if (all) {
      this.cgroupOf(record)?.signalAll(signal);
      return;
    }
    try {
      process.kill(record.pid, signal);
    } catch (err) {
      throw new SystemError(`cannot signal container process ${record.pid}: ${(err as Error).message}`);
    }
  }

  async delete(id: string, force = false): Promise<void> {
    let record: ContainerRecord;
    try {
      record = this.store.load(id);
    } catch (err) {
      // A directory without a record is a create that crashed: remove what is there.
      if (err instanceof NotFoundError && fs.existsSync(this.store.dir(id))) {
        this.store.remove(id);
        return;
      }
      throw err;
    }
    this.checkHooks(id, record.config);
    const status = this.statusOf(record);
    // The runtime spec: deleting a container that is not stopped is an error (runc 1.1 lets a
    // created one go; engines pass --force when they mean it).
    if (status !== 'stopped' && !force) {
      throw new ConflictError(`cannot delete container ${id} that is not stopped: ${status}`);
    }
    const cgroup = this.cgroupOf(record);
    if (status !== 'stopped' && record.pid > 0) {
      try {
        process.kill(record.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    // Processes that outlive init (no pid namespace of its own) or are frozen must go too. In a
    // pid namespace of its own, init's death killed the rest, as runc counts on; should any be
    // left, the cgroup's removal fails, and destroyCgroup kills them and tries again.
    const ownPidNamespace = (record.config.linux?.namespaces ?? []).some((ns) => ns.type === 'pid' && !ns.path);
    if (status !== 'stopped' || !ownPidNamespace) cgroup?.signalAll('SIGKILL');
    if (status === 'paused') cgroup?.thaw();
    await waitForExit(record.pid, record.pidStartTime, 10_000);
    if (!(record.config.linux?.namespaces ?? []).some((ns) => ns.type === 'mount')) unmountUnder(record.rootfs);
    if (cgroup) await destroyCgroup(cgroup);
    this.store.remove(id);
    try {
      runHooks('poststop', record.config.hooks?.poststop, toOciState(record, 'stopped'));
    } catch (err) {
      process.emitWarning((err as Error).message);
    }
  }

  pause(id: string): void {
    const record = this.store.load(id);
    const status = this.statusOf(record);
    if (status !== 'running') throw new ConflictError(`cannot pause a ${status} container`);
    this.cgroupOf(record)?.freeze();
  }

  resume(id: string): void {
    const record = this.store.load(id);
    const status = this.statusOf(record);
    if (status !== 'paused') throw new ConflictError(`cannot resume a ${status} container`);
    this.cgroupOf(record)?.thaw();
  }

  /** Processes of the container the OOM killer killed since its cgroup was made (at its create); 0 without a count. */
  oomKills(id: string): number {
    return this.cgroupOf(this.store.load(id))?.oomKills() ?? 0;
  }

  ps(id: string): number[] {
    const record = this.store.load(id);
    return this.cgroupOf(record)?.pids() ?? (initAlive(record) ? [record.pid] : []);
  }

  /** The container's config, for callers that build an exec process from it. */
  config(id: string): Spec {
    return this.store.load(id).config;
  }

  /** Runs another process in the container's namespaces and cgroup. */
  async exec(id: string, proc: Process, opts: ExecOptions = {}): Promise<Launched> {
    const record = this.store.load(id);
    const status = this.statusOf(record);
    if (status !== 'running' && status !== 'created') throw new ConflictError(`cannot exec in a ${status} container`);
    checkShimOptions(opts);
    const spec = record.config;
    const namespaces = (spec.linux?.namespaces ?? []).map((ns) => ns.type) as NamespaceType[];
    const cgroup = this.cgroupOf(record);
    const seccomp = spec.linux?.seccomp ? cachedSeccomp(spec.linux.seccomp) : undefined;
    const ops = compileExecPlan(proc, {
      initPid: record.pid,
      namespaces,
      consoleSocket: opts.shim && proc.terminal ? shimConsoleSocket(opts.shim.dir) : opts.consoleSocket,
      foreground: opts.shim ? false : (opts.foreground ?? true),
      preserveFds: opts.preserveFds?.length ?? 0,
      cgroup: cgroup ? placement(cgroup) : undefined,
      seccomp,
      lastCap: hostFacts().lastCap,
    });
    const stateFor = (): State => toOciState(record, status);
    const launched = opts.shim
      ? await new PreparedShim({ log: false, ...opts.shim, tty: proc.terminal === true }).launch({ ops, stateFor })
      : await launch({ ops, stdio: opts.stdio ?? ['inherit', 'inherit', 'inherit'], preserveFds: opts.preserveFds, stateFor, starter: this.starter });
    writePidFile(opts.pidFile, launched.pid);
    if (!opts.foreground && !opts.shim) await stage0Exited(launched.stage0);
    return launched;
  }
}

/**
 * Opens the exec fifo for reading, which lets the waiting container process go on. Resolves
 * once it wrote its byte and then closed its end at execve (EOF): the user's program runs, so
 * poststart hooks may follow. Event-driven through epoll: the kernel reports no hang-up on a
 * fifo before its first writer, so nothing fires until the container process has opened it.
 */
function awaitExec(fifo: string, alive: () => boolean): Promise<void> {
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const stream = new net.Socket({ fd, readable: true, writable: false });
  return new Promise((resolve, reject) => {
    let passed = false;
    const finish = (err?: Error): void => {
      clearInterval(watchdog);
      stream.destroy();
      if (err) reject(err);
      else resolve();
    };
    // A process that dies before opening the fifo never wakes the stream: check on it.
    const watchdog = setInterval(() => {
      if (!alive()) finish(passed ? undefined : new SystemError('container process exited before start'));
    }, 50);
    stream.on('data', () => (passed = true));
    stream.on('end', () => finish(passed ? undefined : new SystemError('container process exited before start')));
    stream.on('error', (err) => finish(new SystemError(`exec fifo: ${err.message}`)));
  });
}

/**
 * Removes the container's cgroups. Processes killed a moment ago (an exec, the rest of a pid
 * namespace after its init) may still be leaving them, and rmdir of a cgroup with members
 * fails: kill and retry for up to 2 s rather than leak the directories.
 */
async function destroyCgroup(cgroup: CgroupManager): Promise<void> {
  for (const deadline = Date.now() + 2000; ; ) {
    try {
      cgroup.destroy();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      cgroup.signalAll('SIGKILL');
      await sleep(10);
    }
  }
}

/** Resolves once stage 0 has exited (also if it already had, by status or by signal). */
function stage0Exited(stage0: Launched['stage0']): Promise<void> {
  if (stage0.exitCode !== null || stage0.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => stage0.once('exit', () => resolve()));
}

/** Waits for a foreground stage 0 and returns the container's exit status (128+n for a signal). */
export function exitStatus(stage0: Launched['stage0']): Promise<number> {
  return new Promise((resolve) => {
    if (stage0.exitCode !== null) return resolve(stage0.exitCode);
    if (stage0.signalCode !== null) return resolve(128 + (osSignalNumber(stage0.signalCode) ?? 0));
    stage0.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (osSignalNumber(signal) ?? 0) : 0)));
  });
}

function osSignalNumber(signal: NodeJS.Signals): number | undefined {
  return os.constants.signals[signal];
}
