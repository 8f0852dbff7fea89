/**
 * Bad configs never crash the runtime: random mutations of a valid config.json either run
 * (and are cleaned up) or fail with a typed error whose message names what is wrong; nothing
 * is left behind either way. In-process, through the runtime library, to try many quickly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { BerthError } from '../../src/common/errors.js';
import { exitStatus, Runtime } from '../../src/runtime/runtime.js';
import { makeBundle, type TestBundle } from '../helpers/images.js';
import { isRoot } from '../helpers/runtime.js';

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ODD_VALUES: unknown[] = [null, -1, 0, 2 ** 64, 1.5, '', 'x', '../../etc', '/nonexistent', [], [null], {}, { a: 1 }, true, 'a'.repeat(5000)];

/** Replaces one randomly chosen value somewhere in the object tree with an odd one. */
function mutate(value: unknown, rand: () => number): unknown {
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, p: Array<string | number>): void => {
    paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(value, []);
  const target = paths[1 + Math.floor(rand() * (paths.length - 1))];
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const key of target.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = target[target.length - 1];
  if (rand() < 0.15 && !Array.isArray(parent)) delete parent[last];
  else parent[last] = ODD_VALUES[Math.floor(rand() * ODD_VALUES.length)];
  return copy;
}

describe('bad config.json', { skip: !isRoot && 'needs root' }, () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fuzz-root-'));
  const runtime = new Runtime({ root });
  let bundle: TestBundle | undefined;
  after(() => {
    bundle?.remove();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('gets a typed error naming the problem, or runs; never a crash, never leftovers', async () => {
    bundle = makeBundle({ args: ['true'] });
    const valid = structuredClone(bundle.spec);
    const rand = prng(20261129);
    const pidsBefore = fs.readdirSync('/sys/fs/cgroup/pids').length;
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const config = mutate(valid, rand);
      fs.writeFileSync(path.join(bundle.dir, 'config.json'), JSON.stringify(config));
      const id = `fuzz-${i}`;
      try {
        const launched = await runtime.create(id, { bundle: bundle.dir, foreground: true, stdio: ['ignore', 'ignore', 'ignore'] });
        await runtime.start(id).catch(() => undefined);
        await exitStatus(launched.stage0);
        await runtime.delete(id, true);
      } catch (err) {
        refused++;
        assert.ok(err instanceof BerthError, `case ${i}: not a typed error: ${(err as Error)?.stack}\nconfig: ${JSON.stringify(config).slice(0, 400)}`);
        assert.ok((err as Error).message.length > 5, `case ${i}: an empty message`);
        await runtime.delete(id, true).catch(() => undefined);
      }
      assert.deepEqual(fs.readdirSync(root), [], `case ${i}: state left behind`);
    }
    assert.ok(refused > 30, `most mutations are refused (${refused})`);
    assert.equal(fs.readdirSync('/sys/fs/cgroup/pids').length, pidsBefore, 'no cgroups left behind');
    // berth-nsexec is started before the config is read: a refused config leaves no process.
    const ownNsexec = (): string[] =>
      fs.readdirSync('/proc').filter((p) => {
        try {
          const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
          return stat.includes('(berth-nsexec)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
        } catch {
          return false;
        }
      });
    for (let i = 0; i < 100 && ownNsexec().length; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(ownNsexec(), [], 'no berth-nsexec left');
  });
});
