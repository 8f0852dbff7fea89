/**
 * HTTP/1.1 for the berth CLI, one connection per request: a request with its body (a Buffer,
 * or a stream sent chunked), and the answer's head and body as the Docker API gives them
 * (Content-Length, chunked, or until the daemon closes; 101 Switching Protocols for a hijack).
 *
 * Written by hand rather than used from node:http on purpose: a CLI process makes a handful of
 * requests and exits, and loading node:http and making its first request cost each `berth`
 * run ~9 ms (a HEAD /_ping from a cold start took 57 ms over node:http, 47 ms over node:net,
 * 35 ms for `node -e 0`, on the 2-core VM of bench/engine.mjs). The daemon keeps node:http.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

/** The status line and headers of an answer; header names in lower case, repeats joined by ", ". */
export interface ResponseHead {
  statusCode: number;
  statusMessage: string;
  headers: Record<string, string>;
}

/** An answer: its head, and its body as a stream. destroy() closes the connection. */
export type Response = Readable & ResponseHead;

export type Outcome = { upgraded: false; res: Response } | { upgraded: true; head: ResponseHead; socket: Socket; rest: Buffer };

export class HttpProtocolError extends Error {}

/** The most bytes of status line and headers we accept. */
const MAX_HEAD_BYTES = 256 * 1024;

export interface RequestSpec {
  method: string;
  /** Path and query, as sent. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer | NodeJS.ReadableStream;
}

/** Parses the head of an answer (without the blank line that ends it). */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new HttpProtocolError(`the daemon's answer is not HTTP/1.x: ${JSON.stringify(lines[0].slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HttpProtocolError(`malformed header line in the daemon's answer: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { statusCode: Number(m[1]), statusMessage: m[2] ?? '', headers };
}

/** How an answer's body is delimited (RFC 9112 section 6.3). */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export function bodyFraming(method: string, head: ResponseHead): BodyFraming {
  const status = head.statusCode;
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) {
    if (te.split(',').pop()!.trim().toLowerCase() !== 'chunked') throw new HttpProtocolError(`unsupported Transfer-Encoding in the daemon's answer: ${te}`);
    return { kind: 'chunked' };
  }
  const cl = head.headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new HttpProtocolError(`invalid Content-Length in the daemon's answer: ${cl}`);
    return { kind: 'length', length: Number(cl) };
  }
  return { kind: 'close' };
}

/**
 * Takes the bytes of a body as they come, in pieces of any size, and gives back its content
 * (chunked framing removed) and whether it is complete.
 */
export class BodyDecoder {
  private remaining: number; // length: bytes left; chunked: bytes left of the current chunk
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done';
  private line = '';

  constructor(private readonly framing: BodyFraming) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.state = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0) ? 'done' : framing.kind === 'chunked' ? 'size' : 'data';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /** The content in `input` (bytes past the body's end are ignored). */
  feed(input: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < input.length && this.state !== 'done') {
      if (this.framing.kind === 'close') {
        out.push(input.subarray(i));
        break;
      }
      // Content of known length: the body's (length), or the current chunk's (chunked).
      if (this.state === 'data') {
        const n = Math.min(this.remaining, input.length - i);
        out.push(input.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = this.framing.kind === 'length' ? 'done' : 'data-crlf';
        continue;
      }
      const nl = input.indexOf(10, i);
      const end = nl < 0 ? input.length : nl + 1;
      this.line += input.toString('latin1', i, end);
      i = end;
      if (this.line.length > 4096) throw new HttpProtocolError('a chunk header line of the daemon\'s answer is too long');
      if (nl < 0) break;
      const line = this.line.replace(/\r?\n$/, '');
      this.line = '';
      if (this.state === 'data-crlf') {
        if (line !== '') throw new HttpProtocolError('a chunk of the daemon\'s answer does not end with CRLF');
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = line.split(';')[0].trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(size)) throw new HttpProtocolError(`invalid chunk size in the daemon's answer: ${JSON.stringify(size)}`);
        this.remaining = parseInt(size, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.state = 'done'; // the blank line after the (ignored) trailers
      }
    }
    return out.filter((b) => b.length > 0);
  }
}

