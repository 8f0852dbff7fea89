/**
 * `POST /build` (Docker's legacy builder, what `DOCKER_BUILDKIT=0 docker build` and the SDKs
 * send) and `POST /build/prune`: the HTTP side of the engine's Builder. The body is a tar of the
 * build context; the answer a JSON message stream (`{"stream": "Step 1/3 : ..."}`, `{"aux":
 * {"ID"}}`, ...). A bad request, a context that is not a tar, a missing Dockerfile or a parse
 * error are plain HTTP errors; once the first step is written, a failure is the stream's last
 * message `{"errorDetail": {"code"?, "message"}, "error"}` (a failed RUN carries its status as
 * the code, which the docker CLI exits with).
 */
import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { RunFailedError, type BuildOptions, type BuildSink } from '../../engine/build/builder.js';
import type { Engine } from '../../engine/engine.js';
import type { JsonMessage } from '../../engine/image-progress.js';
import { hostPlatform } from '../../engine/images.js';
import { formatPlatform } from '../../images/manifest.js';
import type { Context } from '../context.js';
import type { Router } from '../router.js';
import { ProgressStream } from './images.js';

/** A query parameter holding a JSON object of strings (null allowed where `nulls`). */
function jsonMap(ctx: Context, name: string, nulls: boolean): Record<string, string | null> {
  const text = ctx.query.get(name);
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`not valid JSON: ${(err as Error).message}`, name);
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('must be a JSON object', name);
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string' && !(nulls && v === null)) throw new InvalidArgumentError(`the value of ${JSON.stringify(k)} must be a string`, name);
  }
  return parsed as Record<string, string | null>;
}

/** X-Registry-Config: base64 JSON {registry: {username, password} or {auth: base64("user:pass")}}. */
function registryConfig(header: string | string[] | undefined): BuildOptions['auth'] {
  if (typeof header !== 'string' || header.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
  } catch {
    throw new InvalidArgumentError('not base64-encoded JSON', 'X-Registry-Config');
  }
  const out: BuildOptions['auth'] = {};
  if (!parsed || typeof parsed !== 'object') return out;
  for (const [registry, value] of Object.entries(parsed as Record<string, { username?: unknown; password?: unknown; auth?: unknown }>)) {
    if (!value || typeof value !== 'object') continue;
    let { username, password } = value;
    if (!username && typeof value.auth === 'string') [username, password] = Buffer.from(value.auth, 'base64').toString('utf8').split(/:(.*)/s);
    if (typeof username === 'string' && username !== '') out[registry] = { username, password: typeof password === 'string' ? password : '' };
  }
  return out;
}

export function buildOptions(ctx: Context): BuildOptions {
  if (ctx.query.get('version') === '2') throw new UnsupportedError('BuildKit builds (version=2) are not supported by berthd: use the legacy builder (DOCKER_BUILDKIT=0)');
  const remote = ctx.query.get('remote');
  if (remote) throw new UnsupportedError(`remote build contexts (remote=${remote}) are not supported by berthd: it has no network access to fetch them; send the context as the request body`);
  const platform = ctx.platform(); // containerd's platforms.Parse, its words for a bad one
  if (platform) {
    const host = hostPlatform();
    if (platform.os !== host.os || platform.architecture !== host.architecture) throw new UnsupportedError(`berthd builds only for ${formatPlatform(host)}, not ${formatPlatform(platform)}`);
  }
  const labels = jsonMap(ctx, 'labels', false) as Record<string, string>;
  return {
    dockerfile: ctx.query.get('dockerfile') || 'Dockerfile',
    tags: ctx.query.getAll('t').filter((t) => t !== ''),
    buildArgs: jsonMap(ctx, 'buildargs', true),
    labels,
    noCache: ctx.bool('nocache'),
    rm: ctx.bool('rm', true),
    forceRm: ctx.bool('forcerm'),
    pull: ctx.bool('pull'),
    ...(ctx.query.get('target') ? { target: ctx.query.get('target')! } : {}),
    ...(ctx.query.get('networkmode') ? { networkMode: ctx.query.get('networkmode')! } : {}),
    extraHosts: ctx.query
      .getAll('extrahosts')
      .flatMap((h) => h.split(','))
      .filter(Boolean),
    auth: registryConfig(ctx.req.headers['x-registry-config']),
    ...(Object.keys(runLimits(ctx)).length ? { runLimits: runLimits(ctx) } : {}),
  };
}

