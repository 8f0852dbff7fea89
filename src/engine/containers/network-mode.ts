/**
 * What a network mode rules out at create, as moby's runconfig validateNetMode and
 * validateNetContainerMode refuse it, in dockerd's words. A container that joins another's
 * network namespace (`container:<ref>`) has no network settings of its own: no hostname, DNS,
 * hosts entries, MAC address, ports or links. One in the host's has no MAC address of its own.
 * Pure: it reads the request only.
 */
import { InvalidArgumentError } from '../../common/errors.js';

export const NETWORK_MODE_CONFLICTS = {
  containerFormat: 'Invalid network mode: invalid container format container:<name|id>',
  hostname: 'conflicting options: hostname and the network mode',
  containerLinks: "conflicting options: container type network can't be used with links. This would result in undefined behavior",
  dns: 'conflicting options: dns and the network mode',
  extraHosts: 'conflicting options: custom host-to-IP mapping and the network mode',
  macAddress: 'conflicting options: mac-address and the network mode',
  publish: 'conflicting options: port publishing and the container type network mode',
  expose: 'conflicting options: port exposing and the container type network mode',
  utsHostname: 'conflicting options: hostname and the UTS mode',
} as const;

export interface NetworkModeRequest {
  config: { Hostname?: string | null; MacAddress?: string | null; ExposedPorts?: Record<string, unknown> | null };
  host: {
    NetworkMode?: unknown;
    UTSMode?: unknown;
    Links?: unknown[] | null;
    Dns?: unknown[] | null;
    ExtraHosts?: unknown[] | null;
    PortBindings?: Record<string, unknown> | null;
    PublishAllPorts?: boolean | null;
  };
  /** NetworkingConfig.EndpointsConfig: API 1.44 clients send a MAC address there. */
  endpoints?: Record<string, { MacAddress?: string | null } | null> | null;
}

const nonEmpty = (v: unknown[] | Record<string, unknown> | null | undefined): boolean => !!v && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);

/** Throws dockerd's error for the first conflict between the network mode and the rest of the request. */
export function checkNetworkModeConflicts(req: NetworkModeRequest): void {
  const { config, host } = req;
  const mode = typeof host.NetworkMode === 'string' ? host.NetworkMode : '';
  const [kind, ref] = mode.split(/:(.*)/s) as [string, string | undefined];
  const isContainer = kind === 'container';
  if (isContainer && !ref) throw new InvalidArgumentError(NETWORK_MODE_CONFLICTS.containerFormat);
  const conflict = (message: string): never => {
    throw new InvalidArgumentError(message);
  };
  if (isContainer) {
    if (config.Hostname) conflict(NETWORK_MODE_CONFLICTS.hostname);
    if (nonEmpty(host.Links)) conflict(NETWORK_MODE_CONFLICTS.containerLinks);
    if (nonEmpty(host.Dns)) conflict(NETWORK_MODE_CONFLICTS.dns);
    if (nonEmpty(host.ExtraHosts)) conflict(NETWORK_MODE_CONFLICTS.extraHosts);
  }
  if (isContainer || mode === 'host') {
    const mac = config.MacAddress || Object.values(req.endpoints ?? {}).some((e) => !!e?.MacAddress);
    if (mac) conflict(NETWORK_MODE_CONFLICTS.macAddress);
  }
  if (isContainer) {
    if (nonEmpty(host.PortBindings) || host.PublishAllPorts) conflict(NETWORK_MODE_CONFLICTS.publish);
    if (nonEmpty(config.ExposedPorts)) conflict(NETWORK_MODE_CONFLICTS.expose);
  }
  if (host.UTSMode === 'host' && config.Hostname) conflict(NETWORK_MODE_CONFLICTS.utsHostname);
}
