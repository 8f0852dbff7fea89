#!/usr/bin/env node
// Bundles the two CLIs and the daemon as CommonJS (node starts a CommonJS entry ~10 ms sooner than
// an ES module), from the tsc output in dist/src. The CLIs get a V8 code cache beside each file
// (src/common/code-cache.ts):
// - dist/berth-oci.cjs: the runtime CLI, one file (its verbs are modules initialised on first use);
// - dist/berth.cjs and dist/berth-chunks/*.cjs: the berth CLI, each lazily imported command module
//   in a chunk of its own, so that a command loads only what it uses (`berth --version`: none);
// - dist/boot.cjs: what bin/berth and bin/berth-oci start, which loads a bundle with its cache;
// - dist/berthd.cjs: the daemon, one file, without a code cache. Node's ES module loader spent
//   ~200 ms of the daemon's ~400 ms start resolving and linking its ~200 modules; bundled, it is
//   ready in ~200 ms and its RSS is ~6 MB lower. A code cache (eager, so every function's bytecode)
//   gained nothing more on the start and cost ~6 MB of RSS (bench/README.md, session 18).
// esbuild splits code into chunks only in ESM output, so the berth CLI is bundled as ESM first and
// each output file is then converted to CommonJS, its import() calls becoming require().
// commander loads node:child_process only to run executable sub-commands, which berth has none of:
// it gets an empty stand-in, which saves every start ~8 ms of loading child_process's internals.
import { build, transform } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const { writeCodeCache } = await import(path.join(dist, 'src', 'common', 'code-cache.js'));

// import.meta is empty in CommonJS: a use of it must fail the build, not the program.
const common = { platform: 'node', target: 'node20', logLevel: 'warning', logOverride: { 'empty-import-meta': 'error' } };
// src/common/paths.ts finds the package from import.meta.url: in CommonJS, the bundle's __filename.
const importMetaUrl = { inject: [path.join(root, 'scripts', 'import-meta-url.js')], define: { 'import.meta.url': 'importMetaUrl' } };

for (const old of ['berth-chunks', 'berth.mjs', 'berth-oci.mjs']) fs.rmSync(path.join(dist, old), { recursive: true, force: true });

await build({ ...common, bundle: true, entryPoints: [path.join(dist, 'src', 'common', 'cli-boot.js')], format: 'cjs', outfile: path.join(dist, 'boot.cjs') });
await build({ ...common, ...importMetaUrl, bundle: true, entryPoints: [path.join(dist, 'src', 'runtime', 'cli', 'main.js')], format: 'cjs', outfile: path.join(dist, 'berth-oci.cjs') });
await build({ ...common, ...importMetaUrl, bundle: true, entryPoints: [path.join(dist, 'src', 'daemon', 'main.js')], format: 'cjs', outfile: path.join(dist, 'berthd.cjs') });

const esm = await build({
  ...common,
  bundle: true,
  entryPoints: { berth: path.join(dist, 'src', 'cli', 'main.js') },
  splitting: true,
  format: 'esm',
  outdir: dist,
  chunkNames: 'berth-chunks/[name]-[hash]',
  outExtension: { '.js': '.cjs' }, // the names the converted files import each other by
  write: false,
  plugins: [
    {
      name: 'commander-without-child-process',
      setup(b) {
        b.onResolve({ filter: /^(node:)?child_process$/ }, (a) => (a.importer.includes(`${path.sep}commander${path.sep}`) ? { path: 'child_process', namespace: 'berth-stub' } : undefined));
        b.onLoad({ filter: /.*/, namespace: 'berth-stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
      },
    },
  ],
});
const cjsFiles = [path.join(dist, 'berth-oci.cjs')];
for (const file of esm.outputFiles) {
  const { code } = await transform(file.text, {
    ...common,
    format: 'cjs',
    banner: '"use strict";', // as ES modules are
    supported: { 'dynamic-import': false }, // import() becomes a require() of the chunk
  });
  fs.mkdirSync(path.dirname(file.path), { recursive: true });
  fs.writeFileSync(file.path, code);
  cjsFiles.push(file.path);
}
for (const file of cjsFiles) writeCodeCache(file);
