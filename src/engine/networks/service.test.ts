import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { bridgeDriverOptions, parseEndpointSysctls } from './service.js';

describe('bridge network options, as libnetwork reads them', () => {
  it('enable_icc, enable_ip_masquerade (Go booleans, default true) and host_binding_ipv4 (default all addresses)', () => {
    assert.deepEqual(bridgeDriverOptions({}), { icc: true, masquerade: true, hostBindingIp: '0.0.0.0' });
    assert.deepEqual(
      bridgeDriverOptions({ 'com.docker.network.bridge.enable_icc': 'F', 'com.docker.network.bridge.enable_ip_masquerade': '0', 'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1' }),
      { icc: false, masquerade: false, hostBindingIp: '127.0.0.1' },
    );
    assert.throws(() => bridgeDriverOptions({ 'com.docker.network.bridge.enable_icc': 'no' }), /Options\.com\.docker\.network\.bridge\.enable_icc: invalid value "no"/);
    assert.throws(() => bridgeDriverOptions({ 'com.docker.network.bridge.host_binding_ipv4': 'localhost' }), /expected an IPv4 address/);
  });
});

describe('parseEndpointSysctls (moby validateEndpointSettings)', () => {
  it('takes net.{ipv4,ipv6,mpls}.X.IFNAME.Y=V, comma-separated, IFNAME in either case', () => {
    assert.deepEqual(parseEndpointSysctls('net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.ifname.disable_ipv6=0', 'f'), [
      { key: 'net.ipv4.conf.IFNAME.log_martians', value: '1' },
      { key: 'net.ipv6.conf.ifname.disable_ipv6', value: '0' },
    ]);
    assert.deepEqual(parseEndpointSysctls(undefined, 'f'), []);
    assert.deepEqual(parseEndpointSysctls('', 'f'), []);
  });
  it("refuses others in moby's words, and anything that is not a plain name in the /proc/sys path", () => {
    for (const bad of ['net.ipv4.conf.eth0.log_martians=1', 'net.core.conf.IFNAME.x=1', 'kernel.ipv4.conf.IFNAME.x=1', 'net.ipv4.conf.IFNAME.log_martians', 'net.ipv4.conf.IFNAME.../x=1', 'net.ipv4.conf.IFNAME.a/b=1', 'net.ipv4.IFNAME=1']) {
      assert.throws(
        () => parseEndpointSysctls(bad, 'DriverOpts'),
        (e: unknown) => e instanceof InvalidArgumentError && e.message === `DriverOpts: unrecognised network interface sysctl '${bad}'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'`,
        bad,
      );
    }
  });
});