/** The limits of the RUN steps' containers, from the build's query, as HostConfig fields (checked at their create). */
function runLimits(ctx: Context): Record<string, unknown> {
  const limits: Record<string, unknown> = {};
  const number = (param: string, field: string): void => {
    const text = ctx.query.get(param);
    if (text === null || text === '' || text === '0') return;
    const n = Number(text);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`must be an integer, not ${JSON.stringify(text)}`, param);
    limits[field] = n;
  };
  number('memory', 'Memory');
  number('memswap', 'MemorySwap');
  number('cpushares', 'CpuShares');
  number('cpuperiod', 'CpuPeriod');
  number('cpuquota', 'CpuQuota');
  number('shmsize', 'ShmSize');
  for (const [param, field] of [['cpusetcpus', 'CpusetCpus'], ['cpusetmems', 'CpusetMems'], ['cgroupparent', 'CgroupParent']] as const) {
    const text = ctx.query.get(param);
    if (text) limits[field] = text;
  }
  const ulimits = ctx.query.get('ulimits');
  if (ulimits) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(ulimits);
    } catch (err) {
      throw new InvalidArgumentError(`not valid JSON: ${(err as Error).message}`, 'ulimits');
    }
    if (parsed !== null) {
      if (!Array.isArray(parsed)) throw new InvalidArgumentError('must be a JSON list', 'ulimits');
      if (parsed.length) limits.Ulimits = parsed;
    }
  }
  return limits;
}

export function buildRoutes(router: Router, engine: Engine): void {
  // The classic builder only (the ping's Builder-Version 1): no BuildKit session to open, and
  // nothing for /build/cancel to find; a classic build stops when its client hangs up.
  router.post('/session', (ctx) => {
    if (!ctx.req.headers.upgrade) throw new InvalidArgumentError('no upgrade proto in request');
    throw new UnsupportedError('berthd has no BuildKit sessions: it builds with the classic builder (Builder-Version 1)');
  });
  router.post('/build/cancel', (ctx) => {
    if (!ctx.query.get('id')) throw new InvalidArgumentError('build ID not provided');
    ctx.noContent(200);
  });
  router.post('/build', async (ctx) => {
    const options = buildOptions(ctx);
    const quiet = ctx.bool('q');
    const build = await engine.builder.prepare(ctx.bodyStream(), options);
    const progress = new ProgressStream(ctx);
    // With q, only the image ID, unless the build fails: then what it said, and the error.
    const held: JsonMessage[] = [];
    const sink: BuildSink = quiet
      ? { stream: (text) => held.push({ stream: text }), message: (m) => (m.aux ? progress.send(m) : held.push(m)) }
      : { stream: (text) => progress.send({ stream: text }), message: progress.send };
    ctx.onClose(() => build.cancel());
    await progress.run(async () => {
      try {
        const id = await build.run(sink);
        if (quiet) progress.send({ stream: `${id}\n` });
      } catch (err) {
        for (const m of held) progress.send(m);
        if (!(err instanceof RunFailedError)) throw err;
        progress.send({ errorDetail: { code: err.status, message: err.message }, error: err.message });
      } finally {
        build.close();
      }
    });
  });

  // The legacy builder's cache is its intermediate images (docker image prune removes them).
  router.post('/build/prune', (ctx) => {
    ctx.sendJson(200, { CachesDeleted: null, SpaceReclaimed: 0 }); // Go's nil slice, as dockerd answers
  });
}
