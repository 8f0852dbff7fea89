import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { codeCachePath, writeCodeCache } from './code-cache.js';
import { PACKAGE_ROOT } from './paths.js';

/** Loads FILE with its cache in a fresh node (V8 keeps compiled scripts per process): its exports and each file's cache state. */
function load(file: string, nodeFlags: string[] = [], args: string[] = []): { out: string; exports: unknown; state: Record<string, string> } {
  const script = `const m = await import(${JSON.stringify(new URL('./code-cache.js', import.meta.url).href)});
    const exports = m.loadWithCodeCache(process.argv[1]);
    process.stderr.write(JSON.stringify({ exports, state: Object.fromEntries(m.codeCacheState) }));`;
  const r = spawnSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script, file, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `load ${file}: ${r.stderr}`);
  return { out: r.stdout, ...JSON.parse(r.stderr) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-code-cache-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const main = path.join(dir, 'main.cjs');
const dep = path.join(dir, 'dep.cjs');
const answer = { answer: 42, strict: true };

function fresh(): void {
  fs.writeFileSync(main, "'use strict';\nconst dep = require('./dep.cjs');\nmodule.exports = { answer: dep.double(21), strict: this === undefined || this === module.exports };\n");
  fs.writeFileSync(dep, 'exports.double = (x) => x * 2;\n');
  writeCodeCache(main);
  writeCodeCache(dep);
}

test('a valid code cache is used for the file and the files it requires', () => {
  fresh();
  assert.deepEqual(load(main), { out: '', exports: answer, state: { [main]: 'used', [dep]: 'used' } });
});

test('a cache made from other source is not used, even when V8 would take it (same length)', () => {
  fresh();
  fs.writeFileSync(dep, 'exports.double = (x) => x * 3;\n'); // V8 checks only the source's length
  assert.deepEqual(load(main).exports, { ...answer, answer: 63 });
  assert.equal(load(main).state[dep], 'none');
});

test('a corrupt, truncated, empty, foreign or missing cache falls back to a plain compile', () => {
  // The cache is a magic line, a copy of the source, then V8's data.
  const v8Start = (c: Buffer): number => c.indexOf(fs.readFileSync(main)) + fs.statSync(main).size;
  const cases: Record<string, (cache: Buffer) => Buffer | undefined> = {
    'V8 magic number flipped': (c) => flip(c, v8Start(c)),
    'V8 payload byte flipped': (c) => flip(c, c.length - 100),
    'source copy byte flipped': (c) => flip(c, v8Start(c) - 10),
    truncated: (c) => c.subarray(0, c.length - 1000),
    empty: () => Buffer.alloc(0),
    garbage: (c) => Buffer.alloc(c.length, 0x5a),
    missing: () => undefined,
  };
  for (const [name, damage] of Object.entries(cases)) {
    fresh();
    const damaged = damage(fs.readFileSync(codeCachePath(main)));
    if (damaged) fs.writeFileSync(codeCachePath(main), damaged);
    else fs.rmSync(codeCachePath(main));
    const r = load(main);
    assert.deepEqual(r.exports, answer, name);
    assert.notEqual(r.state[main], 'used', name);
    assert.equal(r.state[dep], 'used', name);
  }
});

test('V8 rejects a cache made under other V8 flags', () => {
  fresh();
  const r = load(main, ['--no-opt']);
  assert.deepEqual(r.exports, answer);
  assert.equal(r.state[main], 'rejected');
});

test('the build wrote caches that the CLI bundles use', () => {
  const oci = load(path.join(PACKAGE_ROOT, 'dist', 'berth-oci.cjs'), [], ['--version']);
  assert.match(oci.out, /^berth-oci version /);
  assert.deepEqual(Object.values(oci.state), ['used']);
  const berth = load(path.join(PACKAGE_ROOT, 'dist', 'berth.cjs'), [], ['--version']);
  assert.match(berth.out, /^Berth version /);
  assert.ok(Object.keys(berth.state).length > 1, 'the berth CLI loads its shared chunks');
  assert.ok(Object.values(berth.state).every((s) => s === 'used'), JSON.stringify(berth.state));
});

function flip(buf: Buffer, at: number): Buffer {
  const copy = Buffer.from(buf);
  copy[at] ^= 0xff;
  return copy;
}
