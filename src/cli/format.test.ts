import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';

import { ago, bytesSize, ellipsis, formatList, humanDuration, humanSize, naturalCompare, parseRamSize, parseTimestamp, tabwrite } from './format.js';
import { displayJsonStream, progressString } from './progress.js';
import { imagePath, resolveHost } from './client.js';
import { ipamConfigs } from './commands/network.js';
import { containerRow, formatPorts } from './commands/ps.js';
import { formatEvent } from './commands/system.js';
import { statsRow } from './commands/stats.js';

test('sizes as go-units prints them', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(1_987_000), '1.99MB');
  assert.equal(humanSize(1_987_000, 4), '1.987MB');
  assert.equal(humanSize(4100), '4.1kB');
  assert.equal(humanSize(999), '999B');
  assert.equal(bytesSize(744 * 1024), '744KiB');
  assert.equal(bytesSize(1.5 * 1024 * 1024), '1.5MiB');
  assert.equal(parseRamSize('64m'), 64 * 1024 * 1024);
  assert.equal(parseRamSize('1g'), 1024 ** 3);
  assert.equal(parseRamSize('100'), 100);
  assert.throws(() => parseRamSize('lots'));
});

test('durations as docker prints them', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(90_000), 'About a minute');
  assert.equal(humanDuration(3 * 60_000), '3 minutes');
  assert.equal(humanDuration(3_600_000), 'About an hour');
  assert.equal(humanDuration(5 * 3_600_000), '5 hours');
  assert.equal(humanDuration(3 * 86_400_000), '3 days');
  assert.equal(humanDuration(3 * 7 * 86_400_000), '3 weeks');
  assert.equal(humanDuration(90 * 86_400_000), '3 months');
  assert.equal(humanDuration(800 * 86_400_000), '2 years');
  assert.equal(ago(1000, 1000 * 1000 + 2000), '2 seconds ago');
  assert.equal(parseTimestamp('10m', 1_000_000_000), String(1_000_000 - 600));
  assert.equal(parseTimestamp('1700000000'), '1700000000');
  assert.equal(parseTimestamp('2024-01-01T00:00:00Z'), '1704067200');
});

test('tabwriter and list formats', () => {
  assert.equal(tabwrite('A\tBB\tC\nlonger-cell\tx\ty\n'), 'A             BB        C\nlonger-cell   x         y\n');
  const rows = [{ ID: 'abc', Names: 'web' }, { ID: 'defgh', Names: 'db' }];
  const lf = { table: 'table {{.ID}}\t{{.Names}}', headers: { ID: 'CONTAINER ID', Names: 'NAMES' } };
  assert.equal(formatList(rows, lf), 'CONTAINER ID   NAMES\nabc            web\ndefgh          db\n');
  assert.equal(formatList(rows, { ...lf, format: '{{.Names}}' }), 'web\ndb\n');
  assert.equal(formatList(rows, { ...lf, format: '{{.ID}}\\t{{.Names}}' }), 'abc\tweb\ndefgh\tdb\n');
  assert.equal(formatList(rows, { ...lf, format: 'json' }), '{"ID":"abc","Names":"web"}\n{"ID":"defgh","Names":"db"}\n');
  assert.equal(formatList(rows, { ...lf, format: 'table {{.Names}}' }), 'NAMES\nweb\ndb\n');
  assert.equal(ellipsis('sh -c echo hello world', 20), 'sh -c echo hello wo…');
});

test('ps rows: command quoting, names, ports', () => {
  const row = containerRow(
    {
      Id: 'a'.repeat(64), Names: ['/web', '/other/link'], Image: 'busybox', Command: "sh -c 'echo out; echo err'", Created: 100, State: 'running', Status: 'Up 3 minutes',
      Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 53, Type: 'udp' }], Labels: { b: '2', a: '1' },
    },
    true,
    280_000,
  );
  assert.equal(row.ID, 'a'.repeat(12));
  assert.equal(row.Command, `"sh -c 'echo out; ec…"`);
  assert.equal(row.Names, 'web');
  assert.equal(row.RunningFor, '3 minutes ago');
  assert.equal(row.Labels, 'a=1,b=2');
  assert.equal(formatPorts([{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 53, Type: 'udp' }]), '53/udp, 0.0.0.0:8080->80/tcp');
});

test('stats and events lines', () => {
  const r = statsRow(
    {
      id: 'b'.repeat(64), name: '/db',
      cpu_stats: { cpu_usage: { total_usage: 2_000 }, system_cpu_usage: 20_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 1_000 }, system_cpu_usage: 10_000 },
      memory_stats: { usage: 2 * 1024 * 1024, limit: 8 * 1024 * 1024, stats: { inactive_file: 1024 * 1024 } },
      networks: { eth0: { rx_bytes: 1500, tx_bytes: 0 } },
      pids_stats: { current: 3 },
    },
    'db',
  );
  assert.deepEqual([r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.PIDs], ['db', '20.00%', '1MiB / 8MiB', '12.50%', '1.5kB / 0B', '3']);
  assert.equal(
    formatEvent({ Type: 'container', Action: 'start', Actor: { ID: 'abc', Attributes: { name: 'x', image: 'busybox' } }, timeNano: 1_700_000_000_123_456_789 }),
    '2023-11-14T22:13:20.123456768Z container start abc (image=busybox, name=x)'.replace('123456768', String(BigInt(1_700_000_000_123_456_789) % 1_000_000_000n).padStart(9, '0')),
  );
});

