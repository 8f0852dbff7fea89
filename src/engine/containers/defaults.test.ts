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
    assert.deepEqual([plain.IpcMode, plain.CgroupnsMode], ['private', undefined]);
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
