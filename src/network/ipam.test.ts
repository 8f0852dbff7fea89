import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import { intToIp, Ipam, ipToInt, parseCidr } from './ipam.js';

describe('Ipam', () => {
  const file = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ipam-')), 'net.json');
  it('hands out the lowest free address, never the gateway or one in use, and keeps them across restarts', () => {
    const f = file();
    const a = new Ipam(f, parseCidr('10.9.0.1/29'));
    assert.equal(a.allocate('c1'), '10.9.0.2');
    assert.equal(a.allocate('c2'), '10.9.0.3');
    assert.equal(a.allocate('c1'), '10.9.0.2', 'the same owner keeps its address');
    const b = new Ipam(f, parseCidr('10.9.0.1/29'));
    assert.equal(b.allocate('c3'), '10.9.0.4', 'reserved across a restart');
    b.release('c2');
    assert.equal(b.allocate('c4'), '10.9.0.3');
    assert.equal(b.allocate('c5'), '10.9.0.5');
    assert.equal(b.allocate('c6'), '10.9.0.6');
    assert.throws(() => b.allocate('c7'), /no free address/, 'not the broadcast address');
    b.retain(new Set(['c1']));
    assert.equal(b.allocate('c8'), '10.9.0.3');
  });
  it('parses addresses and refuses bad ones', () => {
    assert.equal(intToIp(ipToInt('172.29.3.4')), '172.29.3.4');
    assert.deepEqual(parseCidr('172.29.0.1/16'), { gateway: '172.29.0.1', prefix: 16 });
    assert.throws(() => parseCidr('172.29.0.1'), /invalid CIDR/);
    assert.throws(() => parseCidr('300.1.1.1/16'), /invalid IPv4/);
    assert.throws(() => parseCidr('10.0.0.1/31'), /between/);
  });
});
