/**
 * Legacy container links (`--link name:alias` on the default bridge), as dockerd makes them:
 * the link's syntax, the target's names for /etc/hosts and the environment variables the linking
 * container gets (NAME_PORT…, NAME_NAME, NAME_ENV_…). Pure: the containers come in as values.
 * User-defined networks take links as DNS aliases instead (engine/networks).
 */
import { InvalidArgumentError } from '../common/errors.js';

export interface LegacyLink {
  /** The target container's name (without the leading "/"), or an ID. */
  target: string;
  /** The name the linking container knows it by. */
  alias: string;
}

/**
 * One HostConfig.Links entry: "name", "name:alias", or the form dockerd keeps and inspect shows,
 * "/name:/linking/alias" (docker's opts.ParseLink).
 */
export function parseLegacyLink(text: unknown): LegacyLink {
  if (typeof text !== 'string' || text === '') throw new InvalidArgumentError('empty string specified for links', 'HostConfig.Links');
  const parts = text.split(':');
  if (parts.length > 2) throw new InvalidArgumentError(`bad format for links: ${text}`, 'HostConfig.Links');
  if (parts.length === 1) return { target: text.replace(/^\//, ''), alias: text.replace(/^\//, '') };
  const [target, alias] = parts as [string, string];
  if (target === '' || alias === '') throw new InvalidArgumentError(`bad format for links: ${text}`, 'HostConfig.Links');
  return { target: target.replace(/^\//, ''), alias: alias.split('/').pop()! };
}

/** The entry as dockerd records it: "/target:/linking/alias". */
export function recordedLink(link: LegacyLink, linkingName: string): string {
  return `/${link.target}:/${linkingName.replace(/^\//, '')}/${link.alias}`;
}

/** The target's names in the linking container's /etc/hosts: alias, its hostname, its name (if not the alias). */
export function linkHostNames(alias: string, target: { name: string; hostname: string }): string[] {
  const name = target.name.replace(/^\//, '');
  return [alias, target.hostname, ...(alias === name ? [] : [name])];
}

interface ExposedPort {
  number: number;
  proto: string;
}

/** TCP first, then by number, then by protocol (moby's withTCPPriority). */
function byTcpFirst(a: ExposedPort, b: ExposedPort): number {
  if (a.proto === b.proto) return a.number - b.number;
  if (a.proto === 'tcp') return -1;
  if (b.proto === 'tcp') return 1;
  return a.proto < b.proto ? -1 : 1;
}

/**
 * The variables a link gives: `ALIAS_PORT` (the first exposed port), for each exposed port
 * `ALIAS_PORT_<n>_<PROTO>` with `_ADDR`, `_PORT` and `_PROTO`, for each run of consecutive ports
 * of one protocol `_START`, `_PORT_START`, `_END` and `_PORT_END` on its first port, then
 * `ALIAS_NAME=/linking/alias` and the target's own variables as `ALIAS_ENV_<name>` (not HOME or PATH).
 */
export function linkEnvironment(input: { alias: string; linkingName: string; targetIp: string; exposedPorts: readonly string[]; targetEnv: readonly string[] }): string[] {
  const prefix = input.alias.toUpperCase().replaceAll('-', '_');
  const ip = input.targetIp;
  const ports = input.exposedPorts
    .map((spec) => {
      const [number, proto = 'tcp'] = spec.split('/');
      return { number: Number(number), proto: proto.toLowerCase() };
    })
    .filter((p) => Number.isInteger(p.number) && p.number > 0)
    .sort(byTcpFirst);
  const env: string[] = [];
  if (ports[0]) env.push(`${prefix}_PORT=${ports[0].proto}://${ip}:${ports[0].number}`);
  for (const p of ports) {
    const name = `${prefix}_PORT_${p.number}_${p.proto.toUpperCase()}`;
    env.push(`${name}=${p.proto}://${ip}:${p.number}`, `${name}_ADDR=${ip}`, `${name}_PORT=${p.number}`, `${name}_PROTO=${p.proto}`);
  }
  for (let i = 0; i < ports.length; ) {
    let j = i;
    while (j + 1 < ports.length && ports[j + 1]!.proto === ports[i]!.proto && ports[j + 1]!.number === ports[j]!.number + 1) j++;
    if (j > i) {
      const first = ports[i]!;
      const last = ports[j]!;
      const name = `${prefix}_PORT_${first.number}_${first.proto.toUpperCase()}`;
      env.push(`${name}_START=${first.proto}://${ip}:${first.number}`, `${name}_PORT_START=${first.number}`, `${name}_END=${last.proto}://${ip}:${last.number}`, `${name}_PORT_END=${last.number}`);
    }
    i = j + 1;
  }
  env.push(`${prefix}_NAME=/${input.linkingName.replace(/^\//, '')}/${input.alias}`);
  for (const entry of input.targetEnv) {
    const at = entry.indexOf('=');
    if (at <= 0) continue;
    const key = entry.slice(0, at);
    if (key === 'HOME' || key === 'PATH') continue;
    env.push(`${prefix}_ENV_${key}=${entry.slice(at + 1)}`);
  }
  return env;
}
