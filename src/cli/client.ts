/**
 * A small Docker Engine API client: HTTP/1.1 over a unix socket (or TCP) with ./http1.ts,
 * API version negotiation as the docker CLI does it (min(1.44, the daemon's API-Version) as the
 * path prefix), Docker's JSON errors, and hijacked connections for attach/exec.
 *
 * Written by hand rather than taken from dockerode/docker-modem: those pull in ~40 modules
 * (ssh2, protobuf, ...), cost tens of milliseconds at start-up and do not negotiate the
 * version the way the docker CLI does.
 *
 * The version is not asked for up front: requests go out at 1.44, and only a daemon that refuses
 * one (dockerd before 25 answers 400 "client version 1.44 is too new", with no message to a HEAD)
 * is pinged, and asked again at its version if that is older. A `berth run` saves a round trip (HEAD /_ping);
 * a request with a streamed body, which cannot be sent twice, negotiates first.
 */
import net, { type Socket } from 'node:net';
import { Readable } from 'node:stream';

import { BERTH_CLI_USER_AGENT } from '../common/clients.js';
import { type Outcome, type Response, sendRequest } from './http1.js';

export type { Response } from './http1.js';

export const CLIENT_MAX_API = '1.44';
export const DEFAULT_HOST = 'unix:///run/berth.sock';

/** An error answered by the daemon: printed as docker does, `Error response from daemon: ...`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The daemon cannot be reached at all. */
export class ConnectError extends Error {}

/** Which daemon: `-H/--host`, then BERTH_HOST, then DOCKER_HOST, else /run/berth.sock. */
export function resolveHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env.BERTH_HOST || env.DOCKER_HOST || DEFAULT_HOST;
}

interface Endpoint {
  socketPath?: string;
  host?: string;
  port?: number;
}

export function parseHost(host: string): Endpoint {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const m = /^(?:tcp|http):\/\/\[?([^\]/]*?)\]?(?::(\d+))?\/?$/.exec(host);
  if (m) return { host: m[1] || '127.0.0.1', port: m[2] ? Number(m[2]) : 2375 };
  throw new ConnectError(`unable to parse docker host \`${host}\``);
}

/**
 * An image reference in a path, as the docker CLI puts it there: `/`, `:` and `@` as they are
 * (`/images/127.0.0.1:5000/a/b/push`), anything else escaped. Daemons route on that form.
 */
export function imagePath(ref: string): string {
  return encodeURIComponent(ref).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/g, '@');
}

/** Compares dotted API versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** Query parameters; a list repeats its name (`t=a&t=b`). */
export type Query = Record<string, string | number | boolean | string[] | undefined | null>;

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded unless a Buffer or a stream. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Abort after this many ms (for requests answered at once). */
  timeoutMs?: number;
}

function queryString(q: Query | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.set(k, v === true ? '1' : v === false ? '0' : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Reads a whole response body. */
export function readBody(res: Readable): Promise<Buffer> {
  // Events, not `for await`: the async iterator's machinery cost ~1 ms of each small answer
  // at the CLI's start (end-of-stream helpers, its first use of them).
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', reject);
    res.once('close', () => {
      if (!res.readableEnded) reject(new Error('the answer was cut short'));
    });
  });
}

async function errorFrom(res: Response): Promise<ApiError> {
  const text = (await readBody(res)).toString('utf8');
  let message = text.trim();
  try {
    const j = JSON.parse(text) as { message?: string };
    if (typeof j.message === 'string') message = j.message;
  } catch {
    /* plain text error */
  }
  if (!message) message = `${res.statusCode} ${res.statusMessage}`.trim();
  return new ApiError(res.statusCode, message);
}

const isStream = (b: unknown): b is NodeJS.ReadableStream => typeof (b as { pipe?: unknown })?.pipe === 'function';

export class ApiClient {
  private readonly endpoint: Endpoint;
  /** Negotiated with the daemon (a ping), or undefined while CLIENT_MAX_API is assumed. */
  private apiVersion: string | undefined;
  /** The connections in use: what an abort ends. */
  private readonly connections = new Set<Socket>();

  /** `signal`: aborting it ends every connection of this client, and refuses new requests (the CLI server's client went away). */
  constructor(
    readonly host: string,
    private readonly signal?: AbortSignal,
  ) {
    this.endpoint = parseHost(host);
    signal?.addEventListener('abort', () => {
      for (const socket of this.connections) socket.destroy();
    });
  }

