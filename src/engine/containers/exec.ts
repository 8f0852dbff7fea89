/**
 * `docker exec`: extra processes in a running container. Each runs under a berth-shim of its
 * own (in the container's bundle), like the container's PID 1, so its terminal, stdin and exit
 * status are the shim's business. Exec instances live in memory, as in dockerd: after a daemon
 * restart their processes go on, but they are no longer inspectable.
 *
 * The process is the container's (user, capabilities, seccomp, no_new_privs, environment,
 * working directory) with what the exec config sets on top; `Privileged` gives every capability
 * of the daemon's bounding set.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';

import { optionalBoolean, optionalString, optionalStringList } from '../../common/checks.js';
import { ConflictError, InvalidArgumentError, NotFoundError, SystemError } from '../../common/errors.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { Process } from '../../runtime/spec/config.js';
import { ShimClient } from '../../shim/client.js';
import type { EventBus } from '../events.js';
import { supplementaryGroups } from '../spec/container-spec.js';
import { containerEventAttributes } from './record.js';
import type { ContainerService } from './service.js';
import { readSmall, ScopedRoot } from './scoped-root.js';
import { resolveUser } from './user.js';

/**
 * The exec's process could not be set up in the container (its user or group is unknown there):
 * as with dockerd, the exec exits 126, and the client that attached reads this message as the
 * exec's output (it is not an answer of the API).
 */
export class ExecSetupError extends SystemError {}

export interface ExecConfig {
  Cmd?: string[];
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Privileged?: boolean;
  DetachKeys?: string;
  ConsoleSize?: [number, number] | null;
}

export interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  /** Its shim's directory, while it exists. */
  dir?: string;
}

export interface ExecStarted {
  /**
   * For an attached start: connects the shim's stream (frames out, stdin in); the shim holds
   * the process's output until then. A caller that answers over HTTP sends its head first, alone
   * (docker-py reads the head buffered and then the raw socket: output in the same read was
   * lost). Undefined when detached.
   */
  attach?: () => Promise<net.Socket>;
  /** Resolves with the exit code once the process has exited (and, attached, its output was streamed). */
  exited: Promise<number>;
}

/** dockerd's words for an exec's command in its events: the program, a space, the arguments ("true " alone). */
function eventCommand(cmd: string[]): string {
  return `${cmd[0] ?? ''} ${cmd.slice(1).join(' ')}`;
}

/**
 * How long a finished exec stays inspectable. dockerd collects finished execs every 5 minutes
 * (execCommandGC); kept until their container went, a long-running container that a script
 * execs into every few seconds made the daemon grow without end.
 */
export const FINISHED_EXEC_RETENTION_MS = 5 * 60_000;

export class ExecService {
  private readonly execs = new Map<string, ExecRecord>();

  constructor(
    private readonly containers: ContainerService,
    private readonly runtime: Runtime,
    private readonly events: EventBus,
    /** The daemon's bounding set: what Privileged gives. */
    private readonly allCapabilities: string[],
    private readonly finishedRetentionMs = FINISHED_EXEC_RETENTION_MS,
  ) {}

  /** An exec has finished (or failed to start): it is forgotten a while later. */
  private finished(id: string): void {
    setTimeout(() => this.forget(id), this.finishedRetentionMs).unref();
  }

