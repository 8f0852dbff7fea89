/** Docker's stats JSON from fake cgroup v1 and v2 trees, /proc/stat parsing and the zero value. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { openCgroupManager } from '../../runtime/cgroups/index.js';
import { makeFakeRoot } from '../../runtime/cgroups/fake-tree.testutil.js';
import { containerStats, parseBlkioV1, parseIoStatV2, parseNetDev, readCgroupSample, statsJson, systemCpu, zeroStats } from './stats.js';

const GiB = 1024 ** 3;

function fakeCgroup(layout: 'hybrid' | 'v1-comounted' | 'v2') {
  const fake = makeFakeRoot(layout);
  const manager = openCgroupManager({ cgroupsPath: '/berth/c1', containerId: 'c1', fsRoot: fake.root });
  manager.create();
  const desc = manager.toJSON();
  const write = (key: string, file: string, text: string) => fs.writeFileSync(path.join(fake.root, desc.paths[key]!, file), text);
  return { fake, desc, write };
}

describe('container stats', () => {
  it('reads cgroup v1 (hybrid layout) as dockerd reports it', () => {
    const { fake, desc, write } = fakeCgroup('hybrid');
    try {
      write('cpuacct', 'cpuacct.usage', '5000000000\n');
      write('cpuacct', 'cpuacct.usage_percpu', '3000000000 2000000000 \n');
      write('cpuacct', 'cpuacct.stat', 'user 300\nsystem 100\n');
      write('cpu', 'cpu.stat', 'nr_periods 10\nnr_throttled 2\nthrottled_time 12345\n');
      write('memory', 'memory.usage_in_bytes', '10485760\n');
      write('memory', 'memory.max_usage_in_bytes', '20971520\n');
      write('memory', 'memory.limit_in_bytes', '67108864\n');
      write('memory', 'memory.failcnt', '0\n');
      write('memory', 'memory.stat', 'cache 4096\nrss 8192\ntotal_inactive_file 1048576\n');
      write('pids', 'pids.current', '3\n');
      write('pids', 'pids.max', '50\n');
      write('blkio', 'blkio.throttle.io_service_bytes_recursive', '8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n');
      const s = readCgroupSample(desc, { fsRoot: fake.root, machineMemory: 16 * GiB });
      assert.equal(s.cpu.cpu_usage.total_usage, 5e9);
      assert.deepEqual(s.cpu.cpu_usage.percpu_usage, [3e9, 2e9]);
      assert.equal(s.cpu.cpu_usage.usage_in_usermode, 3e9);
      assert.equal(s.cpu.cpu_usage.usage_in_kernelmode, 1e9);
      assert.deepEqual(s.cpu.throttling_data, { periods: 10, throttled_periods: 2, throttled_time: 12345 });
      assert.deepEqual(s.memory, { usage: 10485760, max_usage: 20971520, stats: { cache: 4096, rss: 8192, total_inactive_file: 1048576 }, limit: 67108864 }, 'a failcnt of 0 left out (omitempty)');
      assert.deepEqual(s.pids, { current: 3, limit: 50 });
      assert.deepEqual(s.blkio.io_service_bytes_recursive, [
        { major: 8, minor: 0, op: 'Read', value: 4096 },
        { major: 8, minor: 0, op: 'Write', value: 8192 },
      ]);
      assert.deepEqual([s.blkio.io_queue_recursive, s.blkio.io_merged_recursive, s.blkio.sectors_recursive], [[], [], []], "CFQ's files absent: empty lists, as dockerd's on v1");
      write('memory', 'memory.failcnt', '7\n');
      assert.equal(readCgroupSample(desc, { fsRoot: fake.root, machineMemory: 16 * GiB }).memory.failcnt, 7);
    } finally {
      fake.cleanup();
    }
  });

  it('an unlimited v1 memory cgroup shows the machine memory; "max" pids has no limit', () => {
    const { fake, desc } = fakeCgroup('v1-comounted');
    try {
      const s = readCgroupSample(desc, { fsRoot: fake.root, machineMemory: 2 * GiB });
      assert.equal(s.memory.limit, 2 * GiB);
      assert.equal(s.pids.limit, undefined);
      assert.equal(s.cpu.cpu_usage.total_usage, 123456);
    } finally {
      fake.cleanup();
    }
  });

  it('reads cgroup v2', () => {
    const { fake, desc, write } = fakeCgroup('v2');
    try {
      write('unified', 'cpu.stat', 'usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n');
      write('unified', 'memory.current', '8192\n');
      write('unified', 'memory.max', '33554432\n');
      write('unified', 'memory.stat', 'anon 4096\ninactive_file 1024\n');
      write('unified', 'pids.current', '2\n');
      write('unified', 'io.stat', '8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n');
      const s = readCgroupSample(desc, { fsRoot: fake.root, machineMemory: 16 * GiB });
      assert.deepEqual(s.cpu.cpu_usage, { total_usage: 2_000_000, usage_in_kernelmode: 500_000, usage_in_usermode: 1_500_000 });
      assert.deepEqual(s.cpu.throttling_data, { periods: 4, throttled_periods: 1, throttled_time: 7000 });
      assert.deepEqual(s.memory, { usage: 8192, stats: { anon: 4096, inactive_file: 1024 }, limit: 33554432 });
      assert.deepEqual(s.pids, { current: 2 });
      assert.deepEqual(s.blkio.io_serviced_recursive, [
        { major: 8, minor: 0, op: 'read', value: 1 },
        { major: 8, minor: 0, op: 'write', value: 2 },
      ]);
    } finally {
      fake.cleanup();
    }
  });

  it('parses /proc/stat as moby (user..softirq, in ns) and counts CPUs', () => {
    const r = systemCpu('cpu  100 0 50 800 10 5 5 7 0 0\ncpu0 50 0 25 400 5 2 3 0 0 0\ncpu1 50 0 25 400 5 3 2 0 0 0\nintr 1\n');
    assert.equal(r.usage, 970 * 1e7);
    assert.equal(r.onlineCpus, 2);
  });

  it('parsers ignore garbage', () => {
    assert.equal(parseBlkioV1(undefined), null);
    assert.deepEqual(parseBlkioV1('nonsense\n'), []);
    assert.deepEqual(parseIoStatV2('x y z\n'), { bytes: [], ios: [] });
  });

  it('puts the previous sample in precpu_stats; a stopped container is the zero value', async () => {
    const { fake, desc } = fakeCgroup('v2');
    try {
      const sample = readCgroupSample(desc, { fsRoot: fake.root, machineMemory: GiB });
      const first = statsJson({ name: '/a', id: 'c1' }, { at: new Date(1000), sample, system: { usage: 1, onlineCpus: 2 } });
      assert.equal(first.preread, '0001-01-01T00:00:00Z');
      assert.equal(first.precpu_stats.cpu_usage.total_usage, 0);
      const second = statsJson({ name: '/a', id: 'c1' }, { at: new Date(2000), sample, system: { usage: 5, onlineCpus: 2 } }, first);
      assert.equal(second.preread, first.read);
      assert.equal(second.precpu_stats.system_cpu_usage, 1);
      assert.equal(second.cpu_stats.online_cpus, 2);
    } finally {
      fake.cleanup();
    }
    const zero = zeroStats('/b', 'c2');
    assert.equal(zero.read, '0001-01-01T00:00:00Z');
    assert.deepEqual(zero.memory_stats, {});
    const stopped = { id: 'c2', name: '/b', state: { status: 'exited' } };
    const got = [];
    for await (const s of containerStats({ record: () => stopped, cgroup: () => undefined }, 'b', { stream: false })) got.push(s);
    assert.deepEqual(got, [zero]);
  });
});

describe('network counters', () => {
  it("/proc/<pid>/net/dev per interface, lo left out (Docker's networks)", () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0',
      '  eth0:    1296      16    1    2    0     0          0         0      796       9    3    4    0     0       0          0',
    ].join('\n');
    assert.deepEqual(parseNetDev(text), { eth0: { rx_bytes: 1296, rx_packets: 16, rx_errors: 1, rx_dropped: 2, tx_bytes: 796, tx_packets: 9, tx_errors: 3, tx_dropped: 4 } });
    assert.deepEqual(parseNetDev(undefined), {});
  });
});
