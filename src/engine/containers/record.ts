/**
 * What the lifecycle manager keeps about a container, persisted as one JSON file per container.
 * The fields are Docker's (they come from `POST /containers/create` and go back out through
 * inspect), but nothing here speaks HTTP: a CRI front end can fill the same record.
 */
import type { CreateConfig, HostConfig } from '../spec/container-spec.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

import type { EndpointConfig, EndpointState } from '../networks/record.js';

export interface ContainerState {
  status: ContainerStatus;
  /** PID 1 on the host while running, else 0. */
  pid: number;
  exitCode: number;
  /** RFC 3339; "0001-01-01T00:00:00Z" until the first start/exit, as Docker shows it. */
  startedAt: string;
  finishedAt: string;
  error: string;
  oomKilled: boolean;
  /** While a container with a Healthcheck runs (see health.ts). */
  health?: { Status: 'starting' | 'healthy' | 'unhealthy'; FailingStreak: number; Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }> };
}

/** A volume, bind or tmpfs in the container, as inspect's `Mounts` shows it. */
export interface MountPoint {
  Type: 'volume' | 'bind' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  // The rest is the engine's own (inspect shows only the fields above, see publicMountPoint).
  /** tmpfs: the mount's data made from TmpfsOptions (size, mode, exec...). */
  TmpfsData?: string;
  /** Read-only, and so are the mounts beneath it ("rro"). */
  RecursiveReadOnly?: boolean;
  /** bind: only the source itself, not the mounts beneath it ("bind", not "rbind"). */
  NonRecursive?: boolean;
  /** bind: the source is made at start if missing (BindOptions.CreateMountpoint). */
  CreateMountpoint?: boolean;
  /** volume: the image's content is not copied into it when empty (nocopy, VolumeOptions.NoCopy). */
  NoCopy?: boolean;
  /**
   * bind: "rslave" given by the daemon, not the user (the source holds or is held by a daemon
   * root); at start it falls back to private when the source's mount is neither shared nor a slave.
   */
  AutoSlave?: boolean;
}

/** A MountPoint as inspect and the container list show it. */
export function publicMountPoint(p: MountPoint): Omit<MountPoint, 'TmpfsData' | 'RecursiveReadOnly' | 'NonRecursive' | 'CreateMountpoint' | 'NoCopy' | 'AutoSlave'> {
  return {
    Type: p.Type,
    ...(p.Name !== undefined ? { Name: p.Name } : {}),
    Source: p.Source,
    Destination: p.Destination,
    ...(p.Driver !== undefined ? { Driver: p.Driver } : {}),
    Mode: p.Mode,
    RW: p.RW,
    Propagation: p.Propagation,
  };
}

/** An entry of HostConfig.Mounts (the API's mount.Mount), as a client sends it. */
export interface MountRequest {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean; CreateMountpoint?: boolean; ReadOnlyNonRecursive?: boolean; ReadOnlyForceRecursive?: boolean } | null;
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string> | null; DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null; Subpath?: string } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] | null } | null;
}

/** The create request's full Config (Docker's container.Config): CreateConfig plus what only inspect reads. */
export interface ContainerConfig extends CreateConfig {
  Image: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  StdinOnce?: boolean;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  StopTimeout?: number | null;
  Healthcheck?: unknown;
  [key: string]: unknown;
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount?: number;
}

/** HostConfig as stored: the fields the spec reads plus those the engine itself reads. */
export interface ContainerHostConfig extends HostConfig {
  Binds?: string[] | null;
  Mounts?: MountRequest[] | null;
  /** Other containers whose volumes and binds this one mounts too ("id[:ro|rw]"). */
  VolumesFrom?: string[] | null;
  AutoRemove?: boolean;
  RestartPolicy?: RestartPolicy;
  NetworkMode?: string;
  PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
  LogConfig?: { Type?: string; Config?: Record<string, string> };
  [key: string]: unknown;
}

export interface ContainerRecord {
  id: string;
  /** With Docker's leading slash: "/web". */
  name: string;
  created: string;
  /** The image ID (config digest). */
  image: string;
  /** The image as the user named it. */
  imageRef: string;
  /** Entrypoint and Cmd merged: the program and its arguments. */
  path: string;
  args: string[];
  config: ContainerConfig;
  hostConfig: ContainerHostConfig;
  state: ContainerState;
  restartCount: number;
  /** Set when the user stopped it: restart policies leave it alone until it is started again. */
  stoppedByUser: boolean;
  mounts: MountPoint[];
  /** The snapshot holding its writable layer. */
  snapshotKey: string;
  /** The networks it is on, by name, in attach order (the first gives eth0, the default route and its published ports). */
  endpoints?: Record<string, EndpointConfig>;
  /** A "none" mode container disconnected from "none" while stopped: it may be connected to networks (dockerd allows it). */
  leftModeNetwork?: boolean;
  /** Its endpoints (address, veth) while it runs. */
  networks?: Record<string, EndpointState>;
  /** Its published ports while it runs, as NetworkSettings.Ports shows them. */
  ports?: Record<string, Array<{ HostIp: string; HostPort: string }> | null>;
  /** Its own range of host ids when it runs in a user namespace (see userns.ts). */
  idRange?: { base: number; size: number };
  /**
   * Its json-file log, in its directory under the data root (as dockerd's <id>-json.log), so the
   * log outlives a reboot and the exec root can be a tmpfs. Absent in records made before that:
   * their log is log.json in the shim's directory.
   */
  logPath?: string;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function newState(): ContainerState {
  return { status: 'created', pid: 0, exitCode: 0, startedAt: ZERO_TIME, finishedAt: ZERO_TIME, error: '', oomKilled: false };
}

/**
 * The attributes of a container's event, as dockerd's LogContainerEventWithAttributes makes
 * them: the action's own, the container's labels (its image's included; they win over the
 * action's), then its image as created and its name. `docker events --filter label=...`
 * and docker compose, which watches its project's label, match on them.
 */
export function containerEventAttributes(record: Pick<ContainerRecord, 'config' | 'imageRef' | 'name'>, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(record.config.Labels ?? {}), image: record.imageRef, name: record.name.replace(/^\//, '') };
}
