/**
 * The container lifecycle, as Docker has it: create, start, stop, kill, wait, restart, pause,
 * rename, remove, logs, attach, top. Each container runs under its own shim (src/shim), so the
 * containers outlive this process; `reconcile()` picks them up again after a restart.
 *
 * Start, step by step: mount the snapshot the container got at create → resolve the user in its
 * /etc/passwd → containerSpec() (Docker's defaults) plus its mounts → config.json in the bundle →
 * runtime.create under a shim → let waiting attach clients connect → runtime.start → watch for
 * the exit (the shim's `wait`), which unmounts, deletes the runtime state, applies AutoRemove
 * and the restart policy.
 */
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { readFileOr, writeFileIfChanged } from '../../common/fsutil.js';
import { BerthError, ConflictError, ForbiddenError, InvalidArgumentError, NotFoundError, SystemError, UnsupportedError } from '../../common/errors.js';
import type { ContentStore, ImageRecord, Platform } from '../../images/types.js';
import type { ImageStore } from '../../images/image-store.js';
import { formatPlatform, parseImageConfig, parseManifest, platformRank } from '../../images/manifest.js';
import { unpackImageLayers } from '../../images/pull-image.js';
import { chainIds, type Mount, type OverlaySnapshotter } from '../../storage/snapshotter.js';
import { VolumeMountError, type VolumeStore } from '../../storage/volumes.js';
import type { CgroupDescriptor } from '../../runtime/cgroups/index.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { Spec } from '../../runtime/spec/config.js';
import { readExit, readLog, ShimClient, shimLogFile, shimPid, type ExitInfo, type LogEntry, type ShimLogOptions } from '../../shim/client.js';
import { startFailure } from './start-failure.js';
import { byMountDepth, containerSpec, DEFAULT_SHM_SIZE, DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS, resourceWarnings, type HostFacts } from '../spec/container-spec.js';
import type { EventBus } from '../events.js';
import { mountPointsUnder, parseMountinfo, type MountinfoEntry } from '../../common/mountinfo.js';
import { TreeDeleter } from '../../storage/fsop.js';
import { canPrepareAhead, PreparedStarts, startFingerprint, type PreparedStart } from './prepared.js';
import { isMountPoint, Mounter, unmount, volatileUpper } from '../mount.js';
import { devicesAt, hostDevices } from '../host-devices.js';
import { pruneMatcher } from '../image-filters.js';
import { checkHealthcheck, storedHealthcheck } from './health.js';
import { checkConfigTypes } from './config-check.js';
import { applyCreateDefaults, dnsSettings, withRunDefaults, type ContainerDefaults } from './defaults.js';
import { logAttributes, resolveLogConfig, rotation as logRotation, type EffectiveLogConfig } from './logconfig.js';
import { bindPropagation, ociMounts, resolveMounts, withAutoSlaveFallback } from './mounts.js';
import { containerEventAttributes, newState, ZERO_TIME, type ContainerConfig, type ContainerHostConfig, type ContainerRecord, type ContainerStatus } from './record.js';
import { ContainerStore, recordedLinkParts } from './store.js';
import { randomName } from './names.js';
import { readSmall, ScopedRoot } from './scoped-root.js';
import { parseKillSignal, parseSignal } from './signals.js';
import { updateContainer, type UpdateRequest } from './update.js';
import { resolveUser } from './user.js';
import { allocateRange, idMappings, mountIdmapped, unmountIdmapped } from './userns.js';
import { hostsFile, parseExtraHosts, resolvConf } from '../../network/etc-files.js';
import { linkEnvironment, linkHostNames, parseLegacyLink, recordedLink } from '../../network/links.js';
import { bindingsFor, checkPortBindings } from '../../network/ports.js';
import { checkNetworkModeConflicts } from './network-mode.js';
import { EMBEDDED_DNS_ADDRESS, ROUTE_LOCALNET_SYSCTL } from '../../network/dns-redirect.js';
import type { EndpointConfig } from '../networks/record.js';
import { CONFIG_ONLY_ENDPOINT, type NetworkMember, type NetworkModeKind, type NetworkService } from '../networks/service.js';
import { missingImageName } from '../../images/reference.js';

export interface ContainerServiceOptions {
  /** Persistent: records and per-container files (`<dataRoot>/containers/<id>`). */
  containersDir: string;
  /** Volatile (a tmpfs in production): bundles, mounted root file systems, shim sockets. */
  execRoot: string;
  runtime: Runtime;
  images: ImageStore;
  content: ContentStore;
  snapshotter: OverlaySnapshotter;
  volumes: VolumeStore;
  events: EventBus;
  facts?: HostFacts;
  /** Parent cgroup of every container (Docker's "/docker"). */
  cgroupParent?: string;
  /** Networks: endpoints, addresses, published ports, DNS. */
  networks: NetworkService;
  /** The host's resolver configuration (berthd --resolv-conf; /etc/resolv.conf). */
  hostResolvConf?: string;
  /** Every container in its own user namespace unless it asks for UsernsMode "host" (berthd --userns-remap). */
  usernsRemap?: boolean;
  /** The log driver and options of containers that name none (default: json-file, rotated). */
  logConfig?: EffectiveLogConfig;
  /** The daemon's defaults for containers: DNS, ulimits, /dev/shm size, IPC and cgroup namespace modes. */
  defaults?: ContainerDefaults;
}

export interface CreateRequest {
  name?: string;
  config: ContainerConfig;
  hostConfig?: ContainerHostConfig;
  /** NetworkingConfig.EndpointsConfig: the networks to join at create, by name or ID. */
  endpointsConfig?: Record<string, EndpointConfig> | null;
  /** Read-only binds and volumes read-only only at their top (a client of API < 1.44); else recursively. */
  readOnlyNonRecursive?: boolean;
  /** The `platform` the client asked for (docker run --platform): the local image must be of it. */
  platform?: Platform;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface WaitResult {
  StatusCode: number;
  Error?: { Message: string } | null;
}

/** A connection to a container's output (and input), as `attach` gives it. */
export interface AttachSession {
  /** Whether the stream takes the container's stdin (asked for, and the container has OpenStdin). */
  stdin: boolean;
  /** The shim's stream (frames out; stdin in), once the container runs; undefined if it will not. */
  connected: Promise<net.Socket | undefined>;
  /**
   * The caller's copy of the stream to its client, settled once all of it was written: the
   * container's exit is reported only after (dockerd's StreamConfig.Wait), at most 2 s later.
   */
  forwarding<T>(copy: Promise<T>): Promise<T>;
  close(): void;
}

const STOP_SIGNAL_DEFAULT = 'SIGTERM';
const STOP_TIMEOUT_DEFAULT = 10;
/**
 * How long a container started with an attach client on its way (docker run) has its output
 * held for it at most: the client connects within a millisecond or so after the start; the
 * limit only matters if this daemon died in between (the output then flows to the log).
 */
const ATTACH_HOLD_MS = 5000;
/** dockerd's runconfig.ErrConflictSharedNetwork. */
const SHARED_NETWORK = 'container sharing network namespace with another container or host cannot be connected to any other network';
/** dockerd's runconfig.ErrConflictHostNetwork. */
const HOST_NETWORK = 'container cannot be disconnected from host network or connected to host network';
/** dockerd's runconfig.ErrConflictHostNetworkAndLinks. */
const HOST_NETWORK_AND_LINKS = "conflicting options: host type networking can't be used with links. This would result in undefined behavior";
/** How long after an exit its runtime record and cgroups wait for a remove to be answered first. */
const RUNTIME_RELEASE_DELAY_MS = 10;

function nowIso(): string {
  return new Date().toISOString();
}


export class ContainerService {
  readonly store: ContainerStore;
  private readonly opts: ContainerServiceOptions;
  /** One operation at a time per container (start, stop, exit handling, remove). */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Clients waiting for a container to start so they can attach before its first output. */
  private readonly pendingAttach = new Map<string, Array<(shimDir: string) => Promise<boolean>>>();
  /** Per container, its attach streams from the shim, each settled once it has ended. */
  private readonly attachStreams = new Map<string, Set<Promise<void>>>();
  /** Callbacks for exits and removals, by container id. */
  private readonly exitWaiters = new Map<string, Array<(code: number) => void>>();
  private readonly removeWaiters = new Map<string, Array<(code: number) => void>>();
  private readonly monitored = new Set<string>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  /** Containers holding each volume that is mounted from its driver options (see releaseVolumes). */
  private readonly volumeHolders = new Map<string, Set<string>>();
  /** Shims told to go and not gone yet, by container (see releaseRuntime). */
  private readonly shimShutdowns = new Map<string, Promise<void>>();
  /** Runtime releases put off at an exit, by container (releaseRuntimeLater). */
  private readonly runtimeReleases = new Map<string, { done: Promise<void>; now: () => void }>();
  /** Starts prepared right after create (prepared.ts). */
  private readonly prepared = new PreparedStarts((id) => void this.lock(id, async () => undefined).catch(() => undefined));
  private closed = false;
  private readonly mounter: Mounter;
  /** Deletes trashed bundles off the event loop. */
  private readonly execDeleter: TreeDeleter;

