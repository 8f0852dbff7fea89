/** `/_ping`, `/version`, `/info`, `/events`, `/system/df`. */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

import type { Engine } from '../../engine/engine.js';
import type { EngineEvent } from '../../engine/events.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { commonHeaders } from '../context.js';
import type { Router } from '../router.js';
import { API_VERSION, DOCKER_COMPAT_VERSION, MIN_API_VERSION } from '../versions.js';
import { containerSizes, listedSizes, parseTime } from './containers.js';
import { imageSummary } from '../present/images.js';
import { containerSummary } from '../present/containers.js';
import { volumeView } from '../present/volumes.js';
import { directoryUsage, layerBytes } from '../../storage/snapshotter.js';
import { insecureEntryHost } from '../../images/registry/index.js';

const BERTH_VERSION = '0.1.0';

/** When this build was made (this file's time), in dockerd's two spellings of its BuildTime. */
const BUILT = ((): { rfc3339: string; ctime: string } => {
  let t: Date;
  try {
    t = fs.statSync(fileURLToPath(import.meta.url)).mtime;
  } catch {
    return { rfc3339: '', ctime: '' };
  }
  const iso = t.toISOString(); // 2026-05-07T21:09:36.123Z
  const day = t.toUTCString().slice(0, 3); // Thu
  const month = t.toUTCString().slice(8, 11); // May
  return {
    rfc3339: `${iso.slice(0, 19)}.${iso.slice(20, 23)}000000+00:00`,
    ctime: `${day} ${month} ${String(t.getUTCDate()).padStart(2, ' ')} ${iso.slice(11, 19)} ${t.getUTCFullYear()}`,
  };
})();

