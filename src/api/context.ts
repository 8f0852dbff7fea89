/**
 * One API request as the routes see it: path parameters, query, the negotiated version, the
 * body, and ways to answer: JSON, no content, a stream, or a hijacked connection (attach and
 * exec). A request that arrived with `Upgrade: tcp` has no ServerResponse (Node hands over the
 * socket), so every answer is written by hand on the socket then.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';

import { keepsBytesAfterHead } from '../common/clients.js';
import { InvalidArgumentError } from '../common/errors.js';
import { parsePlatformSpecifier } from '../images/manifest.js';
import type { Platform } from '../images/types.js';
import { API_VERSION, compareVersions } from './versions.js';

const MAX_JSON_BODY = 16 * 1024 * 1024;
const HEAD_ALONE_MS = 10;

/** Headers dockerd sends with every answer; clients read Api-Version from the ping. */
export function commonHeaders(): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: `Docker/berth (linux)`,
  };
}

export class Context {
  params: Record<string, string> = {};
  readonly query: URLSearchParams;
  /** Set once an answer has started. */
  answered = false;
  private hijackedAt = 0;
  private bodyText: Promise<string> | undefined;
  private bodyStandIn: PassThrough | undefined;

  constructor(
    readonly req: IncomingMessage,
    /** undefined when the request was an upgrade: then `socket` is ours. */
    readonly res: ServerResponse | undefined,
    readonly socket: Socket,
    readonly version: string,
    readonly path: string,
    query: URLSearchParams,
    /** Bytes of an upgrade request's body that arrived with its head. */
    private readonly upgradeHead: Buffer = Buffer.alloc(0),
  ) {
    this.query = query;
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  get upgraded(): boolean {
    return this.res === undefined;
  }

  /** Whether the negotiated version is at least v. */
  atLeast(v: string): boolean {
    return compareVersions(this.version, v) >= 0;
  }

  // ---- reading -----------------------------------------------------------------------------

  /** Docker's boolean query values: absent, "", "0", "no", "false", "none" are false. */
  bool(name: string, fallback = false): boolean {
    const v = this.query.get(name);
    if (v === null) return fallback;
    return !['', '0', 'no', 'false', 'none'].includes(v.toLowerCase());
  }

  int(name: string): number | undefined {
    const v = this.query.get(name);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    // dockerd reads its numeric parameters with strconv.Atoi, and answers in its words.
    if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`strconv.Atoi: parsing ${JSON.stringify(v)}: ${/^[+-]?\d+$/.test(v) ? 'value out of range' : 'invalid syntax'}`);
    return n;
  }

  /** `h` and `w` of a resize request (containers and execs), both required, non-negative. */
  terminalSize(): { rows: number; cols: number } {
    const rows = this.int('h');
    const cols = this.int('w');
    if (rows === undefined || cols === undefined || rows < 0 || cols < 0) throw new InvalidArgumentError('h and w must be given as non-negative integers', 'h');
    return { rows, cols };
  }

