#!/usr/bin/env node
// Measures the cost of joining the container's cgroups (the cgroup.procs writes), separately,
// for berth-oci (from its C stage's own op trace, BERTH_NSEXEC_TRACE=1) and for runc (strace -T).
//
//   node bench/cgroup-attach.mjs BUNDLE [--runs N]
//
// On cgroup v1 the first cgroup.procs write of a container waits for an RCU grace period
// (cgroup_threadgroup_rwsem is a percpu rwsem; taking it for writing waits for readers to
// leave the fast path), whichever controller is written first. The later writes are cheap.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '10' } } });
if (positionals.length !== 1) {
  console.error('usage: node bench/cgroup-attach.mjs BUNDLE [--runs N]');
  process.exit(2);
}
const bundle = path.resolve(positionals[0]);
const runs = Number(values.runs);
const repo = path.resolve(new URL('..', import.meta.url).pathname);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-cgattach-'));
const prefix = `${process.env.BENCH_ID_PREFIX ?? `bca${process.pid}`}-ca`;

function cleanup() {
  for (const rt of ['berth', 'runc']) {
    const dir = path.join(root, rt);
    for (const id of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const cmd = rt === 'berth' ? [path.join(repo, 'bin/berth-oci'), '--root', dir] : ['runc', '--root', dir];
      spawnSync(cmd[0], [...cmd.slice(1), 'delete', '-f', id], { stdio: 'ignore' });
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// berth-oci: "[sec.usec] stage0 write /sys/fs/cgroup/cpu/ID/cgroup.procs" lines; the write's cost
// is the gap to the next op's timestamp.
function berthOnce(id) {
  const r = spawnSync(path.join(repo, 'bin/berth-oci'), ['--root', path.join(root, 'berth'), 'run', '-b', bundle, id], {
    env: { ...process.env, BERTH_NSEXEC_TRACE: '1' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`berth-oci run failed (${r.status}): ${r.stderr}`);
  const ops = [];
  for (const line of r.stderr.split('\n')) {
    const m = /^\[(\d+)\.(\d+)\] (\S+) (\S+) ?(.*)$/.exec(line);
    if (m) ops.push({ t: Number(m[1]) * 1e3 + Number(m[2]) / 1e3, stage: m[3], op: m[4], arg: m[5] });
  }
  const i = ops.findIndex((o) => /write$/.test(o.op) && o.arg.endsWith('/cgroup.procs'));
  if (i < 0 || i + 1 >= ops.length) throw new Error('no cgroup.procs write in the berth-oci trace (was native/ built with tracing?)');
  let j = i;
  while (j + 1 < ops.length && /write$/.test(ops[j + 1].op) && ops[j + 1].arg.endsWith('/cgroup.procs')) j++;
  return { first: ops[i + 1].t - ops[i].t, firstCtl: ops[i].arg.split('/')[4], all: ops[j + 1].t - ops[i].t };
}

// runc: strace -f -y -T of the write(2)s; a write may be split into "<unfinished ...>" and "resumed".
function runcOnce(id) {
  const out = path.join(root, `strace-${id}.txt`);
  const r = spawnSync('strace', ['-f', '-y', '-T', '-e', 'trace=write', '-o', out, 'runc', '--root', path.join(root, 'runc'), 'run', '-b', bundle, id], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`strace runc run failed (${r.status}): ${r.stderr}`);
  const lines = fs.readFileSync(out, 'utf8').split('\n');
  const writes = [];
  for (let k = 0; k < lines.length; k++) {
    const m = /^(\d+)\s+write\(\d+<([^>]*\/cgroup\.procs)>/.exec(lines[k]);
    if (!m) continue;
    let dur = /<(\d+\.\d+)>\s*$/.exec(lines[k]);
    if (!dur && lines[k].includes('<unfinished ...>')) {
      for (let n = k + 1; n < lines.length && !dur; n++) {
        if (lines[n].startsWith(`${m[1]} `) && lines[n].includes('<... write resumed>')) dur = /<(\d+\.\d+)>\s*$/.exec(lines[n]);
      }
    }
    if (dur) writes.push({ file: m[2], ms: Number(dur[1]) * 1e3 });
  }
  if (!writes.length) throw new Error('no cgroup.procs write in the runc strace');
  return { first: writes[0].ms, firstCtl: writes[0].file.split('/')[4], all: writes.reduce((a, w) => a + w.ms, 0) };
}

const haveStrace = spawnSync('sh', ['-c', 'command -v strace'], { stdio: 'ignore' }).status === 0;
const results = { berth: [], runc: [] };
try {
  for (let i = 0; i < runs; i++) {
    results.berth.push(berthOnce(`${prefix}b${i}`));
    if (haveStrace) results.runc.push(runcOnce(`${prefix}r${i}`));
  }
} catch (err) {
  console.error(`cgroup-attach: ${err.message}`);
  process.exit(1);
}

console.log(`cgroup attach cost (${runs} runs each; ms; "first" = the first cgroup.procs write, "all" = all of them)`);
for (const [name, rs, how] of [
  ['berth-oci', results.berth, 'BERTH_NSEXEC_TRACE op gaps'],
  ['runc', results.runc, 'strace -T, adds tracing overhead'],
]) {
  if (!rs.length) {
    console.log(`  ${name.padEnd(9)} (strace not installed; skipped)`);
    continue;
  }
  const ctls = [...new Set(rs.map((r) => r.firstCtl))].join(',');
  const firsts = rs.map((r) => r.first);
  console.log(
    `  ${name.padEnd(9)} first: median ${median(firsts).toFixed(1)} (min ${Math.min(...firsts).toFixed(1)}, max ${Math.max(...firsts).toFixed(1)})` +
      `  all: median ${median(rs.map((r) => r.all)).toFixed(1)}  first controller: ${ctls}  [${how}]`,
  );
}
