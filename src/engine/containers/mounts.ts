/**
 * A container's volumes, binds and tmpfs mounts: HostConfig.Binds ("src:dst[:opts]"),
 * HostConfig.Mounts (--mount) and the image's Volumes (anonymous volumes), resolved at create
 * into inspect's MountPoints (named volumes are created then, as Docker does), and turned into
 * OCI mounts at start. Pure except for the callbacks it is given.
 */
import path from 'node:path';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { MountinfoEntry } from '../../common/mountinfo.js';
import type { Mount as OciMount } from '../../runtime/spec/config.js';
import { mergeTmpfsOptions } from '../spec/container-spec.js';
import type { ContainerHostConfig, MountPoint, MountRequest } from './record.js';

export interface VolumeProvider {
  /**
   * Creates the volume if missing (undefined name: a new anonymous volume), with the labels and
   * driver options given (they apply only to a volume made here); returns its name and data directory.
   */
  ensure(name: string | undefined, create?: { labels?: Record<string, string>; driver?: string; options?: Record<string, string> }): Promise<{ name: string; mountpoint: string }>;
  /** Whether a host path exists. */
  exists(hostPath: string): boolean;
  /** Another container's mount points (HostConfig.VolumesFrom); NotFoundError if there is no such container. */
  mountsOf?(ref: string): MountPoint[];
}

const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
/** The kinds of a bind's modes (moby's ValidateMountMode): each mode is of one kind, and at most one of each kind. */
const BIND_MODE_KINDS: ReadonlyArray<ReadonlySet<string>> = [new Set(['ro', 'rw']), new Set(['z', 'Z']), PROPAGATIONS, new Set(['nocopy']), new Set(['consistent', 'cached', 'delegated'])];

function validBindModes(modes: string[]): boolean {
  const counts = BIND_MODE_KINDS.map(() => 0);
  for (const m of modes) {
    const kind = BIND_MODE_KINDS.findIndex((k) => k.has(m));
    if (kind < 0 || ++counts[kind]! > 1) return false;
  }
  return true;
}

/** A mount's destination, cleaned; refused in moby's words (validateMountConfig) for a mount of `type`. */
function checkDestination(dest: string, type: string): string {
  if (!dest.startsWith('/')) throw mountConfigError(type, `invalid mount path: '${dest}' mount path must be absolute`);
  const clean = path.posix.normalize(dest);
  if (clean === '/') throw mountConfigError(type, "invalid specification: destination can't be '/'");
  return clean.replace(/\/$/, '');
}

/** A bind's destination; refused as dockerd does, naming the whole specification. */
function bindDestination(bind: string, target: string, type: string): string {
  try {
    return checkDestination(target, type);
  } catch (err) {
    throw new InvalidArgumentError(`invalid volume specification: '${bind}': ${(err as Error).message}`);
  }
}

export interface ResolveOptions {
  /**
   * Read-only binds and volumes are read-only only at their top mount, not in the mounts beneath
   * (API < 1.44, where all read-only mounts were so). From 1.44, dockerd makes them recursively
   * read-only ("rro") unless BindOptions.ReadOnlyNonRecursive says otherwise.
   */
  readOnlyNonRecursive?: boolean;
  /** The daemon's data and exec roots: binds of (or above) them get "rslave" (daemonRootPropagation). */
  daemonRoots?: string[];
}

/**
 * moby's validateBindDaemonRoot: a bind whose source is within a daemon root, or holds one
 * (`-v /:/host`), gets "rslave" when no propagation is asked for, so that the container does not
 * keep private copies of the daemon's mounts below it (other containers' root file systems,
 * which then could not be unmounted or deleted); "rslave" or "rshared" when asked for; anything
 * else is refused. Returns the propagation and whether the daemon chose it.
 */
function daemonRootPropagation(source: string, asked: string | undefined, roots: readonly string[], field: string): { propagation: string; auto: boolean } {
  const clean = path.posix.normalize(source);
  const root = roots.find((r) => clean === r || clean.startsWith(r.endsWith('/') ? r : `${r}/`) || r.startsWith(clean === '/' ? '/' : `${clean}/`));
  if (root === undefined) return { propagation: asked ?? 'rprivate', auto: false };
  if (asked === undefined) return { propagation: 'rslave', auto: true };
  if (asked === 'rslave' || asked === 'rshared') return { propagation: asked, auto: false };
  throw new InvalidArgumentError(`invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root, daemon root: ${JSON.stringify(root)}, bind mount source: ${JSON.stringify(source)}, propagation: ${JSON.stringify(asked)}`, field);
}

