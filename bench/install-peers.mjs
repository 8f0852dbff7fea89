/**
 * Installs the peers a benchmark compares with, from Debian, when their commands are missing.
 * As .ci/run does: a policy-rc.d that refuses every service start (exit 101) while apt runs, so
 * installing docker.io or containerd starts no system daemon (benchmarks run private ones).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

const POLICY = '/usr/sbin/policy-rc.d';

/** packages: [command, Debian package] pairs; installs the packages whose command is missing. */
export function installPeers(packages) {
  const missing = packages.filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')}`);
  const ownPolicy = !fs.existsSync(POLICY);
  if (ownPolicy) fs.writeFileSync(POLICY, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const install = `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')} >/dev/null`;
    execFileSync('sh', ['-c', `${install} || (apt-get update -qq && ${install})`], { stdio: 'inherit' });
  } finally {
    if (ownPolicy) fs.rmSync(POLICY, { force: true });
  }
}
