/**
 * The lifecycle manager (containerd's role): one object holding the content and image stores,
 * the snapshotter, volumes, the runtime and the container service, under a data root
 * (persistent) and an exec root (volatile). The Docker API layer (src/api) calls it; it knows
 * nothing of HTTP, so a CRI front end can call it too.
 *
 *   <dataRoot>/content      blobs (LocalContentStore)      <execRoot>/runtime   berth-oci state
 *   <dataRoot>/images       names → images (ImageStore)    <execRoot>/c/<id24>  bundle, rootfs, shim
 *   <dataRoot>/snapshots    layers and writable layers
 *   <dataRoot>/volumes      named and anonymous volumes
 *   <dataRoot>/containers   one record per container
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readFileOr } from '../common/fsutil.js';
import { nativeBinary } from '../common/paths.js';
import { ImageStore } from '../images/image-store.js';
import { LocalContentStore } from '../images/content-store.js';
import { CAPABILITIES } from '../runtime/plan/tables.js';
import { Runtime } from '../runtime/runtime.js';
import { EmbeddedDns } from '../network/dns.js';
import { nameservers } from '../network/etc-files.js';
import { HostNat, natChainPrefix } from '../network/nat.js';
import { PortPublisher } from '../network/ports.js';
import type { AddressPool } from '../network/ipam.js';
import type { Mirror } from '../images/registry/mirrors.js';
import { dnsRedirectAvailable } from '../network/dns-redirect.js';
import { NetnsPool } from '../shim/spawner.js';
import { OverlaySnapshotter } from '../storage/snapshotter.js';
import { VolumeStore } from '../storage/volumes.js';
import { engineBuildBackend } from './build/backend.js';
import { Builder } from './build/builder.js';
import { ExecService } from './containers/exec.js';
import { HealthMonitor } from './containers/health.js';
import type { ContainerDefaults } from './containers/defaults.js';
import type { EffectiveLogConfig } from './containers/logconfig.js';
import { ContainerService } from './containers/service.js';
import { EventBus } from './events.js';
import { type DefaultBridge, NetworkService } from './networks/service.js';
import { ImageService, type TransferLimits } from './images.js';
import { blockDeviceNumbers } from './host-devices.js';
import type { HostFacts } from './spec/container-spec.js';
import { parseSeccompProfile } from './spec/seccomp-default.js';

export interface EngineOptions {
  dataRoot: string;
  execRoot: string;
  /** Registries reached over plain HTTP ("host:port"). */
  insecureRegistries?: string[];
  /** Docker Hub's mirrors, asked first for docker.io images (dockerd's --registry-mirror). */
  registryMirrors?: Mirror[];
  /** Blobs moved at once by a pull or a push, attempts per download (dockerd's --max-concurrent-downloads...). */
  transfers?: TransferLimits;
  /** Parent cgroup of the containers (default "/berth"). */
  cgroupParent?: string;
  /** Every container in its own user namespace unless UsernsMode is "host". */
  usernsRemap?: boolean;
  /** The log driver and options of containers that name none (dockerd's --log-driver/--log-opt). */
  logConfig?: EffectiveLogConfig;
  /** Defaults for containers: DNS, ulimits, /dev/shm size, IPC and cgroup namespace modes (dockerd's --dns, --default-ulimit...). */
  containerDefaults?: ContainerDefaults;
  /** The default bridge network (dockerd's --bridge/--bip, and its --icc, --ip-masq, --ip, --mtu, --fixed-cidr); none: containers get only lo. */
  bridge?: DefaultBridge;
  /** Where networks made without a subnet get one (dockerd's default-address-pools). */
  addressPools?: AddressPool[];
  /** Driver options new networks get unless they set them, by driver (dockerd's default-network-opts). */
  defaultNetworkOptions?: Record<string, Record<string, string>>;
  /** The daemon's labels, as `docker info` shows them (dockerd --label). */
  labels?: string[];
  /** Where the daemon's seccomp profile came from (its --seccomp-profile), as `docker info` names it. */
  seccompProfileSource?: string;
  /** The host's resolver configuration (default /etc/resolv.conf): containers' resolv.conf and the embedded DNS server's upstreams. */
  hostResolvConf?: string;
  /** Kernel NAT and filter rules for networks and published ports (dockerd's --iptables; default true). */
  iptables?: boolean;
  /** false: leave net.ipv4.ip_forward to the host (dockerd's --ip-forward=false); default: turned on. */
  ipForward?: boolean;
}

