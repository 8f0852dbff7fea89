/**
 * HTTP for the OCI distribution API: one RegistryClient per registry endpoint, which picks
 * https or (only for registries configured as insecure) plain http, runs the auth challenge
 * flow (Basic, or Bearer tokens per scope), follows redirects itself (dropping Authorization
 * when the host changes, as Docker does) and maps registry errors to typed errors.
 *
 * Over node:http(s), not Node's fetch: undici took ~70 ms to load at a process's first request,
 * and its web streams ~20 ms of the main thread per 50 MB of layer (bench/README.md, session
 * 21); the answer is a RegistryResponse, the part of a fetch Response this code uses.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';

import { BerthError, InvalidArgumentError, SystemError, type ErrorCode } from '../../common/errors.js';
import { netErrorText } from '../../common/net-errors.js';
import { basicAuthorization, parseWWWAuthenticate, resolveCredentials, TokenCache, type Challenge, type Credentials, type RegistryAuth } from './auth.js';
import { ipInCidr, proxyFor, throughProxy, TunnelAgent, type ProxyEnv } from './proxy.js';

export interface ClientOptions {
  auth?: RegistryAuth;
  /**
   * Registries that may be reached over plain HTTP: true for the one this client talks to, or a
   * list of "host[:port]" names. Everything else uses https.
   */
  insecure?: boolean | string[];
  userAgent?: string;
  /**
   * Timeout (ms) until the response headers arrive, and for a blob download the longest
   * pause between two chunks of its body. Default 60 s.
   */
  timeoutMs?: number;
  /** Where to look for `<host[:port]>/` TLS files (see registryTlsFiles); default DEFAULT_CERTS_DIRS. */
  certsDirs?: readonly string[];
  /** HTTP(S)_PROXY and NO_PROXY (see proxy.ts); default process.env. */
  proxyEnv?: ProxyEnv;
  /** Name resolution for the connections this client makes itself (default: the system's); tests refuse it. */
  lookup?: net.LookupFunction;
}

/** A registry's own CAs and client certificate (see registryTlsFiles). */
export type RegistryTls = Pick<tls.ConnectionOptions, 'ca' | 'cert' | 'key'>;

/** Per-registry TLS files, as dockerd reads /etc/docker/certs.d (podman reads it too). */
export const DEFAULT_CERTS_DIRS: readonly string[] = ['/etc/berth/certs.d', '/etc/docker/certs.d'];

/**
 * TLS options for one https host[:port] from `<dir>/<host[:port]>/` in the first of `dirs` that
 * has it, as dockerd reads them: each `*.crt` is a CA trusted beside the usual ones, and
 * `<name>.cert` with `<name>.key` is the client certificate. Undefined when there is none.
 */
export function registryTlsFiles(host: string, dirs: readonly string[]): RegistryTls | undefined {
  if (!host || host.startsWith('.') || host.includes('/') || host.includes('\\')) return undefined;
  for (const dir of dirs) {
    const d = path.join(dir, host);
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      continue;
    }
    const ca: Buffer[] = [];
    const options: RegistryTls = {};
    for (const name of names) {
      if (name.endsWith('.crt')) ca.push(fs.readFileSync(path.join(d, name)));
      if (name.endsWith('.cert') && options.cert === undefined) {
        const key = path.join(d, name.slice(0, -'.cert'.length) + '.key');
        if (!fs.existsSync(key)) throw new InvalidArgumentError(`client certificate ${path.join(d, name)} has no key ${key}`, 'certs.d');
        options.cert = fs.readFileSync(path.join(d, name));
        options.key = fs.readFileSync(key);
      }
    }
    // A `ca` replaces Node's roots: they are given again, with NODE_EXTRA_CA_CERTS's.
    if (ca.length) options.ca = [...tls.rootCertificates, ...extraCaCertificates(), ...ca];
    return options;
  }
  return undefined;
}

function extraCaCertificates(): Buffer[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [fs.readFileSync(file)];
  } catch {
    return []; // Node warned at startup
  }
}

/** An error answer from a registry, with the HTTP status and the distribution error codes. */
export class RegistryError extends BerthError {
  readonly status: number;
  readonly errors: Array<{ code?: string; message?: string }>;
  constructor(code: ErrorCode, message: string, status: number, errors: Array<{ code?: string; message?: string }> = []) {
    super(code, message);
    this.status = status;
    this.errors = errors;
  }
}

/** Network failures, 5xx and 429 are worth another try; the rest is final. */
export function isTransient(e: unknown): boolean {
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429 || e.status === 408;
  if (e instanceof TransientError) return true;
  if (e instanceof ConnectionError) return isTransientCode(e.cause);
  if (e instanceof BerthError) return false;
  return isTransientCode(e);
}

function isTransientCode(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|ERR_STREAM_PREMATURE_CLOSE)$/.test(code);
}

