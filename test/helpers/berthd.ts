/**
 * A private berthd for tests: its own socket, data root, exec root, pid file and cgroup
 * parent under a new temp dir, and the docker CLI pointed at it. stop() removes every
 * container, stops the daemon and any shim it left, unmounts, removes the cgroups and the dir;
 * kill9()/restart() exercise the daemon's crash survival.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { mountPointsUnder } from '../../src/common/mountinfo.js';
import { HostNat, natChainPrefix } from '../../src/network/nat.js';
import { cgroupRoots, cmd, DOCKER, existingCgroups, pidsMentioning, poll, removeCgroups, stopPid, unmountUnder, type CmdResult } from './engines.js';
import { testImagesDir } from './images.js';

export const BERTHD = path.join(PACKAGE_ROOT, 'bin', 'berthd');

export interface PrivateBerthd {
  dir: string;
  socket: string;
  /** DOCKER_HOST (and a private DOCKER_CONFIG) for this daemon. */
  env: NodeJS.ProcessEnv;
  cgroupParent: string;
  pid(): number | undefined;
  /** Mount points under the daemon's directory, except the exec root's own tmpfs (berthd mounts it). */
  mountsLeft(): string[];
  docker(args: string[], timeoutMs?: number, input?: string): CmdResult;
  dockerOk(args: string[], timeoutMs?: number): string;
  /** Loads test images (busybox, multilayer, web) from their docker-archive tarballs. */
  loadImages(...names: string[]): void;
  logTail(lines?: number): string;
  /** SIGKILL the daemon (containers stay, under their shims). */
  kill9(): Promise<void>;
  /** Starts the daemon again on the same roots. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Processes in the cgroups directly under a parent. */
