/** `/containers/...`: Docker's container endpoints over the engine's ContainerService. */
import path from 'node:path';
import type { EndpointConfig } from '../../engine/networks/record.js';
import type { Writable } from 'node:stream';

import { InvalidArgumentError } from '../../common/errors.js';
import type { ContainerConfig, ContainerHostConfig, ContainerRecord } from '../../engine/containers/record.js';
import type { WaitCondition } from '../../engine/containers/service.js';
import { detailsPrefix } from '../../engine/containers/logconfig.js';
import { top } from '../../engine/containers/top.js';
import { checkFilterKeys, filterMatch, invalidFilter, matchesLabels } from '../../engine/image-filters.js';
import type { Engine } from '../../engine/engine.js';
import { HttpStatus } from '../errors.js';
import { containerInspect, containerSummary, endpointSettings, type InspectPaths, type NetworkIdOf } from '../present/containers.js';
import type { Router } from '../router.js';
import { parseDetachKeys, pipeAttach } from '../attach.js';
import { frame, RAW_STREAM, streamContentType } from '../stream.js';

/** Seconds, RFC 3339 or a Go duration-free unix time with fractions, as `since`/`until` take them. */
export function parseTime(value: string | null, field: string): Date | undefined {
  // As dockerd: `until=0` is no bound at all, `since=0` is the epoch (`docker events --since 0`
  // replays every event kept).
  if (value === null || value === '' || (value === '0' && field === 'until')) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return new Date(Number(value) * 1000);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError(`invalid time ${JSON.stringify(value)}`, field);
  return new Date(ms);
}

/** publish/expose filter values: "80", "80/udp", "8000-8080/tcp" (tcp by default). */
function portFilter(value: string): (key: string) => boolean {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`invalid port filter ${JSON.stringify(value)}`, 'filters');
  const [low, high, proto] = [Number(m[1]), Number(m[2] ?? m[1]), m[3] ?? 'tcp'];
  return (key) => {
    const [port, p = 'tcp'] = key.split('/');
    return p === proto && Number(port) >= low && Number(port) <= high;
  };
}

const HEALTH_VALUES = ['starting', 'healthy', 'unhealthy', 'none'];
/** The states `status=` may name (moby's IsValidStateString). */
const CONTAINER_STATES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];
const LIST_FILTERS = ['id', 'name', 'status', 'exited', 'label', 'ancestor', 'volume', 'network', 'is-task', 'health', 'before', 'since', 'publish', 'expose', 'isolation'];

