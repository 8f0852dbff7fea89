/**
 * `/images/...`, `/commit`, `/auth`, `/distribution/{name}/json`: the HTTP side of the engine's
 * ImageService. Progress streams (pull, push, import) start with their first message, so an
 * error before it (no such image, bad credentials) is a plain HTTP error, as with dockerd; a
 * later one goes into the stream as {"errorDetail": {"message"}, "error"}.
 */
import type { Writable } from 'node:stream';

import { InvalidArgumentError, SystemError, UnsupportedError } from '../../common/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { JsonMessage } from '../../engine/image-progress.js';
import { LoginRefusedError, pullReference } from '../../engine/images.js';
import type { RegistryAuth } from '../../images/registry/auth.js';
import type { Context } from '../context.js';
import { errorMessage, HttpStatus } from '../errors.js';
import { imageHistory, imageInspect, imageSummary } from '../present/images.js';
import type { Router } from '../router.js';

/**
 * X-Registry-Auth: base64url (or base64) JSON {username, password, ...}; absent, empty or "{}"
 * means anonymous. Anything else is a 400 naming the header.
 */
export function registryAuth(header: string | string[] | undefined): RegistryAuth | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
  } catch {
    throw new InvalidArgumentError('not base64-encoded JSON', 'X-Registry-Auth');
  }
  if (parsed === null) return undefined;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('must be a JSON object', 'X-Registry-Auth');
  const { username, password } = parsed as { username?: unknown; password?: unknown };
  if (username !== undefined && typeof username !== 'string') throw new InvalidArgumentError('username must be a string', 'X-Registry-Auth');
  if (password !== undefined && typeof password !== 'string') throw new InvalidArgumentError('password must be a string', 'X-Registry-Auth');
  if (typeof username === 'string' && username !== '') return { username, password: password ?? '' };
  return undefined;
}

/** A JSON progress stream that starts (200) with its first message (also the build's). */
export class ProgressStream {
  private out: Writable | undefined;
  constructor(private readonly ctx: Context) {}

  get started(): boolean {
    return this.out !== undefined;
  }

  readonly send = (message: JsonMessage): void => {
    this.out ??= this.ctx.stream('application/json');
    if (!this.out.writableEnded && !this.out.destroyed) this.out.write(JSON.stringify(message) + '\r\n');
  };

  /** Runs `fn`; a failure after the stream started becomes its last message. */
  async run(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!this.started) throw err;
      const message = errorMessage(err);
      this.send({ errorDetail: { message }, error: message });
    }
    this.out ??= this.ctx.stream('application/json');
    this.out.end();
  }
}

/** Repeated query values ("changes", "names"). */
function all(ctx: Context, name: string): string[] {
  return ctx.query.getAll(name).filter((v) => v !== '');
}

