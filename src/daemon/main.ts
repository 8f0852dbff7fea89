/**
 * berthd: the engine daemon. Opens the engine (reconciling with containers that outlived the
 * previous daemon) and serves the Docker Engine API on unix sockets. dockerd's flags where
 * they apply; options from a JSON config file (dockerd's daemon.json keys), flags winning.
 * Stopping the daemon leaves the containers running (live restore), under their shims.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { ApiServer } from '../api/server.js';
import { checkConfig, daemonSettings, type CheckedConfig } from './config.js';
import { DEFAULT_LOG_CONFIG, resolveLogConfig, type EffectiveLogConfig } from '../engine/containers/logconfig.js';
import { BerthError } from '../common/errors.js';
import { Engine } from '../engine/engine.js';
import { enableCgroupFavorDynmods, ensureExecRootTmpfs } from '../engine/host-tuning.js';
import { readProcStat } from '../runtime/state.js';

const USAGE = `Usage: berthd [OPTIONS]

Options:
  -H, --host unix:///path     Socket to listen on (repeatable; default unix:///run/berth.sock)
      --data-root DIR         Persistent state (default /var/lib/berth)
      --exec-root DIR         Runtime state (default /run/berth)
  -p, --pidfile FILE          (default /run/berth.pid)
      --insecure-registry H   Registry reached over plain HTTP (repeatable)
      --registry-mirror URL   A Docker Hub mirror, asked first for docker.io images
                              (repeatable; http:// ones over plain HTTP)
      --max-concurrent-downloads N, --max-concurrent-uploads N
                              Blobs a pull or a push moves at once (default 3 each)
      --max-download-attempts N
                              Attempts per download (default 5)
      --group GROUP           Group owning the socket (default: docker, if it exists)
      --cgroup-parent PATH    Parent cgroup of the containers (default /berth)
      --userns-remap default  Every container in its own user namespace (own id range)
  -b, --bridge NAME           The default bridge (default berth0; none: no bridge, only lo)
      --bip CIDR              The bridge's address and subnet (default 172.29.0.1/16)
      --iptables=false        Leave the kernel's NAT and filter rules alone: no masquerade,
                              no kernel port forwarding (for hosts whose firewall is owned
                              by something else)
      --resolv-conf FILE      The host's resolvers (default /etc/resolv.conf): containers'
                              resolv.conf and the embedded DNS server's upstreams
      --no-cgroup-favordynmods  Leave the kernel's cgroup favordynmods flag alone (berthd sets
                              it: ~12 ms less per container start; see src/engine/host-tuning.ts)
      --no-exec-root-tmpfs    Leave an exec root that is on a disk as it is (berthd mounts a
                              tmpfs on an empty one, as /run is on most hosts: ~2.5 ms less
                              per container start and exit here; see src/engine/host-tuning.ts)
      --log-driver DRIVER     Containers' default log driver: json-file (default), local or none
      --log-opt KEY=VALUE     Its options (repeatable; default max-size=20m, max-file=5)
      --dns IP, --dns-search DOMAIN, --dns-opt OPT
                              Containers' DNS unless they set their own (repeatable)
      --default-ulimit NAME=SOFT[:HARD]
                              Containers' ulimits unless they set that one (repeatable)
      --default-shm-size SIZE Containers' /dev/shm size (default 64M)
      --default-ipc-mode MODE private (default) or shareable
      --default-cgroupns-mode MODE
                              private or host (default: private on cgroup v2, host on v1)
      --no-new-privileges     Containers' processes cannot gain privileges (setuid) unless
                              they say otherwise (--security-opt no-new-privileges=false)
      --seccomp-profile FILE  Containers' seccomp profile unless they name one (a JSON file,
                              unconfined, or builtin: Docker's, the default)
      --icc=false             Containers on the default bridge cannot reach one another
      --ip-masq=false         No masquerade of the default bridge's traffic leaving the host
      --ip-forward=false      Leave net.ipv4.ip_forward to the host (berthd turns it on)
      --ip ADDRESS            Where ports of the default bridge's containers are published
                              when they name no address (default 0.0.0.0)
      --mtu BYTES             The default bridge's MTU (default 1500)
      --fixed-cidr CIDR       The part of --bip's subnet containers' addresses come from
      --label KEY=VALUE       The daemon's labels (docker info; repeatable)
      --default-network-opt DRIVER=KEY=VALUE
                              Driver options new networks get unless they set them
                              (repeatable; e.g. bridge=com.docker.network.driver.mtu=1400)
      --default-address-pool base=CIDR,size=N
                              Where networks made without a subnet get one (repeatable;
                              default 172.18-31.0.0/16, then 192.168.0.0/16 in /20s)
      --userland-proxy, --live-restore, -s/--storage-driver overlay2
                              dockerd's, taken: berthd does this anyway (kernel NAT,
                              containers that outlive the daemon, overlay2)
      --config-file FILE      (default /etc/berth/daemon.json)
  -D, --debug                 Log every request
  -l, --log-level LEVEL       debug|info|warn|error|fatal (default info)
  -h, --help
`;


/**
 * dockerd's --seccomp-profile: "unconfined" and "builtin" as they are, else a file whose JSON
 * is the profile (the engine checks it before it serves).
 */
