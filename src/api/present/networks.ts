/** Network records → the JSON of Docker's `/networks` and `/networks/{id}`. */
import { type EndpointState, ipamConfigOf, type NetworkRecord } from '../../engine/networks/record.js';
import { goMap } from './go-map.js';

export function networkJson(n: NetworkRecord, endpoints?: Array<{ id: string; name: string; endpoint: EndpointState }>): object {
  const containers: Record<string, object> = {};
  for (const e of endpoints ?? []) {
    containers[e.id] = { Name: e.name, EndpointID: e.endpoint.endpointId, MacAddress: e.endpoint.mac, IPv4Address: `${e.endpoint.ip}/${e.endpoint.prefix}`, IPv6Address: '' };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: n.ipamOptions ?? null, Config: [ipamConfigOf(n)].filter((c) => c !== undefined) },
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: false,
    ConfigFrom: { Network: n.configFrom ?? '' },
    ConfigOnly: n.configOnly === true,
    Containers: goMap(containers),
    Options: goMap(n.options),
    Labels: goMap(n.labels),
  };
}
