/**
 * What the daemon gives containers that ask for nothing else (dockerd's --dns, --dns-search,
 * --dns-opt, --default-ulimit, --default-shm-size, --default-ipc-mode, --default-cgroupns-mode):
 * the namespace modes are written into the container's HostConfig at create, as dockerd does
 * (inspect shows them); the rest applies at each start, so that the container keeps following
 * the daemon's settings. Pure.
 */
import type { ContainerHostConfig } from './record.js';

export interface ContainerDefaults {
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  ulimits?: Array<{ Name: string; Soft: number; Hard: number }>;
  shmSize?: number;
  ipcMode?: 'private' | 'shareable';
  cgroupnsMode?: 'private' | 'host';
}

/** At create: the IPC mode (private unless the daemon says shareable) and the daemon's cgroup namespace mode. */
export function applyCreateDefaults(host: ContainerHostConfig, defaults: ContainerDefaults = {}): void {
  if (!host.IpcMode) host.IpcMode = defaults.ipcMode ?? 'private';
  if (!host.CgroupnsMode && defaults.cgroupnsMode) host.CgroupnsMode = defaults.cgroupnsMode;
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
