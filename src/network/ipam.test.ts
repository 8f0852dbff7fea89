import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { checkAddressPool, DEFAULT_ADDRESS_POOLS, intToIp, Ipam, ipToInt, parseCidr, parseRange, parseSubnet, poolSubnets, subnetCidr, subnetContains, subnetsOverlap } from './ipam.js';

describe('Ipam', () => {
  const dirs: string[] = [];
  const file = (): string => {
    dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), 'ipam-')));
    return path.join(dirs[dirs.length - 1], 'net.json');
  };
  after(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
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
  it('gives an asked-for address (--ip) only inside the subnet and only once', () => {
    const a = new Ipam(file(), parseCidr('10.9.1.1/24'));
    assert.equal(a.allocate('c1', '10.9.1.50'), '10.9.1.50');
    assert.throws(() => a.allocate('c2', '10.9.1.50'), /already in use/);
    assert.throws(() => a.allocate('c2', '10.9.1.1'), /already in use/, 'not the gateway');
    assert.throws(() => a.allocate('c2', '10.9.2.5'), /no configured subnet contains/);
    assert.equal(a.allocate('c2'), '10.9.1.2');
  });
  it('parses network subnets with their gateways and finds overlaps', () => {
    assert.deepEqual(parseSubnet('10.1.2.0/24'), { gateway: '10.1.2.1', prefix: 24 });
    assert.deepEqual(parseSubnet('10.1.2.0/24', '10.1.2.254'), { gateway: '10.1.2.254', prefix: 24 });
    assert.equal(subnetCidr(parseSubnet('10.1.2.77/24')), '10.1.2.0/24');
    assert.throws(() => parseSubnet('10.1.2.0/24', '10.1.3.1'), /Gateway: gateway 10\.1\.3\.1 is not a host address/);
    assert.throws(() => parseSubnet('10.1.2.0/24', '10.1.2.255'), /not a host address/);
    assert.ok(subnetsOverlap(parseSubnet('10.1.0.0/16'), parseSubnet('10.1.2.128/25')));
    assert.ok(!subnetsOverlap(parseSubnet('10.1.2.0/25'), parseSubnet('10.1.2.128/25')));
    assert.ok(subnetContains(parseSubnet('10.1.2.0/24'), '10.1.2.200'));
    assert.ok(!subnetContains(parseSubnet('10.1.2.0/24'), '10.1.3.1'));
  });
});

describe('IPRange and AuxiliaryAddresses', () => {
  it('hands out dynamic addresses from the range only, never a reserved one; --ip may be outside the range', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ipam-range-'));
    try {
      const subnet = parseSubnet('10.9.0.0/24', '10.9.0.254');
      const ipam = new Ipam(path.join(dir, 'r.json'), subnet, { range: '10.9.0.128/30', reserved: ['10.9.0.129'] });
      assert.equal(ipam.allocate('a'), '10.9.0.128');
      assert.equal(ipam.allocate('b'), '10.9.0.130', 'the auxiliary address is skipped');
      assert.equal(ipam.allocate('c'), '10.9.0.131');
      assert.throws(() => ipam.allocate('d'), /no free address/);
      assert.equal(ipam.allocate('e', '10.9.0.7'), '10.9.0.7');
      assert.throws(() => ipam.allocate('f', '10.9.0.129'), /Address already in use/);
      assert.throws(() => parseRange('10.9.1.0/25', subnet), /not within the subnet/);
      assert.throws(() => parseRange('bad', subnet), /invalid IP range/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('address pools (default-address-pools)', () => {
  it("cuts each base into subnets of its size, in order, lazily; Docker's defaults as before", () => {
    const subnets = [...poolSubnets([{ base: '10.10.0.0/24', size: 26 }, { base: '10.20.0.0/16', size: 16 }])].map((s) => `${subnetCidr(s)} gw ${s.gateway}`);
    assert.deepEqual(subnets, ['10.10.0.0/26 gw 10.10.0.1', '10.10.0.64/26 gw 10.10.0.65', '10.10.0.128/26 gw 10.10.0.129', '10.10.0.192/26 gw 10.10.0.193', '10.20.0.0/16 gw 10.20.0.1']);
    const huge = poolSubnets([{ base: '10.0.0.0/8', size: 30 }]);
    assert.equal(subnetCidr(huge.next().value as { gateway: string; prefix: number }), '10.0.0.0/30');
    const defaults = [...poolSubnets(DEFAULT_ADDRESS_POOLS)].map(subnetCidr);
    assert.deepEqual([defaults[0], defaults[13], defaults[14], defaults.at(-1), defaults.length], ['172.18.0.0/16', '172.31.0.0/16', '192.168.0.0/20', '192.168.240.0/20', 30]);
    assert.deepEqual(checkAddressPool({ base: '10.1.0.5/16', size: 24 }, 'p'), { base: '10.1.0.5/16', size: 24 });
    assert.equal(subnetCidr([...poolSubnets([{ base: '10.1.0.5/16', size: 16 }])][0]!), '10.1.0.0/16', 'a base with host bits: its network');
  });
  it('refuses pools dockerd would not take, naming the field', () => {
    assert.throws(() => checkAddressPool({ base: '10.1.0.0/16', size: 8 }, 'pools[0]'), /^InvalidArgumentError: pools\[0\]: size 8 must be between the base's prefix \(\/16\) and \/30$/);
    assert.throws(() => checkAddressPool({ base: '10.1.0.0', size: 24 }, 'p'), /invalid base "10\.1\.0\.0"/);
    assert.throws(() => checkAddressPool({ base: '10.1.0.0/16' }, 'p'), /needs a base CIDR and an integer size/);
    assert.throws(() => checkAddressPool({ base: '300.1.0.0/16', size: 24 }, 'p'), /invalid IPv4 address/);
  });
});
