import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import { EndedBeforeHeaderError, ownIdentity, readHeader } from './command-server.js';

/** A connected pair of unix sockets: [server side, client side]. */
async function pair(): Promise<[net.Socket, net.Socket, () => void]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-server-test-'));
  const file = path.join(dir, 's');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(file, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(file);
  const serverSide = await accepted;
  return [serverSide, client, () => (client.destroy(), serverSide.destroy(), server.close(), fs.rmSync(dir, { recursive: true, force: true }))];
}

describe('command server protocol', () => {
  it('reads a request header and its payload, and leaves what follows on the socket', async () => {
    const [sock, client, close] = await pair();
    try {
      const payload = Buffer.from('/cwd\0identity\0run\0x\0');
      client.write(Buffer.concat([Buffer.from(`request ${payload.length}\n`), payload, Buffer.from('pid 42\n')]));
      const header = await readHeader(sock);
      assert.equal(header.line, `request ${payload.length}`);
      assert.deepEqual(header.payload, payload);
      sock.setEncoding('utf8');
      const rest = await new Promise<string>((resolve) => {
        sock.once('data', resolve);
        sock.resume();
      });
      assert.equal(rest, 'pid 42\n');
    } finally {
      close();
    }
  });

  it('gives back the bytes after a sync header even when they arrive in the same chunk', async () => {
    const [sock, client, close] = await pair();
    try {
      client.write('sync abc\npid 7\nready\n');
      const header = await readHeader(sock);
      assert.equal(header.line, 'sync abc');
      assert.equal(header.payload, undefined);
      // Paused until its reader listens: nothing is lost in between.
      await new Promise((r) => setTimeout(r, 20));
      sock.setEncoding('utf8');
      let text = '';
      sock.on('data', (d: string) => (text += d));
      sock.resume();
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(text, 'pid 7\nready\n');
    } finally {
      close();
    }
  });

  it('refuses a header that never ends or a request too large', async () => {
    for (const [sent, refusal] of [['x'.repeat(300), /header too long/], [`request ${(1 << 20) + 1}\n`, /request too large/]] as const) {
      const [sock, client, close] = await pair();
      try {
        client.write(sent);
        await assert.rejects(readHeader(sock), refusal);
      } finally {
        close();
      }
    }
  });

  it('tells a connection that sent nothing (another server probing) from one cut short', async () => {
    for (const [sent, empty] of [['', true], ['requ', false]] as const) {
      const [sock, client, close] = await pair();
      try {
        client.end(sent);
        await assert.rejects(readHeader(sock), (err: unknown) => err instanceof EndedBeforeHeaderError && err.empty === empty);
      } finally {
        close();
      }
    }
  });

  it("names this process's namespaces and root (and user) as the client does", () => {
    assert.match(ownIdentity(), /^mnt:\d+ pid:\d+ user:\d+ cgroup:\d+ net:\d+ root:\d+:\d+$/);
    assert.match(ownIdentity(true), /^mnt:\d+ .* root:\d+:\d+ uid:\d+ gid:\d+ groups:\d+(,\d+)*$/);
  });
});
