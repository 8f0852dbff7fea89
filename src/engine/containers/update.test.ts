/** docker update's checks and the cgroup changes it plans (pure). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ConflictError, InvalidArgumentError } from '../../common/errors.js';
import { planUpdate } from './update.js';

const MiB = 1024 * 1024;

describe('planUpdate', () => {
  it('changes only what is given; zero values leave settings alone', () => {
    const p = planUpdate({ Memory: 32 * MiB, MemorySwap: 128 * MiB, CpuShares: 512 }, { Memory: 64 * MiB, CpuShares: 0, PidsLimit: 50 });
    assert.equal(p.hostConfig.Memory, 64 * MiB);
    assert.equal(p.hostConfig.CpuShares, 512);
    assert.deepEqual(p.cgroup, { memory: { limit: 64 * MiB }, pids: { limit: 50 } });
    assert.ok(p.changed);
    assert.equal(planUpdate({}, {}).changed, false);
  });

  it("discards what the host cannot do with dockerd's warnings: a blkio weight without the controller's file, kernel memory", () => {
    const none = planUpdate({}, { BlkioWeight: 300, KernelMemory: 10 * MiB });
    assert.deepEqual(none.warnings, [
      'Specifying a kernel memory limit is deprecated and will be removed in a future release.',
      'Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.',
    ]);
    assert.equal(none.hostConfig.BlkioWeight, undefined);
    assert.deepEqual([none.changed, none.cgroup], [false, {}]);
    const weighted = planUpdate({}, { BlkioWeight: 300 }, { blkioWeight: true });
    assert.deepEqual([weighted.warnings, weighted.hostConfig.BlkioWeight, weighted.cgroup], [[], 300, { blockIO: { weight: 300 } }]);
  });

  it('NanoCpus become a quota over a 100ms period; PidsLimit 0 is unlimited', () => {
    assert.deepEqual(planUpdate({}, { NanoCpus: 1.5e9 }).cgroup, { cpu: { period: 100000, quota: 150000 } });
    assert.deepEqual(planUpdate({ PidsLimit: 10 }, { PidsLimit: 0 }).cgroup, { pids: { limit: -1 } });
  });

  it('refuses what dockerd refuses', () => {
    assert.throws(() => planUpdate({}, { Memory: 1024 }), InvalidArgumentError);
    assert.throws(() => planUpdate({}, { NanoCpus: 3e9 }, { cpuCount: 2 }), /Range of CPUs is from 0\.01 to 2\.00/);
    assert.throws(() => planUpdate({ Memory: 32 * MiB, MemorySwap: 64 * MiB }, { Memory: 128 * MiB }), ConflictError);
    // As dockerd: no swap limit (0) or an unlimited one (-1) is below any memory limit.
    assert.throws(() => planUpdate({}, { Memory: 64 * MiB }), /update the memoryswap at the same time/);
    assert.throws(() => planUpdate({ Memory: 32 * MiB, MemorySwap: -1 }, { Memory: 64 * MiB }), ConflictError);
    assert.deepEqual(planUpdate({}, { Memory: 64 * MiB, MemorySwap: -1 }).cgroup.memory, { limit: 64 * MiB, swap: -1 });
    assert.throws(() => planUpdate({}, { Memory: 1024 }), /6MB/, 'the value is checked first, as dockerd');
    assert.throws(() => planUpdate({}, { Memory: 'lots' as unknown as number }), InvalidArgumentError);
    assert.throws(() => planUpdate({}, { RestartPolicy: { Name: 'sometimes' as 'always' } }), InvalidArgumentError);
    assert.throws(() => planUpdate({ AutoRemove: true }, { RestartPolicy: { Name: 'always' } }), /AutoRemove/);
    assert.throws(() => planUpdate({}, null as unknown as Record<string, never>), InvalidArgumentError);
  });

  it('sets the restart policy', () => {
    const p = planUpdate({}, { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } });
    assert.deepEqual(p.hostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.deepEqual(p.cgroup, {});
    // No name: left as it is (the docker CLI sends {Name: ""} with every other update).
    const kept = planUpdate({ RestartPolicy: { Name: 'always' } }, { RestartPolicy: { Name: '' as 'always', MaximumRetryCount: 0 }, PidsLimit: 5 });
    assert.deepEqual(kept.hostConfig.RestartPolicy, { Name: 'always' });
  });
});
