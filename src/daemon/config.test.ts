import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { addressPools, bridgeSettings, checkConfig, containerDefaults, daemonLabels, parseUlimitFlag, registryMirrors, transferLimits, defaultNetworkOptions, ipForwardSetting } from './config.js';

describe('daemon.json', () => {
  it("refuses keys no daemon knows, with dockerd's words, and wrong types by key", () => {
    assert.throws(() => checkConfig({ 'data-roott': '/x', debug: true }), /the following directives don't match any configuration option: data-roott/);
    assert.throws(() => checkConfig({ debug: 'yes' }), /debug: must be a boolean/);
    assert.throws(() => checkConfig({ hosts: 'unix:///x' }), /hosts: must be a list of strings/);
    assert.throws(() => checkConfig({ 'log-opts': [] }), /log-opts: must be an object/);
    assert.throws(() => checkConfig([]), /not a JSON object/);
    assert.throws(() => checkConfig({ 'storage-driver': 'btrfs' }), /only the overlay2 storage driver/);
    // A default runtime it does not have: refused (runc's name is berth-oci's here).
    assert.throws(() => checkConfig({ 'default-runtime': 'nvidia', runtimes: { nvidia: { path: 'nvidia-container-runtime' } } }), /^InvalidArgumentError: default-runtime: berthd runs containers with its own runtime, berth-oci/);
    assert.deepEqual(checkConfig({ 'default-runtime': 'runc' }).ignored, ['default-runtime']);
    // Fail closed: authorization plugins it cannot run would let everything through.
    assert.throws(() => checkConfig({ 'authorization-plugins': ['authz-broker'] }), /^InvalidArgumentError: authorization-plugins: berthd has no authorization plugins/);
    assert.deepEqual(checkConfig({ 'authorization-plugins': [] }).ignored, ['authorization-plugins']);
  });

  it("the default bridge's settings, the daemon's security defaults and labels: flags win over the file, each checked", () => {
    const file = checkConfig({ icc: false, 'ip-masq': false, ip: '127.0.0.1', mtu: 1400, 'fixed-cidr': '172.29.5.0/24', 'no-new-privileges': true, 'seccomp-profile': '/etc/x.json', labels: ['a=b'] });
    assert.deepEqual(file.ignored, []);
    assert.deepEqual(bridgeSettings({}, file.config), { icc: false, ipMasq: false, hostBindingIp: '127.0.0.1', mtu: 1400, fixedCidr: '172.29.5.0/24' });
    assert.deepEqual(bridgeSettings({ icc: 'true', 'ip-masq': '1', ip: '0.0.0.0', mtu: '9000' }, file.config), { icc: true, ipMasq: true, hostBindingIp: '0.0.0.0', mtu: 9000, fixedCidr: '172.29.5.0/24' });
    assert.deepEqual(bridgeSettings({}, {}), { icc: true, ipMasq: true, hostBindingIp: '0.0.0.0' });
    assert.throws(() => bridgeSettings({ icc: 'no' }, {}), /--icc: invalid boolean value "no"/);
    assert.throws(() => bridgeSettings({ ip: '::1' }, {}), /ip: "::1" is not an IPv4 address/);
    assert.throws(() => bridgeSettings({ mtu: '20' }, {}), /mtu: invalid MTU "20"/);
    assert.throws(() => checkConfig({ mtu: '1500' }), /mtu: must be an integer/);
    assert.equal(containerDefaults({}, file.config).noNewPrivileges, true);
    assert.equal(containerDefaults({}, {}).noNewPrivileges, undefined);
    assert.deepEqual(daemonLabels(undefined, file.config), ['a=b']);
    assert.deepEqual(daemonLabels(['c=d', 'flag'], file.config), ['c=d', 'flag']);
    assert.throws(() => daemonLabels(['=x'], {}), /invalid label "=x"/);
  });

  it('default address pools from the flags (base=CIDR,size=N) or the file, checked', () => {
    const file = checkConfig({ 'default-address-pools': [{ base: '10.30.0.0/16', size: 24 }] }).config;
    assert.deepEqual(addressPools(undefined, file), [{ base: '10.30.0.0/16', size: 24 }]);
    assert.deepEqual(addressPools(['base=10.40.0.0/16,size=20', 'size=28, base=10.50.0.0/24'], file), [{ base: '10.40.0.0/16', size: 20 }, { base: '10.50.0.0/24', size: 28 }]);
    assert.equal(addressPools(undefined, {}), undefined);
    assert.throws(() => addressPools(['base=10.40.0.0/16'], {}), /default-address-pool\[0\]: an address pool needs/);
    assert.throws(() => addressPools(['base=10.40.0.0/16,size=24,gw=1'], {}), /unexpected key "gw"/);
    assert.throws(() => checkConfig({ 'default-address-pools': { base: 'x' } }), /default-address-pools: must be a list of objects/);
    assert.throws(() => addressPools(undefined, checkConfig({ 'default-address-pools': [{ base: '10.0.0.0/16', size: 12 }] }).config), /default-address-pools\[0\]: size 12/);
  });

  it('registry mirrors from the flags or the file, checked', () => {
    const file = checkConfig({ 'registry-mirrors': ['https://m.example'] });
    assert.deepEqual(file.ignored, []);
    assert.deepEqual(registryMirrors(undefined, file.config).map((m) => m.url), ['https://m.example/']);
    assert.deepEqual(registryMirrors(['http://127.0.0.1:5000'], file.config).map((m) => [m.host, m.secure]), [['127.0.0.1:5000', false]]);
    assert.throws(() => registryMirrors(['ftp://x'], {}), /invalid mirror: unsupported scheme "ftp"/);
  });

  it('transfer limits from the flags or the file, each a positive integer', () => {
    const file = checkConfig({ 'max-concurrent-downloads': 6, 'max-download-attempts': 2 }).config;
    assert.deepEqual(transferLimits({}, file), { downloads: 6, downloadAttempts: 2 });
    assert.deepEqual(transferLimits({ 'max-concurrent-downloads': '1', 'max-concurrent-uploads': '4' }, file), { downloads: 1, uploads: 4, downloadAttempts: 2 });
    assert.deepEqual(transferLimits({}, {}), {});
    assert.throws(() => transferLimits({ 'max-concurrent-uploads': '0' }, {}), /max-concurrent-uploads: invalid value "0": a positive integer/);
    assert.throws(() => checkConfig({ 'max-download-attempts': 'five' }), /max-download-attempts: must be an integer/);
  });

  it('default network options by driver, from the flags (DRIVER=KEY=VALUE) or the file', () => {
    const file = checkConfig({ 'default-network-opts': { bridge: { 'com.docker.network.driver.mtu': '1400' } } }).config;
    assert.deepEqual(defaultNetworkOptions(undefined, file), { bridge: { 'com.docker.network.driver.mtu': '1400' } });
    assert.deepEqual(defaultNetworkOptions(['bridge=a=b', 'bridge=c=d=e'], file), { bridge: { a: 'b', c: 'd=e' } });
    assert.throws(() => defaultNetworkOptions(['bridge'], {}), /expected DRIVER=KEY=VALUE/);
    assert.throws(() => defaultNetworkOptions(undefined, checkConfig({ 'default-network-opts': { bridge: { mtu: 1400 } } }).config), /default-network-opts\.bridge: must be an object of strings/);
  });

  it('--ip-forward, the flag over the file, true unless said otherwise', () => {
    assert.equal(ipForwardSetting(undefined, {}), true);
    assert.equal(ipForwardSetting(undefined, checkConfig({ 'ip-forward': false }).config), false);
    assert.equal(ipForwardSetting('true', checkConfig({ 'ip-forward': false }).config), true);
    assert.throws(() => ipForwardSetting('nope', {}), /--ip-forward: invalid boolean value "nope"/);
  });

  it("takes dockerd's other keys and says which it does not act on", () => {
    const { config, ignored } = checkConfig({ 'live-restore': true, 'storage-driver': 'overlay2', debug: true, 'shutdown-timeout': 15 });
    assert.equal(config.debug, true);
    assert.deepEqual(ignored, ['live-restore', 'storage-driver', 'shutdown-timeout']);
  });

  it("the containers' defaults: flags win over the file", () => {
    const file = checkConfig({ dns: ['10.0.0.2'], 'dns-search': ['example.test'], 'default-ulimits': { nofile: { Name: 'nofile', Hard: 2048, Soft: 1024 } }, 'default-shm-size': '32M', 'default-ipc-mode': 'shareable', 'default-cgroupns-mode': 'private' }).config;
    assert.deepEqual(containerDefaults({}, file), {
      dns: ['10.0.0.2'],
      dnsSearch: ['example.test'],
      ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      shmSize: 32 << 20,
      ipcMode: 'shareable',
      cgroupnsMode: 'private',
    });
    assert.deepEqual(containerDefaults({ dns: ['10.0.0.3'], 'default-ulimit': ['nproc=10:20'], 'default-shm-size': '1g' }, file).dns, ['10.0.0.3']);
    assert.deepEqual(containerDefaults({ 'default-ulimit': ['nproc=10:20'] }, {}).ulimits, [{ Name: 'nproc', Soft: 10, Hard: 20 }]);
    assert.deepEqual(parseUlimitFlag('nofile=100'), { Name: 'nofile', Soft: 100, Hard: 100 });
    assert.throws(() => parseUlimitFlag('nofile'), /invalid ulimit argument/);
    assert.throws(() => containerDefaults({ 'default-ipc-mode': 'host' }, {}), /invalid default IPC mode/);
    assert.throws(() => containerDefaults({ 'default-shm-size': 'lots' }, {}), /invalid size/);
    assert.deepEqual(containerDefaults({}, {}), {});
  });
});
