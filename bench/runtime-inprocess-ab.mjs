#!/usr/bin/env node
// A/B of the in-process container start (the daemon's path: under a shim, the spec in memory,
// network namespaces made ahead, create and start in one) between two build trees, in ONE
// process, cycle by cycle in ABBA order, so that a noisy machine's load falls on both alike.
// Sub-millisecond changes are invisible to two separate runs of runtime-inprocess.mjs here
// (their medians differ by up to 1 ms run to run); this is what decides whether one is kept.
//
//   node bench/runtime-inprocess-ab.mjs TREE_A TREE_B BUNDLE [CYCLES]   (default 100 per tree)
//
// Each tree needs a build (npm run build); BUNDLE runs /bin/true (as runtime-start.sh makes it).
// Needs root. State roots in /dev/shm, removed at the end.
import fs from 'node:fs';
import path from 'node:path';

const [treeA, treeB, bundleArg, cyclesArg] = process.argv.slice(2);
if (!treeA || !treeB || !bundleArg) {
  console.error('usage: runtime-inprocess-ab.mjs TREE_A TREE_B BUNDLE [CYCLES]');
  process.exit(2);
}
const bundle = path.resolve(bundleArg);
const cycles = Number(cyclesArg ?? 100);
const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));

const sides = [];
for (const tree of [treeA, treeB].map((t) => path.resolve(t))) {
  const lib = (p) => import(path.join(tree, 'dist/src', p));
  const { Runtime } = await lib('runtime/runtime.js');
  const { ShimClient } = await lib('shim/client.js');
  const { NetnsPool } = await lib('shim/spawner.js');
  const root = fs.mkdtempSync('/dev/shm/berth-bench-ab-');
  const netns = new NetnsPool();
  sides.push({ tree, rt: new Runtime({ root, keepCgroupParents: true, netns }), ShimClient, netns, root, times: [], shutdowns: [] });
}

const now = () => Number(process.hrtime.bigint()) / 1e6;
let n = 0;
async function cycle(side) {
  const id = `bab${process.pid}-${n++}`;
  const shimDir = path.join(side.root, `${id}.shim`);
  const t0 = now();
  await side.rt.create(id, { bundle, config: structuredClone(config), startNow: true, shim: { dir: shimDir } });
  const shim = new side.ShimClient(shimDir);
  const { status } = await shim.wait();
  side.shutdowns.push(shim.shutdownAndWait()); // as berthd: not waited for
  await side.rt.delete(id, true);
  if (status !== 0) throw new Error(`${side.tree}: container ${id} exited with ${status}`);
  return now() - t0;
}

try {
  for (let i = 0; i < 5; i++) for (const side of sides) await cycle(side);
  for (let i = 0; i < cycles; i++) {
    for (const side of i % 2 ? [...sides].reverse() : sides) side.times.push(await cycle(side));
  }
} finally {
  for (const side of sides) {
    await Promise.allSettled(side.shutdowns);
    side.netns.close();
    fs.rmSync(side.root, { recursive: true, force: true });
  }
}
for (const side of sides) {
  const xs = [...side.times].sort((a, b) => a - b);
  const q = (p) => xs[Math.floor(p * (xs.length - 1))].toFixed(2);
  console.log(`${side.tree}: median ${q(0.5)} ms [p25 ${q(0.25)}, p75 ${q(0.75)}] over ${xs.length} cycles`);
}