  create(containerRef: string, config: ExecConfig): string {
    if (!config || typeof config !== 'object') throw new InvalidArgumentError('the request body must be a JSON object');
    const container = this.containers.get(containerRef);
    // Named as the client named it, as dockerd does.
    if (container.state.status === 'paused') throw new ConflictError(`Container ${containerRef} is paused, unpause the container before exec`);
    if (container.state.status === 'restarting') throw new ConflictError(`Container ${container.id} is restarting, wait until the container is running`);
    if (container.state.status !== 'running') throw new ConflictError(`Container ${container.id} is not running`);
    const cmd = optionalStringList(config.Cmd, 'Cmd');
    if (!cmd || cmd.length === 0) throw new InvalidArgumentError('No exec command specified', 'Cmd');
    optionalStringList(config.Env, 'Env');
    for (const f of ['User', 'WorkingDir', 'DetachKeys'] as const) optionalString(config[f], f);
    for (const f of ['Tty', 'Privileged', 'AttachStdin', 'AttachStdout', 'AttachStderr'] as const) optionalBoolean(config[f], f);
    if (config.WorkingDir && !config.WorkingDir.startsWith('/')) throw new InvalidArgumentError(`the working directory '${config.WorkingDir}' is invalid, it needs to be an absolute path`, 'WorkingDir');
    const id = crypto.randomBytes(32).toString('hex');
    this.execs.set(id, { id, containerId: container.id, config: { ...config, Cmd: cmd }, running: false, exitCode: null, pid: 0 });
    this.events.emit('container', `exec_create: ${eventCommand(cmd)}`, container.id, containerEventAttributes(container, { execID: id }));
    return id;
  }

  get(id: string): ExecRecord {
    const exec = this.execs.get(id);
    if (!exec) throw new NotFoundError(`No such exec instance: ${id}`);
    return exec;
  }

  /** The container the exec runs in, for its inspect. */
  containerOf(id: string): string {
    return this.get(id).containerId;
  }