/** The filters checked before any container is looked at, as dockerd does: an empty list still refuses a bad one. */
function checkListFilters(filters: Record<string, string[]>, lookup: (ref: string) => ContainerRecord): void {
  checkFilterKeys(filters, LIST_FILTERS);
  for (const v of filters.status ?? []) if (!CONTAINER_STATES.includes(v)) throw invalidFilter('status', v);
  for (const v of filters.exited ?? []) if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`); // dockerd's words
  // moby's ExactMatch: "true" among the values, else "false", else all of them are refused.
  const isTask = filters['is-task'];
  if (isTask?.length && !isTask.includes('true') && !isTask.includes('false')) throw invalidFilter('is-task', isTask);
  for (const v of filters.health ?? []) if (!HEALTH_VALUES.includes(v)) throw new InvalidArgumentError(`Unrecognised filter value for health: ${v}`, 'filters');
  for (const v of [...(filters.publish ?? []), ...(filters.expose ?? [])]) portFilter(v);
  for (const v of [...(filters.before ?? []), ...(filters.since ?? [])]) lookup(v);
}

/** `docker ps --filter`, as dockerd reads them (checked first by checkListFilters); `lookup` resolves before/since references. */
function matchesFilters(c: ContainerRecord, filters: Record<string, string[]>, lookup: (ref: string) => ContainerRecord, networkIdOf: NetworkIdOf): boolean {
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    const any = (fn: (v: string) => boolean): boolean => values.some(fn);
    switch (key) {
      case 'id':
        if (!any((v) => c.id.startsWith(v))) return false;
        break;
      case 'name':
        if (!any((v) => filterMatch(v, c.name.slice(1)) || filterMatch(v, c.name))) return false;
        break;
      case 'status':
        if (!any((v) => v === c.state.status)) return false;
        break;
      case 'exited':
        if (c.state.status !== 'exited' || !any((v) => Number(v) === c.state.exitCode)) return false;
        break;
      case 'label':
        if (!matchesLabels(values, c.config.Labels)) return false;
        break;
      case 'ancestor':
        if (!any((v) => v === c.imageRef || c.image.startsWith(v) || c.image === `sha256:${v}` || c.image.slice(7).startsWith(v))) return false;
        break;
      case 'volume':
        if (!any((v) => c.mounts.some((m) => m.Name === v || m.Destination === v))) return false;
        break;
      case 'network': {
        // The networks inspect shows (none and host included), by name or ID prefix, as dockerd matches them.
        const shown = endpointSettings(c, networkIdOf) as Record<string, { NetworkID?: string }>;
        if (!any((v) => Object.hasOwn(shown, v) || Object.values(shown).some((e) => !!e.NetworkID && e.NetworkID.startsWith(v)))) return false;
        break;
      }
      case 'is-task': // no container here is a swarm task
        if (values.includes('true')) return false;
        break;
      case 'health':
        if (!any((v) => v === (c.state.health?.Status ?? 'none'))) return false;
        break;
      // Created before or after another container (dockerd: by creation order).
      case 'before':
        if (!values.every((v) => Date.parse(c.created) < Date.parse(lookup(v).created))) return false;
        break;
      case 'since':
        if (!values.every((v) => Date.parse(c.created) > Date.parse(lookup(v).created))) return false;
        break;
      case 'publish':
        if (!values.some((v) => Object.entries(c.hostConfig.PortBindings ?? {}).some(([key, list]) => (list?.length ?? 0) > 0 && portFilter(v)(key)))) return false;
        break;
      case 'expose':
        if (!values.some((v) => Object.keys(c.config.ExposedPorts ?? {}).some(portFilter(v)))) return false;
        break;
      case 'isolation': // Linux has one isolation, "default" (dockerd matches the filter as a pattern)
        if (!any((v) => filterMatch(v, String(c.hostConfig.Isolation || 'default')))) return false;
        break;
      default:
        throw invalidFilter(key);
    }
  }
  return true;
}

/** ?size=1: the writable layer's bytes (SizeRw) and those of the whole root file system with the image's layers (SizeRootFs). */
export async function containerSizes(engine: Engine, c: ContainerRecord): Promise<{ SizeRw: number; SizeRootFs: number }> {
  const rw = await engine.containers.writableSize(c);
  const image = engine.images.find(c.image);
  return { SizeRw: rw, SizeRootFs: rw + (image ? engine.imageService.size(image, engine.imageService.config(image)) : 0) };
}

/** The sizes a container list carries: Go's `omitempty` ints, so a zero is left out (inspect's are kept). */
export function listedSizes(sizes: { SizeRw: number; SizeRootFs: number }): Partial<{ SizeRw: number; SizeRootFs: number }> {
  return Object.fromEntries(Object.entries(sizes).filter(([, v]) => v !== 0));
}

export function containerRoutes(router: Router, engine: Engine): void {
  const containers = engine.containers;

  const sizes = (c: ContainerRecord) => containerSizes(engine, c);
  const networkIdOf = (name: string): string | undefined => engine.networks.find(name)?.id;
  const imageIdOf = (ref: string): string | undefined => engine.images.find(ref)?.config;
  const inspectPaths = (c: ContainerRecord): InspectPaths => {
    let layers: InspectPaths['layers'];
    try {
      layers = engine.snapshotter.directories(c.snapshotKey);
    } catch {
      /* removed meanwhile */
    }
    return { logPath: containers.logFile(c), dir: containers.etcDir(c.id), rootfs: path.join(path.dirname(containers.shimDir(c.id)), 'rootfs'), layers };
  };

  router.get('/containers/json', async (ctx) => {
    const all = ctx.bool('all');
    const limit = ctx.int('limit');
    const filters = ctx.filters();
    checkListFilters(filters, (ref) => containers.get(ref));
    let list = containers
      .list()
      // A limit (docker ps -n) lists stopped ones too; docker-py's limit=-1 is no limit, as in dockerd.
      .filter((c) => all || (limit !== undefined && limit > 0) || c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting' || (filters.status?.length ?? 0) > 0)
      .filter((c) => matchesFilters(c, filters, (ref) => containers.get(ref), networkIdOf))
      .sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
    if (limit !== undefined && limit > 0) list = list.slice(0, limit);
    const linkNames = containers.linkNames();
    if (!ctx.bool('size')) return ctx.sendJson(200, list.map((c) => containerSummary(c, networkIdOf, imageIdOf, linkNames)));
    ctx.sendJson(200, await Promise.all(list.map(async (c) => ({ ...containerSummary(c, networkIdOf, imageIdOf, linkNames), ...listedSizes(await sizes(c)) }))));
  });

  router.post('/containers/create', async (ctx) => {
    const body = await ctx.json<ContainerConfig & { HostConfig?: ContainerHostConfig; NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointConfig> | null } | null }>();
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('the request body must be a JSON object');
    const { HostConfig: hostConfig, NetworkingConfig: networking, ...config } = body;
    const endpointsConfig = networking?.EndpointsConfig;
    if (endpointsConfig !== undefined && endpointsConfig !== null && (typeof endpointsConfig !== 'object' || Array.isArray(endpointsConfig))) throw new InvalidArgumentError('must be an object', 'NetworkingConfig.EndpointsConfig');
    const name = ctx.query.get('name') ?? undefined;
    // Healthcheck.StartInterval came with 1.44: an older client's is ignored, as dockerd does.
    if (!ctx.atLeast('1.44') && config.Healthcheck && typeof config.Healthcheck === 'object') delete (config.Healthcheck as { StartInterval?: number }).StartInterval;
    // Before 1.44 read-only mounts were read-only at their top only, and the BindOptions that choose otherwise did not exist.
    const readOnlyNonRecursive = !ctx.atLeast('1.44');
    const created = await containers.create({ name: name || undefined, config: strSlices(config, ['Cmd', 'Entrypoint', 'Shell']), hostConfig: normalizePortBindings(strSlices(hostConfig ?? {}, ['CapAdd', 'CapDrop'])), endpointsConfig, readOnlyNonRecursive, platform: ctx.platform() });
    ctx.sendJson(201, { Id: created.id, Warnings: created.warnings });
  });

  router.get('/containers/{id*}/json', async (ctx) => {
    const c = containers.get(ctx.params.id!);
    ctx.sendJson(200, { ...containerInspect(c, { ...inspectPaths(c), execIds: engine.execs.idsOf(c.id) }, networkIdOf), ...(ctx.bool('size') ? await sizes(c) : {}) });
  });

  router.post('/containers/{id*}/start', async (ctx) => {
    // dockerd's rule: more than an empty object ("{}", "null") is a HostConfig for the start,
    // which API 1.24 removed (they belong to create).
    if ((await ctx.text()).trim().length > 7) throw new InvalidArgumentError('starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24');
    if (!(await containers.start(ctx.params.id!))) throw new HttpStatus(304);
    ctx.noContent();
  });

  router.post('/containers/{id*}/stop', async (ctx) => {
    const timeout = ctx.int('t') ?? ctx.int('timeout');
    const stopped = await containers.stop(ctx.params.id!, { timeout, signal: ctx.query.get('signal') ?? undefined });
    if (!stopped) throw new HttpStatus(304);
    ctx.noContent();
  });

  router.post('/containers/{id*}/restart', async (ctx) => {
    await containers.restart(ctx.params.id!, { timeout: ctx.int('t') ?? ctx.int('timeout'), signal: ctx.query.get('signal') ?? undefined });
    ctx.noContent();
  });

  router.post('/containers/{id*}/kill', async (ctx) => {
    await containers.kill(ctx.params.id!, ctx.query.get('signal') ?? undefined);
    ctx.noContent();
  });

  router.post('/containers/{id*}/pause', (ctx) => {
    containers.pause(ctx.params.id!);
    ctx.noContent();
  });

  router.post('/containers/{id*}/unpause', (ctx) => {
    containers.unpause(ctx.params.id!);
    ctx.noContent();
  });

  router.post('/containers/{id*}/rename', (ctx) => {
    containers.rename(ctx.params.id!, ctx.query.get('name') ?? '');
    ctx.noContent();
  });

  router.delete('/containers/{id*}', async (ctx) => {
    if (ctx.bool('link')) containers.removeLink(ctx.params.id!);
    else await containers.remove(ctx.params.id!, { force: ctx.bool('force'), volumes: ctx.bool('v') });
    ctx.noContent();
  });

  router.post('/containers/prune', async (ctx) => {
    const report = await containers.prune(ctx.filters());
    // Go's nil slice when nothing went: null, as dockerd answers.
    ctx.sendJson(200, { ...report, ContainersDeleted: report.ContainersDeleted.length ? report.ContainersDeleted : null });
  });

  router.post('/containers/{id*}/wait', async (ctx) => {
    const condition = (ctx.query.get('condition') || 'not-running') as WaitCondition;
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw new InvalidArgumentError(`invalid condition: ${JSON.stringify(condition)}`); // dockerd's words
    // Registered before the header goes out: a start that follows is seen. A client that hangs
    // up first (`docker run -d` never reads its wait) takes its waiter away with it.
    const gone = new AbortController();
    const result = containers.wait(ctx.params.id!, condition, gone.signal);
    ctx.onClose(() => gone.abort());
    const out = ctx.stream('application/json');
    const body = await result;
    if (!body) return; // the client is gone
    out.end(JSON.stringify(ctx.atLeast('1.30') ? body : { StatusCode: body.StatusCode }) + '\n');
  });

  router.get('/containers/{id*}/top', async (ctx) => {
    ctx.sendJson(200, await top(containers.top(ctx.params.id!), ctx.query.get('ps_args') ?? undefined));
  });

  router.get('/containers/{id*}/logs', async (ctx) => {
    const c = containers.get(ctx.params.id!);
    const stdout = ctx.bool('stdout');
    const stderr = ctx.bool('stderr');
    if (!stdout && !stderr) throw new InvalidArgumentError('Bad parameters: you must choose at least one stream');
    const tailText = ctx.query.get('tail');
    // As dockerd: "all", a negative number (testcontainers sends -1) or anything unparsable means all lines.
    const tailNumber = tailText === null || tailText === '' ? NaN : Number(tailText);
    const tail = Number.isInteger(tailNumber) && tailNumber >= 0 ? tailNumber : undefined;
    const timestamps = ctx.bool('timestamps');
    const details = ctx.bool('details');
    const tty = c.config.Tty === true;
    containers.checkLogsReadable(c.id); // before the header goes out
    const out = ctx.stream(tty ? RAW_STREAM : streamContentType(ctx));
    const abort = new AbortController();
    ctx.onClose(() => abort.abort());
    // A line the container wrote in pieces (a record without its newline, then the rest) is one
    // line to dockerd, which holds a partial line until its newline: one timestamp for it.
    const midLine = { stdout: false, stderr: false };
    for await (const entry of containers.logs(c.id, {
      follow: ctx.bool('follow'),
      since: parseTime(ctx.query.get('since'), 'since'),
      until: parseTime(ctx.query.get('until'), 'until'),
      tail,
      signal: abort.signal,
    })) {
      const isErr = entry.stream === 'stderr';
      if ((isErr && !stderr) || (!isErr && !stdout)) continue;
      // dockerd: the timestamp, then (details) the attributes, then the text.
      const continued = midLine[isErr ? 'stderr' : 'stdout'];
      midLine[isErr ? 'stderr' : 'stdout'] = !entry.log.endsWith('\n');
      const line = details && !continued ? `${detailsPrefix(entry.attrs)}${entry.log}` : entry.log;
      const text = timestamps && !continued ? `${entry.time} ${line}` : line;
      const data = Buffer.from(text, 'utf8');
      if (!write(out, tty ? data : frame(isErr ? 2 : 1, data))) break;
    }
    out.end();
  });

  router.post('/containers/{id*}/attach', async (ctx) => {
    const c = containers.get(ctx.params.id!);
    const stdout = ctx.bool('stdout');
    const stderr = ctx.bool('stderr');
    const tty = c.config.Tty === true;
    const detachKeys = parseDetachKeys(ctx.query.get('detachKeys'));
    const session = ctx.bool('stream') ? await containers.attach(c.id, { stdin: ctx.bool('stdin') }) : undefined;
    const conn = ctx.hijack(tty ? RAW_STREAM : streamContentType(ctx));
    conn.on('close', () => session?.close());
    if (ctx.bool('logs')) {
      await ctx.headAlone();
      for await (const entry of containers.logs(c.id, {})) {
        const isErr = entry.stream === 'stderr';
        if ((isErr && !stderr) || (!isErr && !stdout)) continue;
        const data = Buffer.from(entry.log, 'utf8');
        write(conn, tty ? data : frame(isErr ? 2 : 1, data));
      }
    }
    const shim = session ? await session.connected : undefined;
    if (shim) await session!.forwarding(pipeAttach(conn, shim, { tty, stdout, stderr, stdin: session!.stdin, detachKeys }));
    if (!conn.destroyed) conn.end();
  });

  router.post('/containers/{id*}/resize', async (ctx) => {
    const { rows, cols } = ctx.terminalSize();
    await containers.resize(ctx.params.id!, rows, cols);
    ctx.noContent(200);
  });
}

/**
 * moby's strslice.StrSlice fields (Cmd, Entrypoint, Shell, CapAdd, CapDrop) take a JSON string
 * as a list of that one string: `"Cmd": "echo hi"` runs the program "echo hi", as dockerd does.
 */
function strSlices<T extends object>(obj: T, fields: string[]): T {
  if (!obj || typeof obj !== 'object') return obj;
  const out = { ...obj } as Record<string, unknown>;
  for (const f of fields) if (typeof out[f] === 'string') out[f] = [out[f]];
  return out as T;
}

/** Port bindings as dockerd stores them: every binding with both HostIp and HostPort (testcontainers sends only `HostPort: "0"`). */
function normalizePortBindings(hostConfig: ContainerHostConfig): ContainerHostConfig {
  if (!hostConfig || typeof hostConfig !== 'object' || !hostConfig.PortBindings || typeof hostConfig.PortBindings !== 'object') return hostConfig;
  const bindings = Object.entries(hostConfig.PortBindings).map(([port, list]) => [
    port.includes('/') ? port : `${port}/tcp`,
    (Array.isArray(list) ? list : []).map((b) => ({ HostIp: b?.HostIp ?? '', HostPort: b?.HostPort ?? '' })),
  ]);
  return { ...hostConfig, PortBindings: Object.fromEntries(bindings) };
}

function write(out: Writable, data: Buffer): boolean {
  if (out.destroyed || out.writableEnded) return false;
  out.write(data);
  return true;
}
