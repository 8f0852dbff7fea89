/** `/images/...`: list, inspect, pull, load, tag, remove. */
import { ConflictError, InvalidArgumentError } from '../../common/errors.js';
import type { Engine } from '../../engine/engine.js';
import { loadDockerArchive } from '../../images/archive/docker-archive.js';
import { pullImage } from '../../images/pull-image.js';
import { dockerReference, formatReference } from '../../images/reference.js';
import type { RegistryAuth } from '../../images/registry/auth.js';
import { familiarName, imageInspect, imageSummary } from '../present/images.js';
import type { Router } from '../router.js';

/** X-Registry-Auth: base64url JSON {username, password, ...}; empty or "{}" means anonymous. */
export function registryAuth(header: string | string[] | undefined): RegistryAuth | undefined {
  if (typeof header !== 'string' || header === '') return undefined;
  let parsed: { username?: string; password?: string; identitytoken?: string };
  try {
    parsed = JSON.parse(Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')) as typeof parsed;
  } catch {
    throw new InvalidArgumentError('X-Registry-Auth is not base64-encoded JSON', 'X-Registry-Auth');
  }
  if (parsed && typeof parsed.username === 'string' && parsed.username !== '') return { username: parsed.username, password: String(parsed.password ?? '') };
  return undefined;
}

export function imageRoutes(router: Router, engine: Engine): void {
  router.get('/images/json', (ctx) => {
    ctx.sendJson(200, engine.images.list().map((image) => imageSummary(engine, image)));
  });

  router.get('/images/{name*}/json', (ctx) => {
    ctx.sendJson(200, imageInspect(engine, engine.images.get(ctx.params.name!)));
  });

  router.post('/images/create', async (ctx) => {
    const fromImage = ctx.query.get('fromImage');
    if (!fromImage) throw new InvalidArgumentError('fromImage is required (import from a source is not supported yet)', 'fromImage');
    const tag = ctx.query.get('tag');
    const ref = tag ? (tag.startsWith('sha256:') ? `${fromImage}@${tag}` : `${fromImage}:${tag}`) : fromImage;
    const name = formatReference(dockerReference(ref));
    const auth = registryAuth(ctx.req.headers['x-registry-auth']);
    const out = ctx.stream('application/json');
    const send = (obj: object): void => {
      if (!out.writableEnded) out.write(JSON.stringify(obj) + '\r\n');
    };
    try {
      const result = await pullImage(name, {
        content: engine.content,
        images: engine.images,
        snapshotter: engine.snapshotter,
        auth,
        insecure: engine.options.insecureRegistries ?? [],
        onProgress: (e) => {
          const detail = e.total !== undefined ? { progressDetail: { current: e.current ?? 0, total: e.total } } : { progressDetail: {} };
          send(e.status.startsWith('Status:') ? { status: e.status } : { status: e.status, id: e.id, ...detail });
        },
      });
      send({ status: `Digest: ${result.image.repoDigests?.[0]?.split('@')[1] ?? result.image.manifest}` });
      engine.events.emit('image', 'pull', familiarName(name), { name: familiarName(name) });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      send({ errorDetail: { message }, error: message });
    }
    out.end();
  });

  router.post('/images/load', async (ctx) => {
    const quiet = ctx.bool('quiet');
    const result = await loadDockerArchive(ctx.bodyStream(), { content: engine.content, images: engine.images });
    const out = ctx.stream('application/json');
    for (const image of result.images) {
      const names = image.names.map(familiarName);
      for (const n of names) out.write(JSON.stringify({ stream: `Loaded image: ${n}\n` }) + '\r\n');
      if (names.length === 0) out.write(JSON.stringify({ stream: `Loaded image ID: ${image.id}\n` }) + '\r\n');
      engine.events.emit('image', 'load', image.id, { name: names[0] ?? image.id });
    }
    void quiet;
    out.end();
  });

  router.post('/images/{name*}/tag', (ctx) => {
    const repo = ctx.query.get('repo');
    if (!repo) throw new InvalidArgumentError('repository name is required', 'repo');
    const tag = ctx.query.get('tag') || 'latest';
    const image = engine.images.get(ctx.params.name!);
    const target = formatReference(dockerReference(`${repo}:${tag}`));
    engine.images.tag(target, image.config);
    engine.events.emit('image', 'tag', image.config, { name: familiarName(target) });
    ctx.noContent(201);
  });

  router.delete('/images/{name*}', (ctx) => {
    const name = ctx.params.name!;
    const image = engine.images.get(name);
    const force = ctx.bool('force');
    if (!force && engine.containers.imageInUse(image.config) && (image.names.length <= 1 || /^(sha256:)?[a-f0-9]{12,64}$/.test(name))) {
      const user = engine.containers.list().find((c) => c.image === image.config)!;
      throw new ConflictError(
        `conflict: unable to remove repository reference "${name}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${image.config.slice(7, 19)}`,
      );
    }
    const result = engine.images.remove(name, { force });
    engine.images.garbageCollect();
    const out: object[] = [...result.untagged.map((u) => ({ Untagged: familiarName(u) })), ...result.deleted.map((d) => ({ Deleted: d }))];
    for (const u of result.untagged) engine.events.emit('image', 'untag', image.config, { name: familiarName(u) });
    for (const d of result.deleted) engine.events.emit('image', 'delete', d, { name: d });
    ctx.sendJson(200, out);
  });
}
