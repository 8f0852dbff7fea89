/**
 * Endpoints of dockerd features berthd does not have: plugins and checkpoints. They are answered
 * as dockerd answers on a daemon that has none installed or enabled (an empty plugin list,
 * "plugin "x" not found"), so clients that look see nothing there; what would add one (installing
 * a plugin, making a checkpoint) is refused, saying why, instead of a bare 404 "page not found".
 */
import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import { checkFilterKeys, invalidFilter } from '../../engine/image-filters.js';
import type { Router } from '../router.js';

const NO_PLUGINS = 'berthd does not run Docker Engine plugins';

export function featuresAbsentRoutes(router: Router): void {
  const notFound = (name: string): never => {
    throw new NotFoundError(`plugin ${JSON.stringify(name)} not found`);
  };

  router.get('/plugins', (ctx) => {
    const filters = ctx.filters();
    checkFilterKeys(filters, ['capability', 'enabled']);
    const enabled = filters.enabled;
    // moby's ExactMatch: "true" or "false" among the values; anything else is refused.
    if (enabled?.length && !enabled.includes('true') && !enabled.includes('false')) throw invalidFilter('enabled', enabled);
    ctx.sendJson(200, []);
  });
  router.get('/plugins/{name*}/json', (ctx) => notFound(ctx.params.name!));
  router.delete('/plugins/{name*}', (ctx) => notFound(ctx.params.name!));
  router.post('/plugins/{name*}/enable', (ctx) => {
    // dockerd reads the timeout first (strconv.Atoi), so a request without one fails on that.
    const timeout = ctx.query.get('timeout') ?? '';
    if (!/^[+-]?\d+$/.test(timeout)) throw new InvalidArgumentError(`strconv.Atoi: parsing ${JSON.stringify(timeout)}: invalid syntax`);
    notFound(ctx.params.name!);
  });
  for (const action of ['disable', 'push', 'set']) router.post(`/plugins/{name*}/${action}`, (ctx) => notFound(ctx.params.name!));
  router.post('/plugins/{name*}/upgrade', (ctx) => notFound(ctx.params.name!.includes(':') ? ctx.params.name! : `${ctx.params.name!}:latest`));
  router.get('/plugins/privileges', () => {
    throw new UnsupportedError(`${NO_PLUGINS}: a plugin cannot be installed`);
  });
  for (const p of ['/plugins/pull', '/plugins/create']) {
    router.post(p, () => {
      throw new UnsupportedError(`${NO_PLUGINS}: a plugin cannot be installed`);
    });
  }

  const noCheckpoints = (): never => {
    throw new UnsupportedError('berthd has no checkpoint and restore: containers cannot be checkpointed');
  };
  router.get('/containers/{id*}/checkpoints', noCheckpoints);
  router.post('/containers/{id*}/checkpoints', noCheckpoints);
  router.delete('/containers/{id*}/checkpoints/{checkpoint}', noCheckpoints);
}
