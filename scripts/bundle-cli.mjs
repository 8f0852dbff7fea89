#!/usr/bin/env node
// Bundles the berth CLI (dist/src/cli/main.js, compiled by tsc) into dist/berth.mjs, with each
// lazily imported command module in a chunk of its own under dist/berth-chunks/, so that a
// command loads only what it uses. commander is CommonJS: its require() of node builtins
// needs a real `require` in ESM output, given by the banner. commander loads node:child_process
// only to run executable sub-commands, which berth has none of: it gets an empty stand-in, which
// saves every start ~8 ms of loading child_process's internals.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.rmSync(path.join(root, 'dist', 'berth-chunks'), { recursive: true, force: true });
await build({
  entryPoints: { berth: path.join(root, 'dist', 'src', 'cli', 'main.js') },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: path.join(root, 'dist'),
  chunkNames: 'berth-chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
  logLevel: 'warning',
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