export function imageRoutes(router: Router, engine: Engine): void {
  const images = engine.imageService;

  router.get('/images/json', (ctx) => {
    const filters = ctx.filters();
    // API < 1.41 had a plain `filter` parameter: a reference pattern.
    const legacy = ctx.query.get('filter');
    if (legacy) filters.reference = [...(filters.reference ?? []), legacy];
    const counts = new Map<string, number>();
    for (const c of engine.containers.list()) counts.set(c.image, (counts.get(c.image) ?? 0) + 1);
    const withCounts = ctx.bool('shared-size') || ctx.bool('containers');
    const list = images
      .list(filters, { all: ctx.bool('all') })
      .map((image) => imageSummary(engine, image, { version: ctx.version, ...(withCounts ? { containers: counts.get(image.config) ?? 0 } : {}) }));
    ctx.sendJson(200, list);
  });

  router.get('/images/search', async (ctx) => {
    const limitText = ctx.query.get('limit') ?? '';
    // dockerd reads the limit with strconv.Atoi, and says so when it is not a number.
    if (limitText !== '' && !/^[+-]?\d+$/.test(limitText)) throw new InvalidArgumentError(`strconv.Atoi: parsing ${JSON.stringify(limitText)}: invalid syntax`);
    const cancel = new AbortController();
    ctx.onClose(() => cancel.abort(new SystemError('context canceled')));
    const auth = registryAuth(ctx.req.headers['x-registry-auth']);
    const results = await images.search(ctx.query.get('term') ?? '', {
      filters: ctx.filters(),
      ...(limitText !== '' ? { limit: Number(limitText) } : {}),
      ...(auth ? { auth } : {}),
      signal: cancel.signal,
    });
    ctx.sendJson(200, results);
  });

  router.get('/images/get', async (ctx) => {
    await save(ctx, all(ctx, 'names'));
  });

  router.get('/images/{name*}/get', async (ctx) => {
    await save(ctx, [ctx.params.name!]);
  });

  router.get('/images/{name*}/history', (ctx) => {
    ctx.sendJson(200, imageHistory(images.history(ctx.params.name!)));
  });

  router.get('/images/{name*}/json', (ctx) => {
    ctx.sendJson(200, imageInspect(engine, images.get(ctx.params.name!), ctx.version));
  });

  router.post('/images/create', async (ctx) => {
    const fromImage = ctx.query.get('fromImage');
    const fromSrc = ctx.query.get('fromSrc');
    const platform = ctx.platform();
    if (fromImage) {
      const ref = pullReference(fromImage, ctx.query.get('tag'));
      const auth = registryAuth(ctx.req.headers['x-registry-auth']);
      const progress = new ProgressStream(ctx);
      // As dockerd: a client that goes away (a Ctrl-C'd docker pull) cancels its pull.
      const cancel = new AbortController();
      ctx.onClose(() => cancel.abort(new SystemError('context canceled')));
      await progress.run(async () => {
        const opts = { ...(auth ? { auth } : {}), ...(platform ? { platform } : {}), sink: progress.send, signal: cancel.signal };
        // No tag in the name nor the parameter: every tag (the API's contract; docker pull -a).
        if (ref.tag === undefined && ref.digest === undefined) await images.pullAllTags(ref, opts);
        else await images.pull(ref, opts);
      });
      return;
    }
    if (fromSrc !== null) {
      if (fromSrc !== '-') throw new UnsupportedError(`importing from a URL is not supported (fromSrc=${fromSrc}); send the tarball as the body with fromSrc=-`);
      const progress = new ProgressStream(ctx);
      await progress.run(async () => {
        const id = await images.importImage(ctx.bodyStream(), {
          repo: ctx.query.get('repo') ?? undefined,
          tag: ctx.query.get('tag') ?? undefined,
          changes: ctx.query.getAll('changes'), // an empty one too: "file with no instructions", as dockerd
          message: ctx.query.get('message') ?? undefined,
          source: fromSrc,
          ...(platform ? { platform } : {}),
        });
        progress.send({ status: id });
      });
      return;
    }
    throw new InvalidArgumentError('fromImage or fromSrc is required', 'fromImage');
  });

  router.post('/images/load', async (ctx) => {
    const progress = new ProgressStream(ctx);
    await progress.run(async () => {
      await images.load(ctx.bodyStream(), progress.send);
    });
  });

  router.post('/images/prune', async (ctx) => {
    ctx.sendJson(200, await images.prune(ctx.filters()));
  });

  router.post('/images/{name*}/push', async (ctx) => {
    const auth = registryAuth(ctx.req.headers['x-registry-auth']);
    const progress = new ProgressStream(ctx);
    await progress.run(() => images.push(ctx.params.name!, ctx.query.get('tag') || undefined, { ...(auth ? { auth } : {}), sink: progress.send }));
  });

  router.post('/images/{name*}/tag', (ctx) => {
    const repo = ctx.query.get('repo');
    if (!repo) throw new InvalidArgumentError('repository name is required', 'repo');
    images.tag(ctx.params.name!, repo, ctx.query.get('tag') || undefined);
    ctx.noContent(201);
  });

  router.delete('/images/{name*}', async (ctx) => {
    ctx.sendJson(200, await images.remove(ctx.params.name!, { force: ctx.bool('force'), prune: !ctx.bool('noprune') }));
  });

  router.post('/commit', async (ctx) => {
    const container = ctx.query.get('container');
    if (!container) throw new InvalidArgumentError('a container is required', 'container');
    const body = await ctx.json<Record<string, unknown> | null>(null as unknown as Record<string, unknown>);
    const id = await images.commit(container, {
      repo: ctx.query.get('repo') || undefined,
      tag: ctx.query.get('tag') || undefined,
      comment: ctx.query.get('comment') || undefined,
      author: ctx.query.get('author') || undefined,
      changes: ctx.query.getAll('changes'), // an empty one too: "file with no instructions", as dockerd
      pause: ctx.bool('pause', true),
      config: body,
    });
    ctx.sendJson(201, { Id: id });
  });

  router.post('/auth', async (ctx) => {
    const body = await ctx.json<Record<string, unknown>>();
    try {
      ctx.sendJson(200, await images.login(body));
    } catch (err) {
      if (err instanceof LoginRefusedError) throw new HttpStatus(401, err.message);
      throw err;
    }
  });

  router.get('/distribution/{name*}/json', async (ctx) => {
    const auth = registryAuth(ctx.req.headers['x-registry-auth']);
    ctx.sendJson(200, await images.distribution(ctx.params.name!, auth));
  });

  async function save(ctx: Context, names: string[]): Promise<void> {
    images.prepareSave(names);
    const out = ctx.stream('application/x-tar');
    try {
      await images.save(names, out);
    } catch (err) {
      // The tar has started: all we can do is cut it short, which the client notices.
      out.destroy(err as Error);
      return;
    }
    out.end();
  }
}