/**
 * moby's errMountConfig: the mount's type, then what is wrong with it. Its words alone, as
 * dockerd answers: they name the field already.
 */
function mountConfigError(type: string | undefined, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid mount config for type ${JSON.stringify(type ?? '')}: ${message}`);
}

function optionalObject<T extends object>(value: unknown, field: string): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError('must be an object', field);
  return value as T;
}

function stringMap(value: unknown, field: string): Record<string, string> | undefined {
  const map = optionalObject<Record<string, unknown>>(value, field);
  if (!map) return undefined;
  for (const [k, v] of Object.entries(map)) if (typeof v !== 'string') throw new InvalidArgumentError(`${JSON.stringify(k)}: must be a string`, field);
  return map as Record<string, string>;
}

/**
 * TmpfsOptions as the tmpfs mount's data, as moby's ConvertTmpfsOptions writes it: ro, mode in
 * octal, the size with the largest unit that divides it, then the flags of Options (API 1.46:
 * only exec and noexec).
 */
export function tmpfsData(options: MountRequest['TmpfsOptions'], readOnly: boolean, field: string): string {
  const opts = optionalObject<NonNullable<MountRequest['TmpfsOptions']>>(options, field);
  const data: string[] = readOnly ? ['ro'] : [];
  if (opts?.Mode !== undefined && opts.Mode !== 0) {
    if (!Number.isInteger(opts.Mode) || opts.Mode < 0 || opts.Mode > 0o7777) throw new InvalidArgumentError('must be a file mode (0 to 0o7777)', `${field}.Mode`);
    data.push(`mode=${opts.Mode.toString(8)}`);
  }
  if (opts?.SizeBytes !== undefined && opts.SizeBytes !== 0) {
    if (!Number.isSafeInteger(opts.SizeBytes) || opts.SizeBytes < 0) throw new InvalidArgumentError('must be a positive integer', `${field}.SizeBytes`);
    const unit = ([['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const).find(([, n]) => opts.SizeBytes! % n === 0);
    data.push(unit ? `size=${opts.SizeBytes / unit[1]}${unit[0]}` : `size=${opts.SizeBytes}`);
  }
  if (opts?.Options !== undefined && opts.Options !== null) {
    if (!Array.isArray(opts.Options)) throw new InvalidArgumentError('must be an array of arrays', `${field}.Options`);
    for (const option of opts.Options) {
      if (!Array.isArray(option) || option.length < 1 || option.length > 2 || option.some((x) => typeof x !== 'string')) throw new InvalidArgumentError('invalid option array length', `${field}.Options`);
      if (option[0] !== 'exec' && option[0] !== 'noexec') throw new InvalidArgumentError(`invalid option: ${option[0]}`, `${field}.Options`);
      data.push(option.join('='));
    }
  }
  return data.join(',');
}

/** Resolves every mount of a container being created. */
export async function resolveMounts(host: ContainerHostConfig, imageVolumes: Record<string, object> | undefined | null, configVolumes: Record<string, object> | undefined | null, volumes: VolumeProvider, opts: ResolveOptions = {}): Promise<MountPoint[]> {
  const points: MountPoint[] = [];
  // VolumesFrom first; a bind or --mount at the same destination replaces what it brought.
  const inherited = new Set<MountPoint>();
  const taken = (dest: string): void => {
    const same = points.findIndex((p) => p.Destination === dest);
    if (same < 0) return;
    if (!inherited.has(points[same]!)) throw new InvalidArgumentError(`Duplicate mount point: ${dest}`); // dockerd's words
    points.splice(same, 1);
  };

  if (host.VolumesFrom !== undefined && host.VolumesFrom !== null && !Array.isArray(host.VolumesFrom)) throw new InvalidArgumentError('must be an array', 'HostConfig.VolumesFrom');
  for (const [i, spec] of (host.VolumesFrom ?? []).entries()) {
    const field = `HostConfig.VolumesFrom[${i}]`;
    if (typeof spec !== 'string' || spec === '') throw new InvalidArgumentError('volumes-from specification cannot be an empty string', field);
    const colon = spec.indexOf(':');
    const ref = colon < 0 ? spec : spec.slice(0, colon);
    const modes = colon < 0 ? [] : spec.slice(colon + 1).split(',');
    // moby's ParseVolumesFrom: ro or rw, SELinux labels; no propagation or copy modes.
    if (modes.some((m) => !['ro', 'rw', 'z', 'Z'].includes(m)) || modes.filter((m) => m === 'ro' || m === 'rw').length > 1) throw new InvalidArgumentError(`invalid mode: ${spec.slice(colon + 1)}`); // dockerd's words
    if (!volumes.mountsOf) throw new UnsupportedError(`${field}: no containers to take volumes from`);
    for (const m of volumes.mountsOf(ref)) {
      const rw = m.RW && !modes.includes('ro');
      const point: MountPoint = { ...m, RW: rw, NoCopy: true, ...(rw ? {} : readOnlyDepth(opts.readOnlyNonRecursive)) };
      if (rw) delete point.RecursiveReadOnly;
      const same = points.findIndex((p) => p.Destination === m.Destination);
      if (same >= 0) points.splice(same, 1);
      points.push(point);
      inherited.add(point);
    }
  }

  if (host.Binds !== undefined && host.Binds !== null && !Array.isArray(host.Binds)) throw new InvalidArgumentError('must be an array', 'HostConfig.Binds');
  for (const [i, bind] of (host.Binds ?? []).entries()) {
    const field = `HostConfig.Binds[${i}]`;
    if (typeof bind !== 'string') throw new InvalidArgumentError('must be a string', field);
    const parts = bind.split(':');
    if (parts.length < 2 || parts.length > 3 || parts.some((p, j) => p === '' && j < 2)) throw new InvalidArgumentError(`invalid volume specification: '${bind}'`);
    const [source, target, modeText = ''] = parts as [string, string, string?];
    const modes = modeText ? modeText.split(',') : [];
    if (!validBindModes(modes)) throw new InvalidArgumentError(`invalid mode: ${modeText}`);
    const dest = bindDestination(bind, target, source.startsWith('/') ? 'bind' : 'volume');
    taken(dest);
    const rw = !modes.includes('ro');
    const readOnly = rw ? {} : readOnlyDepth(opts.readOnlyNonRecursive);
    // moby's ParseMountRaw: a propagation mode is a bind's option, nocopy a volume's.
    const extra = source.startsWith('/') ? (modes.includes('nocopy') ? 'VolumeOptions' : undefined) : modes.some((m) => PROPAGATIONS.has(m)) ? 'BindOptions' : undefined;
    if (extra) throw new InvalidArgumentError(`invalid volume specification: '${bind}': invalid mount config for type "${source.startsWith('/') ? 'bind' : 'volume'}": field ${extra} must not be specified`);
    if (source.startsWith('/')) {
      const { propagation, auto } = daemonRootPropagation(source, modes.find((m) => PROPAGATIONS.has(m)), opts.daemonRoots ?? [], field);
      points.push({ Type: 'bind', Source: path.posix.normalize(source), Destination: dest, Mode: modeText, RW: rw, Propagation: propagation, ...readOnly, ...(auto ? { AutoSlave: true } : {}) });
    } else {
      const v = await volumes.ensure(source);
      points.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: dest, Driver: 'local', Mode: modeText || 'z', RW: rw, Propagation: '', ...readOnly, ...(modes.includes('nocopy') ? { NoCopy: true } : {}) });
    }
  }

  if (host.Mounts !== undefined && host.Mounts !== null && !Array.isArray(host.Mounts)) throw new InvalidArgumentError('must be an array', 'HostConfig.Mounts');
  for (const [i, m] of (host.Mounts ?? []).entries()) {
    const field = `HostConfig.Mounts[${i}]`;
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw new InvalidArgumentError('must be an object', field);
    // No Type: a volume, as before dockerd checked it (docker-py and the CLI always send one).
    const type = m.Type ?? 'volume';
    if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw new InvalidArgumentError(`invalid mount config for type ${JSON.stringify(m.Type)}: mount type unknown`); // dockerd's words
    if (m.Target === undefined || m.Target === null || m.Target === '') throw mountConfigError(type, 'field Target must not be empty');
    if (typeof m.Target !== 'string') throw mountConfigError(type, 'field Target must be a string');
    if (m.Source !== undefined && m.Source !== null && typeof m.Source !== 'string') throw mountConfigError(type, 'field Source must be a string');
    const dest = checkDestination(m.Target, type);
    taken(dest);
    const rw = m.ReadOnly !== true;
    const bindOptions = optionalObject<NonNullable<MountRequest['BindOptions']>>(m.BindOptions, `${field}.BindOptions`);
    const volumeOptions = optionalObject<NonNullable<MountRequest['VolumeOptions']>>(m.VolumeOptions, `${field}.VolumeOptions`);
    if (bindOptions && type !== 'bind') throw mountConfigError(type, 'field BindOptions must not be specified');
    if (volumeOptions && type !== 'volume') throw mountConfigError(type, 'field VolumeOptions must not be specified');
    if (m.TmpfsOptions !== undefined && m.TmpfsOptions !== null && type !== 'tmpfs') throw mountConfigError(type, 'field TmpfsOptions must not be specified');
    if (type === 'bind') {
      const source = m.Source ?? '';
      if (source === '') throw mountConfigError(type, 'field Source must not be empty');
      if (!source.startsWith('/')) throw mountConfigError(type, `invalid mount path: '${source}' mount path must be absolute`);
      if (bindOptions?.Propagation && !PROPAGATIONS.has(bindOptions.Propagation)) throw mountConfigError(type, `invalid propagation mode: ${bindOptions.Propagation}`);
      const { propagation, auto } = daemonRootPropagation(source, bindOptions?.Propagation || undefined, opts.daemonRoots ?? [], `${field}.BindOptions.Propagation`);
      const createMountpoint = bindOptions?.CreateMountpoint === true;
      if (!createMountpoint && !volumes.exists(source)) throw mountConfigError(type, `bind source path does not exist: ${source}`);
      // Before API 1.44 these two did not exist: dockerd ignores them then.
      if (!opts.readOnlyNonRecursive && bindOptions?.ReadOnlyNonRecursive && bindOptions.ReadOnlyForceRecursive) throw new InvalidArgumentError('mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive', `${field}.BindOptions`);
      points.push({
        Type: 'bind',
        Source: path.posix.normalize(source),
        Destination: dest,
        Mode: '',
        RW: rw,
        Propagation: propagation,
        ...(rw ? {} : readOnlyDepth(opts.readOnlyNonRecursive || bindOptions?.ReadOnlyNonRecursive === true)),
        ...(bindOptions?.NonRecursive ? { NonRecursive: true } : {}),
        ...(createMountpoint ? { CreateMountpoint: true } : {}),
        ...(auto ? { AutoSlave: true } : {}),
      });
    } else if (type === 'volume') {
      const anonymous = !m.Source;
      if (anonymous && !rw) throw mountConfigError(type, 'must not set ReadOnly mode when using anonymous volumes');
      // API 1.45 (berthd announces 1.44): refused rather than mounting the whole volume.
      if (volumeOptions?.Subpath) throw new UnsupportedError(`${field}.VolumeOptions.Subpath: mounting a volume's subpath (API 1.45) is not supported`);
      const driverConfig = optionalObject<{ Name?: string; Options?: unknown }>(volumeOptions?.DriverConfig, `${field}.VolumeOptions.DriverConfig`);
      const labels = stringMap(volumeOptions?.Labels, `${field}.VolumeOptions.Labels`);
      const options = stringMap(driverConfig?.Options, `${field}.VolumeOptions.DriverConfig.Options`);
      const v = await volumes.ensure(m.Source || undefined, { labels, driver: driverConfig?.Name || undefined, options });
      points.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: dest, Driver: 'local', Mode: 'z', RW: rw, Propagation: '', ...(rw ? {} : readOnlyDepth(opts.readOnlyNonRecursive)), ...(volumeOptions?.NoCopy ? { NoCopy: true } : {}) });
    } else {
      if (m.Source) throw mountConfigError(type, 'field Source must not be specified');
      const data = tmpfsData(m.TmpfsOptions, !rw, `${field}.TmpfsOptions`);
      // Checked now (an unknown option fails the create, not the start).
      tmpfsOciOptions(data);
      points.push({ Type: 'tmpfs', Source: '', Destination: dest, Mode: '', RW: rw, Propagation: '', ...(data ? { TmpfsData: data } : {}) });
    }
  }

  // The image's VOLUMEs and `-v /path` (Config.Volumes) not covered above get anonymous volumes.
  // A relative one is taken from the root, as dockerd does (it resolves it in the root file
  // system); the docker CLI sends `-v name:/x` with a one-character name so ("a:/x").
  for (const dest of [...Object.keys(imageVolumes ?? {}), ...Object.keys(configVolumes ?? {})]) {
    const clean = bindDestination(dest, dest.startsWith('/') ? dest : `/${dest}`, 'volume');
    if (points.some((p) => p.Destination === clean)) continue;
    const v = await volumes.ensure(undefined);
    points.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: clean, Driver: 'local', Mode: '', RW: true, Propagation: '' });
  }
  return points;
}