function seccompProfile(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || value === 'unconfined' || value === 'builtin') return value || undefined;
  try {
    return fs.readFileSync(value, 'utf8');
  } catch (err) {
    throw new Error(`--seccomp-profile ${value}: ${(err as Error).message}`);
  }
}

/**
 * The containers' default log driver and options (--log-driver/--log-opt, daemon.json's
 * log-driver/log-opts), checked as a container's are. Options given replace berthd's default
 * rotation; a driver alone keeps it where the driver rotates (json-file, local).
 */
function daemonLogConfig(driver: string | undefined, opts: string[] | Record<string, string> | undefined): EffectiveLogConfig {
  let options: Record<string, string> | undefined;
  if (Array.isArray(opts)) {
    options = {};
    for (const opt of opts) {
      const eq = opt.indexOf('=');
      if (eq <= 0) fail(`--log-opt ${JSON.stringify(opt)}: expected KEY=VALUE`);
      options[opt.slice(0, eq)] = opt.slice(eq + 1);
    }
  } else if (opts !== undefined) {
    if (typeof opts !== 'object' || opts === null) fail('log-opts: must be an object of strings');
    options = opts;
  }
  if (driver === undefined && options === undefined) return DEFAULT_LOG_CONFIG;
  const type = driver ?? DEFAULT_LOG_CONFIG.Type;
  const base: EffectiveLogConfig = options === undefined && type !== 'none' ? { Type: type as EffectiveLogConfig['Type'], Config: DEFAULT_LOG_CONFIG.Config } : { Type: 'none', Config: {} };
  try {
    return resolveLogConfig({ Type: type, Config: options ?? {} }, base);
  } catch (err) {
    fail(`log driver ${JSON.stringify(type)}: ${(err as Error).message}`);
  }
}

function fail(message: string): never {
  process.stderr.write(`berthd: ${message}\n`);
  process.exit(1);
}

/** The config file, checked; throws what is wrong with it (a missing one is empty unless named). */
function loadConfig(file: string, explicit: boolean): CheckedConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, ignored: [] };
    throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    return checkConfig(JSON.parse(text) as unknown);
  } catch (err) {
    throw new Error(`config file ${file}: ${(err as Error).message}`);
  }
}

function readConfig(file: string, explicit: boolean): CheckedConfig {
  try {
    return loadConfig(file, explicit);
  } catch (err) {
    fail((err as Error).message);
  }
}

function socketPath(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  fail(`unsupported host ${JSON.stringify(host)}: only unix:// sockets are served (a TCP socket would expose root to the network)`);
}

