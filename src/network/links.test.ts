import assert from 'node:assert/strict';
import { test } from 'node:test';

import { linkEnvironment, linkHostNames, parseLegacyLink, recordedLink } from './links.js';

test('parseLegacyLink: name, name:alias, and the form dockerd records', () => {
  assert.deepEqual(parseLegacyLink('db'), { target: 'db', alias: 'db' });
  assert.deepEqual(parseLegacyLink('db:main'), { target: 'db', alias: 'main' });
  assert.deepEqual(parseLegacyLink('/db:/web/main'), { target: 'db', alias: 'main' });
  for (const bad of ['a:b:c', ':x', 'x:', '']) assert.throws(() => parseLegacyLink(bad), /links/);
  assert.throws(() => parseLegacyLink(3), /empty string specified for links/);
  assert.equal(recordedLink({ target: 'db', alias: 'main' }, '/web'), '/db:/web/main');
});

test('linkHostNames: alias, hostname, then the name unless it is the alias', () => {
  assert.deepEqual(linkHostNames('db', { name: '/db', hostname: 'abc123' }), ['db', 'abc123']);
  assert.deepEqual(linkHostNames('main', { name: '/db', hostname: 'abc123' }), ['main', 'abc123', 'db']);
});

test("linkEnvironment: dockerd's variables, port ranges and the target's environment", () => {
  const env = linkEnvironment({ alias: 'my-db', linkingName: '/web', targetIp: '10.0.0.5', exposedPorts: ['90/udp', '81/tcp', '80/tcp', '85', '82/tcp'], targetEnv: ['PATH=/bin', 'HOME=/root', 'A=1=2', 'BARE'] });
  assert.equal(env[0], 'MY_DB_PORT=tcp://10.0.0.5:80');
  const set = new Set(env);
  for (const want of [
    'MY_DB_PORT_80_TCP=tcp://10.0.0.5:80',
    'MY_DB_PORT_80_TCP_ADDR=10.0.0.5',
    'MY_DB_PORT_80_TCP_PORT=80',
    'MY_DB_PORT_80_TCP_PROTO=tcp',
    'MY_DB_PORT_80_TCP_START=tcp://10.0.0.5:80',
    'MY_DB_PORT_80_TCP_PORT_START=80',
    'MY_DB_PORT_80_TCP_END=tcp://10.0.0.5:82',
    'MY_DB_PORT_80_TCP_PORT_END=82',
    'MY_DB_PORT_85_TCP=tcp://10.0.0.5:85',
    'MY_DB_PORT_90_UDP=udp://10.0.0.5:90',
    'MY_DB_NAME=/web/my-db',
    'MY_DB_ENV_A=1=2',
  ]) assert.ok(set.has(want), `${want} in ${env.join(' ')}`);
  assert.equal(env.filter((e) => /_(TCP|UDP)_START=/.test(e)).length, 1, 'only 80-82 is a range');
  assert.ok(!env.some((e) => /ENV_(PATH|HOME|BARE)/.test(e)));
  assert.deepEqual(linkEnvironment({ alias: 'x', linkingName: 'w', targetIp: '1.2.3.4', exposedPorts: [], targetEnv: [] }), ['X_NAME=/w/x']);
});