/** A read-only bind or volume: recursively so ("rro", API 1.44 on), unless asked otherwise. */
function readOnlyDepth(nonRecursive: boolean | undefined): Pick<MountPoint, 'RecursiveReadOnly'> {
  return nonRecursive ? {} : { RecursiveReadOnly: true };
}

/** A tmpfs mount's options as dockerd gives them: noexec,nosuid,nodev,rprivate, then its data, the later winning. */
function tmpfsOciOptions(data: string | undefined): string[] {
  return mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', 'rprivate', ...(data ? data.split(',') : [])]);
}

/** The mount holding a path: the deepest mount point above it (the last, if stacked). */
function holderOf(entries: MountinfoEntry[], source: string): MountinfoEntry | undefined {
  let holder: MountinfoEntry | undefined;
  for (const e of entries) {
    const above = source === e.mountPoint || source.startsWith(e.mountPoint === '/' ? '/' : `${e.mountPoint}/`);
    if (above && (!holder || e.mountPoint.length >= holder.mountPoint.length)) holder = e;
  }
  return holder;
}

/**
 * moby's rule for binds with shared or slave propagation: the host mount holding the source
 * must be shared (for shared, rshared) or shared or a slave (for slave, rslave), else propagation
 * could not work and the start is refused in dockerd's words; the root's propagation is raised
 * to match (shared, or rslave), as dockerd does. `realSource` resolves symlinks; `mountinfo` is
 * this process's. Returns the root propagation to use, or undefined to keep it.
 * The daemon's own rslave (AutoSlave) is left to withAutoSlaveFallback.
 */