/** A method as Go's net/http names it in an error ("Get", "Head"). */
function goMethod(method: string): string {
  return method[0]! + method.slice(1).toLowerCase();
}

/**
 * The error a Bearer challenge states (RFC 6750 §3.1) as a registry error code, as the
 * docker/distribution client reads it first: a token without the access asked for is DENIED.
 */
function bearerChallengeError(res: RegistryResponse): { code: string; message: string } | undefined {
  const bearer = parseWWWAuthenticate(res.headers.get('www-authenticate') ?? '').find((c) => c.scheme === 'bearer');
  const error = bearer?.params.error;
  if (error === 'insufficient_scope') return { code: 'DENIED', message: bearer!.params.error_description || 'requested access to the resource is denied' };
  if (error === 'invalid_token') return { code: 'UNAUTHORIZED', message: bearer!.params.error_description || 'authentication required' };
  return undefined;
}

/** A failure that may succeed on retry (short read, connection dropped mid-body). */
export class TransientError extends SystemError {}

/**
 * A request that got no answer (no connection, a TLS failure, a reset before the headers),
 * worded as Go's net/http words it: `Get "https://host/v2/": <what failed>`. Retried when the
 * cause is a network error (a refused connection may be a registry still starting); a refused
 * certificate is final.
 */
export class ConnectionError extends SystemError {}

/** The part of a fetch Response that the registry code uses, over node:http(s). */
export interface RegistryResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  /** Read it to the end, or cancel() it: an unread body holds its connection. */
  readonly body: ResponseBody;
  text(): Promise<string>;
}

export interface ResponseBody extends AsyncIterable<Buffer> {
  /** Discards the rest of the body (closing the connection if some is still to come). */
  cancel(): Promise<void>;
}

/** What text() reads at most (a token server's answer). */
const MAX_TEXT_BYTES = 1 << 20;

function registryResponse(res: http.IncomingMessage, signal: AbortSignal | undefined): RegistryResponse {
  // The caller's signal governs the body too: aborting it ends the body with its reason.
  if (signal) {
    const onAbort = () => res.destroy(signal.reason instanceof Error ? signal.reason : new TransientError(String(signal.reason)));
    signal.addEventListener('abort', onAbort, { once: true });
    res.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  const status = res.statusCode ?? 0;
  const body: ResponseBody = {
    [Symbol.asyncIterator]: () => res[Symbol.asyncIterator]() as AsyncIterator<Buffer>,
    cancel: async () => {
      if (res.complete) res.resume();
      else res.destroy();
    },
  };
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: {
      get: (name) => {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    body,
    // (A token server's answer, say: not the registry's.)
    text: async () => (await readAtMost(body, MAX_TEXT_BYTES, 'response', `answer larger than ${MAX_TEXT_BYTES} bytes`)).toString('utf8'),
  };
}

/** A body read to its end, refusing more than `limit` bytes (naming `what`). */
async function readAtMost(body: ResponseBody, limit: number, what: string, tooLong = `registry sent more than ${limit} bytes`): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) throw new InvalidArgumentError(tooLong, what);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, attempts = 3, baseDelayMs = 200): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt + 1 >= attempts || !isTransient(e)) throw e;
      await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** attempt));
    }
  }
}

/**
 * Whether a registry (host or host:port) may be reached over plain HTTP: named in the insecure
 * list, or at an address inside a CIDR of it (dockerd's `--insecure-registry 10.0.0.0/8`).
 */
export function isInsecureHost(host: string, insecure: boolean | string[] | undefined): boolean {
  if (insecure === true) return true;
  if (!Array.isArray(insecure)) return false;
  const h = host.toLowerCase();
  return insecure.some((x) => insecureEntryHost(x) === h || inCidr(h, x));
}

/** An --insecure-registry entry as a registry's host[:port]: lower case, without a scheme or trailing slashes. */
export function insecureEntryHost(entry: string): string {
  return entry.toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
}

