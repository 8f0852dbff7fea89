/** Drives bin/berth-oci as a separate process, as engines do, with a private --root per test file. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PACKAGE_ROOT } from '../../src/common/paths.js';

export const BERTH_OCI = path.join(PACKAGE_ROOT, 'bin', 'berth-oci');

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

export class OciCli {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-oci-root-'));
  constructor(readonly binary = BERTH_OCI) {
    // The state root goes with the test process (the tests delete their containers; this is
    // only the directory, which they left in /tmp before).
    process.once('exit', () => fs.rmSync(this.root, { recursive: true, force: true }));
  }

  /**
   * Runs berth-oci and waits for it. Output goes through files, not pipes: a detached
   * container inherits them, and a pipe would keep us waiting until the container exits.
   */
  run(args: string[], opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Result {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-out-'));
    const out = fs.openSync(path.join(dir, 'out'), 'w+');
    const err = fs.openSync(path.join(dir, 'err'), 'w+');
    try {
      const r = spawnSync(this.binary, ['--root', this.root, ...args], { stdio: ['ignore', out, err], timeout: opts.timeoutMs ?? 30_000, cwd: opts.cwd, env: opts.env });
      if (r.error) throw r.error;
      return { status: r.status ?? 128, stdout: fs.readFileSync(path.join(dir, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(dir, 'err'), 'utf8') };
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Like run, but async (for containers that must run while the test looks at them). */
  start(args: string[]): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, ['--root', this.root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ status: code ?? 128, stdout, stderr }));
    });
  }

  /** Force-deletes every container under this root, then the root itself. */
  cleanup(): void {
    for (const id of fs.existsSync(this.root) ? fs.readdirSync(this.root) : []) this.run(['delete', '--force', id]);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Polls fn until it returns true or timeoutMs passes; returns whether it did. */
export async function poll(fn: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Like poll, but a timeout is an error naming what was awaited. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  if (!(await poll(check, timeoutMs))) throw new Error(`timed out waiting for ${what}`);
}

export const isRoot = process.getuid?.() === 0;