  constructor(opts: ContainerServiceOptions) {
    this.opts = opts;
    this.mounter = new Mounter(opts.execRoot);
    this.execDeleter = new TreeDeleter(opts.execRoot);
    this.store = new ContainerStore(opts.containersDir);
    fs.mkdirSync(path.join(opts.execRoot, 'c'), { recursive: true, mode: 0o711 });
    fs.chmodSync(path.join(opts.execRoot, 'c'), 0o711);
    // Bundles a previous daemon renamed for deletion and did not finish deleting, or left
    // behind a container whose record it had removed (nothing may be mounted below either).
    const bundles = new Set(this.store.list().map((c) => path.basename(this.bundleDir(c.id))));
    for (const name of fs.readdirSync(path.join(opts.execRoot, 'c'))) {
      const dir = path.join(opts.execRoot, 'c', name);
      const orphan = name.startsWith('.trash-') || (/^[0-9a-f]{24}$/.test(name) && !bundles.has(name));
      if (orphan && mountPointsUnder(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  // ---- paths -------------------------------------------------------------------------------

  /** The bundle, mounted rootfs and shim socket. Short: shim.sock must fit a socket address. */
  private bundleDir(id: string): string {
    return path.join(this.opts.execRoot, 'c', id.slice(0, 24));
  }

  shimDir(id: string): string {
    return path.join(this.bundleDir(id), 'shim');
  }

  /**
   * The container's /etc/hostname, hosts and resolv.conf (bound into it). On the exec root, a
   * tmpfs: each start writes them again, so they need not outlive a boot, and three files made
   * and deleted on the data root's disk cost every container's start ~0.4 ms here.
   */
  etcDir(id: string): string {
    return path.join(this.bundleDir(id), 'etc');
  }

  /** A shareable IPC donor's /dev/shm, a tmpfs on the host that joiners bind too. */
  private shmDir(id: string): string {
    return path.join(this.bundleDir(id), 'shm');
  }

  /** The container's json-file log (LogPath in inspect). */
  logFile(record: ContainerRecord): string {
    return record.logPath ?? shimLogFile(this.shimDir(record.id));
  }

  /** The container's log driver and options; a record from before they were kept gets the daemon's. */
  private logConfig(record: Pick<ContainerRecord, 'hostConfig'>): EffectiveLogConfig {
    return resolveLogConfig(record.hostConfig.LogConfig, this.opts.logConfig);
  }

  /** What the container's shim is told about its log: the file, its rotation and the attributes of each line; false for none. */
  private shimLog(record: ContainerRecord): ShimLogOptions | false {
    const cfg = this.logConfig(record);
    const rotation = logRotation(cfg);
    if (!rotation) return false;
    const attrs = logAttributes(cfg, { id: record.id, name: record.name, imageId: record.image, imageName: record.imageRef, labels: record.config.Labels ?? {}, env: record.config.Env ?? [] });
    return { ...rotation, file: this.logFile(record), ...(attrs ? { attrs } : {}) };
  }

  private rootfsDir(id: string): string {
    return path.join(this.bundleDir(id), 'rootfs');
  }

  /** Where a running container's root file system is mounted (on the host). */
  rootfsPath(ref: string): string {
    return this.rootfsDir(this.store.get(ref).id);
  }

  /** Where the shims of a container's exec processes live (removed with the container's bundle). */
  execsDir(id: string): string {
    return path.join(this.bundleDir(id), 'x');
  }

  /** Renames a directory out of the way and deletes it in the background (leftovers: see the constructor). */
  private trash(dir: string): void {
    // Never delete through a mount: a root file system or an idmapped image layer still
    // mounted below would have the image's or a volume's files deleted with it.
    let mounted: string[] = [];
    try {
      mounted = mountPointsUnder(dir);
    } catch {
      /* no mountinfo: keep the directory */
      return;
    }
    for (const point of mounted) unmount(point);
    if (mounted.length > 0 && mountPointsUnder(dir).length > 0) {
      process.emitWarning(`not deleting ${dir}: something is still mounted below it`);
      return;
    }
    const trashed = path.join(this.opts.execRoot, 'c', `.trash-${path.basename(dir)}-${process.pid}-${Date.now()}`);
    try {
      fs.renameSync(dir, trashed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    }
    void this.execDeleter.remove(trashed).catch(() => undefined); // else the next start-up's
  }

  /**
   * Runs fn when the container's earlier operations are done. A start prepared ahead for it
   * (see prepared.ts) is undone first, unless fn is a start (`usesPrepared`).
   */
  private lock<T>(id: string, fn: () => Promise<T>, opts: { usesPrepared?: boolean } = {}): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = opts.usesPrepared ? fn : () => this.abortPrepared(id).then(fn);
    const next = previous.then(run, run);
    const settled = next.catch(() => undefined);
    this.locks.set(id, settled);
    void settled.then(() => {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    });
    return next;
  }

  // ---- queries -----------------------------------------------------------------------------

  get(ref: string): ContainerRecord {
    return this.store.get(ref);
  }

  find(ref: string): ContainerRecord | undefined {
    return this.store.find(ref);
  }

  list(): ContainerRecord[] {
    return this.store.list();
  }

  /** By container name, the names of the legacy links to it ("/parent/alias"). */
  linkNames(): Map<string, string[]> {
    return this.store.linkNames();
  }

  /** Whether any container (in any state) uses the volume: such a volume is not removed. */
  volumeInUse(name: string): boolean {
    return this.volumeUsers(name).length > 0;
  }

  /** The IDs of the containers that mount the named volume (dockerd names them when it refuses a removal). */
  volumeUsers(name: string): string[] {
    return this.store
      .list()
      .filter((c) => c.mounts.some((m) => m.Type === 'volume' && m.Name === name))
      .map((c) => c.id);
  }

  /** Whether any container was made from the image. */
  imageInUse(imageId: string): boolean {
    return this.store.list().some((c) => c.image === imageId);
  }

  private imageConfig(image: ImageRecord): ReturnType<typeof parseImageConfig> {
    return parseImageConfig(this.opts.content.readBlob(image.config));
  }

  /**
   * Runs fn on the container's root file system (docker cp, export): a running container's own
   * mount, or, for one that is not running, its snapshot mounted for the time of fn under the
   * container's lock, so that a start (or remove) waits until fn is done. A container with its
   * own user namespace gets its image layers idmapped as when it runs, so that every file
   * shows its range's ids either way.
   */
  async withRootfs<T>(ref: string, fn: (rootfs: string, record: ContainerRecord) => Promise<T>): Promise<T> {
    const id = this.store.get(ref).id;
    const rootfs = this.rootfsDir(id);
    const live = (): boolean => ['running', 'paused'].includes(this.store.get(id).state.status) && isMountPoint(rootfs);
    if (live()) return fn(rootfs, this.store.get(id));
    return this.lock(id, async () => {
      if (live()) return fn(rootfs, this.store.get(id));
      const record = this.store.get(id);
      if (record.state.status === 'removing' || record.state.status === 'dead') throw new ConflictError(`container ${id} is marked for removal`);
      // 0711 as start makes it: root in a user namespace passes through it to its rootfs.
      fs.mkdirSync(this.bundleDir(id), { recursive: true, mode: 0o711 });
      fs.mkdirSync(rootfs, { recursive: true });
      const mounted = !isMountPoint(rootfs);
      if (mounted) await this.mountRootfs(record, this.opts.snapshotter.mounts(record.snapshotKey));
      try {
        return await fn(rootfs, record);
      } finally {
        if (mounted) await this.unmountRootfs(id);
      }
    });
  }

  // ---- create ------------------------------------------------------------------------------

  async create(req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
    const config = req.config;
    if (!config || typeof config !== 'object') throw new InvalidArgumentError('must be an object', 'Config');
    if (typeof config.Image !== 'string' || config.Image === '') throw new InvalidArgumentError('No image specified', 'Image');
    checkConfigTypes(config);
    const hostConfig: ContainerHostConfig = req.hostConfig ?? {};
    if (typeof hostConfig !== 'object' || Array.isArray(hostConfig)) throw new InvalidArgumentError('must be an object', 'HostConfig');
    const image = this.opts.images.find(config.Image);
    if (!image) throw new NotFoundError(`No such image: ${missingImageName(config.Image)}`);
    const imageConfig = this.imageConfig(image);
    const imagePlatform: Platform = { os: imageConfig.os, architecture: imageConfig.architecture, ...(imageConfig.variant ? { variant: imageConfig.variant } : {}) };
    if (req.platform && platformRank(imagePlatform, req.platform) < 0) {
      // As dockerd: a 404, on which the docker CLI pulls the image for that platform.
      throw new NotFoundError(`image with reference ${config.Image} was found but does not match the specified platform: wanted ${formatPlatform(req.platform)}, actual: ${formatPlatform(imagePlatform)}`);
    }
    const id = this.store.newId();
    const name = req.name ? this.store.claimableName(req.name) : this.uniqueRandomName();
    checkRestartPolicy(hostConfig);
    const warnings = resourceWarnings(hostConfig, this.opts.facts);
    if ((hostConfig.KernelMemory ?? 0) > 0) hostConfig.KernelMemory = 0; // discarded, as dockerd does where the host has no kmem limits
    // One runtime here, named as `docker info` lists it (or as "runc", dockerd's default's name:
    // berth-oci takes its place); another is refused as dockerd refuses one it lacks.
    if (hostConfig.Runtime !== undefined && hostConfig.Runtime !== null && hostConfig.Runtime !== '' && hostConfig.Runtime !== 'berth-oci' && hostConfig.Runtime !== 'runc') {
      throw new InvalidArgumentError(`Unknown runtime specified ${String(hostConfig.Runtime)}`);
    }
    if (hostConfig.AutoRemove && hostConfig.RestartPolicy?.Name && !['', 'no'].includes(hostConfig.RestartPolicy.Name)) {
      throw new InvalidArgumentError("can't create 'AutoRemove' container with restart policy", 'HostConfig.AutoRemove');
    }

    const entrypoint = config.Entrypoint !== undefined && config.Entrypoint !== null ? config.Entrypoint : (imageConfig.config?.Entrypoint ?? []);
    // An Entrypoint given with no Cmd drops the image's Cmd, as Docker does.
    const cmd = config.Cmd !== undefined && config.Cmd !== null && config.Cmd.length > 0 ? config.Cmd : config.Entrypoint ? [] : (imageConfig.config?.Cmd ?? []);
    const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
    if (argv.length === 0) throw new InvalidArgumentError('No command specified'); // dockerd's words

    checkHealthcheck(config.Healthcheck);
    if (config.Healthcheck) config.Healthcheck = storedHealthcheck(config.Healthcheck);
    if (config.MacAddress !== undefined && config.MacAddress !== null && typeof config.MacAddress !== 'string') throw new InvalidArgumentError('must be a string', 'MacAddress');
    // Config.MacAddress (clients before API 1.44) is the MAC on the mode's network, unless that names one.
    let endpointsConfig = req.endpointsConfig;
    if (typeof config.MacAddress === 'string' && config.MacAddress !== '') {
      const primary = (hostConfig.NetworkMode as string | undefined) || 'default';
      const own = endpointsConfig?.[primary];
      if (!own?.MacAddress) endpointsConfig = { ...(endpointsConfig ?? {}), [primary]: { ...(own ?? {}), MacAddress: config.MacAddress } };
    }
    checkNetworkModeConflicts({ config, host: hostConfig, endpoints: endpointsConfig });
    const { kind: network, endpoints } = this.opts.networks.resolveMode(hostConfig.NetworkMode, endpointsConfig);
    // Another container's namespaces (network, PID, IPC) are looked up at start, as dockerd does:
    // a 404 from create would send the docker CLI to pull the image ("Unable to find image").
    const networkDonor = network.kind === 'container' ? this.store.find(network.ref) : undefined;
    // dockerd keeps the other container by its ID: a container made since under its name is not it.
    if (networkDonor) hostConfig.NetworkMode = `container:${networkDonor.id}`;
    // The PID and IPC namespaces' donors too, which must exist already (dockerd's words; a 400:
    // a 404 would send the docker CLI pulling the image).
    for (const field of ['PidMode', 'IpcMode'] as const) {
      const mode = hostConfig[field];
      if (typeof mode !== 'string' || !mode.startsWith('container:')) continue;
      const ref = mode.slice('container:'.length);
      const donor = ref ? this.store.find(ref) : undefined;
      if (!donor) throw new InvalidArgumentError(`No such container: ${ref}`);
      hostConfig[field] = `container:${donor.id}`;
    }
    parseExtraHosts(hostConfig.ExtraHosts as string[] | undefined, this.opts.networks.hostGateway() ?? '0.0.0.0');
    checkPortBindings(hostConfig.PortBindings);
    this.registerLegacyLinks(hostConfig, network, name);
    // dockerd's default IPC mode (and the daemon's cgroup namespace mode), as inspect shows them.
    applyCreateDefaults(hostConfig, this.opts.defaults, this.opts.facts?.cgroupVersion ?? 2);
    const cgroupParent = hostConfig.CgroupParent;
    if (cgroupParent !== undefined && (typeof cgroupParent !== 'string' || cgroupParent.split('/').some((part) => part === '..' || part === '.'))) throw new InvalidArgumentError('must be a cgroup path without "." or ".."', 'HostConfig.CgroupParent');
    // dockerd fills in its masked and read-only paths, as inspect shows them (not for privileged).
    if (!hostConfig.Privileged) {
      hostConfig.MaskedPaths ??= [...DOCKER_MASKED_PATHS];
      hostConfig.ReadonlyPaths ??= [...DOCKER_READONLY_PATHS];
    }
    const idRange = this.wantsUserns(hostConfig) ? allocateRange(this.store.list().flatMap((c) => (c.idRange ? [c.idRange.base] : []))) : undefined;
    // Validate everything the spec will need now, so that a bad request fails at create.
    containerSpec({ image: imageConfig, create: config, host: hostConfig, rootfs: '/', user: { uid: 0, gid: 0 }, cgroupsPath: this.cgroupsPath({ id, hostConfig }), id, facts: this.factsFor(idRange, hostConfig), network: network.kind === 'host' ? { mode: 'host' } : { mode: 'private' } });
    // dockerd's default swap limit, twice the memory limit, recorded as inspect shows it (and as
    // `docker update` then holds a new memory limit against it).
    if (typeof hostConfig.Memory === 'number' && hostConfig.Memory > 0 && !hostConfig.MemorySwap) hostConfig.MemorySwap = hostConfig.Memory * 2;

    // The log driver and options, checked now and kept as the container's (dockerd's
    // mergeAndVerifyLogConfig); the attributes its lines will carry too.
    // On another container's network the hostname is that container's, taken at each start (networkAtStart).
    const merged = mergeImageConfig({ ...config, Hostname: config.Hostname || (network.kind === 'host' || hostConfig.UTSMode === 'host' ? os.hostname() : undefined) || id.slice(0, 12), Cmd: cmd, Entrypoint: entrypoint.length ? entrypoint : null }, imageConfig.config ?? {});
    const logConfig = resolveLogConfig(hostConfig.LogConfig, this.opts.logConfig);
    logAttributes(logConfig, { id, name, imageId: image.config, imageName: config.Image, labels: merged.Labels ?? {}, env: merged.Env ?? [] });
    hostConfig.LogConfig = logConfig;

    const snapshotKey = id;
    const chain = await this.ensureLayers(image, imageConfig);
    // With the image's init layer (its mount points, shared by its containers) when it allows one.
    await this.opts.snapshotter.prepare(snapshotKey, chain.at(-1), { init: true });
    let mounts;
    try {
      mounts = await resolveMounts(
        hostConfig,
        imageConfig.config?.Volumes,
        config.Volumes,
        {
          ensure: async (volumeName, create) => {
            let existed = false;
            try {
              if (volumeName) existed = !!this.opts.volumes.inspect(volumeName);
            } catch {
              /* a new one (or a bad name, which create refuses) */
            }
            const v = await this.opts.volumes.create({ ...(volumeName ? { name: volumeName } : {}), ...create });
            if (!existed) this.opts.events.emit('volume', 'create', v.Name, { driver: v.Driver });
            return { name: v.Name, mountpoint: v.Mountpoint };
          },
          exists: (p) => fs.existsSync(p),
          // A missing one is a bad request, as in dockerd: a 404 would send the docker CLI to pull the image.
          mountsOf: (ref) => {
            const other = this.store.find(ref);
            if (!other) throw new InvalidArgumentError(`No such container: ${ref}`);
            return other.mounts;
          },
        },
        { readOnlyNonRecursive: req.readOnlyNonRecursive, daemonRoots: [path.dirname(this.opts.containersDir), this.opts.execRoot] },
      );
    } catch (err) {
      await this.opts.snapshotter.remove(snapshotKey).catch(() => undefined);
      throw err;
    }
    const record: ContainerRecord = {
      id,
      name,
      created: nowIso(),
      image: image.config,
      imageRef: config.Image,
      path: argv[0]!,
      args: argv.slice(1),
      config: merged,
      hostConfig,
      state: newState(),
      restartCount: 0,
      stoppedByUser: false,
      mounts,
      snapshotKey,
      endpoints,
      ...(idRange ? { idRange } : {}),
      logPath: path.join(this.store.dir(id), `${id}-json.log`),
    };
    this.store.save(record);
    await this.populateVolumes(record);
    this.opts.events.emit('container', 'create', id, containerEventAttributes(record));
    // Its start prepared while the answer is on its way and the client sends the start.
    if (canPrepareAhead(record)) setImmediate(() => void this.lock(id, () => this.prepareAhead(id), { usesPrepared: true }).catch(() => undefined));
    if (network.kind === 'host' && Object.values(hostConfig.PortBindings ?? {}).some((list) => (list?.length ?? 0) > 0)) warnings.push('Published ports are discarded when using host network mode');
    return { id, warnings };
  }

  /**
   * As dockerd at create (populateVolumes): the image's content at each volume's mount point is
   * copied into the volume if it is empty, so that it is there for other containers before this
   * one starts (docker compose creates every service's container, then starts them). Volumes
   * with driver options (mounted only while in use) and nocopy ones are left to the start, which
   * copies into any volume still empty.
   */
  private async populateVolumes(record: ContainerRecord): Promise<void> {
    const volumes = this.opts.volumes;
    const wanted = record.mounts.filter((m) => m.Type === 'volume' && m.Name && !m.NoCopy && Object.keys(volumes.inspect(m.Name).Options ?? {}).length === 0 && volumes.isEmpty(m.Name));
    if (wanted.length === 0) return;
    await this.withRootfs(record.id, async (rootfs) => {
      for (const m of wanted) await volumes.copyUp(m.Name!, path.join(rootfs, m.Destination), rootfs).catch(() => false);
    }).catch(() => undefined); // the start copies into what is still empty
  }

  /** The image's layers in the snapshotter (a loaded image is unpacked on first use); its chain IDs. */
  private async ensureLayers(image: ImageRecord, imageConfig: ReturnType<typeof parseImageConfig>): Promise<string[]> {
    const chain = chainIds(imageConfig.rootfs?.diff_ids ?? []);
    if (chain.every((c) => this.opts.snapshotter.hasLayer(c))) return chain;
    const parsed = parseManifest(this.opts.content.readBlob(image.manifest));
    if (parsed.kind !== 'manifest') throw new SystemError(`image ${image.config} points at an index, not a manifest`);
    return unpackImageLayers(parsed.manifest, imageConfig, { content: this.opts.content, snapshotter: this.opts.snapshotter });
  }

  /** HostConfig.NetworkMode: the container's kind of network namespace. */
  private networkMode(record: ContainerRecord): NetworkModeKind {
    const mode = record.hostConfig.NetworkMode ?? '';
    if (mode === 'host') return { kind: 'host' };
    if (typeof mode === 'string' && mode.startsWith('container:')) return { kind: 'container', ref: this.store.get(mode.slice('container:'.length)).id };
    return { kind: 'private' };
  }

  /** Whether the container gets network endpoints (veths) at start. */
  private joinsNetworks(record: ContainerRecord): boolean {
    return this.networkMode(record).kind === 'private' && !!record.endpoints && Object.keys(record.endpoints).length > 0;
  }

  /** Its networks (veths, addresses, routes) and published ports, once its namespace exists. */
  private async attachNetworks(record: ContainerRecord, pid: number): Promise<void> {
    if (!this.joinsNetworks(record) || !record.endpoints) return;
    const ports = bindingsFor(record.hostConfig.PortBindings, record.config.ExposedPorts, record.hostConfig.PublishAllPorts === true);
    const attached = await this.opts.networks.attach({ id: record.id, pid, endpoints: record.endpoints, ports });
    for (const endpoint of Object.values(record.endpoints)) endpoint.berthJoined = true;
    record.networks = attached.networks;
    if (attached.ports) record.ports = attached.ports;
  }

  /**
   * PidMode and IpcMode "container:<id>" at start: that container's namespaces by path, and its
   * /dev/shm for IPC, which dockerd shares only from a donor made "shareable" (or "host").
   */
  private joinAtStart(record: ContainerRecord): Parameters<typeof containerSpec>[0]['join'] {
    const running = (mode: string, what: string): ContainerRecord => {
      const other = this.store.get(mode.slice('container:'.length));
      if (other.state.status !== 'running' || !other.state.pid) throw new ConflictError(`cannot join ${what} of a non running container: ${other.id}`);
      return other;
    };
    const join: NonNullable<Parameters<typeof containerSpec>[0]['join']> = {};
    const pidMode = record.hostConfig.PidMode;
    if (typeof pidMode === 'string' && pidMode.startsWith('container:')) join.pid = `/proc/${running(pidMode, 'PID').state.pid}/ns/pid`;
    const ipcMode = record.hostConfig.IpcMode;
    if (typeof ipcMode === 'string' && ipcMode.startsWith('container:')) {
      const donor = running(ipcMode, 'IPC');
      const donorMode = donor.hostConfig.IpcMode || 'private';
      if (donorMode !== 'shareable' && donorMode !== 'host') throw new ConflictError(`cannot join IPC of container ${donor.id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`);
      join.ipc = { path: `/proc/${donor.state.pid}/ns/ipc`, shm: donorMode === 'host' ? '/dev/shm' : this.shmDir(donor.id) };
    }
    return join;
  }

  /** Mounts a shareable container's /dev/shm on the host (mode 1777, its ShmSize, 64 MB by default); returns it. */
  private async mountShm(record: Pick<ContainerRecord, 'id' | 'hostConfig'>): Promise<string> {
    const dir = this.shmDir(record.id);
    const size = typeof record.hostConfig.ShmSize === 'number' && record.hostConfig.ShmSize > 0 ? record.hostConfig.ShmSize : DEFAULT_SHM_SIZE;
    // Data options only (berth-fsop passes them to mount(2) as they are); the binds into the
    // containers are nosuid, nodev and noexec.
    if (!isMountPoint(dir)) await this.mounter.mountAll([{ type: 'tmpfs', source: 'shm', options: ['mode=1777', `size=${size}`] }], dir);
    return dir;
  }

  /** The spec's network input at start: another container's namespace must exist then. */
  private networkAtStart(record: ContainerRecord): NonNullable<Parameters<typeof containerSpec>[0]['network']> {
    const network = this.networkMode(record);
    if (network.kind === 'host') return { mode: 'host' };
    if (network.kind === 'private') return { mode: 'private' };
    const other = this.store.get(network.ref);
    if (other.state.status !== 'running' || !other.state.pid) throw new ConflictError(`cannot join network of a non running container: ${other.id}`);
    // As dockerd's initializeNetworking: its hostname and domain name are the other's, now.
    record.config.Hostname = other.config.Hostname;
    record.config.Domainname = other.config.Domainname;
    return { mode: 'join', path: `/proc/${other.state.pid}/ns/net` };
  }

  private wantsUserns(host: ContainerHostConfig): boolean {
    const mode = typeof host.UsernsMode === 'string' ? host.UsernsMode : '';
    return mode === 'private' || (this.opts.usernsRemap === true && mode !== 'host');
  }

  /** The container's cgroup: under its own HostConfig.CgroupParent, else the daemon's (--cgroup-parent, /berth). */
  private cgroupsPath(record: Pick<ContainerRecord, 'id' | 'hostConfig'>): string {
    const own = record.hostConfig.CgroupParent;
    const parent = typeof own === 'string' && own !== '' ? `/${own.replace(/^\/+|\/+$/g, '')}` : (this.opts.cgroupParent ?? '/berth');
    return `${parent}/${record.id}`;
  }

  /** Host facts for one container: with its id mappings when it has its own user namespace. */
  private factsFor(range: { base: number; size: number } | undefined, host: ContainerHostConfig): HostFacts | undefined {
    const facts = range ? { ...this.opts.facts, idMappings: idMappings(range) } : this.opts.facts;
    // The host's devices, read now, only for what needs them: all of them (privileged), those asked for.
    const asked = Array.isArray(host.Devices) ? host.Devices.flatMap((d) => (d && typeof d.PathOnHost === 'string' && d.PathOnHost.startsWith('/') ? [path.posix.normalize(d.PathOnHost)] : [])) : [];
    if (!host.Privileged && asked.length === 0) return facts;
    const devices = host.Privileged === true ? hostDevices() : [];
    for (const p of asked) for (const d of devicesAt(p)) if (!devices.some((x) => x.path === d.path)) devices.push(d);
    return { ...facts, devices };
  }

  private layersDir(id: string): string {
    return path.join(this.bundleDir(id), 'layers');
  }

  private uniqueRandomName(): string {
    for (let i = 0; ; i++) {
      const candidate = `/${randomName(i > 5 ? Math.floor(Math.random() * 10) : undefined)}`;
      if (!this.store.find(candidate)) return candidate;
    }
  }

  // ---- start -------------------------------------------------------------------------------

  /** Starts a created or exited container; false if it was running already (Docker's 304). */
  start(ref: string): Promise<boolean> {
    const id = this.store.get(ref).id;
    return this.lock(id, () => this.startLocked(id, false), { usesPrepared: true });
  }

  private async startLocked(id: string, byRestartPolicy: boolean): Promise<boolean> {
    const record = this.store.get(id);
    if (record.state.status === 'running' || record.state.status === 'paused') return false;
    if (record.state.status === 'removing' || record.state.status === 'dead') throw new ConflictError(`container ${id} is marked for removal and cannot be started`);
    const timer = this.restartTimers.get(id);
    if (timer) clearTimeout(timer);
    this.restartTimers.delete(id);
    if (!byRestartPolicy) record.stoppedByUser = false;

    const shimDir = this.shimDir(id);
    await this.runtimeReleased(id);
    await this.shimShutdowns.get(id); // the last run's shim leaves the directory to the new one
    let startedAt = nowIso();
    let pid = 0;
    this.opts.networks.modeEvent('connect', id, record.hostConfig.NetworkMode);
    try {
      // Between the runtime's create and start: the container's network, and the clients that
      // attach before its first output. Without them, one step (no exec fifo round trip); so
      // too with one attach client (docker run's), the shim holding the output until it comes.
      const attachers = this.pendingAttach.get(id)?.length ?? 0;
      const startNow = attachers <= 1 && !this.joinsNetworks(record);
      const holdMs = startNow && attachers === 1 ? ATTACH_HOLD_MS : undefined;
      const ahead = this.prepared.take(id);
      let prepared = ahead && ahead.fingerprint === startFingerprint(record) && ahead.start.startNow === startNow ? ahead.start : undefined;
      if (ahead && !prepared) await this.undoPrepared(id, ahead.start);
      prepared ??= await this.prepareStart(record, startNow);
      ({ pid } = await prepared.launch({ holdMs }));
      // Watched from the next turn, after the answer to this start is on its way (its exit is
      // handled under the lock, after this start; the shim keeps the exit for a late watcher).
      setImmediate(() => this.monitor(id));
      if (holdMs && !(await this.runPendingAttach(id, shimDir))) await new ShimClient(shimDir).release().catch(() => undefined);
      if (!startNow) {
        await this.attachNetworks(record, pid);
        if (record.networks) this.writeEtcFiles(record);
        await this.runPendingAttach(id, shimDir);
        // Before the program runs: its first log lines are not older than StartedAt (logs
        // since=StartedAt, as testcontainers asks after a restart, must include them).
        startedAt = nowIso();
        await this.opts.runtime.start(id);
      }
    } catch (err) {
      const failure = startFailure(err instanceof Error ? err.message : String(err));
      const message = failure.message;
      await this.opts.runtime.delete(id, true).catch(() => undefined);
      (await this.releaseNetworks(id, record))();
      delete record.networks;
      delete record.ports;
      await this.unmountRootfs(id);
      await this.releaseVolumes(record);
      record.state = { ...record.state, status: record.state.status === 'created' ? 'created' : 'exited', error: message, exitCode: failure.exitCode, pid: 0 };
      this.store.save(record);
      this.failPendingAttach(id);
      for (const resolve of this.exitWaiters.get(id) ?? []) resolve(record.state.exitCode);
      this.exitWaiters.delete(id);
      if (record.hostConfig.AutoRemove) await this.removeLocked(id, { force: true, volumes: true }).catch(() => undefined);
      if ((err instanceof BerthError && err.code !== 'SYSTEM') || err instanceof VolumeMountError) throw err;
      const text = failure.daemonsOwn ? message : `failed to create task for container: OCI runtime create failed: ${message}`;
      throw failure.invalidConfig ? new InvalidArgumentError(text) : new SystemError(text, { cause: err });
    }
    record.state = { ...newState(), status: 'running', pid, startedAt, finishedAt: record.state.finishedAt };
    // A daemon killed before this reaches the disk adopts the running container (reconcile).
    this.store.saveSoon(record);
    this.opts.events.emit('container', 'start', id, containerEventAttributes(record));
    return true;
  }

  /**
   * A start up to the launch of the container's process: its root file system mounted (under
   * way), its spec, and the runtime's part (Runtime.prepare). On a failure, what it did is undone.
   */
  private async prepareStart(record: ContainerRecord, startNow: boolean): Promise<PreparedStart> {
    const id = record.id;
    const bundle = this.bundleDir(id);
    const rootfs = this.rootfsDir(id);
    try {
      fs.mkdirSync(bundle, { recursive: true, mode: 0o711 });
      // Whatever a crashed run left on the mount point goes first (a no-op normally); a mount
      // point made just now has nothing on it (mkdir returns the first directory it made).
      if (fs.mkdirSync(rootfs, { recursive: true }) === undefined) await this.mounter.unmount(rootfs);
      const layerMounts = this.opts.snapshotter.mounts(record.snapshotKey);
      // The mount is made (by berth-fsop) while the spec, cgroups and plan are; the runtime
      // waits for it before the container's process sets up.
      const mounted = this.mountRootfs(record, record.hostConfig.AutoRemove ? volatileUpper(layerMounts) : layerMounts);
      mounted.catch(() => undefined); // reported by whoever awaits it
      const spec = await this.buildSpec(record, rootfs, mounted);
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      // A runtime record left from a run that ended while we were away.
      if (this.opts.runtime.has(id)) await this.opts.runtime.delete(id, true).catch(() => undefined);
      const runtime = await this.opts.runtime.prepare(id, { bundle, config: spec, startNow, rootfsReady: mounted, shim: { dir: this.shimDir(id), stdin: record.config.OpenStdin === true, log: this.shimLog(record) } });
      return { startNow, launch: runtime.launch, abort: runtime.abort };
    } catch (err) {
      await this.unmountRootfsForReuse(record).catch(() => undefined);
      throw err;
    }
  }

  /** Unmounts the root file system of a start that did not happen, so that a later start can mount it again. */
  private async unmountRootfsForReuse(record: ContainerRecord): Promise<void> {
    await this.unmountRootfs(record.id);
    if (record.hostConfig.AutoRemove) this.opts.snapshotter.clearVolatile(record.snapshotKey);
  }

  /** Prepares a created container's start ahead (prepared.ts); a failure is left for the start to meet and report. */
  private async prepareAhead(id: string): Promise<void> {
    const record = this.store.find(id);
    if (this.closed || !record || !canPrepareAhead(record) || this.prepared.has(id) || this.prepared.full) return;
    // A bind mount's missing source is made by the start (as dockerd does): not before it.
    if (record.mounts.some((m) => m.Type === 'bind' && !fs.existsSync(m.Source))) return;
    try {
      this.prepared.put(id, startFingerprint(record), await this.prepareStart(record, !this.joinsNetworks(record)));
    } catch {
      /* the start prepares again, and says what fails */
    }
  }

  /** Undoes the container's start prepared ahead, if it has one. */
  private async abortPrepared(id: string): Promise<void> {
    const ahead = this.prepared.take(id);
    if (ahead) await this.undoPrepared(id, ahead.start);
  }

  private async undoPrepared(id: string, start: PreparedStart): Promise<void> {
    await start.abort().catch(() => undefined);
    const record = this.store.find(id);
    await (record ? this.unmountRootfsForReuse(record) : this.unmountRootfs(id)).catch(() => undefined);
  }

  /** The OCI spec of a start; `mounted`: the root file system's mount, under way (awaited only if a file must be read through it). */
  private async buildSpec(record: ContainerRecord, rootfs: string, mounted: Promise<void>): Promise<Spec> {
    const image = this.opts.images.find(record.image);
    const imageConfig = image ? this.imageConfig(image) : { architecture: process.arch, os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] } };
    const maxBytes = (4 << 20) - 1;
    // From the image's layers while the mount is made, when they leave no doubt (the usual
    // first start); else through the mounted root, resolved as the container would resolve it
    // (an earlier run may have made /etc a symlink to "/"), small regular files only.
    const files = ['etc/passwd', 'etc/group'];
    let unmounted: Array<{ text?: string } | undefined>;
    try {
      unmounted = this.opts.snapshotter.readFilesUnmounted(record.snapshotKey, files, maxBytes);
    } catch {
      unmounted = files.map(() => undefined);
    }
    let [passwd, group] = unmounted.map((u) => u?.text);
    if (unmounted.some((u) => !u)) {
      await mounted;
      const scoped = new ScopedRoot(rootfs);
      try {
        if (!unmounted[0]) passwd = readSmall(scoped, '/etc/passwd');
        if (!unmounted[1]) group = readSmall(scoped, '/etc/group');
      } finally {
        scoped.close();
      }
    }
    const user = resolveUser(record.config.User ?? imageConfig.config?.User, passwd, group, (record.hostConfig.GroupAdd as string[] | undefined) ?? []);
    const host = withRunDefaults(record.hostConfig, this.opts.defaults);
    const network = this.networkAtStart(record); // before the config is read: it may take another's hostname
    const spec = containerSpec({
      image: imageConfig,
      create: { ...record.config, Entrypoint: [record.path], Cmd: record.args },
      host,
      rootfs,
      user,
      cgroupsPath: this.cgroupsPath(record),
      id: record.id,
      facts: this.factsFor(record.idRange, record.hostConfig),
      network,
      join: this.joinAtStart(record),
      ...(host.IpcMode === 'shareable' ? { shm: await this.mountShm({ id: record.id, hostConfig: host }) } : {}),
      linkEnv: this.legacyLinkEnv(record),
    });
    if (spec.process && !(spec.process.env ?? []).some((e) => e.startsWith('HOME='))) spec.process.env = [...(spec.process.env ?? []), `HOME=${user.home}`];
    // 127.0.0.11's redirect (network/dns-redirect.ts) needs this in the container's namespace:
    // set by the runtime with the other sysctls, so that the redirect's own process need not.
    if (this.joinsNetworks(record) && this.opts.networks.dnsServerFor(record.endpoints ?? {}) === EMBEDDED_DNS_ADDRESS) {
      spec.linux!.sysctl = { ...spec.linux!.sysctl, [ROUTE_LOCALNET_SYSCTL]: '1' };
    }
    for (const m of record.mounts) if (m.Type === 'bind' && !fs.existsSync(m.Source)) fs.mkdirSync(m.Source, { recursive: true });
    for (const m of record.mounts) {
      if (m.Type !== 'volume' || !m.Name) continue;
      await this.acquireVolume(m.Name, record.id);
      this.opts.events.emit('volume', 'mount', m.Name, { container: record.id, destination: m.Destination, driver: m.Driver ?? 'local', propagation: m.Propagation, 'read/write': String(m.RW) });
      if (m.NoCopy) continue;
      await mounted;
      await this.opts.volumes.copyUp(m.Name, path.join(rootfs, m.Destination), rootfs).catch(() => false);
    }
    let mountinfo: MountinfoEntry[] | undefined;
    const readMountinfo = (): MountinfoEntry[] => (mountinfo ??= parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')));
    const auto = withAutoSlaveFallback(record.mounts, spec.linux?.rootfsPropagation, (p) => fs.realpathSync(p), readMountinfo);
    const rootPropagation = bindPropagation(auto.points, auto.root ?? spec.linux?.rootfsPropagation, (p) => fs.realpathSync(p), readMountinfo) ?? auto.root;
    if (rootPropagation && spec.linux) spec.linux.rootfsPropagation = rootPropagation;
    // All of them in moby's order, the defaults, /etc's files and the user's together: a volume
    // on /etc went on top of /etc/hosts and hid it.
    spec.mounts = [...(spec.mounts ?? []), ...this.etcMounts(record), ...ociMounts(auto.points)].sort(byMountDepth);
    return spec;
  }

  /** /etc/hostname, /etc/hosts and /etc/resolv.conf, generated per container as Docker does. */
  private etcMounts(record: ContainerRecord): NonNullable<Spec['mounts']> {
    const dir = this.etcDir(record.id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    const hostname = record.config.Hostname || record.id.slice(0, 12);
    const network = this.networkMode(record);
    // A namespace of its own: hosts and resolv.conf from its settings (rewritten once its
    // addresses are known). The host's: its files (loopback resolvers are reachable there).
    if (network.kind === 'private') this.writeEtcFiles(record);
    const files: Record<string, string> = {
      hostname: `${hostname}\n`,
      hosts: network.kind === 'host' ? readFileOr('/etc/hosts', '') : '',
      'resolv.conf': network.kind === 'host' ? readFileOr(this.hostResolvConfPath(), '') : '',
    };
    // Another container's namespace: its files, as Docker shares them.
    const source = network.kind === 'container' ? this.etcDir(this.store.get(network.ref).id) : dir;
    const mounts: NonNullable<Spec['mounts']> = [];
    for (const [name, text] of Object.entries(files)) {
      const file = path.join(source, name);
      if (!fs.existsSync(file)) fs.writeFileSync(file, text, { mode: 0o644 });
      if (record.mounts.some((m) => m.Destination === `/etc/${name}`)) continue;
      mounts.push({ destination: `/etc/${name}`, type: 'bind', source: file, options: ['rbind', 'rprivate', record.hostConfig.ReadonlyRootfs ? 'ro' : 'rw'] });
    }
    return mounts;
  }

  private hostResolvConfPath(): string {
    return this.opts.hostResolvConf ?? '/etc/resolv.conf';
  }

  /**
   * /etc/hosts and /etc/resolv.conf of a container with a namespace of its own: written before
   * the spec mounts them, and again (in place, before the program runs) once its addresses are
   * known; each only when its content changes.
   */
  private writeEtcFiles(record: ContainerRecord): void {
    const dir = this.etcDir(record.id); // made by etcMounts at the start
    const networks = record.networks ?? {};
    const links = this.legacyLinks(record, false).map(({ alias, target, ip }) => ({ ip, names: linkHostNames(alias, { name: target.name, hostname: target.config.Hostname || target.id.slice(0, 12) }) }));
    const hosts = hostsFile({
      hostname: record.config.Hostname || record.id.slice(0, 12),
      domainname: record.config.Domainname || undefined,
      ip: Object.values(networks)[0]?.ip,
      links,
      extraHosts: parseExtraHosts(record.hostConfig.ExtraHosts as string[] | undefined, this.opts.networks.hostGateway()),
    });
    const resolv = resolvConf({
      host: readFileOr(this.hostResolvConfPath(), ''),
      embedded: this.opts.networks.dnsServerFor(record.endpoints ?? {}),
      ...dnsSettings(record.hostConfig, this.opts.defaults),
    });
    writeFileIfChanged(path.join(dir, 'hosts'), hosts);
    writeFileIfChanged(path.join(dir, 'resolv.conf'), resolv);
  }

  /**
   * HostConfig.Links of a container on the default bridge (dockerd's registerLinks): each target
   * must exist and not be on the host's network; kept in dockerd's form, "/target:/name/alias".
   * On a user-defined network the docker CLI sends links as the endpoint's, and these are ignored.
   */
  private registerLegacyLinks(hostConfig: ContainerHostConfig, network: NetworkModeKind, name: string): void {
    const given = hostConfig.Links as unknown;
    if (given === undefined || given === null || (Array.isArray(given) && given.length === 0)) return;
    if (!Array.isArray(given)) throw new InvalidArgumentError('must be a list of strings', 'HostConfig.Links');
    if (network.kind === 'host') throw new InvalidArgumentError(HOST_NETWORK_AND_LINKS);
    const mode = (hostConfig.NetworkMode as string | undefined) || 'default';
    if (network.kind !== 'private' || !['default', 'bridge', 'none'].includes(mode)) return;
    hostConfig.Links = given.map((entry) => {
      const link = parseLegacyLink(entry);
      const target = this.store.find(link.target);
      if (!target) throw new InvalidArgumentError(`could not get container for ${link.target}: No such container: ${link.target}`);
      if (target.hostConfig.NetworkMode === 'host') throw new InvalidArgumentError(HOST_NETWORK_AND_LINKS);
      return recordedLink({ ...link, target: target.name.slice(1) }, name);
    });
  }

  /**
   * The legacy links of a container on the default bridge, with their targets' records and
   * addresses there. `strict` (at start): a target not running, gone or not on the default
   * bridge is an error, in dockerd's words; else such a target is left out.
   */
  private legacyLinks(record: ContainerRecord, strict: boolean): Array<{ alias: string; target: ContainerRecord; ip: string }> {
    if (!record.endpoints || !('bridge' in record.endpoints) || this.networkMode(record).kind !== 'private') return [];
    return ((record.hostConfig.Links as string[] | undefined) ?? []).flatMap((entry) => {
      const link = parseLegacyLink(entry);
      const target = this.store.find(link.target);
      const ip = target?.state.status === 'running' ? target.networks?.bridge?.ip : undefined;
      if (target && ip) return [{ alias: link.alias, target, ip }];
      if (!strict) return [];
      if (!target) throw new ConflictError(`Cannot link to a non existing container: /${link.target} AS ${record.name}/${link.alias}`);
      if (target.state.status !== 'running') throw new ConflictError(`Cannot link to a non running container: ${target.name} AS ${record.name}/${link.alias}`);
      throw new ConflictError(`Cannot link to ${target.name}, as it does not belong to the default network`);
    });
  }

  /** The variables the container's legacy links give it (checked: see legacyLinks). */
  private legacyLinkEnv(record: ContainerRecord): string[] {
    return this.legacyLinks(record, true).flatMap(({ alias, target, ip }) =>
      linkEnvironment({ alias, linkingName: record.name, targetIp: ip, exposedPorts: Object.keys(target.config.ExposedPorts ?? {}), targetEnv: target.config.Env ?? [] }),
    );
  }

  /** Connects the attach clients waiting for the start; whether one of them is connected. */
  private async runPendingAttach(id: string, shimDir: string): Promise<boolean> {
    const pending = this.pendingAttach.get(id) ?? [];
    this.pendingAttach.delete(id);
    const connected = await Promise.all(pending.map((connect) => connect(shimDir).catch(() => false)));
    return connected.includes(true);
  }

  private failPendingAttach(id: string): void {
    this.pendingAttach.delete(id);
  }

  // ---- exit --------------------------------------------------------------------------------

  /** Watches a running container's shim for its exit. */
  private monitor(id: string): void {
    if (this.monitored.has(id)) return;
    this.monitored.add(id);
    const dir = this.shimDir(id);
    const client = new ShimClient(dir);
    const done = (exit: ExitInfo | undefined): void => {
      this.monitored.delete(id);
      if (this.closed) return;
      void this.lock(id, () => this.handleExit(id, exit)).catch((err) => process.emitWarning(`container ${id}: exit handling failed: ${(err as Error).message}`));
    };
    client.wait().then(done, () => done(readExit(dir)));
  }

  private async handleExit(id: string, exit: ExitInfo | undefined): Promise<void> {
    const record = this.store.find(id);
    if (!record || (record.state.status !== 'running' && record.state.status !== 'paused')) return;
    const code = exit?.status ?? 255;
    const oomKilled = this.oomKilled(id);
    const unmounted = this.unmountRootfs(id);
    let announceDisconnects: () => void;
    try {
      // Its addresses and ports are free before anyone hears of the exit.
      announceDisconnects = await this.releaseNetworks(id, record);
    } catch (err) {
      await unmounted.catch(() => undefined);
      throw err;
    }
    await this.attachStreamsEnded(id, 2000);
    record.state = { ...record.state, status: 'exited', pid: 0, exitCode: code, finishedAt: exit?.finished ?? nowIso(), oomKilled };
    delete record.networks;
    delete record.ports;
    if (oomKilled) this.opts.events.emit('container', 'oom', id, containerEventAttributes(record));
    this.opts.events.emit('container', 'die', id, containerEventAttributes(record, { exitCode: String(code) }));
    announceDisconnects();
    for (const resolve of this.exitWaiters.get(id) ?? []) resolve(code);
    this.exitWaiters.delete(id);
    // As dockerd (SetStopped wakes the waiters; the record is written and Cleanup runs after):
    // the answers go out first, the rest follows still under the container's lock, so whatever
    // comes next for it (remove, start, cp) waits. A daemon killed meanwhile finds the shim gone
    // and its exit.json at restart, and does this again.
    await new Promise((resolve) => setImmediate(resolve));
    // Within SAVE_SOON_MS, unless a remove comes first (an AutoRemove container's does, below).
    // A daemon killed before it is written finds the exit in exit.json (the shim leaves it)
    // and handles it again; stop and kill wrote stoppedByUser before the signal.
    if (!record.hostConfig.AutoRemove) this.store.saveSoon(record);
    // An --rm container of which nothing runs any more (its PID 1's death ended its pid
    // namespace) is removed, and `wait --condition removed` answered (docker run --rm), before
    // the runtime's record and cgroups go (reconcile sweeps those if we die in between).
    const removeFirst = record.hostConfig.AutoRemove === true && ownPidNamespace(record);
    if (removeFirst) void this.shutdownShim(id); // connected before its directory goes to the trash
    else if (record.hostConfig.AutoRemove) await this.releaseRuntime(id); // what else runs in it goes before the removal
    else this.releaseRuntimeLater(id);
    await unmounted;
    await this.releaseVolumes(record);
    if (!record.hostConfig.AutoRemove) return this.maybeRestart(record);
    await this.removeLocked(id, { force: false, volumes: true });
    if (removeFirst) await this.opts.runtime.delete(id, true).catch(() => undefined);
  }

  /**
   * Whether the kernel's OOM killer killed any of the container's processes during this run
   * (its cgroup is new at each start), as dockerd reports State.OOMKilled from containerd's OOM
   * events, whichever process it was.
   */
  private oomKilled(id: string): boolean {
    try {
      return this.opts.runtime.oomKills(id) > 0;
    } catch {
      return false; // no runtime record or cgroup left (a daemon restarted after the runtime's delete)
    }
  }

  /**
   * A volume the container is starting with: mounted from its driver options unless it is
   * already (see releaseVolumes), with the container counted as one that holds it.
   */
  private async acquireVolume(name: string, id: string): Promise<void> {
    let holders = this.volumeHolders.get(name);
    if (!holders) this.volumeHolders.set(name, (holders = new Set()));
    holders.add(id);
    await this.opts.volumes.mount(name);
  }

  /**
   * The container's run is over: its volumes mounted from driver options are unmounted once
   * nothing holds them, neither a container started by this daemon (starting ones included)
   * nor a running one adopted at a restart. A running container keeps its own copy of the
   * mount in its namespace: the unmount only keeps the host from holding it for nobody.
   */
  private async releaseVolumes(record: ContainerRecord | undefined): Promise<void> {
    for (const m of record?.mounts ?? []) {
      if (m.Type !== 'volume' || !m.Name) continue;
      this.opts.events.emit('volume', 'unmount', m.Name, { container: record!.id, driver: m.Driver ?? 'local' });
      const holders = this.volumeHolders.get(m.Name);
      holders?.delete(record!.id);
      if (holders?.size) continue;
      this.volumeHolders.delete(m.Name);
      const running = this.store.list().some((c) => c.id !== record!.id && (c.state.status === 'running' || c.state.status === 'paused') && c.mounts.some((o) => o.Type === 'volume' && o.Name === m.Name));
      if (running) continue;
      await this.opts.volumes.unmount(m.Name).catch((err: Error) => process.emitWarning(`volume ${m.Name}: ${err.message}`));
    }
  }

  /** After the container's PID 1 is gone: the runtime's state and cgroup, the rootfs mount, the shim, the network. */
  private async cleanupRun(id: string): Promise<void> {
    const unmounted = this.unmountRootfs(id);
    await this.releaseRuntime(id);
    await unmounted;
    await this.releaseVolumes(this.store.find(id));
    // The veths went with the namespace; the addresses are free again, the ports closed.
    (await this.releaseNetworks(id, this.store.find(id)))();
  }

  /** The container's endpoints and ports (NetworkService.release); its `network disconnect` events go when the returned function is called. */
  private releaseNetworks(id: string, record: ContainerRecord | undefined): Promise<() => void> {
    return this.opts.networks.release(id, record?.networks, record?.hostConfig.NetworkMode);
  }


  /** Mounts the container's rootfs from its snapshot's mounts: on idmapped layers with its own user namespace. */
  private async mountRootfs(record: ContainerRecord, mounts: Mount[]): Promise<void> {
    const rootfs = this.rootfsDir(record.id);
    if (record.idRange) await mountIdmapped(mounts, rootfs, this.layersDir(record.id), record.idRange, this.mounter);
    else await this.mounter.mountAll(mounts, rootfs);
  }

  /**
   * Unmounts the container's rootfs (and idmapped layers), in berth-fsop: begun first, as
   * unmounting an overlay syncs its upper layer's file system (1–4 ms here).
   */
  private unmountRootfs(id: string): Promise<void> {
    const rootfs = this.rootfsDir(id);
    const layers = this.layersDir(id);
    const shm = this.shmDir(id);
    return this.mounter
      .unmount(rootfs)
      .catch(() => unmount(rootfs))
      .then(async () => {
        if (fs.existsSync(layers)) unmountIdmapped(layers);
        // A shareable IPC donor's /dev/shm (its joiners hold their own copies of the mount).
        if (fs.existsSync(shm)) await this.mounter.unmount(shm).catch(() => unmount(shm));
      });
  }

  /**
   * The runtime's state and cgroup, then the shim, which is told to go but not waited for (its
   * process is gone ~1 ms later, its files with it): nothing else needs it gone, except a next
   * start of the container, whose shim takes the same directory (startLocked waits for it).
   */
  private async releaseRuntime(id: string): Promise<void> {
    void this.shutdownShim(id);
    await this.opts.runtime.delete(id, true).catch(() => undefined);
  }

  /**
   * releaseRuntime a little later, out of the container's lock: a remove that follows the exit
   * (`docker rm` after `docker wait`) is answered first, rather than after the runtime's record
   * and cgroups (~1.5 ms of this event loop). The shim is told to go now, before a remove puts
   * its directory in the trash. A next start hurries the rest and waits for it; a daemon killed
   * meanwhile leaves it to reconcile, as for any exited container.
   */
  private releaseRuntimeLater(id: string): void {
    void this.shutdownShim(id);
    let now!: () => void;
    const begun = new Promise<void>((resolve) => (now = resolve));
    const timer = setTimeout(now, RUNTIME_RELEASE_DELAY_MS);
    const done = begun.then(() => {
      clearTimeout(timer);
      return this.opts.runtime.delete(id, true).catch(() => undefined);
    });
    const entry = { done, now };
    this.runtimeReleases.set(id, entry);
    void done.then(() => {
      if (this.runtimeReleases.get(id) === entry) this.runtimeReleases.delete(id);
    });
  }

  /** The runtime release begun at the container's last exit (releaseRuntimeLater), hurried and waited for. */
  private async runtimeReleased(id: string): Promise<void> {
    const pending = this.runtimeReleases.get(id);
    if (!pending) return;
    pending.now();
    await pending.done;
  }

  /** Tells the container's shim to go (it lingers otherwise); a next start waits for it (shimShutdowns). */
  private shutdownShim(id: string): Promise<void> {
    const shutdown = new ShimClient(this.shimDir(id)).shutdownAndWait().catch(() => undefined);
    this.shimShutdowns.set(id, shutdown);
    void shutdown.then(() => {
      if (this.shimShutdowns.get(id) === shutdown) this.shimShutdowns.delete(id);
    });
    return shutdown;
  }

  private maybeRestart(record: ContainerRecord): void {
    const policy = record.hostConfig.RestartPolicy;
    const name = policy?.Name ?? '';
    if (record.stoppedByUser || name === '' || name === 'no') return;
    if (name === 'on-failure') {
      if (record.state.exitCode === 0) return;
      if (policy?.MaximumRetryCount && record.restartCount >= policy.MaximumRetryCount) return;
    }
    // Docker's back-off: 100 ms doubling per restart, at most a minute; reset after 10 s of running.
    const ranMs = Date.parse(record.state.finishedAt) - Date.parse(record.state.startedAt);
    if (ranMs >= 10_000) record.restartCount = 0;
    const delay = Math.min(100 * 2 ** record.restartCount, 60_000);
    record.restartCount += 1;
    record.state.status = 'restarting';
    this.store.save(record);
    const timer = setTimeout(() => {
      this.restartTimers.delete(record.id);
      void this.lock(record.id, async () => {
        const current = this.store.find(record.id);
        if (!current || current.state.status !== 'restarting' || current.stoppedByUser) return;
        // Straight from "restarting" to "running": no "exited" in between for a poller to see.
        await this.startLocked(record.id, true);
      }).catch((err) => process.emitWarning(`restart of ${record.id} failed: ${(err as Error).message}`));
    }, delay);
    timer.unref();
    this.restartTimers.set(record.id, timer);
  }

  // ---- stop, kill, restart, pause ----------------------------------------------------------

  /** Stops a running container: its StopSignal, then SIGKILL after the timeout. False if it was not running (304). */
  async stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<boolean> {
    const record = this.store.get(ref);
    if (record.state.status === 'restarting') {
      record.stoppedByUser = true;
      record.state.status = 'exited';
      this.store.save(record);
      return true;
    }
    if (record.state.status !== 'running' && record.state.status !== 'paused') return false;
    record.stoppedByUser = true;
    this.store.save(record);
    const timeout = opts.timeout ?? record.config.StopTimeout ?? STOP_TIMEOUT_DEFAULT;
    const signal = parseSignal(opts.signal ?? record.config.StopSignal, STOP_SIGNAL_DEFAULT);
    const exited = this.nextExit(record.id);
    const client = new ShimClient(this.shimDir(record.id));
    await client.kill(signal).catch(() => undefined);
    this.emitKill(record, signal);
    if (record.state.status === 'paused') this.resume(record); // the signal is delivered as it thaws
    const inTime = timeout < 0 ? await exited.then(() => true) : await Promise.race([exited.then(() => true), sleep(timeout * 1000).then(() => false)]);
    if (!inTime) {
      await client.kill('SIGKILL').catch(() => undefined);
      this.emitKill(record, os.constants.signals.SIGKILL);
      await Promise.race([exited, sleep(10_000)]);
    }
    // dockerd's events of a stop: kill (the stop signal), kill (9, if it came to that), die, stop.
    this.opts.events.emit('container', 'stop', record.id, containerEventAttributes(record));
    return true;
  }

  private emitKill(record: ContainerRecord, signal: number): void {
    this.opts.events.emit('container', 'kill', record.id, containerEventAttributes(record, { signal: String(signal) }));
  }

  async kill(ref: string, signal?: string): Promise<void> {
    const record = this.store.get(ref);
    const number = parseKillSignal(signal); // a bad signal first, as dockerd
    if (record.state.status !== 'running' && record.state.status !== 'paused') throw new ConflictError(`Cannot kill container: ${ref}: Container ${record.id} is not running`);
    if (number === os.constants.signals.SIGKILL) {
      record.stoppedByUser = true;
      this.store.save(record);
    }
    await new ShimClient(this.shimDir(record.id)).kill(number);
    this.emitKill(record, number);
    // As dockerd: a SIGKILL or the container's stop signal to a paused container is meant to
    // end it, so the container is resumed (the signal waits in the frozen cgroup until then).
    // Any other signal stays pending until the user unpauses.
    if (record.state.status === 'paused' && (number === os.constants.signals.SIGKILL || number === parseSignal(record.config.StopSignal, STOP_SIGNAL_DEFAULT))) this.resume(record);
  }

  async restart(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<void> {
    const record = this.store.get(ref);
    try {
      await this.stop(record.id, opts);
      await this.lock(record.id, () => this.startLocked(record.id, false));
    } catch (err) {
      if (err instanceof BerthError) err.message = `Cannot restart container ${ref}: ${err.message}`; // dockerd's words
      throw err;
    }
    this.opts.events.emit('container', 'restart', record.id, containerEventAttributes(record));
  }

  pause(ref: string): void {
    const record = this.store.get(ref);
    if (record.state.status === 'paused') throw new ConflictError(`Container ${record.id} is already paused`);
    if (record.state.status !== 'running') throw new ConflictError(`Container ${record.id} is not running`);
    this.opts.runtime.pause(record.id);
    record.state.status = 'paused';
    this.store.save(record);
    this.opts.events.emit('container', 'pause', record.id, containerEventAttributes(record));
  }

  unpause(ref: string): void {
    const record = this.store.get(ref);
    if (record.state.status !== 'paused') throw new ConflictError(`Container ${record.id} is not paused`);
    this.resume(record);
  }

  /** Thaws a paused container: running again, with dockerd's unpause event. */
  private resume(record: ContainerRecord): void {
    this.opts.runtime.resume(record.id);
    record.state.status = 'running';
    this.store.save(record);
    this.opts.events.emit('container', 'unpause', record.id, containerEventAttributes(record));
  }

  rename(ref: string, newName: string): void {
    const record = this.store.get(ref);
    if (!newName) throw new InvalidArgumentError('Neither old nor new names may be empty', 'name');
    if (`/${newName.replace(/^\//, '')}` === record.name) throw new InvalidArgumentError('Renaming a container with the same name as its current name');
    let full: string;
    try {
      full = this.store.claimableName(`/${newName.replace(/^\//, '')}`, record.id);
    } catch (err) {
      // dockerd's words (the docker CLI shows them as they are).
      if (err instanceof BerthError) err.message = `Error when allocating new name: ${err.message}`;
      throw err;
    }
    const old = record.name;
    this.store.rename(record, full);
    this.opts.events.emit('container', 'rename', record.id, containerEventAttributes({ ...record, name: full }, { oldName: old }));
  }

  /**
   * `docker rm --link parent/alias` (dockerd's rmLink): the parent forgets the link; both
   * containers stay. A container's own name is no link to remove.
   */
  removeLink(ref: string): void {
    this.store.get(ref);
    const linkName = ref.startsWith('/') ? ref : `/${ref}`;
    const parentName = linkName.slice(0, linkName.lastIndexOf('/'));
    if (!parentName) throw new ConflictError('Conflict, cannot remove the default link name of the container');
    const parent = this.store.find(parentName);
    if (!parent) throw new InvalidArgumentError(`Cannot get parent ${parentName} for link name ${linkName}`);
    const kept = ((parent.hostConfig.Links as unknown[] | undefined) ?? []).filter((entry) => recordedLinkParts(entry)?.linkName !== linkName);
    parent.hostConfig.Links = (kept.length ? kept : null) as ContainerHostConfig['Links'];
    this.store.save(parent);
  }

  /** `docker update`: new resource limits (applied at once to a running container's cgroups) and restart policy. */
  update(ref: string, req: UpdateRequest): { Warnings: string[] } {
    const record = this.store.get(ref);
    const result = updateContainer(record, req, { cgroupOf: (id) => this.cgroupOf(id), save: (r) => this.store.save(r), ...(this.opts.facts ? { facts: this.opts.facts } : {}) });
    this.opts.events.emit('container', 'update', record.id, containerEventAttributes(record));
    return result;
  }

  /** The container's cgroups as the runtime recorded them; undefined when it has none (not running). */
  cgroupOf(id: string): CgroupDescriptor | undefined {
    try {
      return this.opts.runtime.store.load(id).cgroup;
    } catch {
      return undefined;
    }
  }

  /** Processes in the container: pid and the command line, via the runtime's cgroup. */
  top(ref: string): number[] {
    const record = this.store.get(ref);
    if (record.state.status !== 'running' && record.state.status !== 'paused') throw new ConflictError(`Container ${record.id} is not running`);
    const pids = this.opts.runtime.ps(record.id);
    this.opts.events.emit('container', 'top', record.id, containerEventAttributes(record)); // as dockerd's ContainerTop
    return pids;
  }

  // ---- wait --------------------------------------------------------------------------------

  private nextExit(id: string): Promise<number> {
    return this.waitIn(this.exitWaiters, id) as Promise<number>;
  }

  /**
   * A waiter in one of the lists (exit, removal), taken out again if `signal` aborts first: then
   * it resolves to undefined. Without that, a client that gives up on a wait (`docker run -d`
   * sends one and goes; a poller with a timeout sends many) would leave its waiter, request and
   * socket behind for as long as the container runs.
   */
  private waitIn(waiters: Map<string, Array<(code: number) => void>>, id: string, signal?: AbortSignal): Promise<number | undefined> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(undefined);
      const onAbort = (): void => {
        const list = waiters.get(id) ?? [];
        const at = list.indexOf(waiter);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0) waiters.delete(id);
        resolve(undefined);
      };
      const waiter = (code: number): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(code);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const list = waiters.get(id) ?? [];
      list.push(waiter);
      waiters.set(id, list);
    });
  }

  /**
   * Resolves when the condition holds: `not-running` (now, if it is not running), `next-exit`,
   * `removed`. Registered synchronously: a wait sent before start sees that start's exit. If
   * `signal` aborts first (the client went away), resolves to undefined and leaves nothing behind.
   */
  wait(ref: string, condition?: WaitCondition): Promise<WaitResult>;
  wait(ref: string, condition: WaitCondition, signal: AbortSignal): Promise<WaitResult | undefined>;
  wait(ref: string, condition: WaitCondition = 'not-running', signal?: AbortSignal): Promise<WaitResult | undefined> {
    const record = this.store.get(ref);
    const id = record.id;
    const running = record.state.status === 'running' || record.state.status === 'paused' || record.state.status === 'restarting';
    if (condition === 'not-running' && !running) return Promise.resolve({ StatusCode: record.state.exitCode, Error: null });
    const waiters = condition === 'removed' ? this.removeWaiters : this.exitWaiters;
    return this.waitIn(waiters, id, signal).then((code) => (code === undefined ? undefined : { StatusCode: code, Error: null }));
  }

  // ---- remove ------------------------------------------------------------------------------

  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const record = this.store.get(ref);
    if (record.state.status === 'paused' && !opts.force) {
      throw new ConflictError(`You cannot remove a paused container ${record.id}. Unpause and then stop the container before attempting removal or force remove`);
    }
    if (record.state.status === 'running' && !opts.force) {
      throw new ConflictError(`You cannot remove a running container ${record.id}. Stop the container before attempting removal or force remove`);
    }
    return this.lock(record.id, () => this.removeLocked(record.id, { force: opts.force ?? false, volumes: opts.volumes ?? false }));
  }

