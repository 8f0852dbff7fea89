#!/usr/bin/env node
// Engine benchmark (issue 4, acceptance 5): berthd vs dockerd (Debian's 20.10 + containerd + runc)
// vs podman (4.3 + conmon; runtime berth-oci, see startPodmanService), side by side in one run,
// same busybox image:
//   1. `run --rm busybox true` through a CLI, one run of each per round (roundRobin: fairer than
//      hyperfine's blocks on a VM whose load changes): docker CLI → berthd, berth CLI → berthd
//      (if built), docker CLI → dockerd, podman run
//   2. the same through the API alone (bench/engine-api.mjs's cycle: create + wait + start + remove),
//      the engines in turn, cycle by cycle
//   3. `run -d` + `rm -f`
//   4. 50 containers started sequentially and 8 at a time (`run -d sleep`), then removed
//   5. memory with 50 idle containers: per-container shim (berth-shim / containerd-shim / conmon)
//      RSS and PSS, and the daemon's RSS
// Prints medians and ratios and writes them to $RESULTS/engine.json. Needs root and a build.
//
//   node bench/engine.mjs            RUNS=20 node bench/engine.mjs
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { containerCycle } from './docker-api.mjs';
import { installPeers } from './install-peers.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.RUNS ?? 20);
const RESULTS = process.env.RESULTS ?? '/tmp/berth-bench-results';
const N = Number(process.env.CONTAINERS ?? 50);

// Before the helpers load: they look the binaries up then. docker.io brings dockerd with
// containerd and runc.
installPeers([['hyperfine', 'hyperfine'], ['podman', 'podman'], ['dockerd', 'docker.io']]);
const { startBerthd } = await import(path.join(REPO, 'dist/test/helpers/berthd.js'));
const { startPrivateDockerd, DOCKER, existingCgroups, pidsMentioning, removeCgroups, stopPid, unmountUnder } = await import(path.join(REPO, 'dist/test/helpers/engines.js'));
const { testImagesDir } = await import(path.join(REPO, 'dist/test/helpers/images.js'));

const busyboxTar = path.join(testImagesDir(), 'docker-archive', 'busybox.tar');
const BERTH_CLI = fs.existsSync(path.join(REPO, 'bin', 'berth')) && fs.existsSync(path.join(REPO, 'dist', 'berth.cjs')) ? path.join(REPO, 'bin', 'berth') : undefined;

// bin/berth and bin/berth-oci (podman's runtime here) run their commands in servers they start
// on first use: this run gets its own (the first rounds start them), stopped at the end.
const serverDirs = { BERTH_CLI_SERVER_DIR: `/run/bench-berth-cli-${process.pid}`, BERTH_OCI_SERVER_DIR: `/run/bench-berth-oci-${process.pid}` };
Object.assign(process.env, serverDirs);

