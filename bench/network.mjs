#!/usr/bin/env node
// Network benchmark (issue 5, acceptance 4): berthd vs dockerd (Debian's 20.10 + containerd +
// runc, iptables on, its default userland proxy), side by side in one run, the same busybox and
// web images, each daemon on a default bridge of its own (bbench0 10.240.0.1/24, dbench0
// 10.241.0.1/24). First a check that both paths carry the web image's page; then
//   1. throughput host → container through ports published on 127.0.0.1, a Node client writing
//      MIB MiB, timed from connect until the sink closes after EOF, to
//      a. `busybox nc -l` in the container (busybox nc reads 1 KiB at a time: this is nc's speed)
//      b. a Node sink run in the container's network namespace (nsenter -n): the path's speed
//   2. throughput container → container on the default bridge:
//      a. `busybox dd | busybox nc` in a new container to the nc sink, NC_MIB MiB, timed inside
//         the client container (/proc/uptime, 10 ms resolution)
//      b. a Node client in another container's network namespace to the Node sink, MIB MiB
//   3. the start latency bridge networking adds: `docker run --rm busybox true` through the docker
//      CLI (v28) with the default network minus the same with `--network none`
// Runs of the two engines are interleaved (their order alternating); medians and ratios are
// printed and written to $RESULTS/network.json. Targets: throughput ≥ docker's; added start
// latency < half of docker's.
//
// Everything runs in a network namespace of its own (the script re-executes itself under
// `unshare --net`): the daemons' bridges, iptables rules, ip_forward and published ports exist
// only there and vanish with it, nothing can leave the machine, and the host's rules (and other
// berthds' chains) are never touched. NETNS=0 runs in the host's namespace instead; then the
// cleanup removes the rules both daemons leave (berthd's BERTH-<tag>-* chains, dockerd's rules
// for its bridge and, if there were none before, its DOCKER* chains) and puts the FORWARD policy
// and ip_forward back.
//
//   node bench/network.mjs        MIB=1024 NC_MIB=128 REPS=7 START_RUNS=30 NETNS=1 RESULTS=/tmp/berth-bench-results
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installPeers } from './install-peers.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SCRIPT), '..');
const MIB = Number(process.env.MIB ?? 1024);
const REPS = Number(process.env.REPS ?? 7);
const START_RUNS = Number(process.env.START_RUNS ?? 30);
/** The user-defined network each engine gets for the start-latency rows. */
const USER_NET = 'benchnet';
const RESULTS = process.env.RESULTS ?? '/tmp/berth-bench-results';
const NETNS = process.env.NETNS !== '0';
const NC_MIB = Number(process.env.NC_MIB ?? 128);
const SINK_PORT = 5001;
const NODE_PORT = 5002;
const nodeSinks = []; // Node sinks in containers' namespaces (startNodeSink)
const BERTH_BRIDGE = { name: 'bbench0', cidr: '10.240.0.1/24' };
const DOCKER_BRIDGE = { name: 'dbench0', cidr: '10.241.0.1/24' };

// Helper modes, run inside a container's network namespace (nsenter -n) by the measurements below.
if (process.argv[2] === 'sink') await sinkMode(Number(process.argv[3]));
if (process.argv[2] === 'send') await sendMode(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));

if (process.getuid?.() !== 0) {
  console.error('bench/network.mjs needs root');
  process.exit(1);
}

// ---- a network namespace of our own ------------------------------------------------------------
const inNetns = NETNS && process.env.BERTH_NETBENCH_PARENT === String(process.ppid);
if (NETNS && !inNetns) {
  // unshare execs node in place (the child knows itself by its parent's pid), in a process group
  // of its own so that a Ctrl-C reaches it once, from us.
  const child = spawn('unshare', ['--net', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, BERTH_NETBENCH_PARENT: String(process.pid) },
  });
  // The child cleans up and exits, and so do we.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  await new Promise(() => {}); // until the child exits
}
if (inNetns) sh('ip', ['link', 'set', 'lo', 'up']);

installPeers([['dockerd', 'docker.io']]); // before the helpers load: they look dockerd up then
const { startBerthd } = await import(path.join(REPO, 'dist/test/helpers/berthd.js'));
const { startPrivateDockerd, DOCKER, pidsMentioning } = await import(path.join(REPO, 'dist/test/helpers/engines.js'));
const { testImagesDir } = await import(path.join(REPO, 'dist/test/helpers/images.js'));
const { HostNat, natChainPrefix } = await import(path.join(REPO, 'dist/src/network/nat.js'));
const { freePort, httpGetWithRetry } = await import(path.join(REPO, 'dist/test/helpers/http.js'));

