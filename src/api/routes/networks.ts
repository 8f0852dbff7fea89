/** `/networks/...` over the engine's NetworkService (and the container service for connect). */
import { InvalidArgumentError } from '../../common/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { EndpointConfig } from '../../engine/networks/record.js';
import type { CreateNetworkRequest } from '../../engine/networks/service.js';
import { networkJson } from '../present/networks.js';
import type { Router } from '../router.js';

export function networkRoutes(router: Router, engine: Engine): void {
  const networks = engine.networks;

  router.get('/networks', (ctx) => {
    // dockerd lists without containers (API ≥ 1.28); `network inspect` has them.
    ctx.sendJson(200, networks.list(ctx.filters()).map((n) => networkJson(n)));
  });

  router.get('/networks/{id}', (ctx) => {
    const n = networks.get(ctx.params.id!);
    ctx.sendJson(200, networkJson(n, networks.endpointsOn(n)));
  });

  router.post('/networks/create', async (ctx) => {
    const body = await ctx.json<CreateNetworkRequest>();
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('the request body must be a JSON object');
    const created = networks.create(body);
    ctx.sendJson(201, { Id: created.id, Warning: created.warning });
  });

  router.delete('/networks/{id}', async (ctx) => {
    await networks.remove(ctx.params.id!);
    ctx.noContent();
  });

  router.post('/networks/prune', async (ctx) => {
    const removed = await networks.prune(ctx.filters());
    ctx.sendJson(200, { NetworksDeleted: removed.length ? removed : null }); // Go's nil slice: null
  });

  router.post('/networks/{id}/connect', async (ctx) => {
    const body = await ctx.json<{ Container?: unknown; EndpointConfig?: EndpointConfig | null }>({});
    if (typeof body.Container !== 'string' || !body.Container) throw new InvalidArgumentError('a container is needed', 'Container');
    await engine.containers.connect(body.Container, ctx.params.id!, body.EndpointConfig ?? {});
    ctx.noContent(200);
  });

  router.post('/networks/{id}/disconnect', async (ctx) => {
    const body = await ctx.json<{ Container?: unknown; Force?: unknown }>({});
    if (typeof body.Container !== 'string' || !body.Container) throw new InvalidArgumentError('a container is needed', 'Container');
    if (body.Force !== undefined && body.Force !== null && typeof body.Force !== 'boolean') throw new InvalidArgumentError('must be a boolean', 'Force');
    await engine.containers.disconnect(body.Container, ctx.params.id!, body.Force === true);
    ctx.noContent(200);
  });
}
