/**
 * docker-py (Debian's python3-docker 5, under Debian's /usr/bin/python3) drives berthd: the
 * scripted lifecycle in test/clients/dockerpy-lifecycle.py, once with the API version docker-py
 * negotiates (1.44) and once each pinned at 1.41 (docker-py 5 / compose 1.29), 1.35 and 1.24 (the
 * oldest berthd serves). Each step of the script is one test here; afterwards nothing it made
 * may be left: no container, volume, mount or runtime state.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip } from '../helpers/engines.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(PACKAGE_ROOT, 'test', 'clients', 'dockerpy-lifecycle.py');
const STEPS = ['version_ping_info', 'images_list_get', 'run_foreground_remove', 'run_detached_remove', 'lifecycle', 'wait_exit_status', 'exec_stream', 'attach_before_start', 'volumes', 'prune', 'events_until', 'errors'];

function dockerPyMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import docker; print(docker.__version__)'], { encoding: 'utf8' });
  if (r.status === 0) return false;
  // CI installs it (.ci/run): there a missing module is a failure, not a skip.
  if (process.env.CI) return false;
  return 'needs python3-docker (apt-get install python3-docker)';
}

const skip = dockerdSkip || dockerPyMissing();

interface StepResult {
  step: string;
  ok: boolean;
  error?: string;
  trace?: string;
}

/** Runs the script; resolves with its step results by name, and what it printed otherwise. */
function runScript(d: PrivateBerthd, prefix: string, version: string | undefined): Promise<{ results: Map<string, StepResult>; status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BERTH_SOCKET: d.socket, BERTH_PREFIX: prefix, BERTH_API_VERSION: version ?? '' };
    delete env.DOCKER_HOST;
    const child = spawn(PYTHON, [SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      const results = new Map<string, StepResult>();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const r = JSON.parse(line) as StepResult;
        results.set(r.step, r);
      }
      resolve({ results, status, output: out + err });
    });
  });
}

describe('docker-py against berthd', { skip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-dockerpy-' });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  for (const version of [undefined, '1.41', '1.35', '1.24']) {
    describe(`API ${version ?? 'negotiated'}`, () => {
      const prefix = `dpy${(version ?? 'auto').replace('.', '')}-${process.pid}`;
      let run: Awaited<ReturnType<typeof runScript>>;
      before(async () => {
        run = await runScript(d, prefix, version);
      });

      for (const step of STEPS) {
        it(step, () => {
          const r = run.results.get(step);
          assert.ok(r, `the script reported no result for ${step} (exit ${run.status}):\n${run.output.slice(-3000)}\n${d.logTail()}`);
          assert.ok(r.ok, `${r.error}\n${r.trace ?? ''}\n${d.logTail(40)}`);
        });
      }

      it('the script exits 0 and leaves no container or volume behind', () => {
        assert.equal(run.status, 0, run.output.slice(-3000));
        const left = d.dockerOk(['ps', '-a', '--format', '{{.Names}} {{.Labels}}']).split('\n').filter((l) => l.includes(prefix));
        assert.deepEqual(left, []);
        assert.deepEqual(d.dockerOk(['volume', 'ls', '-q']).split('\n').filter((n) => n.startsWith(prefix)), []);
      });
    });
  }

  it('nothing is left running or mounted', () => {
    assert.equal(d.dockerOk(['ps', '-aq']), '');
    assert.deepEqual(d.mountsLeft(), []);
    assert.deepEqual(fs.readdirSync(path.join(d.dir, 'exec', 'runtime')), []);
  });
});