export function bindPropagation(points: MountPoint[], current: string | undefined, realSource: (p: string) => string, mountinfo: () => MountinfoEntry[]): string | undefined {
  let root = current;
  let entries: MountinfoEntry[] | undefined;
  for (const p of points) {
    if (p.AutoSlave) continue; // see withAutoSlaveFallback
    if (p.Type !== 'bind') continue;
    const shared = p.Propagation === 'shared' || p.Propagation === 'rshared';
    const slave = p.Propagation === 'slave' || p.Propagation === 'rslave';
    if (!shared && !slave) continue;
    entries ??= mountinfo();
    const holder = holderOf(entries, realSource(p.Source));
    const fields = holder?.optionalFields ?? [];
    const isShared = fields.some((f) => f.startsWith('shared:'));
    const isSlave = fields.some((f) => f.startsWith('master:'));
    if (shared && !isShared) throw new InvalidArgumentError(`path ${p.Source} is mounted on ${holder?.mountPoint ?? '/'} but it is not a shared mount`);
    if (slave && !isShared && !isSlave) throw new InvalidArgumentError(`path ${p.Source} is mounted on ${holder?.mountPoint ?? '/'} but it is not a shared or slave mount`);
    if (shared && root !== 'shared' && root !== 'rshared') root = 'shared';
    if (slave && !['shared', 'rshared', 'slave', 'rslave'].includes(root ?? '')) root = 'rslave';
  }
  return root === current ? undefined : root;
}

