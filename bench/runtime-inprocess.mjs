#!/usr/bin/env node
// In-process container start, as the daemon does it: no CLI process start, just the runtime
// library. Times create + start + wait + delete of the bundle's process (meant for /bin/true).
// With --shim, as berthd runs a container: under a berth-shim (started through berth-spawner),
// the spec handed over in memory, a network namespace made ahead (NetnsPool), waited for through
// the shim's socket, the shim told to go at the delete and not waited for. With --start-now too,
// create and start in one step, as berthd starts a container that has no network endpoints and
// no attach client waiting (no exec fifo; the start phase is then 0).
//
//   node bench/runtime-inprocess.mjs BUNDLE [--shim [--start-now]] [--runs N] [--warmup N] [--json FILE] [--state-in DIR]
//
// Needs a build (npm run build) and root. Uses its own state root and removes it: in DIR, else in
// /dev/shm (a tmpfs, as berthd's exec root, which holds the runtime's state), else in /tmp.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    shim: { type: 'boolean', default: false },
    'start-now': { type: 'boolean', default: false },
    json: { type: 'string' },
    'state-in': { type: 'string' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: node bench/runtime-inprocess.mjs BUNDLE [--shim [--start-now]] [--runs N] [--warmup N] [--json FILE] [--state-in DIR]');
  process.exit(2);
}
const bundle = path.resolve(positionals[0]);
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const TARGET_MS = 10;

const lib = new URL('../dist/src/runtime/runtime.js', import.meta.url);
if (!fs.existsSync(lib)) {
  console.error(`runtime-inprocess: ${lib.pathname} is missing; run npm run build first`);
  process.exit(2);
}
const { Runtime, exitStatus } = await import(lib.href);
const { ShimClient } = await import(new URL('../dist/src/shim/client.js', import.meta.url).href);
const { NetnsPool } = await import(new URL('../dist/src/shim/spawner.js', import.meta.url).href);

// The runtime's state where berthd keeps it: in its exec root, a tmpfs (berthd mounts one on an
// exec root that is on a disk, src/engine/host-tuning.ts), so /dev/shm by default.
const TMPFS_MAGIC = 0x01021994;
const stateParent = values['state-in'] ?? (fs.existsSync('/dev/shm') && fs.statfsSync('/dev/shm').type === TMPFS_MAGIC ? '/dev/shm' : os.tmpdir());
const root = fs.mkdtempSync(path.join(stateParent, 'berth-bench-inproc-'));
const stateFs = fs.statfsSync(root).type === TMPFS_MAGIC ? 'tmpfs' : 'not a tmpfs';
// As the engine: parent cgroups kept between containers, network namespaces made ahead.
const netns = values.shim ? new NetnsPool() : undefined;
const rt = new Runtime({ root, keepCgroupParents: values.shim, netns });
const prefix = `${process.env.BENCH_ID_PREFIX ?? `bip${process.pid}`}-ip`;
let live; // id of a container that may still exist

async function cleanup() {
  if (live) {
    try {
      await rt.delete(live, true);
    } catch {
      /* already gone */
    }
    live = undefined;
  }
  // Anything left by an earlier failure in this run.
  for (const id of fs.existsSync(root) ? fs.readdirSync(root).filter((n) => !n.endsWith('.shim')) : []) {
    try {
      await rt.delete(id, true);
    } catch {
      /* ignore */
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
  netns?.close();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup().finally(() => process.exit(130));
  });
}

const ms = (a, b) => Number(b - a) / 1e6;
const now = () => process.hrtime.bigint();

// As berthd: the spec in memory, handed over (validated by the runtime all the same).
const config = values.shim ? JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) : undefined;
const startNow = values.shim && values['start-now'];
const shutdowns = [];