function leftProcs(parent: string): number {
  let count = 0;
  try {
    for (const e of fs.readdirSync(parent, { withFileTypes: true })) {
      if (e.isDirectory()) count += fs.readFileSync(path.join(parent, e.name, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).length;
    }
  } catch {
    /* no such parent */
  }
  return count;
}

/** Bridges of the daemon's networks (the default one and user-defined ones), from its records. */
function networkBridges(dir: string): string[] {
  const records = path.join(dir, 'data', 'network', 'networks');
  if (!fs.existsSync(records)) return [];
  return fs.readdirSync(records).flatMap((f) => {
    try {
      const bridge = (JSON.parse(fs.readFileSync(path.join(records, f), 'utf8')) as { bridge?: string }).bridge;
      return bridge ? [bridge] : [];
    } catch {
      return [];
    }
  });
}

/** `debug: false` runs berthd as it ships, without -D (its log of every request): benchmarks do. */
export async function startBerthd(opts: { prefix?: string; timeoutMs?: number; extraArgs?: string[]; config?: object; bridge?: { name: string; cidr: string }; resolvConf?: string; debug?: boolean; nofile?: { soft: number; hard: number } } = {}): Promise<PrivateBerthd> {
  assert.ok(DOCKER, 'the docker CLI is needed');
  const dir = fs.mkdtempSync(`/tmp/${opts.prefix ?? 'berthd-'}`);
  fs.chmodSync(dir, 0o711); // containers with their own user namespace pass through to their bundles
  const socket = path.join(dir, 'berth.sock');
  const cgroupParent = `/${path.basename(dir)}`;
  const cgroupsBefore = existingCgroups([cgroupParent.slice(1)]);
  fs.mkdirSync(path.join(dir, 'cli'));
  fs.writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify(opts.config ?? {}));
  // The host's resolvers are not the tests' to use (nothing may leave the machine): by default
  // the daemon sees a loopback nameserver nothing answers on.
  fs.writeFileSync(path.join(dir, 'resolv.conf'), opts.resolvConf ?? 'nameserver 127.0.0.1\n');
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: path.join(dir, 'cli') };
  delete env.DOCKER_CONTEXT;
  const defaultTimeout = opts.timeoutMs ?? 60_000;
  let daemonPid: number | undefined;

  const logTail = (lines = 30): string => {
    try {
      return '--- berthd.log ---\n' + fs.readFileSync(path.join(dir, 'berthd.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const docker = (args: string[], timeoutMs = defaultTimeout, input?: string): CmdResult => cmd(DOCKER!, args, { env, timeoutMs, input });
  const dockerOk = (args: string[], timeoutMs = defaultTimeout): string => {
    const r = docker(args, timeoutMs);
    assert.equal(r.status, 0, `docker ${args.join(' ')} (exit ${r.status}): ${r.stderr}\n${logTail()}`);
    return r.stdout;
  };

  const start = async (): Promise<void> => {
    const log = fs.openSync(path.join(dir, 'berthd.log'), 'a');
    // prlimit sets the open-files limit the daemon is started with, and executes it (same pid).
    const [program, prefix] = opts.nofile ? ['prlimit', [`--nofile=${opts.nofile.soft}:${opts.nofile.hard}`, BERTHD]] : [BERTHD, []];
    const child = spawn(
      program,
      [...prefix, '-H', `unix://${socket}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'berthd.pid'), '--cgroup-parent', cgroupParent, '--config-file', path.join(dir, 'daemon.json'), '--resolv-conf', path.join(dir, 'resolv.conf'), ...(opts.debug === false ? [] : ['-D']), ...(opts.bridge ? ['--bridge', opts.bridge.name, '--bip', opts.bridge.cidr] : ['--bridge', 'none']), ...(opts.extraArgs ?? [])],
      { stdio: ['ignore', log, log], detached: true },
    );
    fs.closeSync(log);
    daemonPid = child.pid;
    child.unref();
    const up = await poll(() => {
      if (daemonPid && !fs.existsSync(`/proc/${daemonPid}`)) return true;
      return fs.existsSync(socket) && docker(['version', '--format', '{{.Server.Version}}'], 10_000).status === 0;
    }, 30_000, 50);
    if (!up || !daemonPid || !fs.existsSync(`/proc/${daemonPid}`)) throw new Error(`berthd did not start\n${logTail()}`);
  };

  const kill9 = async (): Promise<void> => {
    if (!daemonPid) return;
    try {
      process.kill(daemonPid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await poll(() => !fs.existsSync(`/proc/${daemonPid}`) || /^State:\s+Z/m.test(fs.readFileSync(`/proc/${daemonPid}/status`, 'utf8')), 5000);
    daemonPid = undefined;
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const ids: string[] = [];
    if (daemonPid && fs.existsSync(socket)) {
      const left = docker(['ps', '-aq', '--no-trunc'], 20_000).stdout.split('\n').filter(Boolean);
      ids.push(...left);
      if (left.length) docker(['rm', '-f', '-v', ...left], 60_000);
      docker(['network', 'prune', '-f'], 20_000);
    }
    await stopPid(daemonPid, 10_000);
    // Shims (and their containers) of anything left: found by the dir in their command line.
    for (const pid of pidsMentioning(dir)) await stopPid(pid, 3000);
    // Container processes whose shim is gone (a daemon that crashed): whatever is still in a
    // cgroup under this daemon's parent is ours to kill.
    for (const root of cgroupRoots()) {
      const parent = path.join(root, cgroupParent);
      if (!fs.existsSync(parent)) continue;
      for (const e of fs.readdirSync(parent, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        try {
          for (const pid of fs.readFileSync(path.join(parent, e.name, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    await poll(() => cgroupRoots().every((root) => leftProcs(path.join(root, cgroupParent)) === 0), 3000);
    unmountUnder(dir);
    const bridges = new Set([...networkBridges(dir), ...(opts.bridge ? [opts.bridge.name] : [])]);
    for (const bridge of bridges) cmd('ip', ['link', 'del', bridge]);
    // The daemon's NAT rules outlive it (as dockerd's do, so that containers keep working).
    if (bridges.size) new HostNat(undefined, natChainPrefix(path.join(dir, 'data'))).removeAll();
    removeCgroups([cgroupParent.slice(1)], [''], cgroupsBefore);
    if (!process.env.BERTH_KEEP_ENGINE_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  };

  const loadImages = (...names: string[]): void => {
    const images = testImagesDir();
    for (const name of names) dockerOk(['load', '-q', '-i', path.join(images, 'docker-archive', `${name}.tar`)], 120_000);
  };

  try {
    await start();
  } catch (err) {
    await stop();
    throw err;
  }
  const mountsLeft = (): string[] => mountPointsUnder(dir).filter((p) => p !== path.join(dir, 'exec'));
  return { dir, socket, env, cgroupParent, pid: () => daemonPid, mountsLeft, docker, dockerOk, loadImages, logTail, kill9, start, stop };
}

/** The top layer (a tar) of an image, through `docker save` (unpacked in a new directory under `work`). */
export function savedTopLayer(d: PrivateBerthd, image: string, work: string): Buffer {
  const dir = fs.mkdtempSync(path.join(work, 'saved-'));
  d.dockerOk(['save', '-o', path.join(dir, 'image.tar'), image]);
  assert.equal(spawnSync('tar', ['-xf', path.join(dir, 'image.tar'), '-C', dir]).status, 0);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  return fs.readFileSync(path.join(dir, manifest[0]!.Layers.at(-1)!));
}
