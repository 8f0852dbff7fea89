#!/usr/bin/env node
// A/B of the Docker API container cycle between two builds of berthd on a noisy machine: one
// private berthd per build tree (test/helpers/berthd.ts of that tree), busybox loaded into each,
// then create + wait + start + remove of `busybox true` (as bench/engine-api.mjs) alternating
// between them cycle by cycle (ABBA), so that load from elsewhere hits both alike. Prints, per
// tree, the median and quartiles of the whole cycle and of each request.
//
//   node bench/engine-api-ab.mjs TREE_A TREE_B [CYCLES]      (default 60 per tree, after 5 warm-ups)
//   node bench/engine-api-ab.mjs /path/to/main-checkout .     e.g. main against this tree
//
// Each tree needs a build (npm run build). Needs root and the docker CLI (the helper loads the image).
import http from 'node:http';
import path from 'node:path';

const args = process.argv.slice(2);
const trees = args.filter((a) => !/^\d+$/.test(a)).map((t) => path.resolve(t));
const cycles = Number(args.find((a) => /^\d+$/.test(a)) ?? 60);
if (trees.length < 1) {
  console.error('usage: engine-api-ab.mjs TREE_A [TREE_B ...] [CYCLES]');
  process.exit(2);
}

function request(socketPath, method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath, method, path: p, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 400) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`));
        else resolve(text ? JSON.parse(text) : undefined);
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

const now = () => process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;

/** One cycle; the phases as the client sees them (wait: from the start's answer to the exit's). */
async function once(socket) {
  const t0 = now();
  const { Id } = await request(socket, 'POST', '/v1.41/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
  const t1 = now();
  const waited = request(socket, 'POST', `/v1.41/containers/${Id}/wait?condition=next-exit`);
  await request(socket, 'POST', `/v1.41/containers/${Id}/start`);
  const t2 = now();
  const { StatusCode } = await waited;
  const t3 = now();
  if (StatusCode !== 0) throw new Error(`exit ${StatusCode}`);
  await request(socket, 'DELETE', `/v1.41/containers/${Id}?force=1`);
  const t4 = now();
  return { total: ms(t0, t4), create: ms(t0, t1), start: ms(t1, t2), wait: ms(t2, t3), remove: ms(t3, t4) };
}

const daemons = [];
try {
  for (const tree of trees) {
    const { startBerthd } = await import(path.join(tree, 'dist/test/helpers/berthd.js'));
    const d = await startBerthd({ prefix: 'ab-berthd-' });
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
    const line = ['total', 'create', 'start', 'wait', 'remove'].map((k) => {
      const xs = samples[j].map((s) => s[k]);
      return `${k} ${q(xs, 0.5).toFixed(1)} [${q(xs, 0.25).toFixed(1)}-${q(xs, 0.75).toFixed(1)}]`;
    });
    console.log(`${tree} (${cycles} cycles, ms, median [p25-p75]): ${line.join('  ')}`);
  }
} finally {
  for (const d of daemons) await d.stop();
}
