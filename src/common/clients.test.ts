import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BERTH_CLI_USER_AGENT, keepsBytesAfterHead } from './clients.js';

describe('clients that keep the bytes after a 101', () => {
  it('the docker CLI (Go) and the berth CLI; not docker-py, dockerode or an unnamed client', () => {
    assert.ok(keepsBytesAfterHead('Docker-Client/28.2.2 (linux)'));
    assert.ok(keepsBytesAfterHead(BERTH_CLI_USER_AGENT));
    for (const ua of ['docker-sdk-python/7.1.0', undefined, '', 'Go-http-client/1.1', 'berth-cli-fake']) assert.ok(!keepsBytesAfterHead(ua), String(ua));
  });
});