  private async removeLocked(id: string, opts: { force: boolean; volumes: boolean }): Promise<void> {
    const record = this.store.find(id);
    if (!record) return;
    const timer = this.restartTimers.get(id);
    if (timer) clearTimeout(timer);
    this.restartTimers.delete(id);
    const statusBefore = record.state.status;
    const wasRunning = statusBefore === 'running' || statusBefore === 'paused';
    if (wasRunning && !opts.force) throw new ConflictError(`You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
    // Nothing left to clean up (it exited, or never ran): its record goes first, and a crash
    // after that leaves only files that the next start-up removes (a snapshot no record names:
    // reconcile; a bundle: the constructor). Otherwise "removing" is recorded first, and a
    // daemon killed before the end finishes the removal at its next start.
    const cleanedUp = statusBefore === 'exited' || statusBefore === 'created';
    record.stoppedByUser = true;
    record.state.status = 'removing';
    if (cleanedUp) this.store.remove(id);
    else this.store.save(record);
    if (wasRunning) {
      // The exit handler runs after us (we hold the lock): do its work here, and ask the shim
      // for the exit (exitWaiters are only resolved by that handler).
      const shim = new ShimClient(this.shimDir(id));
      const exited = shim.wait().then(
        (exit) => exit.status,
        () => readExit(this.shimDir(id))?.status ?? 137,
      );
      await shim.kill('SIGKILL').catch(() => undefined);
      this.emitKill(record, os.constants.signals.SIGKILL);
      if (statusBefore === 'paused') this.opts.runtime.resume(id); // the SIGKILL waits for the thaw
      const code = await Promise.race([exited, sleep(5000).then(() => 137)]);
      record.state.exitCode = code;
      this.opts.events.emit('container', 'die', id, containerEventAttributes(record, { exitCode: String(code) }));
    }
    // An exited container was cleaned up at its exit; one that never ran has nothing to clean.
    if (!cleanedUp) await this.cleanupRun(id);
    // The files go after we answer: rm of a container waits only for the renames.
    await this.opts.snapshotter.remove(record.snapshotKey, { background: true }).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
    this.trash(this.bundleDir(id));
    if (!cleanedUp) this.store.remove(id);
    if (opts.volumes) {
      for (const m of record.mounts) {
        // Only anonymous volumes go with -v; named ones are the user's (Docker keeps them too).
        if (m.Type !== 'volume' || !m.Name) continue;
        try {
          const v = this.opts.volumes.inspect(m.Name);
          if (v.Labels && 'com.docker.volume.anonymous' in v.Labels && !this.volumeInUse(m.Name)) {
            await this.opts.volumes.remove(m.Name, () => false);
            this.opts.events.emit('volume', 'destroy', m.Name, { driver: 'local' });
          }
        } catch {
          /* already gone */
        }
      }
    }
    this.opts.events.emit('container', 'destroy', id, containerEventAttributes(record));
    for (const resolve of this.exitWaiters.get(id) ?? []) resolve(record.state.exitCode);
    this.exitWaiters.delete(id);
    for (const resolve of this.removeWaiters.get(id) ?? []) resolve(record.state.exitCode);
    this.removeWaiters.delete(id);
  }

  // ---- logs and attach ---------------------------------------------------------------------

  /** The bytes of the container's writable layer (0 if it cannot be read). */
  writableSize(record: Pick<ContainerRecord, 'snapshotKey'>): Promise<number> {
    return this.opts.snapshotter.usage(record.snapshotKey).then(
      (u) => u.size,
      () => 0,
    );
  }

  /**
   * `docker container prune`: the stopped containers (exited, created, dead) that pass the
   * filters (until, label, label!), removed with their writable layers; the bytes those held.
   */
  async prune(filters: Record<string, string[]> = {}): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const matches = pruneMatcher(filters);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const c of this.store.list()) {
      if (!['exited', 'created', 'dead'].includes(c.state.status)) continue;
      if (!matches({ created: c.created, labels: c.config.Labels })) continue;
      const size = await this.writableSize(c);
      try {
        await this.remove(c.id, {});
      } catch (err) {
        if (err instanceof NotFoundError || err instanceof ConflictError) continue; // gone or started meanwhile
        throw err;
      }
      deleted.push(c.id);
      reclaimed += size;
    }
    this.opts.events.emit('container', 'prune', '', { reclaimed: String(reclaimed) });
    return { ContainersDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** Refuses a container whose log driver keeps nothing to read back (none), as dockerd does. */
  checkLogsReadable(ref: string): void {
    if (this.logConfig(this.store.get(ref)).Type === 'none') throw new UnsupportedError('configured logging driver does not support reading');
  }

  /** Log entries so far (since/tail applied); with follow, then new ones until the container stops. */
  async *logs(ref: string, opts: { follow?: boolean; since?: Date; until?: Date; tail?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    const record = this.store.get(ref);
    this.checkLogsReadable(record.id);
    const file = this.logFile(record);
    const until = opts.until?.getTime();
    const before = (e: LogEntry): boolean => until === undefined || Date.parse(e.time.replace(/(\.\d{3})\d+/, '$1')) < until;
    // Follow through an open descriptor, by what is appended: it works the same across daemon
    // restarts, needs nothing from the shim, and reads to the end even when the container is
    // removed (and its log file unlinked) while we wait: `docker-py run` removes before it reads.
    let fd: number | undefined;
    let offset = 0;
    const open = (): void => {
      try {
        fd = fs.openSync(file, 'r');
        offset = 0;
      } catch {
        /* no log yet */
      }
    };
    open();
    // What is there now is read through the descriptor that follows it, up to its last whole
    // line, and following starts from exactly there: a line written meanwhile is neither lost nor
    // read twice (reading by path after taking the size sent a fresh line twice).
    let current: string | undefined;
    if (fd !== undefined) {
      const head = Buffer.alloc(fs.fstatSync(fd).size);
      const got = fs.readSync(fd, head, 0, head.length, 0);
      offset = head.subarray(0, got).lastIndexOf(0x0a) + 1;
      current = head.subarray(0, offset).toString('utf8');
    }
    try {
      for (const entry of readLog(file, { since: opts.since, tail: opts.tail, current })) if (before(entry)) yield entry;
      if (!opts.follow) return;
      let pending = '';
      for (;;) {
        if (opts.signal?.aborted) return;
        if (fd === undefined) open();
        const size = fd === undefined ? 0 : fs.fstatSync(fd).size;
        if (size < offset) offset = 0; // truncated
        if (fd !== undefined && size > offset) {
          const buffer = Buffer.alloc(size - offset);
          fs.readSync(fd, buffer, 0, buffer.length, offset);
          offset = size;
          pending += buffer.toString('utf8');
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const line of lines) {
            if (!line) continue;
            const entry = JSON.parse(line) as LogEntry;
            if (until !== undefined && !before(entry)) return;
            yield entry;
          }
          continue;
        }
        const current = this.store.find(record.id);
        if (!current || !['running', 'paused', 'restarting', 'created'].includes(current.state.status)) return;
        // A new log file (the shim rotated it, or a start made a fresh one): read it from its start.
        if (fd !== undefined && fs.statSync(file, { throwIfNoEntry: false })?.ino !== fs.fstatSync(fd).ino) {
          fs.closeSync(fd);
          fd = undefined;
          open();
        }
        await sleep(50);
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /**
   * Connects to the container's output from now on (and, with `stdin`, to its input). Before
   * start, the connection is made just before the container's program runs, so nothing is
   * missed (`docker run` attaches first). `connected` resolves with the shim's stream (Docker's
   * frames; see ShimClient.stream), or undefined when the container is not going to run.
   */
  async attach(ref: string, opts: { stdin?: boolean } = {}): Promise<AttachSession> {
    const record = this.store.get(ref);
    const stdin = opts.stdin === true && record.config.OpenStdin === true;
    let closed = false;
    let socket: net.Socket | undefined;
    let settle!: (s: net.Socket | undefined) => void;
    const connected = new Promise<net.Socket | undefined>((resolve) => (settle = resolve));
    const waitingForStart = new AbortController(); // ends the wait for the container's removal below
    const connect = async (shimDir: string): Promise<boolean> => {
      waitingForStart.abort();
      if (closed) {
        settle(undefined);
        return false;
      }
      try {
        socket = await new ShimClient(shimDir).stream({ stdin, once: stdin && record.config.StdinOnce === true && record.config.Tty !== true });
        if (closed) socket.destroy();
        settle(closed ? undefined : socket);
        return true; // the shim's hold ended even if closed since
      } catch {
        settle(undefined);
        return false;
      }
    };
    const status = record.state.status;
    if (status === 'running' || status === 'paused') await connect(this.shimDir(record.id));
    else if (status === 'created' || status === 'exited' || status === 'restarting') {
      const list = this.pendingAttach.get(record.id) ?? [];
      list.push(connect);
      this.pendingAttach.set(record.id, list);
      // The container may never start: end the attach if it is removed.
      void this.wait(record.id, 'removed', waitingForStart.signal).then((removed) => removed && settle(undefined));
    } else settle(undefined);
    this.opts.events.emit('container', 'attach', record.id, containerEventAttributes(record));
    return {
      stdin,
      connected,
      forwarding: (copy) => {
        this.trackAttachStream(record.id, copy);
        return copy;
      },
      close: () => {
        closed = true;
        socket?.destroy();
        settle(undefined);
        // A client gone before the start leaves nothing waiting for it.
        waitingForStart.abort();
        const pending = this.pendingAttach.get(record.id);
        if (pending?.includes(connect)) {
          pending.splice(pending.indexOf(connect), 1);
          if (pending.length === 0) this.pendingAttach.delete(record.id);
        }
      },
    };
  }

  private trackAttachStream(id: string, copy: Promise<unknown>): void {
    const streams = this.attachStreams.get(id) ?? new Set<Promise<void>>();
    this.attachStreams.set(id, streams);
    const ended = copy.then(
      () => undefined,
      () => undefined,
    );
    streams.add(ended);
    void ended.then(() => {
      streams.delete(ended);
      if (streams.size === 0 && this.attachStreams.get(id) === streams) this.attachStreams.delete(id);
    });
  }

  /**
   * Resolves once the copies of the container's attach streams to their clients have ended (the
   * shim ends a stream after the last output), at most after `timeoutMs`: as dockerd's StreamConfig.Wait before SetStopped, so that `wait` never answers
   * before an attached client has the output (dockerode's run() reads it once wait answers).
   */
  private async attachStreamsEnded(id: string, timeoutMs: number): Promise<void> {
    const streams = this.attachStreams.get(id);
    if (!streams || streams.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...streams]), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Records the latest health check state (HealthMonitor). */
  setHealth(id: string, health: NonNullable<ContainerRecord['state']['health']>): void {
    const record = this.store.find(id);
    if (!record || (record.state.status !== 'running' && record.state.status !== 'paused')) return;
    record.state.health = health;
    this.store.save(record);
  }

  /** Sets the container's terminal size (Docker's resize; ignored without a terminal, as dockerd). */
  async resize(ref: string, rows: number, cols: number): Promise<void> {
    const record = this.store.get(ref);
    if (record.state.status !== 'running' && record.state.status !== 'paused') throw new ConflictError(`Container ${record.id} is not running`);
    if (record.config.Tty !== true) return;
    await new ShimClient(this.shimDir(record.id)).resize(rows, cols);
  }

  // ---- daemon restart ----------------------------------------------------------------------

  /**
   * After a daemon (re)start: containers whose shim lives are watched again; those whose shim
   * is gone are marked exited with the status it recorded, and their leftovers cleaned up.
   * Interrupted creates/removes are finished.
   */
  async reconcile(): Promise<void> {
    // A create killed between preparing the writable layer and saving the record left a
    // snapshot nothing refers to.
    for (const snapshot of this.opts.snapshotter.list()) {
      if (snapshot.kind === 'active' && /^[a-f0-9]{64}$/.test(snapshot.key) && !this.store.has(snapshot.key)) {
        await this.opts.snapshotter.remove(snapshot.key).catch(() => undefined);
      }
    }
    for (const record of this.store.list()) {
      const id = record.id;
      const status: ContainerStatus = record.state.status;
      if (status === 'removing') {
        await this.lock(id, () => this.removeLocked(id, { force: true, volumes: false }));
        continue;
      }
      if (status === 'running' || status === 'paused') {
        if (shimPid(this.shimDir(id)) !== undefined) {
          this.monitor(id);
          // The previous daemon's port reservations died with it (its NAT rules did not): the same host ports again.
          if (record.networks && record.ports) {
            await this.opts.networks.republish(id, record.networks, record.ports).catch((err) => process.emitWarning(`container ${id}: cannot reserve its ports again: ${(err as Error).message}`));
          }
          continue;
        }
        await this.lock(id, () => this.handleExit(id, readExit(this.shimDir(id))));
        continue;
      }
      // Not running by the record, but a daemon killed inside start may have left a container
      // that runs (start done, record not saved yet: adopt it) or waits for start (remove it).
      if (shimPid(this.shimDir(id)) !== undefined && this.runtimeStatus(id) === 'running') {
        record.state = { ...newState(), status: 'running', pid: this.opts.runtime.state(id).pid ?? 0, startedAt: nowIso(), finishedAt: record.state.finishedAt };
        record.stoppedByUser = false; // it was started: by the user, or by its restart policy
        this.store.save(record);
        this.monitor(id);
        continue;
      }
      // Or one that started and has exited since: its exit.json is newer than the record's exit.
      // Not after a start that failed (the record says so): the shim's exit.json is that one's.
      const exit = readExit(this.shimDir(id));
      if (exit && exit.finished !== record.state.finishedAt && (status === 'created' || status === 'exited') && !record.state.error) {
        record.state = { ...newState(), status: 'running', startedAt: this.runtimeCreated(id) ?? exit.finished, finishedAt: record.state.finishedAt };
        record.stoppedByUser = false;
        await this.lock(id, () => this.handleExit(id, exit));
        continue;
      }
      const unmounted = this.unmountRootfs(id);
      await this.releaseRuntime(id);
      await unmounted;
      if (status === 'restarting') this.maybeRestart({ ...record, restartCount: Math.max(0, record.restartCount - 1) });
      else if (!record.stoppedByUser && (record.hostConfig.RestartPolicy?.Name === 'always' || record.hostConfig.RestartPolicy?.Name === 'unless-stopped') && record.state.startedAt !== ZERO_TIME) {
        this.maybeRestart(record);
      }
    }
    // A runtime record (and cgroups) of a container that is gone: a daemon killed between the
    // removal of an auto-removed container and its runtime's delete (see handleExit).
    for (const { id } of this.opts.runtime.list()) {
      if (/^[a-f0-9]{64}$/.test(id) && !this.store.has(id)) await this.opts.runtime.delete(id, true).catch(() => undefined);
    }
    // Addresses of containers that died while we were away freed, rules made right, DNS up.
    await this.opts.networks.reconcile();
  }

  /** When the runtime made the container (close to its start), if it has its record. */
  private runtimeCreated(id: string): string | undefined {
    try {
      return this.opts.runtime.store.load(id).created;
    } catch {
      return undefined;
    }
  }

  /** The containers as the network service sees them. */
  networkMembers(): NetworkMember[] {
    // A starting container counts from the moment it has endpoints: its program may ask the DNS
    // server before the record says "running".
    return this.store.list().map((c) => ({ id: c.id, name: c.name.slice(1), running: c.state.status === 'running' || c.state.status === 'paused' || Object.keys(c.networks ?? {}).length > 0, endpoints: c.endpoints ?? {}, networks: c.networks ?? {}, dns: dnsSettings(c.hostConfig, this.opts.defaults).dns ?? [] }));
  }

  /** `docker network connect`: on the network from now on, and at once if it runs. */
  connect(ref: string, networkRef: string, config: EndpointConfig = {}): Promise<void> {
    const id = this.store.get(ref).id;
    return this.lock(id, async () => {
      const record = this.store.get(id);
      const network = this.opts.networks.get(networkRef);
      const mode = record.hostConfig.NetworkMode ?? '';
      const kind = this.networkMode(record).kind;
      // dockerd's answers (moby's updateNetworkSettings): a namespace shared with another
      // container or the host joins nothing else; "none" is a private mode of its own, unless
      // the container left it while stopped (the way to move a created container to a network).
      if (network.configOnly) throw new ForbiddenError(CONFIG_ONLY_ENDPOINT);
      if (kind === 'container') throw new ForbiddenError(SHARED_NETWORK);
      if (network.driver === 'host') {
        if (kind === 'host') return; // already there
        throw new ForbiddenError(HOST_NETWORK);
      }
      if (kind === 'host') throw new ForbiddenError(SHARED_NETWORK);
      if ((mode === 'none' && !record.leftModeNetwork) || network.driver === 'null') throw new ForbiddenError('container cannot be connected to multiple networks with one of the networks in private (none) mode');
      if (network.driver !== 'bridge') throw new ForbiddenError(HOST_NETWORK);
      const running = record.state.status === 'running' || record.state.status === 'paused';
      // A container that does not run only has the network in its config: dockerd replaces that.
      if (running && record.endpoints?.[network.name]) throw new ForbiddenError(`endpoint with name ${record.name.slice(1)} already exists in network ${network.name}`);
      const endpoint = this.opts.networks.endpointConfig(network, config);
      if (running) {
        const state = this.opts.networks.connectRunning({ id, pid: record.state.pid, networks: record.networks ?? {} }, network, endpoint);
        record.networks = { ...(record.networks ?? {}), [network.name]: state };
        await this.opts.networks.redirectDns(record.state.pid, Object.keys(record.networks));
      }
      // dockerd's connect gives the endpoint the short ID alias, running or not.
      record.endpoints = { ...(record.endpoints ?? {}), [network.name]: { ...endpoint, berthJoined: true } };
      // Joining a user-defined network brings the embedded DNS server, as dockerd's sandbox
      // rebuilds its resolv.conf when its resolver starts.
      if (record.networks) this.writeEtcFiles(record);
      this.store.save(record);
    });
  }

  /** `docker network disconnect`, as dockerd's DisconnectFromNetwork. */
  disconnect(ref: string, networkRef: string, force = false): Promise<void> {
    const id = this.store.get(ref).id;
    return this.lock(id, async () => {
      const record = this.store.get(id);
      const running = record.state.status === 'running' || record.state.status === 'paused';
      const found = this.opts.networks.find(networkRef);
      if (!running || (!found && force)) {
        // Only the config changes: the network is left by name, even one removed since (a
        // network no running container uses can be removed).
        const name = found?.name ?? networkRef;
        const mode = record.hostConfig.NetworkMode ?? '';
        if ((mode === 'none' || mode === 'host') && name === mode) {
          // Its mode's own network: "none" left can be followed by a connect (host's cannot).
          if (mode === 'none') record.leftModeNetwork = true;
          this.store.save(record);
          return;
        }
        if (!record.endpoints?.[name]) throw new ForbiddenError(`container ${record.id} is not connected to the network ${name}`); // dockerd's words
        delete record.endpoints[name];
        this.store.save(record);
        return;
      }
      const network = this.opts.networks.get(networkRef);
      if (!record.endpoints?.[network.name]) throw new ForbiddenError(`container ${record.id} is not connected to network ${network.name}`);
      const endpoint = record.networks?.[network.name];
      if (endpoint) {
        this.opts.networks.disconnectRunning(id, network, endpoint);
        delete record.networks![network.name];
        await this.opts.networks.redirectDns(record.state.pid, Object.keys(record.networks!));
      }
      delete record.endpoints[network.name];
      this.store.save(record);
    });
  }

  private runtimeStatus(id: string): string | undefined {
    try {
      return this.opts.runtime.state(id).status;
    } catch {
      return undefined;
    }
  }

  /** Stops watching (the containers keep running under their shims). */
  close(): void {
    this.closed = true;
    // Begun here, done if the process lives on long enough; else the next start-up's
    // reconcile removes what is left (runtime record, cgroups, mount) and the shims give up.
    for (const id of this.prepared.ids()) void this.abortPrepared(id);
    this.store.flush();
    this.mounter.close();
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
  }
}

/**
 * The image's config folded into the container's, as moby's merge() does at create: what the
 * request left empty comes from the image; Env, Labels, ExposedPorts and Volumes are joined
 * (the request wins). Inspect shows the result; the spec is built from it.
 */
function mergeImageConfig(config: ContainerConfig, image: NonNullable<ReturnType<typeof parseImageConfig>['config']>): ContainerConfig {
  const merged: ContainerConfig = { ...config };
  if (!merged.User && image.User) merged.User = image.User;
  if (!merged.WorkingDir && image.WorkingDir) merged.WorkingDir = image.WorkingDir;
  if (!merged.StopSignal && image.StopSignal) merged.StopSignal = image.StopSignal;
  const keys = new Set((merged.Env ?? []).map((e) => e.split('=')[0]));
  merged.Env = [...(merged.Env ?? []), ...(image.Env ?? []).filter((e) => !keys.has(e.split('=')[0]))];
  if (image.Labels) merged.Labels = { ...image.Labels, ...(merged.Labels ?? {}) };
  if (image.ExposedPorts) merged.ExposedPorts = { ...image.ExposedPorts, ...(merged.ExposedPorts ?? {}) };
  // moby: the request's volumes if it names any (with the image's), else the image's (none: null).
  merged.Volumes = merged.Volumes && Object.keys(merged.Volumes).length ? { ...(image.Volumes ?? {}), ...merged.Volumes } : (image.Volumes ?? null);
  if (merged.Healthcheck === undefined && image.Healthcheck) merged.Healthcheck = image.Healthcheck;
  return merged;
}

export function checkRestartPolicy(host: ContainerHostConfig): void {
  const policy = host.RestartPolicy;
  if (!policy) return;
  if (typeof policy !== 'object') throw new InvalidArgumentError('must be an object', 'HostConfig.RestartPolicy');
  const name = policy.Name ?? '';
  // moby's (v25) ValidateRestartPolicy, in its words.
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw new InvalidArgumentError(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  const count = policy.MaximumRetryCount ?? 0;
  if (!Number.isInteger(count)) throw new InvalidArgumentError('must be an integer', 'HostConfig.RestartPolicy.MaximumRetryCount');
  if (name !== 'on-failure' && count !== 0) throw new InvalidArgumentError(`invalid restart policy: maximum retry count can only be used with 'on-failure'${count < 0 ? ' and cannot be negative' : ''}`);
  if (count < 0) throw new InvalidArgumentError('invalid restart policy: maximum retry count cannot be negative');
}

/** Whether the container's processes live in a pid namespace of its own (PID 1's death ends them all). */
function ownPidNamespace(record: ContainerRecord): boolean {
  const mode = record.hostConfig.PidMode;
  return !mode || mode === 'private';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
