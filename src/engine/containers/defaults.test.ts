import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { applyCreateDefaults, dnsSettings, withRunDefaults } from './defaults.js';
import type { ContainerHostConfig } from './record.js';

describe("the daemon's container defaults", () => {
  const defaults = { dns: ['10.0.0.2'], dnsOptions: ['ndots:2'], ulimits: [{ Name: 'nofile', Soft: 1, Hard: 2 }, { Name: 'nproc', Soft: 3, Hard: 4 }], shmSize: 1 << 20, ipcMode: 'shareable' as const, cgroupnsMode: 'host' as const };

  it('namespace modes at create, written into the HostConfig; the container\'s own win', () => {
    const host: ContainerHostConfig = {};
    applyCreateDefaults(host, defaults);
    assert.deepEqual([host.IpcMode, host.CgroupnsMode], ['shareable', 'host']);
    const own: ContainerHostConfig = { IpcMode: 'none', CgroupnsMode: 'private' };
    applyCreateDefaults(own, defaults);
    assert.deepEqual([own.IpcMode, own.CgroupnsMode], ['none', 'private']);
    const plain: ContainerHostConfig = {};
    applyCreateDefaults(plain);
    assert.deepEqual([plain.IpcMode, plain.CgroupnsMode, plain.ShmSize], ['private', 'private', 64 << 20]);
  });

  it("dockerd's create values: the cgroup namespace by cgroup version, /dev/shm's size, the CLI's unset numbers as null", () => {
    const v1: ContainerHostConfig = { MemorySwappiness: -1, PidsLimit: 0 };
    applyCreateDefaults(v1, {}, 1);
    assert.deepEqual([v1.CgroupnsMode, v1.ShmSize, v1.MemorySwappiness, v1.PidsLimit], ['host', 64 << 20, null, null]);
    const privileged: ContainerHostConfig = { Privileged: true };
    applyCreateDefaults(privileged, { cgroupnsMode: 'private' }, 1);
    assert.equal(privileged.CgroupnsMode, 'host', 'a privileged container on cgroup v1 keeps the host\'s');
    const privilegedV2: ContainerHostConfig = { Privileged: true };
    applyCreateDefaults(privilegedV2, {}, 2);
    assert.equal(privilegedV2.CgroupnsMode, 'private');
    const own: ContainerHostConfig = { ShmSize: 1 << 20, MemorySwappiness: 10, PidsLimit: -1 };
    applyCreateDefaults(own, defaults, 1);
    assert.deepEqual([own.CgroupnsMode, own.ShmSize, own.MemorySwappiness, own.PidsLimit], ['host', 1 << 20, 10, null]);
    const daemonShm: ContainerHostConfig = {};
    applyCreateDefaults(daemonShm, defaults);
    assert.equal(daemonShm.ShmSize, 1 << 20);
  });

  it('ulimits and /dev/shm at start, under the container\'s own; DNS list by list', () => {
    const host: ContainerHostConfig = { Ulimits: [{ Name: 'nofile', Soft: 9, Hard: 9 }], Dns: [], DnsSearch: ['mine.test'] };
    const run = withRunDefaults(host, defaults);
    assert.deepEqual(run.Ulimits, [{ Name: 'nofile', Soft: 9, Hard: 9 }, { Name: 'nproc', Soft: 3, Hard: 4 }]);
    assert.equal(run.ShmSize, 1 << 20);
    assert.equal(withRunDefaults({ ShmSize: 5 << 20 }, defaults).ShmSize, 5 << 20);
    assert.deepEqual(host.Ulimits, [{ Name: 'nofile', Soft: 9, Hard: 9 }], 'the record is not changed');
    assert.deepEqual(dnsSettings(host, defaults), { dns: ['10.0.0.2'], dnsSearch: ['mine.test'], dnsOptions: ['ndots:2'] });
    assert.deepEqual(dnsSettings(host), { dns: undefined, dnsSearch: ['mine.test'], dnsOptions: undefined });
  });
});
