#!/usr/bin/env node
// Runs the compiled tests with node's test runner: unit tests beside the code
// (dist/src/**/*.test.js), then integration tests (dist/test/**/*.test.js, root and the
// test images needed). `--unit` runs only the former. Extra arguments are file filters.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function find(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith('.test.js') ? [p] : [];
  });
}

let files = find(path.join(root, 'dist', 'src'));
if (!unitOnly) files = files.concat(find(path.join(root, 'dist', 'test')));
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
// bin/berth-oci and bin/berth run their commands in servers that they start on first use
// (src/common/command-server.ts): the tests get their own, in directories of their own, that
// idle out after 10 s (so the tests see them start again now and then). At the end, the
// servers of this checkout stop: those, and those that engines started with an environment
// of their own (dockerd's containerd passes none of ours to the runtime).
const serverDir = `/run/berth-oci-server-test-${process.pid}`;
const cliServerDir = `/run/berth-cli-test-${process.pid}`;
const env = {
  ...process.env,
  BERTH_OCI_SERVER_DIR: serverDir,
  BERTH_OCI_SERVER_IDLE_MS: '10000',
  BERTH_CLI_SERVER_DIR: cliServerDir,
  BERTH_CLI_SERVER_IDLE_MS: '10000',
};
// One file at a time: integration tests share the kernel (cgroups, mounts) and a 2-core machine.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: root, env });
spawnSync('pkill', ['-f', `${path.join(root, 'dist', 'berth-oci.cjs')} --berth-oci-serve`], { stdio: 'ignore' });
spawnSync('pkill', ['-f', `${path.join(root, 'dist', 'berth.cjs')} --berth-cli-serve`], { stdio: 'ignore' });
fs.rmSync(serverDir, { recursive: true, force: true });
fs.rmSync(cliServerDir, { recursive: true, force: true });
process.exit(r.status ?? 1);
