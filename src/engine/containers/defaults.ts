/**
 * What the daemon gives containers that ask for nothing else (dockerd's --dns, --dns-search,
 * --dns-opt, --default-ulimit, --default-shm-size, --default-ipc-mode, --default-cgroupns-mode):
 * the namespace modes and /dev/shm's size are written into the container's HostConfig at
 * create, as dockerd does (inspect shows them); ulimits and DNS apply at each start, so that the
 * container keeps following the daemon's settings. Pure.
 */
import { DEFAULT_SHM_SIZE } from '../spec/container-spec.js';
import type { ContainerHostConfig } from './record.js';

export interface ContainerDefaults {
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  ulimits?: Array<{ Name: string; Soft: number; Hard: number }>;
  shmSize?: number;
  ipcMode?: 'private' | 'shareable';
  cgroupnsMode?: 'private' | 'host';
  /** dockerd --no-new-privileges: every container's processes get no_new_privs unless it says otherwise. */
  noNewPrivileges?: boolean;
  /** dockerd --seccomp-profile for containers that name none: "unconfined", "builtin", or a profile's JSON. */
  seccompProfile?: string;
}

/**
 * At create, as dockerd's adaptContainerSettings and its create route leave a HostConfig (and
 * inspect shows it): the IPC mode (private unless the daemon says shareable), the cgroup
 * namespace mode (the daemon's, else private on cgroup v2 and host on v1, where a privileged
 * container always gets the host's), /dev/shm's size, and the "unset" values the docker CLI
 * sends as numbers (MemorySwappiness -1, PidsLimit 0 or less) as null.
 */
export function applyCreateDefaults(host: ContainerHostConfig, defaults: ContainerDefaults = {}, cgroupVersion: 1 | 2 = 2): void {
  if (!host.IpcMode) host.IpcMode = defaults.ipcMode ?? 'private';
  if (!host.CgroupnsMode) {
    if (host.Privileged === true && cgroupVersion !== 2) host.CgroupnsMode = 'host';
    else host.CgroupnsMode = defaults.cgroupnsMode ?? (cgroupVersion === 2 ? 'private' : 'host');
  }
  if (!host.ShmSize) host.ShmSize = defaults.shmSize ?? DEFAULT_SHM_SIZE;
  if (host.MemorySwappiness === -1) host.MemorySwappiness = null;
  if (typeof host.PidsLimit === 'number' && host.PidsLimit <= 0) host.PidsLimit = null;
}

/** At start: the daemon's ulimits under the container's own (by name), its /dev/shm size unless the container sets one. */
export function withRunDefaults(host: ContainerHostConfig, defaults: ContainerDefaults = {}): ContainerHostConfig {
  const own = Array.isArray(host.Ulimits) ? host.Ulimits : [];
  const ulimits = [...own, ...(defaults.ulimits ?? []).filter((u) => !own.some((o) => o?.Name === u.Name))];
  return {
    ...host,
    ...(ulimits.length > own.length ? { Ulimits: ulimits } : {}),
    ...(!host.ShmSize && defaults.shmSize ? { ShmSize: defaults.shmSize } : {}),
  };
}

/** The container's DNS settings: its own, else the daemon's (each list on its own). */
export function dnsSettings(host: ContainerHostConfig, defaults: ContainerDefaults = {}): { dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[] } {
  const pick = (own: unknown, daemon: string[] | undefined): string[] | undefined => (Array.isArray(own) && own.length ? (own as string[]) : daemon);
  return { dns: pick(host.Dns, defaults.dns), dnsSearch: pick(host.DnsSearch, defaults.dnsSearch), dnsOptions: pick(host.DnsOptions, defaults.dnsOptions) };
}