// ---- cleanup, whatever happens -------------------------------------------------------------------
const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of [stopNodeSinks, ...cleanups.reverse()]) {
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup: ${err.message}`);
      }
    }
  })();
  return cleaning;
}
// A signal stops the run at the next step (a transfer or a `docker run` under way ends first: the
// measurements block the event loop), then the cleanup runs; a second one cleans up at once.
let interrupted;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) {
      console.error(`\n${sig} again: cleaning up now`);
      void cleanup().then(() => process.exit(128 + os.constants.signals[sig]));
      return;
    }
    interrupted = sig;
    console.error(`\n${sig}: stopping after this step, then cleaning up (again: at once)`);
  });
}
/** Lets a signal's handler run; throws if one came. */
async function checkpoint() {
  await new Promise((resolve) => setImmediate(resolve));
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
}

// The FORWARD policy (dockerd sets DROP), ip_forward (both daemons set it) and whether DOCKER
// chains existed: put back at the end, after dockerd's rules for our bridge are removed.
const forwardPolicy = /^-P FORWARD (\w+)/m.exec(sh('iptables', ['-S', 'FORWARD']))?.[1] ?? 'ACCEPT';
const ipForward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
const dockerChainsBefore = dockerChains();
cleanups.push(() => {
  removeDockerRules(DOCKER_BRIDGE.name, DOCKER_BRIDGE.cidr, dockerChainsBefore.length === 0);
  sh('iptables', ['-P', 'FORWARD', forwardPolicy]);
  fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', ipForward);
});

const images = path.join(testImagesDir(), 'docker-archive');
const context = machineContext();
let berthd;
let dockerd;
const results = { context, mib: MIB, ncMib: NC_MIB, reps: REPS, startRuns: START_RUNS };
try {
  console.log(`machine: ${JSON.stringify(context)}`);
  berthd = await startBerthd({ prefix: 'bench-net-berthd-', bridge: BERTH_BRIDGE, debug: false });
  const natPrefix = natChainPrefix(path.join(berthd.dir, 'data')); // its own BERTH-<tag>- chains
  cleanups.push(async () => {
    await berthd.stop(); // containers, daemon, shims, mounts, its bridges, cgroups, dir
    new HostNat(undefined, natPrefix).removeAll(); // its chains (stop() does it too when it knew of bridges)
  });
  for (const image of ['busybox', 'web']) berthd.dockerOk(['load', '-q', '-i', path.join(images, `${image}.tar`)], 120_000);

  // dockerd's bridge is ours: made here with its address (dockerd takes the subnet from it;
  // --bip and --bridge are exclusive), removed after.
  if (linkExists(DOCKER_BRIDGE.name)) throw new Error(`${DOCKER_BRIDGE.name} exists already`);
  sh('ip', ['link', 'add', DOCKER_BRIDGE.name, 'type', 'bridge']);
  cleanups.push(() => void spawnSync('ip', ['link', 'del', DOCKER_BRIDGE.name]));
  sh('ip', ['addr', 'add', DOCKER_BRIDGE.cidr, 'dev', DOCKER_BRIDGE.name]);
  sh('ip', ['link', 'set', DOCKER_BRIDGE.name, 'up']);
  // iptables and the userland proxy at their defaults (on), as users have them.
  dockerd = await startPrivateDockerd({ prefix: 'bench-net-dockerd-', network: ['--bridge', DOCKER_BRIDGE.name] });
  cleanups.push(() => dockerd.stop());
  for (const image of ['busybox', 'web']) dockerd.dockerOk(['load', '-q', '-i', path.join(images, `${image}.tar`)], 120_000);

  const engines = [
    { name: 'berthd', d: berthd },
    { name: 'dockerd', d: dockerd },
  ];
  const interleaved = (i) => (i % 2 === 0 ? engines : [...engines].reverse());
  /** REPS interleaved runs (after one warm-up each) of measure(engine) → MB/s; the summary. */
  const series = async (title, measure) => {
    console.log(`\n${title}, ${REPS} run${REPS === 1 ? '' : 's'} (+1 warm-up) per engine`);
    const runs = { berthd: [], dockerd: [] };
    for (let i = -1; i < REPS; i++) {
      for (const e of interleaved(i)) {
        await checkpoint();
        const mbps = await measure(e);
        if (i >= 0) runs[e.name].push(mbps);
        console.log(`  ${i < 0 ? 'warm-up' : `run ${i + 1}`} ${e.name}: ${mbps.toFixed(0)} MB/s`);
      }
    }
    return summary(runs, 'MB/s');
  };

  // Both paths work, and carry what they should: the web image's page through a published port
  // from the host, and from another container on the bridge.
  await checkpoint();
  for (const e of engines) await checkPaths(e);

  await checkpoint();
  // Per engine: a sink container on the default bridge, busybox nc on SINK_PORT, with a Node
  // sink in its network namespace on NODE_PORT, both published on 127.0.0.1; and a client
  // container (busybox sleep) whose namespace the Node client enters.
  for (const e of engines) {
    e.ncPort = await freePort();
    e.nodePort = await freePort();
    e.sink = startSink(e.d, ['-p', `127.0.0.1:${e.ncPort}:${SINK_PORT}`, '-p', `127.0.0.1:${e.nodePort}:${NODE_PORT}`]);
    e.sink.ip = e.d.dockerOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', e.sink.id]).trim();
    if (!e.sink.ip) throw new Error(`${e.name}: the sink has no address on the default bridge`);
    await startNodeSink(e.sink.pid);
    if (e.name === 'dockerd') {
      const proxies = pidsMentioning('docker-proxy').filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(String(e.ncPort)));
      console.log(`dockerd's userland proxy: ${proxies.length ? `on (docker-proxy, pid ${proxies.join(' ')}, for host port ${e.ncPort})` : 'off'}`);
    }
    const client = e.d.dockerOk(['run', '-d', 'busybox', 'sleep', '1000000']).trim();
    e.clientPid = Number(e.d.dockerOk(['inspect', '-f', '{{.State.Pid}}', client]).trim());
  }

  // 1. host → container through a port published on 127.0.0.1
  results.hostToContainer = {
    nc: await series(`1a. host → container, -p 127.0.0.1:PORT:${SINK_PORT} to busybox nc, ${MIB} MiB from Node`, async (e) => {
      await waitListening(e.sink.pid, SINK_PORT);
      return sendFromHost(e.ncPort, MIB);
    }),
    node: await series(`1b. host → container, -p 127.0.0.1:PORT:${NODE_PORT} to a Node sink in the container's netns, ${MIB} MiB from Node`, (e) => sendFromHost(e.nodePort, MIB)),
  };

  // 2. container → container on the default bridge
  results.containerToContainer = {
    nc: await series(`2a. container → container, busybox dd | nc in a new container to busybox nc, ${NC_MIB} MiB`, async (e) => {
      await waitListening(e.sink.pid, SINK_PORT);
      return sendFromContainer(e.d, e.sink.ip, NC_MIB);
    }),
    node: await series(`2b. container → container, Node in one container's netns to the Node sink in the other's, ${MIB} MiB`, (e) => sendFromNetns(e.clientPid, e.sink.ip, MIB)),
  };
  for (const e of engines) e.d.dockerOk(['rm', '-f', ...e.d.dockerOk(['ps', '-aq']).split('\n').filter(Boolean)]);
  stopNodeSinks();

  // 3. the start latency of bridge networking: the default bridge, and a user-defined network
  // (its embedded DNS: dockerd's resolver in the namespace, Berth's 127.0.0.11 redirect).
  console.log(`\n3. docker run --rm busybox true, default (bridge) network, a user-defined one, --network none, ${START_RUNS} runs (+2 warm-up) each`);
  for (const [i, e] of engines.entries()) e.d.dockerOk(['network', 'create', '--subnet', `10.${242 + i}.0.0/24`, USER_NET]);
  const start = { berthd: { bridge: [], user: [], none: [] }, dockerd: { bridge: [], user: [], none: [] } };
  for (let i = -2; i < START_RUNS; i++) {
    for (const e of interleaved(i)) {
      const modes = i % 2 === 0 ? ['bridge', 'user', 'none'] : ['none', 'user', 'bridge'];
      for (const mode of modes) {
        await checkpoint();
        const ms = timeRun(e.d, mode);
        if (i >= 0) start[e.name][mode].push(ms);
      }
    }
  }
  for (const e of engines) e.d.docker(['network', 'rm', USER_NET]); // its bridge goes too (NETNS=0 runs in the host's namespace)
  results.start = {};
  for (const e of engines) {
    const { bridge, user, none } = start[e.name];
    results.start[e.name] = {
      bridgeMs: round(median(bridge)),
      userMs: round(median(user)),
      addedUserMs: round(median(user) - median(none)),
      noneMs: round(median(none)),
      // the difference of the medians, and the median of the differences of each iteration's pair
      // of runs (back to back: less of the machine's drifting load)
      addedMs: round(median(bridge) - median(none)),
      addedPairedMs: round(median(bridge.map((b, i) => b - none[i]))),
      bridgeRuns: bridge.map((x) => round(x)),
      noneRuns: none.map((x) => round(x)),
    };
  }
  results.start.ratio = round(results.start.berthd.addedMs / results.start.dockerd.addedMs, 2);
  results.start.ratioUser = round(results.start.berthd.addedUserMs / results.start.dockerd.addedUserMs, 2);
  results.start.ratioPaired = round(results.start.berthd.addedPairedMs / results.start.dockerd.addedPairedMs, 2);

  report(results);
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'network.json'), JSON.stringify(results, null, 2));
  console.log(`\n(JSON in ${path.join(RESULTS, 'network.json')})`);
} catch (err) {
  if (!interrupted) throw err;
  console.error(err.message);
  process.exitCode = 128 + os.constants.signals[interrupted];
} finally {
  await cleanup();
}

