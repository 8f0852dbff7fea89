/** `/volumes/...` over the engine's VolumeStore. */
import { checkObject, checkStringMap, optionalString } from '../../common/checks.js';
import { NotFoundError } from '../../common/errors.js';
import { boolFilter, checkFilterKeys } from '../../engine/image-filters.js';
import type { Engine } from '../../engine/engine.js';
import { volumeView } from '../present/volumes.js';
import type { Router } from '../router.js';

export function volumeRoutes(router: Router, engine: Engine): void {
  const inUse = (name: string): string[] => engine.containers.volumeUsers(name);

  router.get('/volumes', (ctx) => {
    const filters = ctx.filters();
    checkFilterKeys(filters, ['name', 'label', 'dangling', 'driver']);
    // The one driver there is.
    if (filters.driver?.length && !filters.driver.includes('local')) return ctx.sendJson(200, { Volumes: [], Warnings: null });
    const list = engine.volumes.list({ name: filters.name, label: filters.label, dangling: boolFilter(filters, 'dangling') });
    ctx.sendJson(200, { Volumes: list.map(volumeView), Warnings: null });
  });

  router.post('/volumes/create', async (ctx) => {
    const body = await ctx.json<Record<string, unknown>>({});
    checkObject(body, 'body');
    // The types VolumeCreateBody declares, checked as dockerd's json.Unmarshal checks them.
    const volume = await engine.volumes.create({
      name: optionalString(body.Name, 'Name'),
      driver: optionalString(body.Driver, 'Driver') || undefined,
      options: checkStringMap(body.DriverOpts, 'DriverOpts'),
      labels: checkStringMap(body.Labels, 'Labels'),
    });
    engine.events.emit('volume', 'create', volume.Name, { driver: volume.Driver });
    ctx.sendJson(201, volumeView(volume));
  });

  router.get('/volumes/{name}', (ctx) => {
    ctx.sendJson(200, volumeView(engine.volumes.inspect(ctx.params.name!)));
  });

  router.delete('/volumes/{name}', async (ctx) => {
    try {
      await engine.volumes.remove(ctx.params.name!, inUse);
    } catch (err) {
      // As dockerd: with force, a volume that is not there is no error (force does not remove one in use).
      if (!(err instanceof NotFoundError && ctx.bool('force'))) throw err;
      ctx.noContent();
      return;
    }
    engine.events.emit('volume', 'destroy', ctx.params.name!, { driver: 'local' });
    ctx.noContent();
  });

  router.post('/volumes/prune', async (ctx) => {
    const filters = ctx.filters();
    checkFilterKeys(filters, ['label', 'label!', 'all']);
    // Before API 1.42 a prune took every unused volume, named ones too (dockerd adds all=true).
    const all = !ctx.atLeast('1.42') || ['1', 'true'].includes(filters.all?.[0] ?? '');
    const result = await engine.volumes.prune({ all, label: filters.label, notLabel: filters['label!'] }, inUse);
    ctx.sendJson(200, { VolumesDeleted: result.deleted, SpaceReclaimed: result.spaceReclaimed });
  });
}