// ---- the three engines -----------------------------------------------------------------------
// As it ships: without -D (which logs every request), as dockerd runs here.
const berthd = await startBerthd({ prefix: 'bench-berthd-', debug: false });
let dockerd, podman;
const cleanups = [
  () => {
    for (const dir of Object.values(serverDirs)) {
      spawnSync('pkill', ['-f', `serve ${dir}/`]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  () => berthd.stop(),
];
async function cleanup() {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${err.message}`);
    }
  }
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  berthd.dockerOk(['load', '-q', '-i', busyboxTar]);
  dockerd = await startPrivateDockerd({ prefix: 'bench-dockerd-' });
  cleanups.push(() => dockerd.stop());
  dockerd.dockerOk(['load', '-q', '-i', busyboxTar]);
  podman = await startPodmanService();
  cleanups.push(() => podman.stop());
  podman.ok(['load', '-q', '-i', busyboxTar]);

  const results = { runs: RUNS, containers: N };
  const dockerCmd = (env, args) => `env DOCKER_HOST=${env.DOCKER_HOST} DOCKER_CONFIG=${env.DOCKER_CONFIG} ${DOCKER} ${args}`;

  // 1. CLI run --rm
  const cliCommands = {
    'docker CLI -> berthd': dockerCmd(berthd.env, 'run --rm --network none busybox true'),
    ...(BERTH_CLI ? { 'berth CLI -> berthd': `env BERTH_HOST=unix://${berthd.socket} ${BERTH_CLI} run --rm --network none busybox true` } : {}),
    // The same command in Node (as the first command of a build, before its server is up).
    ...(BERTH_CLI ? { 'berth CLI in Node -> berthd': `env BERTH_CLI_SERVER=0 BERTH_HOST=unix://${berthd.socket} ${BERTH_CLI} run --rm --network none busybox true` } : {}),
    'docker CLI -> dockerd': dockerCmd(dockerd.env, 'run --rm --network none busybox true'),
    'podman run': `${podman.cmdline} run --rm ${podman.ulimits.join(' ')} --network none busybox true`,
    // The floor of any Node CLI on this machine at this moment (started as bin/berth starts node).
    'node -e 0': 'env -u NODE_EXTRA_CA_CERTS node -e 0',
  };
  results.cliRunRm = roundRobin(cliCommands);

  // 2. API alone: one cycle of each engine per round, the order turning each round, as the CLI
  // rounds above (one engine after another put the first one right after the round robin's
  // thousands of freed inodes, which make this VM's ext4 slower for a minute: see the README).
  results.apiRunRm = await apiRounds([
    ['berthd', berthd.socket, {}],
    ['dockerd', `${dockerd.dir}/docker.sock`, {}],
    ['podman', podman.socket, { Ulimits: podman.ulimitsApi }],
  ]);

  // 3. run -d + rm -f
  results.runDetachRm = hyperfine({
    'berthd (docker CLI)': `id=$(${dockerCmd(berthd.env, 'run -d --network none busybox sleep 100')}) && ${dockerCmd(berthd.env, 'rm -f $id')} >/dev/null`,
    'dockerd': `id=$(${dockerCmd(dockerd.env, 'run -d --network none busybox sleep 100')}) && ${dockerCmd(dockerd.env, 'rm -f $id')} >/dev/null`,
    'podman': `id=$(${podman.cmdline} run -d ${podman.ulimits.join(' ')} --network none busybox sleep 100) && ${podman.cmdline} rm -f -t 0 $id >/dev/null`,
  });

  // 4 + 5. many containers, then memory while they idle
  results.many = {};
  results.memory = {};
  const runArgs = ['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000'];
  const engines = [
    { name: 'berthd', run: (a) => berthd.docker(a), argv: () => [DOCKER, runArgs, berthd.env], shim: 'berth-shim', dir: berthd.dir, daemonPid: () => berthd.pid() },
    { name: 'dockerd', run: (a) => dockerd.docker(a), argv: () => [DOCKER, runArgs, dockerd.env], shim: 'containerd-shim', dir: dockerd.dir, daemonPid: () => pidOf(`${dockerd.dir}/dockerd.pid`) },
    { name: 'podman', run: (a) => podman.run(a), argv: () => ['podman', [...podman.base, 'run', ...podman.ulimits, ...runArgs.slice(1)], process.env], shim: 'conmon', dir: podman.dir, daemonPid: () => podman.pid, podman: true },
  ];
  for (const e of engines) {
    const seq = timeIt(() => {
      for (let i = 0; i < N; i++) mustRun(e.run, runArgs);
    });
    results.memory[e.name] = memory(e.shim, e.dir, e.daemonPid());
    removeAll(e.run, e.podman);
    const par = await timeItAsync(() => parallel(N, 8, e.argv));
    removeAll(e.run, e.podman);
    results.many[e.name] = { sequentialS: +seq.toFixed(2), parallel8S: +par.toFixed(2) };
  }

  report(results);
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'engine.json'), JSON.stringify(results, null, 2));
} finally {
  await cleanup();
}

// ---- helpers ---------------------------------------------------------------------------------

function hyperfine(commands) {
  const json = path.join(berthd.dir, `hf-${Date.now()}.json`);
  const args = ['-N', '--warmup', '2', '--runs', String(RUNS), '--export-json', json, '--style', 'basic'];
  for (const [name, command] of Object.entries(commands)) args.push('-n', name, `sh -c ${q2(command)}`);
  execFileSync('hyperfine', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const data = JSON.parse(fs.readFileSync(json, 'utf8'));
  return Object.fromEntries(data.results.map((r) => [r.command, +(r.median * 1000).toFixed(1)]));
}

/** bench/engine-api.mjs's cycle (create, wait, start, remove) on each engine in turn; medians in ms. */
async function apiRounds(engines) {
  const runs = Math.max(RUNS, 30);
  const times = engines.map(() => []);
  for (let round = -3; round < runs; round++) {
    for (let i = 0; i < engines.length; i++) {
      const j = (Math.max(round, 0) + i) % engines.length;
      const [, socket, hostConfig] = engines[j];
      const { total } = await containerCycle(socket, { hostConfig });
      if (round >= 0) times[j].push(total);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`API cycle, ${runs} rounds (ms): median`);
  for (const [j, [name]] of engines.entries()) console.log(`  ${name.padEnd(10)} ${median(times[j]).toFixed(1)}`);
  return Object.fromEntries(engines.map(([name], j) => [name, +median(times[j]).toFixed(1)]));
}

/**
 * Like hyperfine -N, but one run of each command per round, round after round (the order
 * turning each round), instead of all the runs of one command and then the next: on this shared
 * VM the load changes within seconds, and a slow spell should hit every command alike, not one.
 * Each run is `sh -c COMMAND`, as the hyperfine runs are. Prints and returns the medians in ms.
 */
function roundRobin(commands) {
  const names = Object.keys(commands);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  const once = (name) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', commands[name]], { stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${name}: exit ${r.status}: ${r.stderr}`);
    return ms;
  };
  for (let round = 0; round < 2; round++) for (const n of names) once(n); // warm-up
  for (let round = 0; round < RUNS; round++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(round + i) % names.length];
      times[n].push(once(n));
    }
  }
  const medians = {};
  console.log(`round robin, ${RUNS} rounds (ms): median [min-max]`);
  for (const n of names) {
    const t = times[n].sort((a, b) => a - b);
    medians[n] = +t[t.length >> 1].toFixed(1);
    console.log(`  ${n.padEnd(24)} ${medians[n].toFixed(1).padStart(7)} [${t[0].toFixed(1)}-${t[t.length - 1].toFixed(1)}]`);
  }
  return medians;
}