// ---- the measurements --------------------------------------------------------------------------

/**
 * A busybox container accepting connections on SINK_PORT, one after another, reading each to
 * /dev/null until the client's EOF, then closing. nc's stdin is a FIFO that never has data nor
 * EOF: at EOF on stdin nc would half-close the connection, and busybox nc as a client exits as
 * soon as the server's side ends.
 */
function startSink(d, publish) {
  const script = `busybox mkfifo /sink-in && exec 3<>/sink-in && while :; do busybox nc -l -p ${SINK_PORT} <&3 >/dev/null; done`;
  const id = d.dockerOk(['run', '-d', ...publish, 'busybox', 'sh', '-c', script]).trim();
  const pid = Number(d.dockerOk(['inspect', '-f', '{{.State.Pid}}', id]).trim());
  return { id, pid };
}

/** The web image's page through a port published on 127.0.0.1, and from a busybox container on the bridge. */
async function checkPaths(e) {
  const want = 'hello from the web test image';
  const id = e.d.dockerOk(['run', '-d', '-p', '127.0.0.1::80', 'web']).trim();
  try {
    const hostPort = e.d.dockerOk(['port', id, '80/tcp']).trim().split('\n')[0].split(':').pop();
    const ip = e.d.dockerOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id]).trim();
    const get = `for i in $(busybox seq 50); do busybox wget -q -O - http://${ip}/ && exit 0; busybox usleep 100000; done; exit 1`;
    const fromContainer = e.d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', get]);
    const fromHost = (await httpGetWithRetry(`http://127.0.0.1:${hostPort}/`))?.body ?? '';
    if (!fromContainer.includes(want) || !fromHost.includes(want)) throw new Error(`${e.name}: the web page did not come through (host: ${JSON.stringify(fromHost.slice(0, 200))}, container: ${JSON.stringify(fromContainer.slice(0, 200))})`);
    console.log(`${e.name}: the web container's page comes through 127.0.0.1:${hostPort} and from a container to ${ip}`);
  } finally {
    e.d.dockerOk(['rm', '-f', id]);
  }
}

