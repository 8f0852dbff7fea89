/**
 * A container's volumes, binds and tmpfs mounts: HostConfig.Binds ("src:dst[:opts]"),
 * HostConfig.Mounts (--mount) and the image's Volumes (anonymous volumes), resolved at create
 * into inspect's MountPoints (named volumes are created then, as Docker does), and turned into
 * OCI mounts at start. Pure except for the callbacks it is given.
 */
import path from 'node:path';

import { InvalidArgumentError } from '../../common/errors.js';
import type { Mount as OciMount } from '../../runtime/spec/config.js';
import type { ContainerHostConfig, MountPoint } from './record.js';

export interface VolumeProvider {
  /** Creates the volume if missing (undefined name: a new anonymous volume); returns its name and data directory. */
  ensure(name: string | undefined, labels?: Record<string, string>): Promise<{ name: string; mountpoint: string }>;
  /** Whether a host path exists. */
  exists(hostPath: string): boolean;
}

const BIND_MODES = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'consistent', 'cached', 'delegated']);
const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);

function checkDestination(dest: string, field: string): string {
  if (!dest.startsWith('/')) throw new InvalidArgumentError(`invalid mount config: mount path must be absolute: ${JSON.stringify(dest)}`, field);
  const clean = path.posix.normalize(dest);
  if (clean === '/') throw new InvalidArgumentError('invalid specification: destination can\'t be \'/\'', field);
  return clean.replace(/\/$/, '');
}

/** Resolves every mount of a container being created. */
export async function resolveMounts(host: ContainerHostConfig, imageVolumes: Record<string, object> | undefined | null, configVolumes: Record<string, object> | undefined | null, volumes: VolumeProvider): Promise<MountPoint[]> {
  const points: MountPoint[] = [];
  const taken = (dest: string, field: string): void => {
    if (points.some((p) => p.Destination === dest)) throw new InvalidArgumentError(`Duplicate mount point: ${dest}`, field);
  };

  for (const [i, bind] of (host.Binds ?? []).entries()) {
    const field = `HostConfig.Binds[${i}]`;
    if (typeof bind !== 'string') throw new InvalidArgumentError('must be a string', field);
    const parts = bind.split(':');
    if (parts.length < 2 || parts.length > 3 || parts.some((p, j) => p === '' && j < 2)) throw new InvalidArgumentError(`invalid volume specification: '${bind}'`, field);
    const [source, target, modeText = ''] = parts as [string, string, string?];
    const modes = modeText ? modeText.split(',') : [];
    for (const m of modes) if (!BIND_MODES.has(m)) throw new InvalidArgumentError(`invalid mode: ${m}`, field);
    const dest = checkDestination(target, field);
    taken(dest, field);
    const rw = !modes.includes('ro');
    const propagation = modes.find((m) => PROPAGATIONS.has(m)) ?? 'rprivate';
    if (source.startsWith('/')) {
      points.push({ Type: 'bind', Source: path.posix.normalize(source), Destination: dest, Mode: modeText, RW: rw, Propagation: propagation });
    } else {
      const v = await volumes.ensure(source);
      points.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: dest, Driver: 'local', Mode: modeText || 'z', RW: rw, Propagation: '' });
    }
  }

  for (const [i, m] of (host.Mounts ?? []).entries()) {
    const field = `HostConfig.Mounts[${i}]`;
    if (!m || typeof m !== 'object') throw new InvalidArgumentError('must be an object', field);
    const dest = checkDestination(String(m.Target ?? ''), `${field}.Target`);
    taken(dest, field);
    const rw = m.ReadOnly !== true;
    if (m.Type === 'bind') {
      const source = String(m.Source ?? '');
      if (!source.startsWith('/')) throw new InvalidArgumentError('invalid mount config for type "bind": invalid mount path: must be absolute', `${field}.Source`);
      if (!volumes.exists(source)) throw new InvalidArgumentError(`invalid mount config for type "bind": bind source path does not exist: ${source}`, `${field}.Source`);
      points.push({ Type: 'bind', Source: source, Destination: dest, Mode: '', RW: rw, Propagation: 'rprivate' });
    } else if (m.Type === 'volume' || m.Type === undefined) {
      const v = await volumes.ensure(m.Source ? String(m.Source) : undefined);
      points.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: dest, Driver: 'local', Mode: 'z', RW: rw, Propagation: '' });
    } else if (m.Type === 'tmpfs') {
      if (m.Source) throw new InvalidArgumentError('invalid mount config for type "tmpfs": source must not be specified', `${field}.Source`);
      points.push({ Type: 'tmpfs', Source: '', Destination: dest, Mode: '', RW: rw, Propagation: '' });
    } else {
      throw new InvalidArgumentError(`mount type ${JSON.stringify(m.Type)} is not supported`, `${field}.Type`);
    }
  }

  // The image's VOLUMEs and `-v /path` (Config.Volumes) not covered above get anonymous volumes.
  for (const dest of [...Object.keys(imageVolumes ?? {}), ...Object.keys(configVolumes ?? {})]) {
    const clean = checkDestination(dest, 'Volumes');
    if (points.some((p) => p.Destination === clean)) continue;
    const v = await volumes.ensure(undefined);
    points.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: clean, Driver: 'local', Mode: '', RW: true, Propagation: '' });
  }
  return points;
}

/** The OCI mounts for the container's MountPoints, parents before children. */
export function ociMounts(points: MountPoint[]): OciMount[] {
  return [...points]
    .sort((a, b) => a.Destination.split('/').length - b.Destination.split('/').length)
    .map((p): OciMount => {
      if (p.Type === 'tmpfs') return { destination: p.Destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', p.RW ? 'rw' : 'ro'] };
      const options = ['rbind', p.RW ? 'rw' : 'ro'];
      if (p.Propagation) options.push(p.Propagation);
      return { destination: p.Destination, type: 'bind', source: p.Source, options };
    });
}