  private connectError(err: NodeJS.ErrnoException): Error {
    if (err instanceof ApiError) return err;
    if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK'].includes(err.code ?? '')) {
      return new ConnectError(`Cannot connect to the Docker daemon at ${this.host}. Is the docker daemon running?`);
    }
    return err;
  }

  /** min(CLIENT_MAX_API, the daemon's API-Version), asked once per process (HEAD /_ping). */
  async version(): Promise<string> {
    if (this.apiVersion) return this.apiVersion;
    const res = await this.raw('HEAD', '/_ping', {}, false);
    res.resume();
    const v = res.headers['api-version'];
    const server = v !== undefined && /^\d+\.\d+$/.test(v) ? v : '1.24';
    this.apiVersion = compareVersions(server, CLIENT_MAX_API) < 0 ? server : CLIENT_MAX_API;
    return this.apiVersion;
  }

  /** Sends one request on a connection of its own; resolves once the answer's head is in. */
  private send(method: string, target: string, opts: RequestOptions, extraHeaders: Record<string, string> = {}): Promise<Outcome> {
    const headers: Record<string, string> = { ...opts.headers, ...extraHeaders };
    let body = opts.body;
    if (body !== undefined && !Buffer.isBuffer(body) && !isStream(body)) {
      body = Buffer.from(JSON.stringify(body));
      headers['Content-Type'] ??= 'application/json';
    }
    // Named, so that berthd knows bytes right after a 101's head reach us (http1.ts keeps them).
    headers['User-Agent'] ??= BERTH_CLI_USER_AGENT;
    // Host as the docker CLI sends it.
    headers.Host ??= this.endpoint.socketPath ? 'api.moby.localhost' : `${this.endpoint.host}:${this.endpoint.port}`;
    if (this.signal?.aborted) return Promise.reject(new Error('the command was given up (its client went away)'));
    const socket: Socket = this.endpoint.socketPath ? net.connect(this.endpoint.socketPath) : net.connect(this.endpoint.port!, this.endpoint.host);
    if (this.signal) {
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
    }
    if (opts.timeoutMs) {
      socket.setTimeout(opts.timeoutMs, () => socket.destroy(new Error(`timeout after ${opts.timeoutMs} ms: ${method} ${target}`)));
    }
    return sendRequest(socket, { method, target: target + queryString(opts.query), headers, body: body as Buffer | NodeJS.ReadableStream | undefined }).catch((e: NodeJS.ErrnoException) => {
      throw this.connectError(e);
    });
  }

  /**
   * A versioned request at the negotiated version, or at CLIENT_MAX_API before any: asked
   * again at the daemon's own version if it refuses that one as too new.
   */
  private async versioned<T>(path: string, body: unknown, attempt: (target: string) => Promise<T>): Promise<T> {
    if (this.apiVersion || isStream(body)) return attempt(`/v${await this.version()}${path}`);
    try {
      return await attempt(`/v${CLIENT_MAX_API}${path}`);
    } catch (e) {
      // The refusal says so in its message, except in the answer to a HEAD, which has none:
      // any 400 is checked against the daemon's version, and asked again only if it is older.
      if (!(e instanceof ApiError && e.status === 400)) throw e;
      const version = await this.version();
      if (version === CLIENT_MAX_API) throw e;
      return attempt(`/v${version}${path}`);
    }
  }

  /** Any request; `versioned` prefixes /v1.xx. Rejects with ApiError on a status >= 400. */
  async raw(method: string, path: string, opts: RequestOptions = {}, versioned = true): Promise<Response> {
    const attempt = async (target: string): Promise<Response> => {
      const outcome = await this.send(method, target, opts);
      if (outcome.upgraded) {
        outcome.socket.destroy();
        throw new ApiError(502, `unexpected protocol switch in the answer to ${method} ${path}`);
      }
      if (outcome.res.statusCode >= 400) throw await errorFrom(outcome.res);
      return outcome.res;
    };
    return versioned ? this.versioned(path, opts.body, attempt) : attempt(path);
  }

  /** A request whose answer is JSON (or empty: undefined). */
  async json<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, path, opts);
    const text = (await readBody(res)).toString('utf8');
    return (text.trim() ? JSON.parse(text) : undefined) as T;
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.json<T>('GET', path, { query });
  }

  post<T = unknown>(path: string, query?: Query, body?: unknown, headers?: Record<string, string>): Promise<T> {
    return this.json<T>('POST', path, { query, body, headers });
  }

  delete<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.json<T>('DELETE', path, { query });
  }

  /**
   * A hijacked connection (attach, exec start): `Connection: Upgrade`, `Upgrade: tcp`, then
   * raw bytes both ways on the returned socket. `head` holds bytes the daemon sent right
   * after the 101. A daemon that answers 200 instead gets its body as a read-only stream.
   */
  async hijack(path: string, query?: Query, body?: unknown): Promise<{ socket: Socket | Readable; head: Buffer; contentType: string; writable: boolean }> {
    return this.versioned(path, body, async (target) => {
      const outcome = await this.send('POST', target, { query, body }, { Connection: 'Upgrade', Upgrade: 'tcp' });
      if (outcome.upgraded) {
        return { socket: outcome.socket, head: outcome.rest, contentType: outcome.head.headers['content-type'] ?? '', writable: true };
      }
      const res = outcome.res;
      if (res.statusCode >= 400) throw await errorFrom(res);
      return { socket: res, head: Buffer.alloc(0), contentType: res.headers['content-type'] ?? '', writable: false };
    });
  }
}

/** Reads newline-delimited JSON objects from a streaming response (events, pull progress, stats). */
export async function* jsonLines<T = Record<string, unknown>>(stream: Readable): AsyncGenerator<T> {
  let buf = '';
  for await (const chunk of stream) {
    buf += (chunk as Buffer).toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
  // Some daemons send concatenated objects without newlines; the last one may be unterminated.
  if (buf.trim()) yield JSON.parse(buf) as T;
}