/** Until something listens on port in the network namespace of pid (nc listens on :: if it can). */
async function waitListening(pid, port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const listening = () =>
    ['tcp', 'tcp6'].some((f) => {
      let lines = [];
      try {
        lines = fs.readFileSync(`/proc/${pid}/net/${f}`, 'utf8').split('\n').slice(1);
      } catch {
        /* no IPv6 */
      }
      // sl local_address rem_address st ...: st 0A is LISTEN
      return lines.some((l) => {
        const [, local, , st] = l.trim().split(/\s+/);
        return local?.endsWith(hex) && st === '0A';
      });
    });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (listening()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listens on ${port} in the namespace of ${pid}`);
}

/** MB/s (10^6 bytes) of `mib` MiB written to host:port, from connect until the far end closes. */
function send(host, port, mib) {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const socket = net.connect({ host, port, allowHalfOpen: true });
    let t0;
    let sent = 0;
    let failed = false;
    const fail = (err) => {
      failed = true;
      socket.destroy();
      reject(err);
    };
    const pump = () => {
      while (sent < mib) {
        sent++;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
      socket.end();
    };
    socket.on('connect', () => {
      t0 = process.hrtime.bigint();
      pump();
    });
    socket.on('data', () => undefined);
    socket.on('end', () => undefined);
    socket.on('error', fail);
    socket.setTimeout(120_000, () => fail(new Error('timed out')));
    socket.on('close', () => {
      if (failed) return;
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      // The sinks close only at EOF, after all we sent: a close before the last write is a failure.
      if (sent < mib || socket.bytesWritten < mib * 2 ** 20) return reject(new Error(`${host}:${port} closed after ${socket.bytesWritten} bytes`));
      resolve((mib * 2 ** 20) / s / 1e6);
    });
  });
}

function sendFromHost(port, mib) {
  return send('127.0.0.1', port, mib);
}

/** `node bench/network.mjs send HOST PORT MIB`: send() from wherever it runs, MB/s on stdout. */
async function sendMode(host, port, mib) {
  console.log(await send(host, port, mib));
  process.exit(0);
}

/** `node bench/network.mjs sink PORT`: reads each connection to the end, then closes it; "ready" once listening. */
async function sinkMode(port) {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', () => undefined);
    s.on('end', () => s.end());
    s.on('error', () => s.destroy());
  });
  await new Promise((resolve) => server.listen(port, '0.0.0.0', resolve));
  console.log('ready');
  await new Promise(() => {}); // until killed
}

/** A Node sink on NODE_PORT in the network namespace of pid (a host process, nsenter -n). */
async function startNodeSink(pid) {
  const child = spawn('nsenter', ['-t', String(pid), '-n', process.execPath, SCRIPT, 'sink', String(NODE_PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
  nodeSinks.push(child);
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`the Node sink in the namespace of ${pid} exited (${code})`)));
  });
}

function stopNodeSinks() {
  for (const child of nodeSinks.splice(0)) child.kill('SIGKILL');
}

/** MB/s of `mib` MiB from a Node client in the network namespace of pid to the Node sink at ip. */
function sendFromNetns(pid, ip, mib) {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', process.execPath, SCRIPT, 'send', ip, String(NODE_PORT), String(mib)], { encoding: 'utf8', timeout: 300_000 });
  const mbps = Number(r.stdout.trim());
  if (r.status !== 0 || !(mbps > 0)) throw new Error(`Node client in the namespace of ${pid}: ${r.stderr || r.stdout}`);
  return mbps;
}

/** MB/s of `mib` MiB from a client container (`dd | nc`) to the sink at ip, timed inside it. */
function sendFromContainer(d, ip, mib) {
  const script = `read t0 x </proc/uptime; busybox dd if=/dev/zero bs=1M count=${mib} 2>/dev/null | busybox nc ${ip} ${SINK_PORT}; s=$?; read t1 x </proc/uptime; echo "$t0 $t1 $s"`;
  const out = d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', script], 300_000).trim().split('\n').pop();
  const [t0, t1, status] = out.split(' ').map(Number);
  if (status !== 0 || !(t1 > t0)) throw new Error(`client container: ${out}`);
  return (mib * 2 ** 20) / (t1 - t0) / 1e6;
}

/** Wall time (ms) of `docker run --rm busybox true` through the docker CLI, on the default network or none. */
function timeRun(d, mode) {
  const t0 = process.hrtime.bigint();
  const network = mode === 'none' ? ['--network', 'none'] : mode === 'user' ? ['--network', USER_NET] : [];
  const r = spawnSync(DOCKER, ['run', '--rm', ...network, 'busybox', 'true'], { env: d.env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`docker run (${mode}): ${r.stderr}`);
  return ms;
}

// ---- helpers ---------------------------------------------------------------------------------

function sh(file, args) {
  const r = spawnSync(file, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function linkExists(name) {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;
}

/** dockerd's chains (DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1, ...) per table. */
function dockerChains() {
  return ['filter', 'nat'].flatMap((t) => {
    const r = spawnSync('iptables', ['-t', t, '-S'], { encoding: 'utf8' });
    return (r.stdout ?? '').split('\n').flatMap((l) => (/^-N (DOCKER\S*)$/.exec(l) ? [`${t} ${l.slice(3)}`] : []));
  });
}

/**
 * Removes what dockerd leaves in iptables when it stops: its rules for our bridge in the built-in
 * chains (FORWARD accepts, the MASQUERADE of its subnet), the jumps to its chains and, if
 * `chainsToo`, those chains.
 */
function removeDockerRules(bridge, cidr, chainsToo) {
  const subnet = `${cidr.replace(/\.\d+\//, '.0/')}`; // 10.241.0.1/24 → 10.241.0.0/24
  for (const t of ['filter', 'nat']) {
    const rules = spawnSync('iptables', ['-t', t, '-S'], { encoding: 'utf8' }).stdout?.split('\n') ?? [];
    for (const l of rules) {
      const m = /^-A (\S+) (.*)$/.exec(l);
      if (!m || m[1].startsWith('DOCKER')) continue;
      const words = m[2].split(' ');
      const ours = words.includes(bridge) || words.includes(subnet) || (chainsToo && /-j DOCKER\S*$/.test(m[2]));
      if (ours) spawnSync('iptables', ['-t', t, '-D', m[1], ...words]);
    }
    if (!chainsToo) continue;
    const chains = rules.flatMap((l) => (/^-N (DOCKER\S*)$/.exec(l) ? [l.slice(3)] : []));
    for (const c of chains) spawnSync('iptables', ['-t', t, '-F', c]);
    for (const c of chains) spawnSync('iptables', ['-t', t, '-X', c]);
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(x, digits = 1) {
  return Number(x.toFixed(digits));
}

function summary(byEngine, unit) {
  const out = {};
  for (const [name, xs] of Object.entries(byEngine)) out[name] = { median: round(median(xs)), min: round(Math.min(...xs)), max: round(Math.max(...xs)), runs: xs.map((x) => round(x)), unit };
  out.ratio = round(out.berthd.median / out.dockerd.median, 2);
  return out;
}

function machineContext() {
  const v = (file, args) => spawnSync(file, args, { encoding: 'utf8' }).stdout?.trim().split('\n')[0] ?? '';
  return {
    date: new Date().toISOString(),
    kernel: os.release(),
    nproc: os.cpus().length,
    loadavg: os.loadavg().map((x) => round(x, 2)),
    node: process.version,
    dockerd: v('dockerd', ['--version']),
    dockerCli: v(DOCKER, ['--version']),
    iptables: v('iptables', ['--version']),
    netns: inNetns ? 'private (unshare --net)' : 'host',
  };
}

function report(r) {
  const verdict = (ok) => (ok ? 'met' : 'NOT met');
  console.log('\n=== results (medians) ===');
  console.log(`load average at start ${r.context.loadavg.join(' ')}, at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const line = (label, x) => console.log(`${label.padEnd(58)} berthd ${String(x.berthd.median).padStart(7)} MB/s   dockerd ${String(x.dockerd.median).padStart(7)} MB/s   berth/docker ${x.ratio.toFixed(2)} (target ≥ 1: ${verdict(x.ratio >= 1)})`);
  line('host → container, 127.0.0.1 published port, busybox nc', r.hostToContainer.nc);
  line('host → container, 127.0.0.1 published port, Node sink', r.hostToContainer.node);
  line('container → container, default bridge, busybox nc', r.containerToContainer.nc);
  line('container → container, default bridge, Node', r.containerToContainer.node);
  const s = r.start;
  for (const name of ['berthd', 'dockerd']) console.log(`run --rm busybox true, ${name.padEnd(7)}: bridge ${s[name].bridgeMs} ms, user-defined ${s[name].userMs} ms, none ${s[name].noneMs} ms, added ${s[name].addedMs} ms (paired: ${s[name].addedPairedMs} ms), user-defined added ${s[name].addedUserMs} ms`);
  console.log(`added start latency berth/docker: ${s.ratio.toFixed(2)}, paired ${s.ratioPaired.toFixed(2)} (target < 0.5: ${verdict(s.ratio < 0.5)}, paired ${verdict(s.ratioPaired < 0.5)}); on a user-defined network ${s.ratioUser.toFixed(2)}`);
}
