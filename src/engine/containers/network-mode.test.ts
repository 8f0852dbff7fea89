import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { checkNetworkModeConflicts, NETWORK_MODE_CONFLICTS as C, type NetworkModeRequest } from './network-mode.js';

const refuses = (req: NetworkModeRequest, message: string) =>
  assert.throws(
    () => checkNetworkModeConflicts(req),
    (e: unknown) => e instanceof InvalidArgumentError && e.message === message,
    JSON.stringify(req),
  );
const accepts = (req: NetworkModeRequest) => assert.doesNotThrow(() => checkNetworkModeConflicts(req), JSON.stringify(req));

describe('checkNetworkModeConflicts (moby validateNetMode)', () => {
  const container = { NetworkMode: 'container:abc' };
  it("refuses what a container that joins another's namespace cannot have", () => {
    refuses({ config: { Hostname: 'x' }, host: container }, C.hostname);
    refuses({ config: {}, host: { ...container, Links: ['a:b'] } }, C.containerLinks);
    refuses({ config: {}, host: { ...container, Dns: ['1.1.1.1'] } }, C.dns);
    refuses({ config: {}, host: { ...container, ExtraHosts: ['a:1.2.3.4'] } }, C.extraHosts);
    refuses({ config: { MacAddress: '02:42:ac:11:00:02' }, host: container }, C.macAddress);
    refuses({ config: {}, host: container, endpoints: { 'container:abc': { MacAddress: '02:42:ac:11:00:02' } } }, C.macAddress);
    refuses({ config: {}, host: { ...container, PortBindings: { '80/tcp': [] } } }, C.publish);
    refuses({ config: {}, host: { ...container, PublishAllPorts: true } }, C.publish);
    refuses({ config: { ExposedPorts: { '80/tcp': {} } }, host: container }, C.expose);
  });
  it('checks in dockerd order: the hostname before DNS', () => {
    refuses({ config: { Hostname: 'x' }, host: { ...container, Dns: ['1.1.1.1'] } }, C.hostname);
  });
  it('refuses "container:" without a name', () => {
    refuses({ config: {}, host: { NetworkMode: 'container:' } }, C.containerFormat);
    refuses({ config: {}, host: { NetworkMode: 'container' } }, C.containerFormat);
  });
  it('host networking: no MAC address, but a hostname of its own', () => {
    refuses({ config: { MacAddress: '02:42:ac:11:00:02' }, host: { NetworkMode: 'host' } }, C.macAddress);
    accepts({ config: { Hostname: 'x' }, host: { NetworkMode: 'host', Dns: ['1.1.1.1'], PortBindings: { '80/tcp': [] } } });
  });
  it('the UTS mode of the host takes no hostname', () => {
    refuses({ config: { Hostname: 'x' }, host: { UTSMode: 'host' } }, C.utsHostname);
    refuses({ config: { Hostname: 'x' }, host: { NetworkMode: 'host', UTSMode: 'host' } }, C.utsHostname);
  });
  it('accepts empty values and the ordinary modes', () => {
    accepts({ config: { Hostname: '', MacAddress: '', ExposedPorts: {} }, host: { ...container, Links: [], Dns: null, ExtraHosts: [], PortBindings: {}, PublishAllPorts: false } });
    for (const NetworkMode of [undefined, '', 'default', 'bridge', 'none', 'mynet']) {
      accepts({ config: { Hostname: 'x', MacAddress: '02:42:ac:11:00:02', ExposedPorts: { '80/tcp': {} } }, host: { NetworkMode, Dns: ['1.1.1.1'], Links: ['a:b'], PublishAllPorts: true } });
    }
  });
});
