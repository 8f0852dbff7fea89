import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../common/errors.js';
import { dnsRedirectRules, EMBEDDED_DNS_ADDRESS } from './dns-redirect.js';

describe('dnsRedirectRules', () => {
  it("sends 127.0.0.11:53 (udp, tcp) to the gateway, masquerades loopback sources leaving, drops neighbours' loopback traffic", () => {
    const rules = dnsRedirectRules('10.1.2.1');
    assert.equal(EMBEDDED_DNS_ADDRESS, '127.0.0.11');
    assert.match(rules, /^table ip berth_dns \{$/m);
    assert.match(rules, /^ {4}ip daddr 127\.0\.0\.11 udp dport 53 dnat to 10\.1\.2\.1:53$/m);
    assert.match(rules, /^ {4}ip daddr 127\.0\.0\.11 tcp dport 53 dnat to 10\.1\.2\.1:53$/m);
    assert.match(rules, /^ {4}ip saddr 127\.0\.0\.0\/8 oifname != "lo" masquerade$/m);
    assert.match(rules, /^ {4}iifname != "lo" ip daddr 127\.0\.0\.0\/8 ct state != \{ established, related \} drop$/m);
    assert.doesNotMatch(rules, /delete table/, 'a new namespace: nothing to replace (a delete costs ~12 ms)');
  });
  it('replaces a table that may be there, in the same transaction', () => {
    assert.match(dnsRedirectRules('10.1.2.1', true), /^add table ip berth_dns\ndelete table ip berth_dns\ntable ip berth_dns \{/);
  });
  it('takes an IPv4 address and nothing else into the script', () => {
    for (const bad of ['10.1.2.1; flush ruleset', '', '::1', '300.1.1.1']) assert.throws(() => dnsRedirectRules(bad), InvalidArgumentError, bad);
  });
});
