import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';

import { ApiClient, ApiError, ConnectError, readBody } from './client.js';

/** A daemon that serves API versions up to `max`, as dockerd does: too new a version is a 400. */
async function withDaemon(max: string, fn: (host: string, seen: string[]) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'client-'));
  const socket = path.join(dir, 'd.sock');
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      if (req.url === '/_ping') return res.writeHead(200, { 'API-Version': max }).end(req.method === 'HEAD' ? undefined : 'OK');
      const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(req.url ?? '');
      if (m && Number(m[1].split('.')[1]) > Number(max.split('.')[1])) {
        // As dockerd: the message in a JSON body, which the answer to a HEAD has not.
        return res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: `client version ${m[1]} is too new. Maximum supported API version is ${max}` }));
      }
      if (m?.[2] === '/bad') return res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'invalid reference format' }));
      if (m?.[2] === '/missing') return res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'No such container: x' }));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ path: m?.[2], body: Buffer.concat(body).toString() }));
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    await fn(`unix://${socket}`, seen);
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a daemon at 1.44 is not pinged: the first request goes out at 1.44', async () => {
  await withDaemon('1.44', async (host, seen) => {
    const c = new ApiClient(host);
    assert.deepEqual(await c.post('/containers/create', { name: 'a' }, { Image: 'busybox' }), { path: '/containers/create?name=a', body: '{"Image":"busybox"}' });
    await c.get('/info');
    assert.deepEqual(seen, ['POST /v1.44/containers/create?name=a', 'GET /v1.44/info']);
  });
});

test('an older daemon refuses 1.44: it is pinged and asked again at its version, from then on', async () => {
  await withDaemon('1.41', async (host, seen) => {
    const c = new ApiClient(host);
    assert.deepEqual(await c.post('/containers/create', undefined, { Image: 'busybox' }), { path: '/containers/create', body: '{"Image":"busybox"}' });
    await c.get('/info');
    await assert.rejects(c.get('/missing'), (e: unknown) => e instanceof ApiError && e.status === 404 && e.message === 'No such container: x');
    assert.deepEqual(seen, ['POST /v1.44/containers/create', 'HEAD /_ping', 'POST /v1.41/containers/create', 'GET /v1.41/info', 'GET /v1.41/missing']);
  });
});

test('a HEAD refused without a message (no body) is asked again at the daemon\'s version too', async () => {
  await withDaemon('1.41', async (host, seen) => {
    const c = new ApiClient(host);
    const res = await c.raw('HEAD', '/containers/x/archive', { query: { path: '/' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(seen, ['HEAD /v1.44/containers/x/archive?path=%2F', 'HEAD /_ping', 'HEAD /v1.41/containers/x/archive?path=%2F']);
  });
});

test('a real 400 from a daemon at 1.44 is the answer: asked once, the version checked, no retry', async () => {
  await withDaemon('1.44', async (host, seen) => {
    const c = new ApiClient(host);
    await assert.rejects(c.get('/bad'), (e: unknown) => e instanceof ApiError && e.status === 400 && e.message === 'invalid reference format');
    await assert.rejects(c.get('/bad'), /invalid reference format/);
    assert.deepEqual(seen, ['GET /v1.44/bad', 'HEAD /_ping', 'GET /v1.44/bad']);
  });
});

test('a streamed body, which cannot be sent twice, is sent only after the version is known', async () => {
  await withDaemon('1.41', async (host, seen) => {
    const c = new ApiClient(host);
    const res = await c.raw('POST', '/images/load', { body: Readable.from([Buffer.from('tar')]) });
    const chunks: Buffer[] = [];
    for await (const x of res) chunks.push(x as Buffer);
    assert.deepEqual(JSON.parse(Buffer.concat(chunks).toString()), { path: '/images/load', body: 'tar' });
    assert.deepEqual(seen, ['HEAD /_ping', 'POST /v1.41/images/load']);
  });
});

test('no daemon at the socket: docker\'s message', async () => {
  const c = new ApiClient('unix:///nonexistent/berth.sock');
  await assert.rejects(c.get('/info'), (e: unknown) => e instanceof ConnectError && /Cannot connect to the Docker daemon at unix:\/\/\/nonexistent\/berth.sock/.test((e as Error).message));
});

test('readBody: the whole answer; a stream cut short or failing rejects', async () => {
  assert.equal((await readBody(Readable.from([Buffer.from('a'), Buffer.from('bc')]))).toString(), 'abc');
  assert.equal((await readBody(Readable.from([]))).length, 0);
  const cut = new Readable({ read() {} });
  cut.push(Buffer.from('x'));
  const reading = readBody(cut);
  setImmediate(() => cut.destroy());
  await assert.rejects(reading, /cut short/);
  const failing = new Readable({ read() {} });
  const failed = readBody(failing);
  failing.destroy(new Error('boom'));
  await assert.rejects(failed, /boom/);
});
