/**
 * Swarm endpoints, answered as dockerd answers them on a node that is not in a swarm: 503.
 * Clients probe them (docker-compose 1.29 asks GET /nodes to learn whether it talks to a swarm)
 * and expect that answer, not a 404. berthd has no swarm mode, so joining one is refused too.
 */
import { NOT_A_SWARM_MANAGER as NOT_A_MANAGER, UnavailableError } from '../../common/errors.js';
import type { Router } from '../router.js';

const NOT_IN_SWARM = 'This node is not part of a swarm';

export function swarmRoutes(router: Router): void {
  const notManager = (): never => {
    throw new UnavailableError(NOT_A_MANAGER);
  };
  for (const p of ['/swarm', '/swarm/unlockkey', '/nodes', '/nodes/{id}', '/services', '/services/{id}', '/services/{id}/logs', '/tasks', '/tasks/{id}', '/tasks/{id}/logs', '/secrets', '/secrets/{id}', '/configs', '/configs/{id}']) router.get(p, notManager);
  for (const p of ['/swarm/update', '/services/create', '/services/{id}/update', '/secrets/create', '/configs/create']) router.post(p, notManager);
  for (const p of ['/nodes/{id}', '/services/{id}', '/secrets/{id}', '/configs/{id}']) router.delete(p, notManager);
  router.post('/swarm/leave', () => {
    throw new UnavailableError(NOT_IN_SWARM);
  });
  for (const p of ['/swarm/init', '/swarm/join', '/swarm/unlock']) {
    router.post(p, () => {
      throw new UnavailableError('berthd has no swarm mode: it cannot start or join a swarm');
    });
  }
}
