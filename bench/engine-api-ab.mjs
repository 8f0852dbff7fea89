#!/usr/bin/env node
// A/B of the Docker API container cycle between two builds of berthd on a noisy machine: one
// private berthd per build tree (test/helpers/berthd.ts of that tree), busybox loaded into each,
// then create + wait + start + remove of `busybox true` (as bench/engine-api.mjs) alternating
// between them cycle by cycle (ABBA), so that load from elsewhere hits both alike. Prints, per
// tree, the median and quartiles of the whole cycle and of each request.
//
//   node bench/engine-api-ab.mjs TREE_A TREE_B [CYCLES]      (default 60 per tree, after 5 warm-ups)
//   node bench/engine-api-ab.mjs /path/to/main-checkout .     e.g. main against this tree
//   FLOW=run node bench/engine-api-ab.mjs ...                 `docker run --rm`'s requests instead
//
// Each tree needs a build (npm run build). Needs root and the docker CLI (the helper loads the image).
import path from 'node:path';

import { containerCycle, runCycle } from './docker-api.mjs';

const args = process.argv.slice(2);
const trees = args.filter((a) => !/^\d+$/.test(a)).map((t) => path.resolve(t));
const cycles = Number(args.find((a) => /^\d+$/.test(a)) ?? 60);
if (trees.length < 1) {
  console.error('usage: engine-api-ab.mjs TREE_A [TREE_B ...] [CYCLES]');
  process.exit(2);
}

// FLOW=run: the requests of `docker run --rm` (attach, wait removed) instead of the API cycle.
const flow = process.env.FLOW === 'run' ? runCycle : containerCycle;
const phases = process.env.FLOW === 'run' ? ['total', 'create', 'attach', 'start', 'exit'] : ['total', 'create', 'start', 'wait', 'remove'];
const once = (socket) => flow(socket);

const daemons = [];
try {
  for (const tree of trees) {
    const { startBerthd } = await import(path.join(tree, 'dist/test/helpers/berthd.js'));
    const d = await startBerthd({ prefix: 'ab-berthd-', debug: false });
    daemons.push(d);
    d.loadImages('busybox');
    for (let i = 0; i < 5; i++) await once(d.socket);
  }
  const samples = trees.map(() => []);
  for (let i = 0; i < cycles; i++) {
    const order = i % 2 ? [...trees.keys()].reverse() : [...trees.keys()];
    for (const j of order) samples[j].push(await once(daemons[j].socket));
  }
  const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  for (const [j, tree] of trees.entries()) {
    const line = phases.map((k) => {
      const xs = samples[j].map((s) => s[k]);
      return `${k} ${q(xs, 0.5).toFixed(1)} [${q(xs, 0.25).toFixed(1)}-${q(xs, 0.75).toFixed(1)}]`;
    });
    console.log(`${tree} (${cycles} cycles, ms, median [p25-p75]): ${line.join('  ')}`);
  }
} finally {
  for (const d of daemons) await d.stop();
}
