/** `/containers/{id}/exec` and `/exec/{id}/...`: not yet (the shim's exec support lands first). */
import { UnsupportedError } from '../../common/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { Router } from '../router.js';

export function execRoutes(router: Router, _engine: Engine): void {
  const notYet = (): never => {
    throw new UnsupportedError('exec is not implemented yet');
  };
  router.post('/containers/{id}/exec', notYet);
  router.post('/exec/{id}/start', notYet);
  router.get('/exec/{id}/json', notYet);
  router.post('/exec/{id}/resize', notYet);
}
