/** Container records → the JSON of Docker's `/containers/json` and `/containers/{id}/json`. */
import { createHash } from 'node:crypto';

import type { ContainerRecord } from '../../engine/containers/record.js';
import { publicMountPoint, ZERO_TIME } from '../../engine/containers/record.js';
import { goMap, withGoMaps } from './go-map.js';

/** "Up 3 minutes", "Exited (0) 2 seconds ago", as dockerd's State.String(). */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
}

export function statusText(c: ContainerRecord, now = Date.now()): string {
  const s = c.state;
  switch (s.status) {
    case 'running':
      return `Up ${humanDuration(now - Date.parse(s.startedAt))}${s.health ? ` (${s.health.Status === 'starting' ? 'health: starting' : s.health.Status})` : ''}`;
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(s.startedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.exitCode}) ${humanDuration(now - Date.parse(s.finishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'created':
      return 'Created';
    default:
      return s.finishedAt === ZERO_TIME ? `Exited (${s.exitCode})` : `Exited (${s.exitCode}) ${humanDuration(now - Date.parse(s.finishedAt))} ago`;
  }
}

/** The ID of a predefined network (`none`, `host`) by name. */
export type NetworkIdOf = (name: string) => string | undefined;

/**
 * NetworkSettings.Networks: each network the container is on, with its endpoint while it runs.
 * A container in `none` or `host` mode is on that network, as dockerd lists it: its NetworkID
 * once it has run, an EndpointID while it runs, every address empty (not once disconnected from it).
 */
export function endpointSettings(c: ContainerRecord, networkIdOf?: NetworkIdOf): Record<string, object> {
  const out: Record<string, object> = {};
  const mode = c.hostConfig.NetworkMode;
  if ((mode === 'none' || mode === 'host') && Object.keys(c.endpoints ?? {}).length === 0 && !c.leftModeNetwork) {
    const running = c.state.status === 'running' || c.state.status === 'paused';
    out[mode] = {
      IPAMConfig: null,
      Links: null,
      Aliases: null,
      MacAddress: '',
      DriverOpts: null,
      NetworkID: c.state.startedAt !== ZERO_TIME ? (networkIdOf?.(mode) ?? '') : '',
      // dockerd's is random; ours is the same for as long as the container lives.
      EndpointID: running ? createHash('sha256').update(`${c.id}/${mode}`).digest('hex') : '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: null,
    };
  }
  for (const [name, config] of Object.entries(c.endpoints ?? {})) {
    const e = c.networks?.[name];
    const userDefined = !['bridge', 'host', 'none'].includes(name);
    // Up to API 1.44 (the newest berthd serves) dockerd adds the short ID to the aliases of an
    // endpoint on a user-defined network once the container joined it (a start or a connect),
    // and keeps it after a stop; 1.45 moved it to DNSNames only.
    const aliases = [...(config.Aliases ?? []), ...(userDefined && (e || config.berthJoined) ? [c.id.slice(0, 12)] : [])];
    out[name] = {
      IPAMConfig: config.IPAMConfig ?? null,
      Links: config.Links?.length ? config.Links : null,
      Aliases: aliases.length ? aliases : null,
      MacAddress: e?.mac ?? '',
      DriverOpts: null,
      NetworkID: config.NetworkID ?? '',
      EndpointID: e?.endpointId ?? '',
      Gateway: e?.gateway ?? '',
      IPAddress: e?.ip ?? '',
      IPPrefixLen: e?.prefix ?? 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: userDefined ? [c.name.slice(1), c.id.slice(0, 12), ...(config.Aliases ?? [])] : null,
    };
  }
  return out;
}

/** As dockerd writes it (container/view.go): the path as it is, each argument with a space in single quotes. */
export function command(c: Pick<ContainerRecord, 'path' | 'args'>): string {
  return [c.path, ...c.args.map((a) => (a.includes(' ') ? `'${a}'` : a))].join(' ');
}

/** The ID of the image a reference names now, if any. */
export type ImageIdOf = (ref: string) => string | undefined;

/**
 * The image a container list shows, as dockerd's refreshImage: the reference the container was
 * created from while it still names the container's image, else the image's ID (untagged, or
 * the tag moved to another image).
 */
export function listedImage(c: Pick<ContainerRecord, 'image' | 'imageRef'>, imageIdOf?: ImageIdOf): string {
  if (!imageIdOf || c.imageRef === c.image) return c.imageRef;
  return imageIdOf(c.imageRef) === c.image ? c.imageRef : c.image;
}

/** `linkNames`: by container name, the names of the legacy links to it ("/parent/alias"), which dockerd lists as names too, in name order. */
export function containerSummary(c: ContainerRecord, networkIdOf?: NetworkIdOf, imageIdOf?: ImageIdOf, linkNames?: ReadonlyMap<string, string[]>): object {
  return {
    Id: c.id,
    Names: [c.name, ...(linkNames?.get(c.name) ?? [])].sort(),
    Image: listedImage(c, imageIdOf),
    ImageID: c.image,
    Command: command(c),
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: Object.entries(c.ports ?? {}).flatMap(([key, list]) =>
      (list ?? []).map((b) => ({ IP: b.HostIp, PrivatePort: Number(key.split('/')[0]), PublicPort: Number(b.HostPort), Type: key.split('/')[1] ?? 'tcp' })),
    ),
    Labels: goMap(c.config.Labels ?? {}),
    State: c.state.status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.hostConfig.NetworkMode || 'default' },
    NetworkSettings: { Networks: goMap(endpointSettings(c, networkIdOf)) },
    Mounts: c.mounts.map(publicMountPoint),
  };
}

/** Where a container's files are on the host, for its inspect. */
export interface InspectPaths {
  logPath: string;
  /** Where the container's hostname, hosts and resolv.conf are (on the exec root). */
  dir: string;
  /** Its root file system's mount point. */
  rootfs: string;
  /** Its snapshot's writable and image layers (GraphDriver.Data), unless gone. */
  layers?: { upper: string; work: string; lowers: string[] };
  /** Its execs not yet finished (created or running), as dockerd's ExecIDs lists them. */
  execIds?: string[];
}

/**
 * A running container's network namespace, as `nsenter --net=$(docker inspect -f
 * '{{.NetworkSettings.SandboxKey}}' c)` uses it: dockerd names a bind mount of it; here it is
 * the container's own /proc entry. Empty when stopped or in the host's or another's namespace.
 */
function sandboxKey(c: ContainerRecord): string {
  const mode = typeof c.hostConfig.NetworkMode === 'string' ? c.hostConfig.NetworkMode : '';
  const running = c.state.status === 'running' || c.state.status === 'paused';
  return running && c.state.pid > 0 && mode !== 'host' && !mode.startsWith('container:') ? `/proc/${c.state.pid}/ns/net` : '';
}

/**
 * Every HostConfig field dockerd answers, at its zero value (as it shows a container created
 * without them, by docker-py say): the container's own fields go on top. Clients index these
 * by name (docker-py's `attrs['HostConfig']['Privileged']`).
 */
const HOST_CONFIG_ZERO = {
  AutoRemove: false,
  Binds: null,
  BlkioDeviceReadBps: null,
  BlkioDeviceReadIOps: null,
  BlkioDeviceWriteBps: null,
  BlkioDeviceWriteIOps: null,
  BlkioWeight: 0,
  BlkioWeightDevice: null,
  CapAdd: null,
  CapDrop: null,
  Cgroup: '',
  CgroupParent: '',
  ConsoleSize: [0, 0],
  ContainerIDFile: '',
  CpuCount: 0,
  CpuPercent: 0,
  CpuPeriod: 0,
  CpuQuota: 0,
  CpuRealtimePeriod: 0,
  CpuRealtimeRuntime: 0,
  CpuShares: 0,
  CpusetCpus: '',
  CpusetMems: '',
  DeviceCgroupRules: null,
  DeviceRequests: null,
  Devices: null,
  Dns: null,
  DnsOptions: null,
  DnsSearch: null,
  ExtraHosts: null,
  GroupAdd: null,
  IOMaximumBandwidth: 0,
  IOMaximumIOps: 0,
  Isolation: '',
  Links: null,
  LogConfig: { Type: 'json-file', Config: {} },
  Memory: 0,
  MemoryReservation: 0,
  MemorySwap: 0,
  MemorySwappiness: null,
  NanoCpus: 0,
  NetworkMode: 'default',
  OomKillDisable: false,
  OomScoreAdj: 0,
  PidMode: '',
  PidsLimit: null,
  PortBindings: {},
  Privileged: false,
  PublishAllPorts: false,
  ReadonlyRootfs: false,
  RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
  SecurityOpt: null,
  UTSMode: '',
  Ulimits: null,
  UsernsMode: '',
  VolumeDriver: '',
  VolumesFrom: null,
};

export function containerInspect(c: ContainerRecord, paths: InspectPaths, networkIdOf?: NetworkIdOf): object {
  const s = c.state;
  const ran = s.startedAt !== ZERO_TIME;
  return {
    Id: c.id,
    Created: c.created,
    Path: c.path,
    Args: c.args,
    State: {
      Status: s.status,
      Running: s.status === 'running' || s.status === 'paused',
      Paused: s.status === 'paused',
      Restarting: s.status === 'restarting',
      OOMKilled: s.oomKilled,
      ...(s.health ? { Health: s.health } : {}),
      Dead: s.status === 'dead',
      Pid: s.pid,
      ExitCode: s.exitCode,
      Error: s.error,
      StartedAt: s.startedAt,
      FinishedAt: s.finishedAt,
    },
    Image: c.image,
    // Made by the first start, and empty until then, as dockerd's.
    ResolvConfPath: ran ? `${paths.dir}/resolv.conf` : '',
    HostnamePath: ran ? `${paths.dir}/hostname` : '',
    HostsPath: ran ? `${paths.dir}/hosts` : '',
    LogPath: paths.logPath,
    Name: c.name,
    RestartCount: c.restartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: paths.execIds?.length ? paths.execIds : null,
    HostConfig: {
      ...HOST_CONFIG_ZERO,
      ...c.hostConfig,
      ...(c.hostConfig.PortBindings ? { PortBindings: goMap(c.hostConfig.PortBindings) } : {}),
      Runtime: c.hostConfig.Runtime || 'berth-oci',
    },
    GraphDriver: {
      Name: 'overlay2',
      Data: {
        ...(paths.layers?.lowers.length ? { LowerDir: paths.layers.lowers.join(':') } : {}),
        MergedDir: paths.rootfs,
        ...(paths.layers ? { UpperDir: paths.layers.upper, WorkDir: paths.layers.work } : {}),
      },
    },
    Mounts: c.mounts.map(publicMountPoint),
    Config: {
      Hostname: c.config.Hostname ?? '',
      Domainname: c.config.Domainname ?? '',
      User: c.config.User ?? '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: c.config.Env ?? [],
      Cmd: c.config.Cmd ?? null,
      Volumes: c.config.Volumes ?? null,
      WorkingDir: c.config.WorkingDir ?? '',
      Entrypoint: c.config.Entrypoint ?? null,
      OnBuild: null,
      Labels: c.config.Labels ?? {},
      ...withGoMaps(c.config),
    },
    NetworkSettings: {
      Bridge: '',
      // dockerd's is its network sandbox's random ID; ours names the namespace SandboxKey gives.
      SandboxID: sandboxKey(c) ? createHash('sha256').update(`${c.id}/sandbox`).digest('hex') : '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: goMap(c.ports ?? {}),
      SandboxKey: sandboxKey(c),
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      // The deprecated top-level fields describe the default bridge only, as dockerd's do (all
      // of them up to API 1.51; there is no IPv6 here).
      EndpointID: c.networks?.bridge?.endpointId ?? '',
      Gateway: c.networks?.bridge?.gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: c.networks?.bridge?.ip ?? '',
      IPPrefixLen: c.networks?.bridge?.prefix ?? 0,
      IPv6Gateway: '',
      MacAddress: c.networks?.bridge?.mac ?? '',
      Networks: goMap(endpointSettings(c, networkIdOf)),
    },
  };
}