export class Engine {
  readonly options: EngineOptions;
  readonly events = new EventBus();
  readonly content: LocalContentStore;
  readonly images: ImageStore;
  readonly snapshotter: OverlaySnapshotter;
  readonly volumes: VolumeStore;
  readonly runtime: Runtime;
  /** Network namespaces made ahead for the containers' starts (see NetnsPool). */
  private readonly netnsPool = new NetnsPool();
  readonly containers: ContainerService;
  readonly execs: ExecService;
  readonly health: HealthMonitor;
  /** Pull, push, load, save, import, commit, remove, prune: what the image routes call. */
  readonly imageService: ImageService;
  readonly facts: HostFacts;
  readonly startedAt = new Date();
  readonly networks: NetworkService;
  /** Docker's legacy builder (`docker build`). */
  readonly builder: Builder;

  private constructor(options: EngineOptions) {
    this.options = options;
    const data = path.resolve(options.dataRoot);
    const exec = path.resolve(options.execRoot);
    fs.mkdirSync(data, { recursive: true, mode: 0o711 });
    // 0711: a container in its own user namespace must pass through to its bundle (runc's rule).
    fs.mkdirSync(exec, { recursive: true, mode: 0o711 });
    fs.chmodSync(exec, 0o711);
    this.content = new LocalContentStore(path.join(data, 'content'));
    this.images = new ImageStore(path.join(data, 'images'), this.content);
    this.snapshotter = new OverlaySnapshotter(path.join(data, 'snapshots'));
    this.volumes = new VolumeStore(path.join(data, 'volumes'), { inUse: (name) => this.containers.volumeInUse(name) });
    this.runtime = new Runtime({ root: path.join(exec, 'runtime'), keepCgroupParents: true, netns: this.netnsPool });
    this.facts = hostFacts();
    // The daemon's security defaults ride with the host's facts into every container's spec.
    const defaults = options.containerDefaults ?? {};
    if (defaults.noNewPrivileges) this.facts.noNewPrivileges = true;
    if (defaults.seccompProfile !== undefined) {
      this.facts.seccompProfile = defaults.seccompProfile;
      // A bad profile is the daemon's error at start, not every container's.
      if (!['unconfined', 'builtin'].includes(defaults.seccompProfile)) parseSeccompProfile(defaults.seccompProfile, { capabilities: this.facts.capabilities ?? [], arch: this.facts.arch ?? process.arch, kernel: this.facts.kernel, field: 'seccomp-profile' });
    }
    // Published ports go through kernel NAT; with --iptables=false, through userland forwarding.
    const publisher = new PortPublisher({ proxy: options.iptables === false });
    const hostResolvConf = options.hostResolvConf ?? '/etc/resolv.conf';
    // Names on user-defined networks; everything else to the container's --dns servers or the
    // host's resolvers (loopback ones included: the daemon is in the host's namespace).
    const dns = new EmbeddedDns({
      lookup: (name, client) => this.networks.lookup(name, client),
      reverse: (ip, client) => this.networks.reverse(ip, client),
      upstreams: (client) => this.networks.dnsServersOf(client) ?? nameservers(readFileOr(hostResolvConf)),
    });
    this.networks = new NetworkService({
      dir: path.join(data, 'network'),
      defaultBridge: options.bridge,
      dnsRedirect: dnsRedirectAvailable(),
      ...(options.addressPools ? { addressPools: options.addressPools } : {}),
      ...(options.defaultNetworkOptions ? { defaultOptions: options.defaultNetworkOptions } : {}),
      events: this.events,
      dns,
      ports: publisher,
      ...(options.iptables !== false ? { nat: new HostNat(undefined, natChainPrefix(data), options.ipForward !== false) } : {}),
    });
    this.containers = new ContainerService({
      containersDir: path.join(data, 'containers'),
      execRoot: exec,
      runtime: this.runtime,
      images: this.images,
      content: this.content,
      snapshotter: this.snapshotter,
      volumes: this.volumes,
      events: this.events,
      facts: this.facts,
      cgroupParent: options.cgroupParent,
      usernsRemap: options.usernsRemap,
      logConfig: options.logConfig,
      defaults: options.containerDefaults,
      networks: this.networks,
      hostResolvConf: options.hostResolvConf,
    });
    this.networks.members = () => this.containers.networkMembers();
    this.execs = new ExecService(this.containers, this.runtime, this.events, this.facts.capabilities ?? []);
    this.health = new HealthMonitor(this.containers, this.execs, this.events);
    this.events.subscribe((e) => {
      if (e.Type !== 'container' || e.Action !== 'destroy') return;
      this.execs.forgetContainer(e.Actor.ID);
      // The layers of a deleted image that this container kept go with it (if that fails, at the
      // next start: Engine.open releases every layer no image needs).
      this.imageService.releaseLayers().catch(() => undefined);
    });
    this.imageService = new ImageService({
      content: this.content,
      images: this.images,
      snapshotter: this.snapshotter,
      containers: this.containers,
      events: this.events,
      insecureRegistries: options.insecureRegistries ?? [],
      registryMirrors: options.registryMirrors ?? [],
      ...(options.transfers ? { transfers: options.transfers } : {}),
      tmpDir: path.join(data, 'tmp-images'),
    });
    this.builder = new Builder(engineBuildBackend(this.containers, this.imageService), path.join(data, 'tmp-build'));
  }