async function once(id) {
  const t0 = now();
  live = id;
  const shimDir = path.join(root, `${id}.shim`);
  const { stage0 } = values.shim ? await rt.create(id, { bundle, config, startNow, shim: { dir: shimDir } }) : await rt.create(id, { bundle, foreground: true, stdio: ['ignore', 'inherit', 'inherit'] });
  const shim = values.shim ? new ShimClient(shimDir) : undefined;
  const exited = shim?.wait(); // as the daemon watches, from right after the create
  const t1 = now();
  if (!startNow) await rt.start(id);
  const t2 = now();
  const status = shim ? (await exited).status : await exitStatus(stage0);
  const t3 = now();
  // As the engine (releaseRuntime): the runtime's delete; the shim told to go, not waited for.
  if (shim) shutdowns.push(shim.shutdownAndWait());
  await rt.delete(id, true);
  live = undefined;
  const t4 = now();
  if (status !== 0) throw new Error(`container ${id} exited with status ${status}`);
  return { total: ms(t0, t4), create: ms(t0, t1), start: ms(t1, t2), wait: ms(t2, t3), delete: ms(t3, t4) };
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

// A failed run is counted and reported (and makes the exit status 1), but does not stop the
// benchmark: a rare race should show up as a failure count next to the figures.
const samples = [];
const failures = [];
async function attempt(id) {
  try {
    return await once(id);
  } catch (err) {
    failures.push(`${id}: ${err?.message ?? err}`);
    if (live) {
      try {
        await rt.delete(live, true);
      } catch {
        /* gone */
      }
      live = undefined;
    }
    return undefined;
  }
}
try {
  for (let i = 0; i < warmup; i++) await attempt(`${prefix}w${i}`);
  for (let i = 0; i < runs; i++) {
    const s = await attempt(`${prefix}${i}`);
    if (s) samples.push(s);
  }
} finally {
  await Promise.allSettled(shutdowns);
  await cleanup();
}
if (failures.length) {
  console.error(`runtime-inprocess: ${failures.length} of ${warmup + runs} runs failed:`);
  for (const f of failures) console.error(`  ${f}`);
}
if (!samples.length) process.exit(1);

const keys = ['total', 'create', 'start', 'wait', 'delete'];
const summary = {};
for (const k of keys) {
  const xs = samples.map((s) => s[k]);
  summary[k] = { median: quantile(xs, 0.5), p90: quantile(xs, 0.9), min: Math.min(...xs), max: Math.max(...xs) };
}
const f = (x) => x.toFixed(2).padStart(7);
console.log(`in-process create+start+wait+delete of ${bundle}${values.shim ? (startNow ? ' under a shim, create and start in one (startNow, as berthd without network endpoints or attach)' : ' under a shim') : ''} (${runs} runs after ${warmup} warmups, node ${process.version}, state in ${stateParent}: ${stateFs})`);
console.log(`  ${'phase'.padEnd(8)} ${'median'.padStart(7)} ${'p90'.padStart(7)} ${'min'.padStart(7)} ${'max'.padStart(7)}  (ms)`);
for (const k of keys) {
  const s = summary[k];
  console.log(`  ${k.padEnd(8)} ${f(s.median)} ${f(s.p90)} ${f(s.min)} ${f(s.max)}`);
}
// The target is for the daemon's path: under a shim, the state on a tmpfs.
const met = summary.total.median < TARGET_MS;
if (values.shim) console.log(`  target (the daemon's path): median < ${TARGET_MS} ms: ${met ? 'MET' : 'NOT MET'} (median ${summary.total.median.toFixed(2)} ms, state ${stateFs})`);
else console.log(`  (the library without a shim, as berth-oci's CLI calls it; the ${TARGET_MS} ms target is for the daemon's path: --shim)`);
if (failures.length) console.log(`  FAILED runs: ${failures.length} of ${warmup + runs} (see stderr); figures are over the ${samples.length} that worked`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify({ bundle, runs, warmup, summary, samples, failures }, null, 2) + '\n');
if (failures.length) process.exitCode = 1;