/** A registry's host[:port] ("10.1.2.3:5000", "[fd00::1]:5000") inside an --insecure-registry CIDR. */
function inCidr(host: string, cidr: string): boolean {
  const ip = host.replace(/^\[(.*)\](?::\d+)?$/, '$1').replace(/^([\d.]+):\d+$/, '$1');
  return ipInCidr(ip, cidr);
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A factory, so the body can be sent again after an auth challenge or a redirect. */
  body?: () => Buffer | Readable | undefined;
  /** Token scopes this request needs, e.g. ["repository:busybox:pull"]. */
  scopes: string[];
  /** Aborts the request and its body (e.g. a download that stalls). */
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 10;

export class RegistryClient {
  readonly host: string;
  readonly baseUrl: string;
  private readonly insecure: boolean | string[] | undefined;
  private readonly credentials: Credentials | undefined;
  private readonly tokens: TokenCache;
  private challenge: Challenge | undefined;
  private readonly userAgent: string;
  readonly timeoutMs: number;
  private readonly certsDirs: readonly string[];
  private readonly proxyEnv: ProxyEnv;
  private readonly lookup: net.LookupFunction | undefined;
  /** https through a proxy: an agent per proxy and registry host. */
  private readonly tunnels = new Map<string, TunnelAgent>();
  private readonly tlsFiles = new Map<string, RegistryTls | undefined>();

  /** `registry` is the name used for credentials and the insecure list; `endpoint` the API host. */
  constructor(registry: string, endpoint: string, opts: ClientOptions = {}) {
    this.host = endpoint;
    this.insecure = opts.insecure === true ? [endpoint, registry] : opts.insecure;
    const plain = isInsecureHost(endpoint, this.insecure) || isInsecureHost(registry, this.insecure);
    this.baseUrl = `${plain ? 'http' : 'https'}://${endpoint}`;
    this.credentials = resolveCredentials(registry, opts.auth);
    this.userAgent = opts.userAgent ?? 'berth/0.1';
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.certsDirs = opts.certsDirs ?? DEFAULT_CERTS_DIRS;
    this.proxyEnv = opts.proxyEnv ?? process.env;
    this.lookup = opts.lookup;
    // A token realm over plain HTTP is allowed when it is configured as insecure, or when the
    // registry itself is plain HTTP and the realm is on the same host (another port).
    const registryHostname = new URL(this.baseUrl).hostname;
    this.tokens = new TokenCache(this.credentials, (url, headers) =>
      this.rawFetch(url, 'GET', headers, undefined, plain && url.protocol === 'http:' && url.hostname === registryHostname),
    );
  }

  private async rawFetch(url: URL, method: string, headers: Record<string, string>, body: Buffer | Readable | undefined, allowHttp = false, signal?: AbortSignal): Promise<RegistryResponse> {
    // Only http(s) to where we were sent; plain http only for insecure hosts.
    if (url.protocol === 'http:' && !allowHttp && !isInsecureHost(url.host, this.insecure)) {
      throw new InvalidArgumentError(`refusing plain HTTP to ${url.host}: not configured as an insecure registry`, 'insecure');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`unsupported URL ${url.href}`, 'url');
    if (signal?.aborted) throw signal.reason;
    let tlsFiles: RegistryTls | undefined;
    if (url.protocol === 'https:') {
      if (!this.tlsFiles.has(url.host)) this.tlsFiles.set(url.host, registryTlsFiles(url.host, this.certsDirs));
      tlsFiles = this.tlsFiles.get(url.host);
    }
    const proxy = proxyFor(url, this.proxyEnv);
    const tunnel = (): TunnelAgent => {
      const key = `${proxy!.href} ${url.host}`;
      let agent = this.tunnels.get(key);
      if (!agent) this.tunnels.set(key, (agent = new TunnelAgent(proxy!, tlsFiles ?? {}, this.timeoutMs)));
      return agent;
    };
    const { target, options: viaProxy } = proxy ? throughProxy(url, proxy, tunnel) : { target: url, options: {} };
    return new Promise((resolve, reject) => {
      const req = (target.protocol === 'https:' ? https : http).request(target, {
        method,
        ...(this.lookup ? { lookup: this.lookup } : {}),
        ...tlsFiles,
        ...viaProxy,
        headers: { 'user-agent': this.userAgent, 'accept-encoding': 'identity', ...headers, ...viaProxy.headers },
      });
      let settled = false;
      const done = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const fail = (e: unknown): void => {
        if (!done()) return;
        req.destroy();
        if (body instanceof Readable) body.destroy(); // a store's read stream: its descriptor
        reject(e);
      };
      // The timeout covers the wait for the response headers only: a large layer may take longer.
      const timer = setTimeout(() => fail(new TransientError(`${method} ${url.host}${url.pathname}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      const onAbort = (): void => fail(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (e) => fail(new ConnectionError(`${goMethod(method)} ${JSON.stringify(url.href)}: ${netErrorText(e, url)}`, { cause: e })));
      req.on('response', (res) => {
        if (done()) resolve(registryResponse(res, signal));
        else res.destroy();
      });
      if (body instanceof Readable) {
        body.on('error', (e) => fail(e));
        body.pipe(req);
      } else {
        req.end(body);
      }
    });
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.credentials ? basicAuthorization(this.credentials) : undefined;
    if (ch.scheme === 'bearer') return 'Bearer ' + (await this.tokens.get(ch, scopes));
    return undefined;
  }

  /**
   * Sends a request to `pathOrUrl` (a path under the registry, or an absolute URL such as an
   * upload location), with auth and redirects handled. The caller reads or discards the body.
   */
  async request(method: string, pathOrUrl: string, opts: RequestOptions): Promise<RegistryResponse> {
    let retriedAuth = 0;
    const own = new URL(pathOrUrl, this.baseUrl).origin === new URL(this.baseUrl).origin;
    for (;;) {
      // Credentials go to the registry only, never to another host it names (upload locations).
      const auth = own ? await this.authorization(opts.scopes) : undefined;
      let url = new URL(pathOrUrl, this.baseUrl);
      const headers: Record<string, string> = { ...opts.headers };
      if (auth) headers.authorization = auth;
      let m = method;
      let body = opts.body?.();
      let res: RegistryResponse;
      let redirects = 0;
      for (;;) {
        res = await this.rawFetch(url, m, headers, body, false, opts.signal);
        if (![301, 302, 303, 307, 308].includes(res.status)) break;
        const loc = res.headers.get('location');
        await res.body?.cancel();
        if (!loc) throw new RegistryError('SYSTEM', `${m} ${url.pathname}: redirect without Location`, res.status);
        if (++redirects > MAX_REDIRECTS) throw new RegistryError('SYSTEM', `${m} ${url.pathname}: too many redirects`, res.status);
        const next = new URL(loc, url);
        // Credentials stay with the registry: a redirect to another host (blob storage) gets none.
        if (next.host !== url.host || next.protocol !== url.protocol) delete headers.authorization;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && m === 'POST')) {
          m = m === 'HEAD' ? 'HEAD' : 'GET';
          body = undefined;
        } else if (body !== undefined) {
          body = opts.body?.();
        }
        url = next;
      }
      if (res.status === 401 && retriedAuth < 2 && url.origin === new URL(this.baseUrl).origin) {
        const header = res.headers.get('www-authenticate') ?? '';
        const challenges = parseWWWAuthenticate(header);
        const ch = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
        if (ch) {
          const sentAuth = auth !== undefined;
          const insufficient = ch.params.error === 'insufficient_scope' || ch.params.error === 'invalid_token';
          // Basic already sent, or no credentials to send: retrying cannot help.
          if (ch.scheme === 'basic' && sentAuth) return res;
          if (ch.scheme === 'basic' && !this.credentials) {
            await res.body?.cancel();
            // The docker/distribution client's words (dockerd: `Head "…": no basic auth credentials`).
            throw new RegistryError('INVALID_ARGUMENT', `${goMethod(m)} ${JSON.stringify(url.href)}: no basic auth credentials`, 401);
          }
          if (ch.scheme === 'bearer' && sentAuth && this.challenge?.scheme === 'bearer') {
            if (!insufficient && retriedAuth > 0) return res;
            this.tokens.invalidate(this.challenge, opts.scopes);
          }
          this.challenge = ch;
          retriedAuth++;
          await res.body?.cancel();
          continue;
        }
      }
      return res;
    }
  }

  /** Reads the response body, refusing more than `limit` bytes (naming `what`). */
  static async readLimited(res: RegistryResponse, limit: number, what: string): Promise<Buffer> {
    const len = res.headers.get('content-length');
    if (len !== null && Number(len) > limit) {
      await res.body?.cancel();
      throw new InvalidArgumentError(`registry announced ${len} bytes, more than the limit of ${limit}`, what);
    }
    return readAtMost(res.body, limit, what);
  }

  /** Turns a non-success response into a typed error (consuming a bounded part of its body). */
  static async errorFrom(res: RegistryResponse, what: string): Promise<RegistryError> {
    let text = '';
    try {
      text = (await RegistryClient.readLimited(res, 64 * 1024, what)).toString('utf8');
    } catch {
      /* ignore the body */
    }
    let errors: Array<{ code?: string; message?: string }> = [];
    try {
      const parsed = JSON.parse(text) as { errors?: unknown };
      if (Array.isArray(parsed.errors)) errors = parsed.errors.filter((e) => e && typeof e === 'object');
    } catch {
      /* not JSON */
    }
    const challenged = res.status >= 400 && res.status < 500 ? bearerChallengeError(res) : undefined;
    if (challenged) errors = [challenged, ...errors];
    const detail = errors.length ? errors.map((e) => `${e.code ?? ''}: ${e.message ?? ''}`).join('; ') : text.slice(0, 200).trim();
    const code: ErrorCode =
      res.status === 404 ? 'NOT_FOUND' : res.status === 401 || res.status === 403 ? 'INVALID_ARGUMENT' : res.status === 409 ? 'CONFLICT' : res.status >= 500 ? 'SYSTEM' : 'INVALID_ARGUMENT';
    const hint = res.status === 401 ? ' (authentication required or credentials refused)' : '';
    return new RegistryError(code, `${what}: HTTP ${res.status}${hint}${detail ? ': ' + detail : ''}`, res.status, errors);
  }
}