function requestHead(spec: RequestSpec): string {
  const headers = { ...spec.headers };
  const has = (name: string): boolean => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (Buffer.isBuffer(spec.body)) headers['Content-Length'] = String(spec.body.length);
  else if (spec.body) headers['Transfer-Encoding'] = 'chunked';
  else if (['POST', 'PUT', 'PATCH'].includes(spec.method)) headers['Content-Length'] = '0';
  // One connection per request, closed by us once the answer is in. A streamed body goes
  // without "Connection: close": a daemon that answers early (a bad archive) then reads and
  // drops the rest instead of closing at once, which would cut our send short (EPIPE) before
  // its answer is read.
  if (!has('connection') && !(spec.body && !Buffer.isBuffer(spec.body))) headers.Connection = 'close';
  let head = `${spec.method} ${spec.target} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n]/.test(k + v)) throw new HttpProtocolError(`header ${k} holds a line break`);
    head += `${k}: ${v}\r\n`;
  }
  return head + '\r\n';
}

/** Sends a stream as the chunked body of the request on `socket`; returns how to stop (the answer is in: the rest is not needed). */
function sendChunked(body: NodeJS.ReadableStream, socket: Socket): () => void {
  const readable = body as Readable;
  const onData = (chunk: Buffer | string): void => {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!b.length || socket.destroyed) return;
    socket.write(`${b.length.toString(16)}\r\n`);
    socket.write(b);
    if (!socket.write('\r\n')) {
      readable.pause();
      socket.once('drain', () => readable.resume());
    }
  };
  const onEnd = (): void => void (socket.destroyed || socket.write('0\r\n\r\n'));
  const onError = (err: Error): void => void socket.destroy(err);
  readable.on('data', onData);
  readable.on('end', onEnd);
  readable.on('error', onError);
  return () => {
    readable.off('data', onData);
    readable.off('end', onEnd);
    readable.off('error', onError);
    readable.pause();
  };
}

/**
 * Sends the request on a socket being connected (writes wait for the connection) and resolves
 * once the answer's head is in: with the answer, or with the socket itself after a 101.
 */
export function sendRequest(socket: Socket, spec: RequestSpec): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let headBytes: Buffer = Buffer.alloc(0);
    let res: Response | undefined;
    let decoder: BodyDecoder | undefined;
    let framing: BodyFraming | undefined;

    let stopBody: (() => void) | undefined;
    const fail = (err: Error): void => {
      stopBody?.();
      if (res) res.destroy(err);
      else reject(err);
      socket.destroy();
    };
    const finish = (): void => {
      stopBody?.();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.on('error', () => undefined); // nothing more is read from it
      res!.push(null);
      socket.destroy();
    };
    const deliver = (bytes: Buffer): void => {
      let pieces: Buffer[];
      try {
        pieces = decoder!.feed(bytes);
      } catch (err) {
        return fail(err as Error);
      }
      let more = true;
      for (const p of pieces) more = res!.push(p) && more;
      if (decoder!.done) finish();
      else if (!more) socket.pause();
    };
    const onData = (data: Buffer): void => {
      if (res) return deliver(data);
      headBytes = headBytes.length ? Buffer.concat([headBytes, data]) : data;
      const end = headBytes.indexOf('\r\n\r\n');
      if (end < 0) {
        if (headBytes.length > MAX_HEAD_BYTES) fail(new HttpProtocolError('the head of the daemon\'s answer is too long'));
        return;
      }
      let head: ResponseHead;
      try {
        head = parseResponseHead(headBytes.toString('latin1', 0, end));
        if (head.statusCode === 100) {
          // "100 Continue": the real answer follows.
          headBytes = headBytes.subarray(end + 4);
          if (headBytes.length) onData(Buffer.alloc(0));
          return;
        }
        framing = bodyFraming(spec.method, head);
      } catch (err) {
        return fail(err as Error);
      }
      const rest = headBytes.subarray(end + 4);
      if (head.statusCode === 101) {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onError);
        // Not flowing, as a new socket: data waits until its new owner listens (as node:http does).
        socket.pause();
        (socket as { readableFlowing: boolean | null }).readableFlowing = null;
        resolve({ upgraded: true, head, socket, rest });
        return;
      }
      decoder = new BodyDecoder(framing!);
      res = Object.assign(
        new Readable({
          read: () => void socket.resume(),
          destroy: (err, cb) => {
            socket.destroy();
            cb(err);
          },
        }),
        head,
      );
      resolve({ upgraded: false, res });
      if (rest.length || decoder.done) deliver(rest);
    };
    const onEnd = (): void => {
      if (res && framing?.kind === 'close') return finish();
      fail(new HttpProtocolError(res ? 'the daemon closed the connection before the end of its answer' : 'the daemon closed the connection without an answer'));
    };
    const onError = (err: Error): void => fail(err);

    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    let head: string;
    try {
      head = requestHead(spec);
    } catch (err) {
      return fail(err as Error);
    }
    if (Buffer.isBuffer(spec.body)) {
      socket.write(spec.body.length ? Buffer.concat([Buffer.from(head, 'latin1'), spec.body]) : head);
    } else {
      socket.write(head);
      if (spec.body) stopBody = sendChunked(spec.body, socket);
    }
  });
}