function q2(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function mustRun(run, args) {
  const r = run(args);
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function removeAll(run, podmanStyle = false) {
  const ids = mustRun(run, ['ps', '-aq']).split('\n').filter(Boolean);
  if (ids.length) mustRun(run, ['rm', '-f', ...(podmanStyle ? ['-t', '0'] : []), ...ids]);
}

function timeIt(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function timeItAsync(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Runs `count` CLI invocations, `width` at a time, as child processes. */
async function parallel(count, width, argvOf) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const [file, args, env] = argvOf();
      await new Promise((resolve, reject) => {
        const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')}: ${err}`))));
      });
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
}

function pidOf(file) {
  try {
    return Number(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function rssPss(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kb('Rss'), pss: kb('Pss') };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

function memory(shimName, dir, daemonPid) {
  const shims = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const comm = fs.readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      if ((comm.startsWith(shimName.slice(0, 15)) || cmdline.split('\0')[0].endsWith(shimName)) && cmdline.includes(dir)) shims.push(Number(e));
    } catch {
      /* gone */
    }
  }
  const per = shims.map(rssPss);
  const med = (xs) => (xs.length ? xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] : 0);
  const daemon = daemonPid ? rssPss(daemonPid) : { rss: 0, pss: 0 };
  return { shims: shims.length, shimRssKb: med(per.map((m) => m.rss)), shimPssKb: med(per.map((m) => m.pss)), daemonRssKb: daemon.rss };
}

async function startPodmanService() {
  const dir = fs.mkdtempSync('/tmp/bench-podman-');
  const socket = path.join(dir, 'podman.sock');
  // podman (cgroupfs) makes libpod_parent/conmon and leaves it: removed at stop unless it was there.
  const cgroupParents = ['libpod_parent/conmon', 'libpod_parent'];
  const cgroupsBefore = existingCgroups(cgroupParents);
  // podman's own runtimes fail here: crun refuses hybrid cgroups and runc cannot set podman's
  // RLIMIT_NPROC without CAP_SYS_RESOURCE; so podman (and conmon) run berth-oci, as in
  // test/integration/engines-podman.test.ts.
  const base = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--cgroup-manager=cgroupfs', '--events-backend=file', '--tmpdir', path.join(dir, 'tmp'), '--runtime', path.join(REPO, 'bin', 'berth-oci')];
  const cmdline = `podman ${base.join(' ')}`;
  const child = spawn('podman', [...base, 'system', 'service', '-t', '0', `unix://${socket}`], { stdio: 'ignore', detached: true });
  child.unref();
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(socket) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // podman asks for rlimits the runtime cannot raise without CAP_SYS_RESOURCE: ours, capped
  // at pid_max as in test/integration/engines-podman.test.ts.
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const hard = (name) => Number(new RegExp(`^${name}\\s+\\S+\\s+(\\d+)`, 'm').exec(limits)?.[1] ?? 1048576);
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const nofile = hard('Max open files');
  const nproc = Math.min(hard('Max processes'), pidMax);
  const ulimits = ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
  const run = (args) => {
    const extra = args[0] === 'run' ? ['run', ...ulimits, ...args.slice(1)] : args;
    return spawnSync('podman', [...base, ...extra], { encoding: 'utf8', timeout: 120_000 });
  };
  return {
    dir,
    socket,
    base,
    ulimits,
    ulimitsApi: [
      { Name: 'nofile', Soft: nofile, Hard: nofile },
      { Name: 'nproc', Soft: nproc, Hard: nproc },
    ],
    pid: child.pid,
    cmdline: `${cmdline}`,
    run,
    ok: (args) => mustRun(run, args),
    stop: async () => {
      removeAll(run, true);
      await stopPid(child.pid, 10_000);
      for (const pid of pidsMentioning(dir)) await stopPid(pid, 3000);
      spawnSync('podman', [...base, 'system', 'reset', '-f'], { stdio: 'ignore' });
      unmountUnder(dir);
      removeCgroups(cgroupParents, [], cgroupsBefore);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function report(r) {
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : 'n/a');
  console.log('\n=== results (medians) ===');
  console.log('CLI run --rm (ms):', JSON.stringify(r.cliRunRm));
  const berthCli = r.cliRunRm['berth CLI -> berthd'] ?? r.cliRunRm['docker CLI -> berthd'];
  console.log(`  berth/docker ratio: ${ratio(berthCli, r.cliRunRm['docker CLI -> dockerd'])} (target <= 0.20)`);
  console.log('API create+start+wait+remove (ms):', JSON.stringify(r.apiRunRm), `(target berthd < 20)`);
  console.log('run -d + rm -f (ms):', JSON.stringify(r.runDetachRm));
  console.log(`${N} containers (s):`, JSON.stringify(r.many));
  console.log(`memory with ${N} idle containers (kB):`, JSON.stringify(r.memory));
}