test('pull progress: bars on a terminal, plain lines elsewhere', async () => {
  assert.equal(progressString({ current: 0, total: 0 }, 200), '');
  assert.equal(progressString({ current: 500_000, total: 1_000_000 }, 200), `[${'='.repeat(25)}>${' '.repeat(25)}]    500kB/1MB`);
  assert.equal(progressString({ current: 500_000, total: 1_000_000 }, 80), '   500kB/1MB');
  const lines = [
    { status: 'Pulling from library/busybox', id: 'latest' },
    { status: 'Pulling fs layer', progressDetail: {}, id: 'aaa' },
    { status: 'Downloading', progressDetail: { current: 10, total: 100 }, progress: '[=>   ]', id: 'aaa' },
    { status: 'Download complete', progressDetail: {}, id: 'aaa' },
    { status: 'Digest: sha256:x' },
  ];
  const run = async (tty: boolean): Promise<string> => {
    const input = new PassThrough();
    input.end(lines.map((l) => JSON.stringify(l)).join('\r\n') + '\r\n');
    let out = '';
    await displayJsonStream(input, { write: (s: string) => ((out += s), true), columns: 200 } as unknown as NodeJS.WriteStream, tty);
    return out;
  };
  assert.equal(await run(false), 'latest: Pulling from library/busybox\naaa: Pulling fs layer\naaa: Download complete\nDigest: sha256:x\n');
  const tty = await run(true);
  assert.match(tty, /\x1b\[1A\x1b\[2K\raaa: Downloading \[=====>/);
  const bad = new PassThrough();
  bad.end(JSON.stringify({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }) + '\n');
  await assert.rejects(displayJsonStream(bad, { write: () => true } as unknown as NodeJS.WriteStream, false), /manifest unknown/);
});

test('image references in paths as docker sends them; the daemon host by precedence', () => {
  assert.equal(imagePath('127.0.0.1:5000/a/b:v1'), '127.0.0.1:5000/a/b:v1');
  assert.equal(imagePath('busybox@sha256:ab'), 'busybox@sha256:ab');
  assert.equal(imagePath('a b?#'), 'a%20b%3F%23');
  assert.equal(resolveHost('unix:///flag.sock', { BERTH_HOST: 'unix:///b.sock', DOCKER_HOST: 'unix:///d.sock' }), 'unix:///flag.sock');
  assert.equal(resolveHost(undefined, { BERTH_HOST: 'unix:///b.sock', DOCKER_HOST: 'unix:///d.sock' }), 'unix:///b.sock');
  assert.equal(resolveHost(undefined, { DOCKER_HOST: 'unix:///d.sock' }), 'unix:///d.sock');
  assert.equal(resolveHost(undefined, {}), 'unix:///run/berth.sock');
});

test("naturalCompare: the docker CLI's order of volume and network names", () => {
  const names = ['v10', 'v9', 'a', 'v09', 'b2', 'b10', '1x', 'B'];
  assert.deepEqual([...names].sort(naturalCompare), ['1x', 'B', 'a', 'b2', 'b10', 'v9', 'v09', 'v10']);
});

test("network create's --subnet, --ip-range and --gateway paired by containment, as the docker CLI", () => {
  assert.deepEqual(ipamConfigs(['10.1.0.0/16', '10.2.0.0/16'], ['10.2.1.0/24'], ['10.1.0.1', '10.2.0.1']), [
    { Subnet: '10.1.0.0/16', Gateway: '10.1.0.1' },
    { Subnet: '10.2.0.0/16', IPRange: '10.2.1.0/24', Gateway: '10.2.0.1' },
  ]);
  assert.throws(() => ipamConfigs([], ['10.0.0.0/8'], []), { message: 'every ip-range or gateway must have a corresponding subnet' });
  assert.throws(() => ipamConfigs(['10.1.0.0/16'], [], ['10.9.0.1']), { message: 'no matching subnet for gateway 10.9.0.1' });
  assert.throws(() => ipamConfigs(['10.1.0.0/16', '10.2.0.0/16'], ['10.1.1.0/24', '10.1.2.0/24'], []), { message: 'cannot configure multiple ranges (10.1.2.0/24, 10.1.1.0/24) on the same subnet (10.1.0.0/16)' });
});

test("a build's stdin: an archive (compressed, or a tar header whose checksum holds) or a Dockerfile", async () => {
  const { looksLikeArchive } = await import('./commands/build.js');
  const tar = (await import('tar-stream')).default;
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, 'FROM busybox\n');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  assert.equal(looksLikeArchive(Buffer.concat(chunks)), true);
  assert.equal(looksLikeArchive(Buffer.from([0x1f, 0x8b, 8, 0])), true);
  assert.equal(looksLikeArchive(Buffer.from('FROM busybox\nRUN true\n'.padEnd(1024, '#'))), false);
  assert.equal(looksLikeArchive(Buffer.from('FROM busybox\n')), false);
});
