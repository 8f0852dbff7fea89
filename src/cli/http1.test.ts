import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';

import { BodyDecoder, bodyFraming, HttpProtocolError, parseResponseHead, type Response, sendRequest } from './http1.js';

test('an answer head: status, message, headers in lower case, repeats joined', () => {
  const h = parseResponseHead('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nX-A: 1\r\nx-a: 2');
  assert.deepEqual(h, { statusCode: 404, statusMessage: 'Not Found', headers: { 'content-type': 'application/json', 'x-a': '1, 2' } });
  assert.equal(parseResponseHead('HTTP/1.0 200').statusCode, 200);
  assert.throws(() => parseResponseHead('SSH-2.0-OpenSSH'), HttpProtocolError);
  assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\nno colon here'), /malformed header/);
});

test('body framing: HEAD, 204 and 304 have none; chunked wins over a length; else until close', () => {
  const head = (statusCode: number, headers: Record<string, string> = {}) => ({ statusCode, statusMessage: '', headers });
  assert.deepEqual(bodyFraming('HEAD', head(200, { 'content-length': '9' })), { kind: 'none' });
  assert.deepEqual(bodyFraming('POST', head(204)), { kind: 'none' });
  assert.deepEqual(bodyFraming('GET', head(304)), { kind: 'none' });
  assert.deepEqual(bodyFraming('GET', head(200, { 'transfer-encoding': 'chunked', 'content-length': '3' })), { kind: 'chunked' });
  assert.deepEqual(bodyFraming('GET', head(200, { 'content-length': '12' })), { kind: 'length', length: 12 });
  assert.deepEqual(bodyFraming('GET', head(200)), { kind: 'close' });
  assert.throws(() => bodyFraming('GET', head(200, { 'content-length': '-1' })), /Content-Length/);
  assert.throws(() => bodyFraming('GET', head(200, { 'transfer-encoding': 'gzip' })), /Transfer-Encoding/);
});

test('a chunked body split at every byte comes out whole; bytes after its end are ignored', () => {
  const wire = Buffer.from('5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\nEXTRA');
  for (let step = 1; step <= wire.length; step++) {
    const d = new BodyDecoder({ kind: 'chunked' });
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length && !d.done; i += step) out.push(...d.feed(wire.subarray(i, i + step)));
    assert.equal(Buffer.concat(out).toString(), 'hello world!', `pieces of ${step}`);
    assert.ok(d.done);
  }
});

test('a length-delimited body stops at its length; bad chunk sizes are refused', () => {
  const d = new BodyDecoder({ kind: 'length', length: 4 });
  assert.equal(Buffer.concat(d.feed(Buffer.from('abcdef'))).toString(), 'abcd');
  assert.ok(d.done);
  assert.ok(new BodyDecoder({ kind: 'length', length: 0 }).done);
  assert.throws(() => new BodyDecoder({ kind: 'chunked' }).feed(Buffer.from('zz\r\n')), /invalid chunk size/);
  assert.throws(() => new BodyDecoder({ kind: 'chunked' }).feed(Buffer.from('1\r\nabc\r\n')), /CRLF/);
});

async function readAll(res: Response): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function withServer(handler: http.RequestListener, fn: (socketPath: string, server: http.Server) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'http1-'));
  const socketPath = path.join(dir, 's.sock');
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(socketPath, r));
  try {
    await fn(socketPath, server);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('against node:http: bodies both ways, Buffer and stream (chunked), lengths, chunked answers, HEAD', async () => {
  await withServer(
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const got = Buffer.concat(chunks).toString();
        if (req.url === '/chunked') {
          res.write(`${req.method} ${got} te=${req.headers['transfer-encoding'] ?? '-'}`);
          res.end(' (end)');
        } else if (req.url === '/empty') {
          res.writeHead(204).end();
        } else {
          const answer = `${got}|${req.headers['content-length'] ?? '-'}`;
          res.setHeader('Content-Length', Buffer.byteLength(answer));
          res.setHeader('X-Host', String(req.headers.host));
          res.end(answer);
        }
      });
    },
    async (socketPath) => {
      const send = (method: string, target: string, body?: Buffer | NodeJS.ReadableStream) => sendRequest(net.connect(socketPath), { method, target, headers: { Host: 'h' }, body });
      let o = await send('POST', '/len', Buffer.from('hello'));
      assert.ok(!o.upgraded);
      assert.equal(o.res.statusCode, 200);
      assert.equal(o.res.headers['x-host'], 'h');
      assert.equal(await readAll(o.res), 'hello|5');

      o = await send('POST', '/chunked', Readable.from([Buffer.from('a'), Buffer.from('bc'), Buffer.alloc(0), 'def']));
      assert.ok(!o.upgraded);
      assert.equal(o.res.headers['transfer-encoding'], 'chunked');
      assert.equal(await readAll(o.res), 'POST abcdef te=chunked (end)');

      // Big pieces fill the socket's buffer (before it is even connected): back pressure.
      const pieces = Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, 97 + (i % 26)));
      o = await send('POST', '/chunked', Readable.from(pieces));
      assert.ok(!o.upgraded);
      assert.equal(await readAll(o.res), `POST ${Buffer.concat(pieces).toString()} te=chunked (end)`);

      o = await send('POST', '/chunked');
      assert.ok(!o.upgraded);
      assert.equal(await readAll(o.res), 'POST  te=- (end)');

      o = await send('DELETE', '/empty');
      assert.ok(!o.upgraded);
      assert.equal(o.res.statusCode, 204);
      assert.equal(await readAll(o.res), '');

      o = await send('HEAD', '/len');
      assert.ok(!o.upgraded);
      assert.equal(await readAll(o.res), '');
    },
  );
});