function groupId(name: string | undefined): number | undefined {
  const wanted = name ?? 'docker';
  if (/^\d+$/.test(wanted)) return Number(wanted);
  try {
    const line = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === wanted);
    if (line) return Number(line.split(':')[2]);
  } catch {
    /* no group file */
  }
  if (name !== undefined) fail(`group ${JSON.stringify(name)} does not exist`);
  return undefined;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        host: { type: 'string', short: 'H', multiple: true },
        'data-root': { type: 'string' },
        'exec-root': { type: 'string' },
        pidfile: { type: 'string', short: 'p' },
        'insecure-registry': { type: 'string', multiple: true },
        group: { type: 'string', short: 'G' },
        'cgroup-parent': { type: 'string' },
        'userns-remap': { type: 'string' },
        bridge: { type: 'string', short: 'b' },
        bip: { type: 'string' },
        iptables: { type: 'string' },
        'resolv-conf': { type: 'string' },
        'no-cgroup-favordynmods': { type: 'boolean' },
        'no-exec-root-tmpfs': { type: 'boolean' },
        'config-file': { type: 'string' },
        debug: { type: 'boolean', short: 'D' },
        'log-level': { type: 'string', short: 'l' },
        'log-driver': { type: 'string' },
        'log-opt': { type: 'string', multiple: true },
        dns: { type: 'string', multiple: true },
        'dns-search': { type: 'string', multiple: true },
        'dns-opt': { type: 'string', multiple: true },
        'default-ulimit': { type: 'string', multiple: true },
        'default-shm-size': { type: 'string' },
        'default-ipc-mode': { type: 'string' },
        'default-cgroupns-mode': { type: 'string' },
        'no-new-privileges': { type: 'boolean' },
        'seccomp-profile': { type: 'string' },
        icc: { type: 'string' },
        ip: { type: 'string' },
        'ip-masq': { type: 'string' },
        mtu: { type: 'string' },
        'fixed-cidr': { type: 'string' },
        label: { type: 'string', multiple: true },
        'default-address-pool': { type: 'string', multiple: true },
        'registry-mirror': { type: 'string', multiple: true },
        'max-concurrent-downloads': { type: 'string' },
        'max-concurrent-uploads': { type: 'string' },
        'max-download-attempts': { type: 'string' },
        'default-network-opt': { type: 'string', multiple: true },
        'ip-forward': { type: 'string' },
        // dockerd flags that ask what berthd does anyway (no userland proxy for kernel NAT,
        // containers that outlive the daemon, overlay2): taken, and checked where they could differ.
        'userland-proxy': { type: 'string' },
        'live-restore': { type: 'boolean' },
        'storage-driver': { type: 'string', short: 's' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  const flags = parsed.values;
  if (flags.help) {
    process.stdout.write(USAGE);
    return;
  }
  const configFile = flags['config-file'] ?? '/etc/berth/daemon.json';
  const { config, ignored } = readConfig(configFile, flags['config-file'] !== undefined);
  const hosts = flags.host ?? config.hosts ?? ['unix:///run/berth.sock'];
  const dataRoot = path.resolve(flags['data-root'] ?? config['data-root'] ?? '/var/lib/berth');
  const execRoot = path.resolve(flags['exec-root'] ?? config['exec-root'] ?? '/run/berth');
  const pidfile = flags.pidfile ?? config.pidfile ?? '/run/berth.pid';
  const level = flags['log-level'] ?? config['log-level'] ?? 'info';
  if (!['debug', 'info', 'warn', 'error', 'fatal'].includes(level)) fail(`invalid log level ${JSON.stringify(level)}`);
  const remap = flags['userns-remap'] ?? config['userns-remap'] ?? '';
  if (remap !== '' && remap !== 'default') fail(`--userns-remap ${JSON.stringify(remap)}: only "default" is supported (each container gets its own id range)`);
  const bridgeName = flags.bridge ?? config.bridge ?? 'berth0';
  if (bridgeName !== 'none' && !/^[a-zA-Z0-9_.-]{1,15}$/.test(bridgeName)) fail(`--bridge ${JSON.stringify(bridgeName)}: not a valid interface name (at most 15 characters)`);
  const iptablesFlag = flags.iptables;
  if (iptablesFlag !== undefined && !['true', 'false'].includes(iptablesFlag)) fail(`--iptables=${iptablesFlag}: expected true or false`);
  const iptables = iptablesFlag !== undefined ? iptablesFlag === 'true' : config.iptables !== false;
  const debug = flags.debug ?? config.debug ?? level === 'debug';
  const logConfig = daemonLogConfig(flags['log-driver'] ?? config['log-driver'], flags['log-opt'] ?? config['log-opts']);
  let settings;
  try {
    settings = daemonSettings(flags, config);
    const seccomp = seccompProfile(flags['seccomp-profile'] ?? config['seccomp-profile']);
    if (seccomp !== undefined) settings.containerDefaults.seccompProfile = seccomp;
  } catch (err) {
    fail((err as Error).message);
  }
  if (flags['storage-driver'] !== undefined && flags['storage-driver'] !== 'overlay2') fail('--storage-driver: berthd has only the overlay2 storage driver');
  const log = (line: string): void => void process.stderr.write(`${new Date().toISOString()} ${line}\n`);

  // One daemon per data root: a live pid in the pid file means another one runs. A zombie does
  // not: a daemon killed with SIGKILL stays one until its parent reaps it (on a machine whose init
  // reaps orphans only every few seconds, for that long), and it must not keep its successor out.
  try {
    const other = Number(fs.readFileSync(pidfile, 'utf8'));
    const state = other > 0 ? readProcStat(other)?.state : undefined;
    if (other > 0 && other !== process.pid && state !== 'Z' && state !== 'X') {
      try {
        process.kill(other, 0);
        fail(`pid file ${pidfile} names a running process (${other}): is another berthd running?`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EPERM') fail(`pid file ${pidfile} names a running process (${other})`);
      }
    }
  } catch {
    /* no pid file */
  }
  fs.mkdirSync(path.dirname(pidfile), { recursive: true });
  fs.writeFileSync(pidfile, String(process.pid));

  if (ignored.length) log(`config file ${configFile}: accepted without effect here: ${ignored.join(', ')}`);
  if (!flags['no-cgroup-favordynmods'] && config['cgroup-favordynmods'] !== false) {
    const tuned = enableCgroupFavorDynmods();
    log(`host tuning: ${tuned.setting}: ${tuned.detail}`);
  }
  if (!flags['no-exec-root-tmpfs'] && config['exec-root-tmpfs'] !== false) {
    const tuned = ensureExecRootTmpfs(execRoot);
    log(`host tuning: ${tuned.setting}: ${tuned.detail}`);
  }
  const engine = await Engine.open({
    dataRoot,
    execRoot,
    insecureRegistries: flags['insecure-registry'] ?? config['insecure-registries'] ?? [],
    cgroupParent: flags['cgroup-parent'] ?? config['cgroup-parent'],
    usernsRemap: remap === 'default',
    bridge: bridgeName === 'none' ? undefined : { name: bridgeName, cidr: flags.bip ?? config.bip ?? '172.29.0.1/16', ...settings.bridge },
    labels: settings.labels,
    ...(settings.addressPools ? { addressPools: settings.addressPools } : {}),
    registryMirrors: settings.registryMirrors,
    transfers: settings.transfers,
    defaultNetworkOptions: settings.defaultNetworkOptions,
    ipForward: settings.ipForward,
    ...((flags['seccomp-profile'] ?? config['seccomp-profile']) ? { seccompProfileSource: flags['seccomp-profile'] ?? config['seccomp-profile'] } : {}),
    iptables,
    hostResolvConf: flags['resolv-conf'] ?? config['resolv-conf'],
    logConfig,
    containerDefaults: settings.containerDefaults,
  });
  let debugLog = debug;
  const server = new ApiServer(engine, { log: (line) => (debugLog || line.startsWith('error')) && log(line) });
  const group = groupId(flags.group ?? config.group);
  for (const host of hosts) await server.listen(socketPath(host), { group });
  log(`berthd listening on ${hosts.join(', ')} (data root ${dataRoot})`);

  const shutdown = (signal: string): void => {
    log(`${signal}: shutting down; containers keep running`);
    engine.close();
    void server.close().finally(() => {
      try {
        if (Number(fs.readFileSync(pidfile, 'utf8')) === process.pid) fs.rmSync(pidfile);
      } catch {
        /* gone */
      }
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 2000).unref();
  };
  // A client that goes away mid-write must not take the daemon down: such socket errors are
  // logged and dropped. Anything else still ends the process (the shims keep the containers;
  // the next daemon reconciles).
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ECONNRESET' || err.code === 'ERR_STREAM_DESTROYED' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') {
      log(`warning: a connection failed: ${err.message}`);
      return;
    }
    log(`fatal: ${err.stack ?? err.message}`);
    process.exit(1);
  });
  // dockerd's reload (systemd's ExecReload sends SIGHUP): the config file read again, what may
  // change while containers run applied (debug, labels, registries), a "daemon reload" event.
  // A config file that does not check out leaves the running configuration. Node's default for
  // SIGHUP would have ended the daemon.
  process.on('SIGHUP', () => {
    try {
      const { config: next } = loadConfig(configFile, flags['config-file'] !== undefined);
      const nextSettings = daemonSettings(flags, next);
      const insecure = flags['insecure-registry'] ?? next['insecure-registries'] ?? [];
      debugLog = flags.debug ?? next.debug ?? (flags['log-level'] ?? next['log-level']) === 'debug';
      engine.reload(
        { labels: nextSettings.labels, insecureRegistries: insecure, registryMirrors: nextSettings.registryMirrors, transfers: nextSettings.transfers },
        {
          debug: String(debugLog),
          labels: JSON.stringify(nextSettings.labels ?? []),
          'insecure-registries': JSON.stringify(insecure),
          'registry-mirrors': JSON.stringify(nextSettings.registryMirrors.map((m) => m.url)),
          'max-concurrent-downloads': String(nextSettings.transfers?.downloads ?? 3),
          'max-concurrent-uploads': String(nextSettings.transfers?.uploads ?? 3),
          'max-download-attempts': String(nextSettings.transfers?.downloadAttempts ?? 5),
          name: os.hostname(),
        },
      );
      log(`SIGHUP: configuration reloaded from ${configFile}`);
    } catch (err) {
      log(`SIGHUP: error reloading the configuration, the running one stays: ${(err as Error).message}`);
    }
  });
  // dockerd dumps its goroutines on SIGUSR1; Node would open its inspector on 127.0.0.1:9229,
  // a debugger of a root process that any local user may connect to. A listener keeps it shut.
  // The nearest thing to dockerd's dump: Node's diagnostic report (stacks, heap, handles), 0600
  // (it holds the environment).
  process.on('SIGUSR1', () => {
    const file = path.join(execRoot, `berthd-report-${new Date().toISOString().replace(/[-:.]/g, '')}.json`);
    try {
      process.report.writeReport(file);
      fs.chmodSync(file, 0o600);
      log(`SIGUSR1: diagnostic report written to ${file}`);
    } catch (err) {
      log(`SIGUSR1: cannot write a diagnostic report: ${(err as Error).message}`);
    }
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

// A refused setting is said in a line; anything else with its stack.
main().catch((err: unknown) => fail(err instanceof BerthError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)));
