/**
 * Issue 5, acceptance 1, with the berth CLI against berthd: `berth run -d -p 127.0.0.1:PORT:80
 * web` serves on the host's loopback; a second container reaches the first by name on a
 * user-defined network and by IP on the default bridge; `--network none` has only lo; an
 * --internal network reaches nothing beyond its bridge. Traffic only to what the test made.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { freePort, httpGet } from '../helpers/http.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cmd, type CmdResult, dockerdSkip } from '../helpers/engines.js';

const BERTH = path.join(PACKAGE_ROOT, 'bin', 'berth');
const TAG = process.pid % 200;
const BRIDGE = `bc${process.pid % 100000}`;

describe('networking with the berth CLI', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  const berth = (args: string[]): CmdResult => cmd(BERTH, args, { env: d.env, timeoutMs: 60_000 });
  const berthOk = (args: string[]): string => {
    const r = berth(args);
    assert.equal(r.status, 0, `berth ${args.join(' ')} (exit ${r.status}): ${r.stderr}\n${d.logTail()}`);
    return r.stdout;
  };

  before(async () => {
    d = await startBerthd({ prefix: 'berthd-netcli-', bridge: { name: BRIDGE, cidr: `10.221.${TAG}.1/24` } });
    d.loadImages('busybox', 'web');
  });
  after(async () => {
    await d?.stop();
  });

  it('publishes on loopback, resolves names on user networks, reaches IPs on the default bridge, isolates none and internal', async () => {
    const port = await freePort();
    const web = berthOk(['run', '-d', '--name', 'front', '-p', `127.0.0.1:${port}:80`, 'web']).trim();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await httpGet(`http://127.0.0.1:${port}/`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, 'served on the host loopback');
    assert.equal(berthOk(['port', web]).trim(), `80/tcp -> 127.0.0.1:${port}`);
    const ip = berthOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', web]).trim();
    assert.match(berthOk(['run', '--rm', 'busybox', 'sh', '-c', `timeout 3 wget -q -O - http://${ip}/ >/dev/null && echo by-ip`]), /by-ip/);

    berthOk(['network', 'create', '--subnet', `10.222.${TAG}.0/24`, 'app']);
    assert.match(berthOk(['network', 'ls']), /\bapp\s+bridge\s+local/);
    berthOk(['run', '-d', '--name', 'api', '--network', 'app', 'web']);
    assert.match(berthOk(['run', '--rm', '--network', 'app', 'busybox', 'sh', '-c', 'for i in $(seq 30); do timeout 2 wget -q -O - http://api/ >/dev/null && echo by-name && break; sleep 0.2; done']), /by-name/);

    assert.equal(berthOk(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']).trim(), 'lo');
    // --mac-address: the container's MAC on its network.
    assert.equal(berthOk(['run', '--rm', '--network', 'app', '--mac-address', '02:42:ac:11:00:99', 'busybox', 'cat', '/sys/class/net/eth0/address']).trim(), '02:42:ac:11:00:99');

    berthOk(['network', 'create', '--internal', '--subnet', `10.223.${TAG}.0/24`, 'sealed']);
    const inside = berthOk(['run', '--rm', '--network', 'sealed', 'busybox', 'sh', '-c', `ip route; timeout 3 wget -q -O - http://${ip}/ >/dev/null && echo escaped || echo sealed`]);
    assert.match(inside, /sealed$/m);
    assert.doesNotMatch(inside, /default via/);

    berthOk(['rm', '-f', 'front', 'api']);
    berthOk(['network', 'rm', 'app', 'sealed']);
    assert.doesNotMatch(berthOk(['network', 'ls']), /\b(app|sealed)\b/);
  });
});