test('a large answer is read with back pressure and arrives whole', async () => {
  const big = Buffer.alloc(4 << 20, 'x');
  await withServer(
    (_req, res) => res.end(big),
    async (socketPath) => {
      const o = await sendRequest(net.connect(socketPath), { method: 'GET', target: '/', headers: { Host: 'h' } });
      assert.ok(!o.upgraded);
      let n = 0;
      for await (const c of o.res) {
        n += (c as Buffer).length;
        await new Promise((r) => setImmediate(r)); // a slow reader
      }
      assert.equal(n, big.length);
    },
  );
});

/** A raw server: answers every connection with `answer` (after reading the request head). */
async function withRawServer(answer: (socket: net.Socket, request: string) => void, fn: (socketPath: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'http1-'));
  const socketPath = path.join(dir, 's.sock');
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        s.removeAllListeners('data');
        answer(s, buf);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  try {
    await fn(socketPath);
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a 101 hands over the socket with the bytes that came after the head; it then flows to its new owner', async () => {
  await withRawServer(
    (s, request) => {
      assert.match(request, /^POST \/attach HTTP\/1\.1\r\n/);
      assert.match(request, /\r\nConnection: Upgrade\r\n/);
      assert.match(request, /\r\nContent-Length: 0\r\n/);
      s.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly');
      setTimeout(() => s.end(' late'), 20);
    },
    async (socketPath) => {
      const o = await sendRequest(net.connect(socketPath), { method: 'POST', target: '/attach', headers: { Host: 'h', Connection: 'Upgrade', Upgrade: 'tcp' } });
      assert.ok(o.upgraded);
      assert.equal(o.head.headers['content-type'], 'application/vnd.docker.raw-stream');
      assert.equal(o.rest.toString(), 'early');
      await new Promise((r) => setTimeout(r, 40)); // " late" came meanwhile: kept, not lost
      let rest = '';
      o.socket.on('data', (d: Buffer) => (rest += d));
      await new Promise((r) => o.socket.on('end', r));
      assert.equal(rest, ' late');
    },
  );
});

test('an answer cut short is an error, as is one that is not HTTP; a body until close is read to the close', async () => {
  await withRawServer(
    (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'),
    async (socketPath) => {
      const o = await sendRequest(net.connect(socketPath), { method: 'GET', target: '/', headers: {} });
      assert.ok(!o.upgraded);
      await assert.rejects(readAll(o.res), /before the end of its answer/);
    },
  );
  await withRawServer(
    (s) => s.end('garbage\r\n\r\n'),
    async (socketPath) => {
      await assert.rejects(sendRequest(net.connect(socketPath), { method: 'GET', target: '/', headers: {} }), /not HTTP/);
    },
  );
  await withRawServer(
    (s) => s.end(),
    async (socketPath) => {
      await assert.rejects(sendRequest(net.connect(socketPath), { method: 'GET', target: '/', headers: {} }), /without an answer/);
    },
  );
  await withRawServer(
    (s) => s.end('HTTP/1.0 200 OK\r\n\r\nall of it'),
    async (socketPath) => {
      const o = await sendRequest(net.connect(socketPath), { method: 'GET', target: '/', headers: {} });
      assert.ok(!o.upgraded);
      assert.equal(await readAll(o.res), 'all of it');
    },
  );
  await assert.rejects(sendRequest(net.connect('/nonexistent/berth.sock'), { method: 'GET', target: '/', headers: {} }), { code: 'ENOENT' });
  await withRawServer(
    () => assert.fail('nothing is sent'),
    async (socketPath) => {
      await assert.rejects(sendRequest(net.connect(socketPath), { method: 'GET', target: '/', headers: { 'X-Bad': 'a\r\nInjected: 1' } }), /line break/);
    },
  );
});
