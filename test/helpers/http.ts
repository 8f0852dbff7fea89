/** Small HTTP and port helpers for the tests (loopback, test-made addresses and daemon sockets only). */
import http from 'node:http';
import net from 'node:net';

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** GET until something answers (a server that is still starting), at most `tries` × 100 ms. */
export async function httpGetWithRetry(url: string, tries = 50): Promise<{ status: number; body: string } | undefined> {
  for (let i = 0; i < tries; i++) {
    const answer = await httpGet(url).catch(() => undefined);
    if (answer) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A raw API request on a daemon's unix socket (for what the docker CLI never sends). */
export function socketRequest(socket: string, method: string, urlPath: string, headers: Record<string, string | number> = {}, body?: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    // A daemon may answer and close before a large body is all sent (a refused upload): the
    // write's EPIPE then comes after the answer, on the socket, and is no failure of the request.
    req.on('socket', (sock) => sock.on('error', () => undefined));
    req.end(body);
  });
}
