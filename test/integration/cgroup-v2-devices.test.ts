/**
 * cgroup v2 device rules for real: berth-nsexec loads the eBPF filter compiled in TypeScript
 * and attaches it to a cgroup2 directory; a process in that cgroup can open only the devices
 * the rules allow. On a hybrid host the `unified` mount is a real cgroup2 hierarchy, and the
 * kernel checks its device programs as well as the v1 devices controller.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { parseMountinfo } from '../../src/common/mountinfo.js';
import { normalizeDeviceRules } from '../../src/runtime/cgroups/convert.js';
import { compileDeviceFilter } from '../../src/runtime/cgroups/devices-bpf.js';
import { launch } from '../../src/runtime/launch.js';
import { nulList } from '../../src/runtime/plan/plan.js';
import { exitStatus } from '../../src/runtime/runtime.js';
import { isRoot } from '../helpers/runtime.js';

const cgroup2 = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.fsType === 'cgroup2')?.mountPoint;
const dir = cgroup2 && path.join(cgroup2, `berth-devtest-${process.pid}`);

after(() => {
  if (dir && fs.existsSync(dir)) fs.rmdirSync(dir);
});

test('a process in the cgroup opens only the devices the eBPF filter allows', { skip: !isRoot ? 'needs root' : !dir && 'no cgroup2 mount' }, async () => {
  fs.mkdirSync(dir!);
  const rules = normalizeDeviceRules([
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, // /dev/null
  ]);
  const out = path.join(os.tmpdir(), `berth-devtest-${process.pid}.out`);
  const outFd = fs.openSync(out, 'w');
  after(() => fs.rmSync(out, { force: true }));
  try {
    const script = 'head -c 1 /dev/null && echo null-ok; head -c 1 /dev/zero >/dev/null 2>&1 || echo zero-denied';
    const launched = await launch({
      ops: [
        ['bpf_devices', dir!, compileDeviceFilter(rules)],
        ['write', path.join(dir!, 'cgroup.procs'), '0'],
        ['clone', 0, '', '', 'foreground'],
        ['resolve_exec', 'sh', '/usr/bin:/bin'],
        ['ready'],
        ['exec', nulList(['sh', '-c', script]), nulList(['PATH=/usr/bin:/bin']), 0],
      ],
      stdio: ['ignore', outFd, 'inherit'],
      stateFor: () => ({}),
    });
    assert.equal(await exitStatus(launched.stage0), 0);
  } finally {
    fs.closeSync(outFd);
  }
  const output = fs.readFileSync(out, 'utf8');
  assert.match(output, /null-ok/, 'an allowed device opens');
  assert.match(output, /zero-denied/, 'a device not allowed is refused');
});