  private process(exec: ExecRecord, tty: boolean, consoleSize: [number, number] | undefined): Process {
    const base = this.runtime.config(exec.containerId).process;
    if (!base) throw new ConflictError(`container ${exec.containerId} has no process`);
    const config = exec.config;
    let user = base.user;
    let home: string | undefined;
    if (config.User) {
      // The container's own files, read through its root as it sees it: it may have made
      // /etc/passwd a symlink to a host path, a fifo or /dev/zero.
      const scoped = new ScopedRoot(this.containers.rootfsPath(exec.containerId));
      let resolved;
      try {
        resolved = resolveUser(config.User, readSmall(scoped, '/etc/passwd'), readSmall(scoped, '/etc/group'));
      } catch (err) {
        if (err instanceof InvalidArgumentError) throw new ExecSetupError(err.message);
        throw err;
      } finally {
        scoped.close();
      }
      user = { uid: resolved.uid, gid: resolved.gid, additionalGids: supplementaryGroups(resolved.gid, resolved.additionalGids) };
      home = resolved.home;
    }
    const env = [...(base.env ?? [])];
    // HOME is the exec's user's (runc sets it from /etc/passwd when the environment has none),
    // unless the container's config or the exec gives one: the container's process got its
    // own user's HOME from the daemon.
    if (home !== undefined && !(this.containers.get(exec.containerId).config.Env ?? []).some((e) => e.startsWith('HOME='))) {
      const at = env.findIndex((e) => e.startsWith('HOME='));
      if (at >= 0) env[at] = `HOME=${home}`;
      else env.push(`HOME=${home}`);
    }
    for (const entry of config.Env ?? []) {
      const key = entry.split('=')[0];
      const at = env.findIndex((e) => e.split('=')[0] === key);
      if (at >= 0) env[at] = entry;
      else env.push(entry);
    }
    if (tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
    const all = this.allCapabilities;
    const capabilities = config.Privileged ? { bounding: all, effective: all, permitted: all } : base.capabilities;
    // An exec as a non-root user gets no capabilities, as runc does for its process.
    const caps = user.uid !== 0 && capabilities ? { bounding: capabilities.bounding } : capabilities;
    return {
      ...base,
      args: config.Cmd,
      env,
      cwd: config.WorkingDir || base.cwd,
      user,
      terminal: tty,
      ...(tty && consoleSize ? { consoleSize: { height: consoleSize[0], width: consoleSize[1] } } : {}),
      ...(caps ? { capabilities: caps } : {}),
    };
  }

  /** Starts the process; attached, the caller reads the returned stream (the shim holds the output until then). */
  async start(id: string, opts: { detach?: boolean; tty?: boolean; consoleSize?: [number, number] } = {}): Promise<ExecStarted> {
    const exec = this.get(id);
    if (exec.running || exec.exitCode !== null) throw new ConflictError(`Error: Exec command ${id} has already run`);
    const container = this.containers.get(exec.containerId);
    if (container.state.status !== 'running') throw new ConflictError(`Container ${container.id} is not running`);
    const tty = opts.tty ?? exec.config.Tty === true;
    const stdin = !opts.detach && exec.config.AttachStdin === true;
    const dir = path.join(this.containers.execsDir(container.id), id.slice(0, 12));
    let proc: Process;
    try {
      proc = this.process(exec, tty, opts.consoleSize ?? exec.config.ConsoleSize ?? undefined);
    } catch (err) {
      if (err instanceof ExecSetupError) {
        exec.exitCode = 126;
        this.finished(id);
      }
      throw err;
    }
    exec.running = true;
    exec.dir = dir;
    let launched;
    try {
      launched = await this.runtime.exec(container.id, proc, { shim: { dir, stdin, hold: !opts.detach, log: false, lingerMs: 1000 } });
    } catch (err) {
      exec.running = false;
      exec.exitCode = 126;
      this.finished(id);
      // The shim, told to go by the failed launch, removes its own files as it goes: the
      // directory follows, retried while they go, and never in place of the exec's own error.
      void fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }).catch(() => undefined);
      throw err;
    }
    exec.pid = launched.pid;
    this.events.emit('container', `exec_start: ${eventCommand(exec.config.Cmd ?? [])}`, container.id, containerEventAttributes(container, { execID: id }));
    const client = new ShimClient(dir);
    // As dockerd, the end of the client's input closes a pipe's stdin, never a terminal's.
    let stream: Promise<net.Socket> | undefined;
    const attach = opts.detach ? undefined : (): Promise<net.Socket> => (stream ??= client.stream({ stdin, once: !tty }));
    const exited = client.wait().then(
      (exit) => exit.status,
      () => 255,
    );
    void exited.then((code) => {
      exec.running = false;
      exec.exitCode = code; // Pid stays: dockerd's exec inspect shows it after the exit too
      this.finished(id);
      this.events.emit('container', 'exec_die', container.id, containerEventAttributes(container, { execID: id, exitCode: String(code) }));
      exec.dir = undefined;
      // The shim goes at once; its directory with it (health checks run one exec per interval).
      void client
        .shutdown()
        .catch(() => undefined)
        .then(() => fs.promises.rm(dir, { recursive: true, force: true }))
        .catch(() => undefined);
    });
    return { ...(attach ? { attach } : {}), exited };
  }

  async resize(id: string, rows: number, cols: number): Promise<void> {
    const exec = this.get(id);
    if (!exec.running || !exec.dir) throw new ConflictError(`Exec ${id} is not running`);
    if (exec.config.Tty !== true) return;
    await new ShimClient(exec.dir).resize(rows, cols);
  }

  /** Forgets one finished exec (the health monitor's probes). */
  forget(id: string): void {
    const exec = this.execs.get(id);
    if (exec && !exec.running) this.execs.delete(id);
  }

  /** Forgets the execs of a container (it stopped or went away). */
  forgetContainer(containerId: string): void {
    for (const [id, exec] of this.execs) if (exec.containerId === containerId && !exec.running) this.execs.delete(id);
  }

  /**
   * The container's execs that have not finished (created, or running), for its inspect's
   * ExecIDs: dockerd drops an exec from its container's list when it exits, though the exec
   * itself can still be inspected a while.
   */
  idsOf(containerId: string): string[] {
    return [...this.execs.values()].filter((e) => e.containerId === containerId && e.exitCode === null).map((e) => e.id);
  }
}
