import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { UnavailableError } from '../../common/errors.js';
import { errorStatus } from '../errors.js';
import { Router } from '../router.js';
import { swarmRoutes } from './swarm.js';

describe('swarm endpoints on a daemon that is not in a swarm', () => {
  const router = new Router();
  swarmRoutes(router);
  const answer = (method: string, path: string): { status: number; message: string } => {
    const found = router.match(method, path);
    assert.ok(found, `${method} ${path} is routed`);
    try {
      found.handler({} as never);
    } catch (err) {
      assert.ok(err instanceof UnavailableError);
      return { status: errorStatus(err), message: err.message };
    }
    assert.fail('no error');
  };

  it("answer 503 with dockerd's messages", () => {
    assert.deepEqual(answer('GET', '/nodes'), { status: 503, message: 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.' });
    assert.equal(answer('GET', '/services/abc').status, 503);
    assert.equal(answer('DELETE', '/secrets/abc').status, 503);
    assert.deepEqual(answer('POST', '/swarm/leave'), { status: 503, message: 'This node is not part of a swarm' });
    assert.match(answer('POST', '/swarm/init').message, /no swarm mode/);
  });
});