  /** Opens the stores and reconciles with what survived the last daemon (see ContainerService.reconcile). */
  static async open(options: EngineOptions): Promise<Engine> {
    const engine = new Engine(options);
    await engine.containers.reconcile();
    await engine.imageService.releaseLayers({ all: true });
    // Containers that run on after a daemon restart are probed again.
    for (const c of engine.containers.list()) if (c.state.status === 'running') engine.health.begin(c.id);
    return engine;
  }

  /** The daemon's ID (`docker info`, its events): made once per data root. */
  daemonId(): string {
    const file = path.join(this.options.dataRoot, 'engine-id');
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      const id = crypto.randomUUID();
      fs.writeFileSync(file, id);
      return id;
    }
  }

  /**
   * dockerd's reload (SIGHUP): the settings that may change while containers run, here the
   * daemon's labels and the registries' (insecure ones, mirrors, transfer limits); a "daemon
   * reload" event names them, as dockerd's does.
   */
  reload(change: Pick<EngineOptions, 'labels' | 'insecureRegistries' | 'registryMirrors' | 'transfers'>, attributes: Record<string, string>): void {
    this.options.labels = change.labels;
    this.options.insecureRegistries = change.insecureRegistries;
    this.options.registryMirrors = change.registryMirrors;
    this.options.transfers = change.transfers;
    this.imageService.reconfigure({ insecureRegistries: change.insecureRegistries ?? [], registryMirrors: change.registryMirrors ?? [], ...(change.transfers ? { transfers: change.transfers } : {}) });
    this.events.emit('daemon', 'reload', this.daemonId(), attributes);
  }

  close(): void {
    this.netnsPool.close();
    void this.networks.close();
    this.health.close();
    this.containers.close();
  }
}

/** What containerSpec needs to know about this host. */
function hostFacts(): HostFacts {
  const read = (file: string): string | undefined => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  // Unified (v2) only when /sys/fs/cgroup itself is cgroup2; hybrid counts as v1, as dockerd does.
  let cgroupVersion: 1 | 2 = 1;
  try {
    cgroupVersion = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
  } catch {
    /* keep 1 */
  }
  const sysctls = ['net.ipv4.ip_unprivileged_port_start', 'net.ipv4.ping_group_range'].filter((s) => fs.existsSync(`/proc/sys/${s.replace(/\./g, '/')}`));
  // "ALL" capabilities (--privileged, --cap-add ALL) means the daemon's bounding set, as for
  // dockerd: asking for more makes capset() fail (root here lacks CAP_SYS_RESOURCE).
  const bounding = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)/m.exec(read('/proc/self/status') ?? '')?.[1] ?? '0'}`);
  const capabilities = Object.entries(CAPABILITIES)
    .filter(([, bit]) => (bounding >> BigInt(bit)) & 1n)
    .sort(([, a], [, b]) => a - b)
    .map(([name]) => name);
  // --init: berth-init, static, bind-mounted at /sbin/docker-init.
  const initPath = nativeBinary('berth-init');
  // blkio weights need the kernel's proportional I/O scheduling (v1 blkio.weight, v2 io.weight or io.bfq.weight).
  const blkioWeight = ['/sys/fs/cgroup/blkio/blkio.weight', '/sys/fs/cgroup/blkio/blkio.bfq.weight', '/sys/fs/cgroup/io.weight', '/sys/fs/cgroup/io.bfq.weight'].some((f) => fs.existsSync(f));
  // NanoCpus are checked against the CPUs this process may run on, as dockerd's sysinfo.NumCPU().
  const cpuCount = os.availableParallelism();
  // CpusetCpus and CpusetMems are checked against the root cpuset's, as dockerd's sysinfo.
  const cpuset = (name: string): string | undefined => read(cgroupVersion === 2 ? `/sys/fs/cgroup/cpuset.${name}.effective` : `/sys/fs/cgroup/cpuset/cpuset.${name}`)?.trim() || undefined;
  const cpusetCpus = cpuset('cpus');
  const cpusetMems = cpuset('mems');
  // dockerd's apparmor.HostSupports(): without it, containers' AppArmor profiles are left out.
  const apparmor = read('/sys/module/apparmor/parameters/enabled')?.trim() === 'Y';
  return { cgroupVersion, kernel: os.release(), sysctls, blkioWeight, apparmor, deviceNumbers: blockDeviceNumbers, cpuCount, ...(cpusetCpus ? { cpusetCpus } : {}), ...(cpusetMems ? { cpusetMems } : {}), ...(capabilities.length ? { capabilities } : {}), ...(fs.existsSync(initPath) ? { initPath } : {}) };
}
