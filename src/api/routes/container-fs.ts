/**
 * A container's files and resources: `archive` (docker cp, GET/HEAD/PUT), `export`, `changes`
 * (docker diff), `stats` and `update`. The work is in src/engine/containers (filesystem.ts,
 * stats.ts, update.ts); this file only speaks HTTP.
 */
import type { Writable } from 'node:stream';

import { InvalidArgumentError } from '../../common/errors.js';
import { ContainerFilesystem, type PathStat } from '../../engine/containers/filesystem.js';
import { containerStats } from '../../engine/containers/stats.js';
import type { UpdateRequest } from '../../engine/containers/update.js';
import type { Engine } from '../../engine/engine.js';
import type { Context } from '../context.js';
import type { Router } from '../router.js';

const PATH_STAT_HEADER = 'X-Docker-Container-Path-Stat';
const TAR = 'application/x-tar';

function pathParam(ctx: Context): string {
  const p = ctx.query.get('path');
  if (p === null || p === '') throw new InvalidArgumentError('path is required', 'path');
  return p;
}

function setPathStat(ctx: Context, stat: PathStat): void {
  ctx.res?.setHeader(PATH_STAT_HEADER, Buffer.from(JSON.stringify(stat)).toString('base64'));
}

export function containerFsRoutes(router: Router, engine: Engine): void {
  const files = new ContainerFilesystem(engine.containers, engine.snapshotter, engine.events);

  router.head('/containers/{id*}/archive', async (ctx) => {
    const stat = await files.statPath(ctx.params.id!, pathParam(ctx));
    setPathStat(ctx, stat);
    ctx.noContent(200);
  });

  router.get('/containers/{id*}/archive', async (ctx) => {
    await files.getArchive(ctx.params.id!, pathParam(ctx), (stat): Writable => {
      setPathStat(ctx, stat);
      return ctx.stream(TAR);
    });
  });

  router.put('/containers/{id*}/archive', async (ctx) => {
    await files.putArchive(ctx.params.id!, pathParam(ctx), ctx.bodyStream(), {
      noOverwriteDirNonDir: ctx.bool('noOverwriteDirNonDir'),
      copyUIDGID: ctx.bool('copyUIDGID'),
    });
    ctx.noContent(200);
  });

  router.get('/containers/{id*}/export', async (ctx) => {
    await files.export(ctx.params.id!, () => ctx.stream(TAR));
  });

  router.get('/containers/{id*}/changes', async (ctx) => {
    const changes = await files.changes(ctx.params.id!);
    ctx.sendJson(200, changes.length ? changes : null); // dockerd's empty answer (a nil list)
  });

  router.get('/containers/{id*}/stats', async (ctx) => {
    const stream = ctx.bool('stream', true);
    const oneShot = ctx.bool('one-shot');
    if (oneShot && stream) throw new InvalidArgumentError('cannot have stream=true and one-shot=true', 'one-shot');
    const abort = new AbortController();
    ctx.onClose(() => abort.abort());
    const lookup = { record: (ref: string) => engine.containers.get(ref), cgroup: (id: string) => engine.containers.cgroupOf(id) };
    if (!stream) {
      for await (const s of containerStats(lookup, ctx.params.id!, { stream: false, oneShot, signal: abort.signal })) ctx.sendJson(200, s);
      return;
    }
    const stats = containerStats(lookup, ctx.params.id!, { stream: true, signal: abort.signal });
    // The first sample before the head, so a missing container is a 404.
    const first = await stats.next();
    const out = ctx.stream('application/json');
    if (!first.done) out.write(JSON.stringify(first.value) + '\n');
    for await (const s of stats) {
      if (out.destroyed || out.writableEnded) break;
      out.write(JSON.stringify(s) + '\n');
    }
    abort.abort();
    if (!out.writableEnded) out.end();
  });

  router.post('/containers/{id*}/update', async (ctx) => {
    const body = await ctx.json<UpdateRequest>({});
    const { Warnings } = engine.containers.update(ctx.params.id!, body);
    ctx.sendJson(200, { Warnings: Warnings.length ? Warnings : null }); // dockerd's: null when none
  });
}
