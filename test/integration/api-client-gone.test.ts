/**
 * Clients that go away mid-request: a `docker save | head`, a killed `docker load`, an
 * interrupted `docker cp`. berthd must stay up (one such client used to end the daemon: an
 * error on a stream nobody listened to), and must not keep what the request had open: temp
 * files of a half-sent image archive, descriptors into a container's root file system.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { DOCKER, poll } from '../helpers/engines.js';
import { socketRequest } from '../helpers/http.js';

const isRoot = process.getuid?.() === 0;
const BUSYBOX_TAR = '/tmp/berth-test-cache/images/docker-archive/busybox.tar';

describe('clients that go away mid-request', { skip: !isRoot || !DOCKER ? 'needs root and the docker CLI' : false, timeout: 300_000 }, () => {
  let d: PrivateBerthd;
  let daemonPid: number;
  let rootfs: string;

  before(async () => {
    d = await startBerthd({ prefix: 'berth-gone-' });
    d.loadImages('busybox');
    daemonPid = d.pid()!;
    // 16 MiB in one file: far more than any socket buffer, so the answer is still being written
    // when its reader leaves.
    d.dockerOk(['run', '-d', '--name', 'big', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=16 2>/dev/null; touch /ready; sleep 1000']);
    assert.ok(await poll(() => d.docker(['exec', 'big', 'test', '-e', '/ready']).status === 0, 20_000), 'the container wrote /big');
    rootfs = d.dockerOk(['inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', 'big']).trim();
    assert.ok(rootfs.length > 1, 'the container has a merged root');
  });

  after(async () => {
    await d?.stop();
  });

  /** What the daemon has open under a directory. */
  const openUnder = (dir: string): string[] =>
    fs.readdirSync(`/proc/${daemonPid}/fd`).flatMap((fd) => {
      try {
        const target = fs.readlinkSync(`/proc/${daemonPid}/fd/${fd}`);
        return target === dir || target.startsWith(dir + '/') ? [target] : [];
      } catch {
        return [];
      }
    });

  const tmpImages = (): string[] => {
    const dir = path.join(d.dir, 'data', 'tmp-images');
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };

  /** The daemon is the same process and answers; nothing the request had is left open. */
  const assertRecovered = async (what: string): Promise<void> => {
    const settled = await poll(() => openUnder(rootfs).length === 0 && openUnder(path.join(d.dir, 'data')).length === 0 && tmpImages().length === 0, 10_000);
    assert.equal(fs.existsSync(`/proc/${daemonPid}`), true, `berthd died after ${what}\n${d.logTail()}`);
    assert.equal(d.pid(), daemonPid);
    assert.equal((await socketRequest(d.socket, 'GET', '/_ping')).status, 200, `berthd answers after ${what}`);
    assert.ok(settled, `after ${what} berthd still holds ${JSON.stringify([...openUnder(rootfs), ...openUnder(path.join(d.dir, 'data'))])}, temp dirs ${JSON.stringify(tmpImages())}`);
  };

  /** Sends a GET, reads `atLeast` bytes of the answer, and closes the connection. */
  const readThenLeave = (urlPath: string, atLeast = 256 * 1024): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = net.connect(d.socket);
      let got = 0;
      s.on('connect', () => s.write(`GET ${urlPath} HTTP/1.1\r\nHost: docker\r\n\r\n`));
      s.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= atLeast) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
      s.on('close', () => resolve(got));
    });

  /** Sends the head of an upload that promises `declared` bytes, `part` of them, and leaves. */
  const sendPartThenLeave = async (method: string, urlPath: string, part: Buffer, declared: number): Promise<void> => {
    const s = net.connect(d.socket);
    await new Promise<void>((resolve, reject) => {
      s.on('connect', resolve);
      s.on('error', reject);
    });
    s.write(`${method} ${urlPath} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: ${declared}\r\n\r\n`);
    s.write(part);
    await new Promise((r) => setTimeout(r, 300)); // the daemon has begun reading
    s.destroy();
  };

  it('a docker save reader that leaves early', async () => {
    assert.ok((await readThenLeave('/v1.44/images/busybox/get', 64 * 1024)) >= 64 * 1024);
    await assertRecovered('a save cut short');
  });

  it('an export reader that leaves early', async () => {
    assert.ok((await readThenLeave('/v1.44/containers/big/export')) >= 256 * 1024);
    await assertRecovered('an export cut short');
  });

  it('a docker cp (out) reader that leaves early', async () => {
    assert.ok((await readThenLeave('/v1.44/containers/big/archive?path=/big')) >= 256 * 1024);
    await assertRecovered('a copy out cut short');
  });

  it('a docker load whose sender leaves mid-archive', async () => {
    const tar = fs.readFileSync(BUSYBOX_TAR);
    await sendPartThenLeave('POST', '/v1.44/images/load?quiet=1', tar.subarray(0, tar.length >> 1), tar.length);
    await assertRecovered('a load cut short');
  });

  it('a docker import whose sender leaves mid-archive', async () => {
    const tar = fs.readFileSync(BUSYBOX_TAR);
    await sendPartThenLeave('POST', '/v1.44/images/create?fromSrc=-&repo=cut&tag=1', tar.subarray(0, tar.length >> 1), tar.length);
    await assertRecovered('an import cut short');
    assert.notEqual(d.docker(['image', 'inspect', 'cut:1']).status, 0, 'no image from half an archive');
  });

  it('a docker cp (in) whose sender leaves mid-archive', async () => {
    const tar = fs.readFileSync(BUSYBOX_TAR);
    await sendPartThenLeave('PUT', '/v1.44/containers/big/archive?path=/tmp', tar.subarray(0, tar.length >> 1), tar.length);
    await assertRecovered('a copy in cut short');
    // And a truncated archive sent whole is the client's error, named as such.
    const r = await socketRequest(d.socket, 'PUT', '/v1.44/containers/big/archive?path=/tmp', { 'Content-Type': 'application/x-tar' }, tar.subarray(0, tar.length >> 1));
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /truncated/);
  });
});