/**
 * The daemon's own "rslave" (AutoSlave) where the source's mount allows it, and the container's
 * root made a slave for it; else private, as moby falls back for binds from its root when the
 * mount is neither shared nor a slave (this VM's "/" is private). Returns the points to mount
 * and the root propagation to use (undefined: unchanged).
 */
export function withAutoSlaveFallback(points: MountPoint[], current: string | undefined, realSource: (p: string) => string, mountinfo: () => MountinfoEntry[]): { points: MountPoint[]; root?: string } {
  if (!points.some((p) => p.AutoSlave)) return { points };
  const entries = mountinfo();
  let root = current;
  const out = points.map((p) => {
    if (!p.AutoSlave) return p;
    const fields = holderOf(entries, realSource(p.Source))?.optionalFields ?? [];
    if (!fields.some((f) => f.startsWith('shared:') || f.startsWith('master:'))) return { ...p, Propagation: 'rprivate' };
    if (!['shared', 'rshared', 'slave', 'rslave'].includes(root ?? '')) root = 'rslave';
    return p;
  });
  return { points: out, ...(root !== current ? { root } : {}) };
}

/** The OCI mounts for the container's MountPoints. */
export function ociMounts(points: MountPoint[]): OciMount[] {
  // In the records' order: the start puts all of a container's mounts in moby's (byMountDepth).
  return points.map((p): OciMount => {
    // Records from before TmpfsData: read-only or not, as they were made.
    if (p.Type === 'tmpfs') return { destination: p.Destination, type: 'tmpfs', source: 'tmpfs', options: tmpfsOciOptions(p.TmpfsData ?? (p.RW ? '' : 'ro')) };
    const options = [p.NonRecursive ? 'bind' : 'rbind', p.RW ? 'rw' : p.RecursiveReadOnly ? 'rro' : 'ro'];
    if (p.Propagation) options.push(p.Propagation);
    return { destination: p.Destination, type: 'bind', source: p.Source, options };
  });
}
