/** What the engine persists about networks, and about a container's place on them. */

export type NetworkDriver = 'bridge' | 'host' | 'null';

export interface NetworkRecord {
  id: string;
  name: string;
  driver: NetworkDriver;
  created: string;
  /** Predefined (bridge, host, none): never removed by the user. */
  builtin: boolean;
  /** No traffic beyond the bridge, no forwarding of DNS queries. */
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Bridge networks: the Linux bridge, the subnet ("10.1.2.0/24"), its gateway, the MTU. */
  bridge?: string;
  subnet?: string;
  gateway?: string;
  mtu?: number;
  /** IPAM.Config.IPRange: where addresses are handed out from ("10.1.2.128/25"; --ip may go outside it). */
  ipRange?: string;
  /** IPAM.Config.AuxiliaryAddresses: addresses of the subnet never given to a container. */
  auxAddresses?: Record<string, string>;
  /** IPAM.Options as the create request gave them (the default IPAM driver has none of its own). */
  ipamOptions?: Record<string, string>;
  /** The subnet was taken from the address pools, not given: no container may ask for an address in it (dockerd's rule). */
  autoSubnet?: true;
  /** false: the gateway was chosen here for a subnet the user gave (inspect then shows none, as dockerd). */
  gatewayGiven?: false;
  /** A configuration-only network (driver "null"): config for others, no endpoints, no bridge. */
  configOnly?: boolean;
  /** The configuration-only network this one took its configuration from. */
  configFrom?: string;
}

/** A container's wish to be on a network (Docker's EndpointSettings as create and connect send them). */
export interface EndpointConfig {
  NetworkID?: string;
  Aliases?: string[] | null;
  Links?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
  /** The container's MAC on this network (API 1.44; before, Config.MacAddress); else Docker's 02:42 + the IPv4 address. */
  MacAddress?: string;
  /**
   * Berth's own: the container has joined this network once (a start or a connect). dockerd then
   * keeps the container's short ID among the endpoint's aliases, also once it stopped (API <= 1.44).
   */
  berthJoined?: boolean;
  [key: string]: unknown;
}

/** A running container's endpoint on one network. */
export interface EndpointState {
  networkId: string;
  endpointId: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  /** The host end of its veth pair, and the name inside (eth0, eth1, ...). */
  hostVeth: string;
  ifname: string;
}

/** A network's IPAM.Config entry as dockerd shows it: the gateway given, or chosen with the subnet (not one picked in a given subnet). */
export function ipamConfigOf(n: NetworkRecord): { Subnet: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> } | undefined {
  if (!n.subnet) return undefined;
  return { Subnet: n.subnet, ...(n.gatewayGiven === false || !n.gateway ? {} : { Gateway: n.gateway }), ...(n.ipRange ? { IPRange: n.ipRange } : {}), ...(n.auxAddresses ? { AuxiliaryAddresses: n.auxAddresses } : {}) };
}