/** A boolean sysctl of the host (false when the file is absent, e.g. br_netfilter not loaded). */
function sysctlOn(name: string): boolean {
  try {
    return fs.readFileSync(`/proc/sys/${name}`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

function pingHeaders(): Record<string, string> {
  // Builder-Version 1: the legacy builder (the CLI then sends POST /build, no BuildKit session).
  return { ...commonHeaders(), 'Builder-Version': '1', 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache', 'Content-Type': 'text/plain; charset=utf-8' };
}

function eventMatches(e: EngineEvent, filters: Record<string, string[]>): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    const attrs = e.Actor.Attributes;
    switch (key) {
      case 'type':
        if (!values.includes(e.Type)) return false;
        break;
      case 'event':
        if (!values.includes(e.Action) && !values.some((v) => e.Action.startsWith(`${v}:`))) return false;
        break;
      case 'container':
        if (e.Type !== 'container' || !values.some((v) => e.Actor.ID.startsWith(v) || attrs.name === v)) return false;
        break;
      case 'image':
        if (!values.some((v) => attrs.image === v || e.Actor.ID === v || attrs.name === v)) return false;
        break;
      case 'volume':
      case 'network':
        if (e.Type !== key || !values.some((v) => e.Actor.ID === v || attrs.name === v)) return false;
        break;
      case 'label':
        if (!values.every((v) => (v.includes('=') ? attrs[v.slice(0, v.indexOf('='))] === v.slice(v.indexOf('=') + 1) : v in attrs))) return false;
        break;
      case 'scope':
        if (!values.includes('local')) return false;
        break;
      default:
        // As dockerd's events filter: a key it does not know filters nothing out.
        break;
    }
  }
  return true;
}

export function systemRoutes(router: Router, engine: Engine): void {
  const ping = (head: boolean) => (ctx: Parameters<Parameters<Router['get']>[1]>[0]) => {
    ctx.answered = true;
    if (ctx.res) {
      ctx.res.writeHead(200, { ...pingHeaders(), 'Content-Length': 2 });
      ctx.res.end(head ? undefined : 'OK');
    } else ctx.send(200, 'OK', 'text/plain; charset=utf-8');
  };
  router.get('/_ping', ping(false));
  router.head('/_ping', ping(true));

  router.get('/version', (ctx) => {
    ctx.sendJson(200, {
      Platform: { Name: `Berth ${BERTH_VERSION}` },
      Components: [
        {
          Name: 'Engine',
          Version: DOCKER_COMPAT_VERSION,
          Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: 'berth', GoVersion: `node${process.versions.node}`, Os: 'linux', Arch: goArch(), KernelVersion: os.release(), BuildTime: BUILT.ctime, Experimental: 'false' },
        },
        // As dockerd lists containerd, runc and docker-init.
        { Name: 'berth', Version: BERTH_VERSION, Details: { GitCommit: '' } },
        { Name: 'berth-oci', Version: BERTH_VERSION, Details: { GitCommit: '' } },
        { Name: 'berth-init', Version: BERTH_VERSION, Details: { GitCommit: '' } },
      ],
      Version: DOCKER_COMPAT_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: 'berth',
      GoVersion: `node${process.versions.node}`,
      Os: 'linux',
      Arch: goArch(),
      KernelVersion: os.release(),
      BuildTime: BUILT.rfc3339,
    });
  });

  router.get('/info', (ctx) => {
    const containers = engine.containers.list();
    const count = (s: string[]): number => containers.filter((c) => s.includes(c.state.status)).length;
    ctx.sendJson(200, {
      ID: engine.daemonId(),
      Containers: containers.length,
      ContainersRunning: count(['running', 'restarting']),
      ContainersPaused: count(['paused']),
      ContainersStopped: count(['exited', 'created', 'dead']),
      Images: engine.images.list().length,
      Driver: 'overlay2',
      DriverStatus: [['Backing Filesystem', backingFilesystem(engine.options.dataRoot)], ['Supports d_type', 'true'], ['Native Overlay Diff', 'true'], ['userxattr', 'false']],
      // Drivers by their names, as dockerd lists them: "null" is the none network's.
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file', 'local'] },
      MemoryLimit: true,
      SwapLimit: swapLimit(engine.facts.cgroupVersion ?? 1),
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: openFiles(),
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: engine.options.logConfig?.Type ?? 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: String(engine.facts.cgroupVersion ?? 1),
      NEventsListener: 0,
      KernelVersion: os.release(),
      OperatingSystem: osName(),
      OSVersion: osRelease('VERSION_ID') ?? '',
      OSType: 'linux',
      Architecture: os.machine(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: registryConfig(engine.options.insecureRegistries ?? [], (engine.options.registryMirrors ?? []).map((m) => m.url)),
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
      DockerRootDir: engine.options.dataRoot,
      Name: os.hostname(),
      Labels: engine.options.labels ?? [],
      ExperimentalBuild: false,
      ServerVersion: DOCKER_COMPAT_VERSION,
      Runtimes: { 'berth-oci': { path: 'berth-oci' } },
      DefaultRuntime: 'berth-oci',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: 'berth-init',
      // As dockerd names them: the seccomp profile's source, no_new_privs when it is the daemon's default.
      SecurityOptions: [
        `name=seccomp,profile=${engine.options.seccompProfileSource ?? 'builtin'}`,
        ...(engine.facts.noNewPrivileges ? ['name=no-new-privileges'] : []),
        ...(engine.facts.cgroupVersion === 2 ? ['name=cgroupns'] : []),
      ],
      // The rest of dockerd's fields, so that clients decoding them find each: berthd sets no
      // kernel memory limits, disables the OOM killer only on cgroup v1, and uses no proxy.
      KernelMemory: false,
      KernelMemoryTCP: false,
      OomKillDisable: (engine.facts.cgroupVersion ?? 1) === 1,
      BridgeNfIptables: sysctlOn('net/bridge/bridge-nf-call-iptables'),
      BridgeNfIp6tables: sysctlOn('net/bridge/bridge-nf-call-ip6tables'),
      GenericResources: null,
      HttpProxy: '',
      HttpsProxy: '',
      NoProxy: '',
      ContainerdCommit: { ID: `berthd-${BERTH_VERSION}`, Expected: `berthd-${BERTH_VERSION}` },
      RuncCommit: { ID: `berth-oci-${BERTH_VERSION}`, Expected: `berth-oci-${BERTH_VERSION}` },
      InitCommit: { ID: `berth-init-${BERTH_VERSION}`, Expected: `berth-init-${BERTH_VERSION}` },
      Warnings: null, // as dockerd's when it has none
      // Gone from API 1.25 on; dockerd still answers older clients with it.
      ...(ctx.atLeast('1.25') ? {} : { ExecutionDriver: '<not supported>' }),
    });
  });

  router.get('/events', (ctx) => {
    const filters = ctx.filters();
    const since = parseTime(ctx.query.get('since'), 'since');
    const until = parseTime(ctx.query.get('until'), 'until');
    if (since && until && since.getTime() > until.getTime()) {
      // dockerd's words, in seconds (`docker events --since 1s --until 2s`).
      throw new InvalidArgumentError(`\`since\` time (${Math.floor(since.getTime() / 1000)}) cannot be after \`until\` time (${Math.floor(until.getTime() / 1000)})`);
    }
    const out = ctx.stream('application/json');
    const send = (e: EngineEvent): void => {
      if (eventMatches(e, filters)) out.write(JSON.stringify(e) + '\n');
    };
    if (since) for (const e of engine.events.since(since.getTime() * 1e6)) if (!until || e.timeNano <= until.getTime() * 1e6) send(e);
    if (until && until.getTime() <= Date.now()) {
      out.end();
      return;
    }
    const unsubscribe = engine.events.subscribe((e) => {
      if (until && e.timeNano > until.getTime() * 1e6) return;
      send(e);
    });
    const timer = until ? setTimeout(() => out.end(), until.getTime() - Date.now()) : undefined;
    ctx.onClose(() => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    });
  });

  router.get('/system/df', async (ctx) => {
    // Sizes on disk: each layer's uncompressed size, each writable layer and volume walked.
    const sizeOf = (p: Promise<{ size: number }>): Promise<number> => p.then((u) => u.size, () => -1);
    const containers = await Promise.all(engine.containers.list().map(async (c) => ({ ...containerSummary(c, (name) => engine.networks.find(name)?.id, (ref) => engine.images.find(ref)?.config), ...listedSizes(await containerSizes(engine, c)) })));
    const volumes = await Promise.all(engine.volumes.list().map(async (v) => ({ ...volumeView(v), UsageData: { Size: await sizeOf(directoryUsage(v.Mountpoint)), RefCount: engine.containers.volumeInUse(v.Name) ? 1 : 0 } })));
    ctx.sendJson(200, {
      LayersSize: engine.snapshotter.listLayers().reduce((sum, l) => sum + (layerBytes(l) ?? 0), 0),
      Images: (() => {
        // The images `docker images` lists (dockerd's df asks for them so): no untagged parents.
        const images = engine.imageService.list();
        const shared = engine.imageService.sharedSizes(images);
        const counts = new Map<string, number>();
        for (const c of engine.containers.list()) counts.set(c.image, (counts.get(c.image) ?? 0) + 1);
        return images.map((i) => ({ ...imageSummary(engine, i, { version: ctx.version, containers: counts.get(i.config) ?? 0 }), SharedSize: shared.get(i.config) ?? 0 }));
      })(),
      Containers: containers,
      Volumes: volumes,
      BuildCache: null, // Go's nil slice: the classic builder keeps no cache records
      // Gone from dockerd's answer in API 1.42 (the build cache's size is in BuildCache since).
      ...(ctx.atLeast('1.42') ? {} : { BuilderSize: 0 }),
    });
  });
}

function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** What dockerd's overlay2 calls the data root's file system ("extfs" for ext2/3/4). */
function backingFilesystem(dir: string): string {
  const names: Record<number, string> = { 0xef53: 'extfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x01021994: 'tmpfs', 0x2fc12fc1: 'zfs', 0xf2f52010: 'f2fs' };
  try {
    return names[fs.statfsSync(dir).type] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * dockerd's RegistryConfig: the CIDRs of --insecure-registry and 127.0.0.0/8 (insecure always,
 * as pulls treat it here too), each name of it an index that is not secure, and Docker Hub's mirrors.
 */
function registryConfig(insecure: string[], mirrors: string[]): object {
  const isCidr = (r: string): boolean => /\/\d{1,2}$/.test(r);
  const index = (name: string, secure: boolean): object => ({ Name: name, Mirrors: name === 'docker.io' ? mirrors : [], Secure: secure, Official: name === 'docker.io' });
  const named = insecure.filter((r) => !isCidr(r)).map(insecureEntryHost);
  return {
    // Deprecated fields that API 1.44 still has, empty (no non-distributable artifacts here).
    AllowNondistributableArtifactsCIDRs: [],
    AllowNondistributableArtifactsHostnames: [],
    InsecureRegistryCIDRs: [...new Set([...insecure.filter(isCidr), '127.0.0.0/8'])], // dockerd appends loopback
    IndexConfigs: Object.fromEntries([['docker.io', index('docker.io', true)], ...named.map((n) => [n, index(n, false)])]),
    Mirrors: mirrors,
  };
}

function osName(): string {
  return osRelease('PRETTY_NAME') ?? 'Linux';
}

/** A field of /etc/os-release. */
function osRelease(key: string): string | undefined {
  try {
    return new RegExp(`^${key}="?([^"\n]*)"?`, 'm').exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Whether --memory-swap can be carried out: v1 with swap accounting (memsw files), or v2. */
function swapLimit(cgroupVersion: number): boolean {
  return cgroupVersion === 2 || fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
}

function openFiles(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

