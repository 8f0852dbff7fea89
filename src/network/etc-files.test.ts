import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hostsFile, nameservers, parseExtraHosts, resolvConf } from './etc-files.js';

describe('a container\'s /etc/hosts and /etc/resolv.conf', () => {
  it('writes localhost, links, extra hosts and the container\'s own address as Docker does', () => {
    const text = hostsFile({ hostname: 'abc', ip: '10.0.0.2', links: [{ ip: '10.0.0.3', names: ['db', '0123456789ab', 'postgres'] }], extraHosts: parseExtraHosts(['gw:host-gateway', 'x.test:192.0.2.1'], '10.0.0.1') });
    assert.match(text, /^127\.0\.0\.1\tlocalhost\n/);
    assert.match(text, /\n10\.0\.0\.3\tdb 0123456789ab postgres\n/);
    assert.match(text, /\n10\.0\.0\.1\tgw\n192\.0\.2\.1\tx\.test\n10\.0\.0\.2\tabc\n$/);
    assert.doesNotMatch(hostsFile({ hostname: 'abc' }), /abc/, 'no address, no line');
  });
  it('refuses malformed extra hosts and host-gateway without a bridge', () => {
    assert.throws(() => parseExtraHosts(['nocolon'], '10.0.0.1'), /ExtraHosts: invalid extra host/);
    assert.throws(() => parseExtraHosts(['a:not an ip'], '10.0.0.1'), /invalid IP address/);
    assert.throws(() => parseExtraHosts(['a:host-gateway'], undefined), /host-gateway/);
  });
  it('uses the embedded server on user-defined networks, else --dns, else the host\'s reachable resolvers', () => {
    const host = 'nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.test\noptions edns0\n';
    assert.deepEqual(nameservers(host), ['127.0.0.53', '192.0.2.53']);
    // In the order dockerd writes them: search, the name servers, options.
    assert.equal(resolvConf({ host }), 'search corp.test\nnameserver 192.0.2.53\noptions edns0\n');
    assert.equal(resolvConf({ host, embedded: '10.1.0.1' }), 'search corp.test\nnameserver 10.1.0.1\noptions edns0 ndots:0\n');
    assert.equal(resolvConf({ host, dns: ['192.0.2.9'], dnsSearch: ['a.test'], dnsOptions: ['ndots:2'] }), 'search a.test\nnameserver 192.0.2.9\noptions ndots:2\n');
    // `--dns-search .`: no search line, not even the host's (libnetwork's resolvconf.Build).
    assert.ok(!resolvConf({ host, dns: ['192.0.2.9'], dnsSearch: ['.'] }).includes('search'));
  });
});
