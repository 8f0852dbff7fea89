/**
 * The Docker Engine API over HTTP on unix sockets: version prefixes, routing, and the single
 * error → `{"message"}` answer. Routes live in routes/ by resource; they call the engine.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';

import type { Engine } from '../engine/engine.js';
import { Context, commonHeaders } from './context.js';
import { errorMessage, errorStatus } from './errors.js';
import { Router } from './router.js';
import { buildRoutes } from './routes/build.js';
import { containerRoutes } from './routes/containers.js';
import { containerFsRoutes } from './routes/container-fs.js';
import { execRoutes } from './routes/exec.js';
import { featuresAbsentRoutes } from './routes/features-absent.js';
import { imageRoutes } from './routes/images.js';
import { networkRoutes } from './routes/networks.js';
import { systemRoutes } from './routes/system.js';
import { swarmRoutes } from './routes/swarm.js';
import { volumeRoutes } from './routes/volumes.js';
import { splitVersion } from './versions.js';

export interface ApiServerOptions {
  /** Called with each request's method, path and status (the daemon's --debug log). */
  log?: (line: string) => void;
}

export function buildRouter(engine: Engine): Router {
  const router = new Router();
  systemRoutes(router, engine);
  // Before the container routes, whose names may hold slashes (a link's "/parent/alias").
  featuresAbsentRoutes(router);
  containerRoutes(router, engine);
  containerFsRoutes(router, engine);
  execRoutes(router, engine);
  imageRoutes(router, engine);
  buildRoutes(router, engine);
  volumeRoutes(router, engine);
  networkRoutes(router, engine);
  swarmRoutes(router);
  return router;
}

export class ApiServer {
  readonly http: http.Server;
  private readonly router: Router;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly engine: Engine,
    private readonly opts: ApiServerOptions = {},
  ) {
    this.router = buildRouter(engine);
    // No request timeout: waits, attaches, logs -f and events stay open as long as the client wants.
    this.http = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 60_000 });
    this.http.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => void this.dispatch(req, res, req.socket, Buffer.alloc(0)));
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => void this.dispatch(req, undefined, socket, head));
    this.http.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.http.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse | undefined, socket: Socket, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://berth');
    const method = req.method ?? 'GET';
    let ctx: Context | undefined;
    let status = 0;
    try {
      const { version, path } = splitVersion(url.pathname);
      ctx = new Context(req, res, socket, version, path, url.searchParams, head);
      const match = this.router.match(method, path);
      if (match === undefined) {
        status = 404;
        ctx.sendJson(404, { message: 'page not found' });
      } else {
        ctx.params = match.params;
        await match.handler(ctx);
        ctx.releaseBody();
        status = res?.statusCode ?? 101;
      }
    } catch (err) {
      status = errorStatus(err);
      ctx?.releaseBody();
      const body = JSON.stringify({ message: errorMessage(err) }) + '\n';
      if (ctx && !ctx.answered) ctx.send(status, body);
      else if (!ctx) {
        if (res) {
          res.writeHead(status, { ...commonHeaders(), 'Content-Type': 'application/json' });
          res.end(body);
        } else socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else if (res && !res.writableEnded) {
        // The answer was streaming already: end it (the client sees a cut stream).
        res.end();
      }
      if (status >= 500) this.opts.log?.(`error: ${method} ${url.pathname}: ${errorMessage(err)}`);
    }
    this.opts.log?.(`${method} ${url.pathname}${url.search.length > 200 ? url.search.slice(0, 200) + '…' : url.search} ${status}`);
  }

  /** Listens on a unix socket: a stale socket file is replaced; mode 0660 and the group, if given. */
  async listen(socketPath: string, opts: { group?: number } = {}): Promise<void> {
    try {
      if (fs.statSync(socketPath).isSocket()) fs.rmSync(socketPath);
    } catch {
      /* none */
    }
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(socketPath, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(socketPath, 0o660);
    if (opts.group !== undefined) fs.chownSync(socketPath, 0, opts.group);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