  /** The `filters` query parameter: {"key":["v"]} or the old {"key":{"v":true}}. */
  filters(): Record<string, string[]> {
    const text = this.query.get('filters');
    if (!text) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new InvalidArgumentError(`invalid filter: ${text}`, 'filters');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('invalid filter: must be an object', 'filters');
    const out: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (Array.isArray(value)) out[key] = value.map(String);
      else if (value && typeof value === 'object') out[key] = Object.entries(value).filter(([, on]) => on).map(([k]) => k);
      else throw new InvalidArgumentError(`invalid filter: ${key}`, 'filters');
    }
    return out;
  }

  /** The `platform` parameter (`linux/amd64[/v8]`, `linux`, `arm64`), if given: containerd's platforms.Parse. */
  platform(): Platform | undefined {
    const value = this.query.get('platform');
    if (!value) return undefined;
    return parsePlatformSpecifier(value);
  }

  /** The request body as a stream (archives, image tarballs). */
  bodyStream(): Readable {
    if (this.res) {
      // A stand-in for the request: a reader that gives up on a bad body destroys this, not the
      // request, whose connection still has to carry the answer (see releaseBody).
      if (!this.bodyStandIn) {
        this.bodyStandIn = this.req.pipe(new PassThrough());
        cutShortWith(this.req, this.bodyStandIn, () => this.req.complete);
      }
      return this.bodyStandIn;
    }
    const stream = new PassThrough();
    if (this.upgradeHead.length) stream.write(this.upgradeHead);
    this.socket.pipe(stream);
    cutShortWith(this.socket, stream, () => this.socket.readableEnded);
    return stream;
  }

  /**
   * After the handler: what it left of the body is read and dropped, so that a client still
   * sending (a large archive refused early) can finish and read the answer. Node's own dump
   * does not happen once the body was piped to a stand-in.
   */
  releaseBody(): void {
    if (!this.res || this.req.complete) return;
    if (this.bodyStandIn) {
      this.req.unpipe(this.bodyStandIn);
      this.bodyStandIn.destroy();
    }
    this.req.resume();
  }

  /** The body as text (read once, at most MAX_JSON_BODY bytes). */
  text(): Promise<string> {
    this.bodyText ??= new Promise((resolve, reject) => {
      const length = Number(this.req.headers['content-length'] ?? NaN);
      const chunks: Buffer[] = [];
      let size = 0;
      if (!this.res) {
        // An upgrade request: exactly Content-Length bytes belong to the body; what follows is
        // the hijacked stream (stdin).
        if (!Number.isFinite(length) || length === 0) return resolve('');
        let have = this.upgradeHead;
        const take = (): void => {
          if (have.length >= length) {
            this.socket.off('data', more);
            const rest = have.subarray(length);
            if (rest.length) this.socket.unshift(rest);
            this.socket.pause();
            resolve(have.subarray(0, length).toString('utf8'));
          }
        };
        const more = (d: Buffer): void => {
          have = Buffer.concat([have, d]);
          take();
        };
        this.socket.on('data', more);
        take();
        return;
      }
      this.req.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_JSON_BODY) {
          reject(new InvalidArgumentError(`request body larger than ${MAX_JSON_BODY} bytes`));
          this.req.destroy();
          return;
        }
        chunks.push(d);
      });
      this.req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      this.req.on('error', reject);
    });
    return this.bodyText;
  }

  /** The JSON body; an empty body is `fallback`. Malformed JSON is a 400 naming the problem. */
  async json<T = unknown>(fallback?: T): Promise<T> {
    // As dockerd's CheckForJSON: a body said to be something else is refused (none said: taken).
    const type = this.req.headers['content-type'];
    if (type && type.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
      throw new InvalidArgumentError(`unsupported Content-Type header (${type}): must be 'application/json'`);
    }
    const text = await this.text();
    if (text.trim() === '') {
      if (fallback !== undefined) return fallback;
      throw new InvalidArgumentError('request body is empty, a JSON object is expected');
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new InvalidArgumentError(`invalid JSON in request body: ${(err as Error).message}`);
    }
  }

  // ---- answering ---------------------------------------------------------------------------

  private rawHead(status: number, headers: Record<string, string | number>): void {
    const lines = [`HTTP/1.1 ${status} ${status === 101 ? 'UPGRADED' : STATUS_CODES[status] ?? ''}`];
    for (const [k, v] of Object.entries({ ...commonHeaders(), ...headers })) lines.push(`${k}: ${v}`);
    this.socket.write(lines.join('\r\n') + '\r\n\r\n');
  }

  send(status: number, body: string | Buffer, contentType = 'application/json'): void {
    this.answered = true;
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    if (this.res) {
      this.res.writeHead(status, { ...commonHeaders(), 'Content-Type': contentType, 'Content-Length': data.length });
      this.res.end(data);
    } else {
      this.rawHead(status, { 'Content-Type': contentType, 'Content-Length': data.length, Connection: 'close' });
      this.socket.end(data);
    }
  }

  sendJson(status: number, value: unknown): void {
    this.send(status, JSON.stringify(value) + '\n');
  }

  noContent(status = 204): void {
    this.answered = true;
    if (this.res) {
      this.res.writeHead(status, commonHeaders());
      this.res.end();
    } else {
      this.rawHead(status, { 'Content-Length': 0, Connection: 'close' });
      this.socket.end();
    }
  }

  /** Starts a streamed answer (chunked): progress, logs, events, wait. */
  stream(contentType = 'application/json', status = 200): Writable {
    this.answered = true;
    if (this.res) {
      this.res.writeHead(status, { ...commonHeaders(), 'Content-Type': contentType });
      this.res.flushHeaders();
      return this.res;
    }
    this.rawHead(status, { 'Content-Type': contentType, Connection: 'close' });
    return this.socket;
  }

  /**
   * The client went away before the answer ended. The listener goes when the answer ends: a
   * kept-alive connection serves request after request, and each would otherwise leave one on
   * its socket (a client polling stats or logs leaked them).
   */
  onClose(fn: () => void): void {
    this.socket.once('close', fn);
    this.res?.once('finish', () => this.socket.off('close', fn));
  }

  /**
   * Takes over the connection for a raw two-way stream: 101 for an upgrade request, else 200
   * followed by raw bytes (what dockerd does for clients that do not ask to upgrade). The socket
   * is returned paused: the caller reads it (or resumes it) once it knows where input goes.
   */
  hijack(contentType: string): Duplex {
    this.answered = true;
    if (this.res) {
      // A plain request: write the head ourselves and take the socket from the HTTP parser.
      this.res.detachSocket(this.socket);
      this.socket.write(
        `HTTP/1.1 200 OK\r\n${Object.entries({ ...commonHeaders(), 'Content-Type': contentType })
          .map(([k, v]) => `${k}: ${v}`)
          .join('\r\n')}\r\n\r\n`,
      );
    } else {
      this.rawHead(101, { 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' });
    }
    this.socket.setNoDelay?.(true);
    // The connection is ours now, errors included (a client that leaves mid-write: EPIPE).
    this.socket.on('error', () => undefined);
    // Left paused: what the client sends (stdin) waits in the socket until a reader is attached.
    this.hijackedAt = Date.now();
    return this.socket;
  }

  /**
   * Resolves HEAD_ALONE_MS after the hijack's head went out. docker-py reads the head through a
   * buffered reader and then reads the raw socket: bytes that arrived with the head are lost to
   * it. dockerd's first output comes after some file I/O or an exec's start; output that is
   * ready at once (attach with logs, a quick exec) waits this long, so that the head reaches the
   * client alone (with 3 busy loops on 2 cores, a quick exec's output was lost 53 times in 100
   * without the wait, never with it). Clients known to keep such bytes do not wait.
   */
  async headAlone(): Promise<void> {
    if (keepsBytesAfterHead(this.req.headers['user-agent'])) return;
    const wait = this.hijackedAt + HEAD_ALONE_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * A body piped on to a stand-in: pipe() passes on the end of the body but not its loss, so a
 * client that went away mid-body (a killed `docker load`) would leave the reader waiting for
 * the rest forever, its temp files open. This ends the stand-in with an error then.
 */
function cutShortWith(source: Readable, standIn: PassThrough, complete: () => boolean): void {
  // Its reader hears of the error through its own listener or iterator; none (a handler not yet
  // reading) must not make it an uncaught one.
  standIn.on('error', () => undefined);
  source.once('close', () => {
    if (!complete() && !standIn.destroyed) standIn.destroy(new InvalidArgumentError('the client went away before sending the whole request body'));
  });
}
