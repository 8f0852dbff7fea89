/**
 * `docker search` and the endpoints of features berthd does not have (plugins, checkpoints,
 * BuildKit sessions), driven by the real docker CLI against a private berthd. The search index
 * is a small HTTP server on 127.0.0.1 started here (the v1 search API, as Docker Hub serves it);
 * it is stopped in `after`, with the daemon, also when a test fails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { DOCKER } from '../helpers/engines.js';
import { socketRequest as api } from '../helpers/http.js';
import { PACKAGE_ROOT } from '../../src/common/paths.js';

const run = promisify(execFile);
const BERTH = path.join(PACKAGE_ROOT, 'bin', 'berth');
const skip = process.getuid?.() !== 0 ? 'needs root' : !DOCKER ? 'needs the docker CLI' : false;

describe('docker search, plugins and checkpoints against berthd', { skip, timeout: 300_000 }, () => {
  let d: PrivateBerthd | undefined;
  const seen: string[] = [];
  // Five repositories for any term: the first official, the second automated, 10 stars apiece.
  const index = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://index');
    seen.push(`${url.pathname}${url.search} ${req.headers.authorization ?? '-'}`);
    if (url.pathname === '/v1/_ping') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (url.pathname !== '/v1/search') return void res.writeHead(404).end('404 page not found');
    const q = url.searchParams.get('q') ?? '';
    if (q === 'broken') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"results": [{"name": 7}]}');
    const n = Math.min(5, Number(url.searchParams.get('n')));
    const results = Array.from({ length: n }, (_, i) => ({ description: `about ${q} ${i}`, is_automated: i === 1, is_official: i === 0, name: `${i === 0 ? 'library' : 'u'}/${q}${i}`, star_count: i * 10 }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ num_results: n, query: q, results }));
  });
  let host = '';

  before(async () => {
    await new Promise<void>((resolve) => index.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(index.address() as AddressInfo).port}`;
    d = await startBerthd({ prefix: 'berthd-search-' });
  });
  after(async () => {
    try {
      await d?.stop();
    } finally {
      index.closeAllConnections();
      await new Promise((resolve) => index.close(resolve));
    }
  });

  // Asynchronous: the index answers from this process while the CLI waits.
  const docker = async (args: string[], cli = DOCKER!): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(cli, args, { env: d!.env, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  };
  const names = (out: string): string[] =>
    out
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0]!);

  it('searches the registry the term names, as dockerd: ping, then /v1/search with the term and limit', async () => {
    seen.length = 0;
    const r = await docker(['search', `${host}/web`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\n/);
    assert.match(r.stdout, /\nlibrary\/web0\s+about web 0\s+0\s+\[OK\]\n/);
    assert.deepEqual(names(r.stdout), ['library/web0', 'u/web1', 'u/web2', 'u/web3', 'u/web4']);
    assert.deepEqual(seen, ['/v1/_ping -', '/v1/search?q=web&n=25 -']);
  });

  it('berth search shows what docker search shows', async () => {
    for (const args of [['search', `${host}/web`], ['search', '--no-trunc', '--limit', '2', '-f', 'stars=5', '--format', '{{json .}}', `${host}/web`]]) {
      const [ours, theirs] = [await docker(args, BERTH), await docker(args)];
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(ours.stdout, theirs.stdout);
    }
    const r = await docker(['search', '-f', 'bogus=1', `${host}/web`], BERTH);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Invalid filter 'bogus'/);
  });

  it('--limit, the is-official and stars filters, --format', async () => {
    assert.deepEqual(names((await docker(['search', '--limit', '2', `${host}/web`])).stdout), ['library/web0', 'u/web1']);
    assert.deepEqual(names((await docker(['search', '-f', 'is-official=true', `${host}/web`])).stdout), ['library/web0']);
    assert.deepEqual(names((await docker(['search', '-f', 'stars=15', `${host}/web`])).stdout), ['u/web2', 'u/web3', 'u/web4']);
    const json = (await docker(['search', '--limit', '1', '--format', '{{json .}}', `${host}/web`])).stdout.trim();
    assert.deepEqual(JSON.parse(json), { Description: 'about web 0', IsOfficial: 'true', Name: 'library/web0', StarCount: '0' });
  });

  it("refuses bad filters and limits in dockerd's words, and names an index that does not answer", async () => {
    const fails = async (args: string[], message: string): Promise<void> => {
      const r = await docker(args);
      assert.notEqual(r.code, 0, r.stdout);
      assert.equal(r.stderr.trim(), `Error response from daemon: ${message}`);
    };
    await fails(['search', '-f', 'bogus=1', `${host}/web`], "Invalid filter 'bogus'");
    await fails(['search', '-f', 'stars=x', `${host}/web`], "Invalid filter 'stars=x'");
    await fails(['search', '-f', 'is-official=maybe', `${host}/web`], "Invalid filter 'is-official=[maybe]'");
    await fails(['search', '--limit', '101', `${host}/web`], 'Limit 101 is outside the range of [1, 100]');
    await fails(['search', '127.0.0.1:1/web'], 'invalid registry endpoint "http://127.0.0.1:1/v1/": Get "http://127.0.0.1:1/v1/_ping": dial tcp 127.0.0.1:1: connect: connection refused');
    await fails(['search', `${host}/broken`], 'error decoding registry search results: result 0: name is not a string');
    const bad = await api(d!.socket, 'GET', `/images/search?term=${host}/web&limit=abc`);
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).message, 'strconv.Atoi: parsing "abc": invalid syntax');
  });

  it('plugins: none installed, as dockerd without any; installing one is refused, saying why', async () => {
    const ls = await docker(['plugin', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), 'ID        NAME      DESCRIPTION   ENABLED');
    const inspect = await docker(['plugin', 'inspect', 'foo']);
    assert.notEqual(inspect.code, 0);
    assert.match(inspect.stderr, /plugin "foo" not found/);
    const install = await docker(['plugin', 'install', '--grant-all-permissions', `${host}/foo`]);
    assert.notEqual(install.code, 0);
    assert.match(install.stderr, /berthd does not run Docker Engine plugins/);
    const filtered = await api(d!.socket, 'GET', `/plugins?filters=${encodeURIComponent('{"enabled":["x"]}')}`);
    assert.deepEqual([filtered.status, JSON.parse(filtered.body).message], [400, "Invalid filter 'enabled=[x]'"]);
  });

  it('checkpoints, BuildKit sessions and build cancel answer with a status, not "page not found"', async () => {
    const checkpoints = await api(d!.socket, 'GET', '/containers/x/checkpoints');
    assert.equal(checkpoints.status, 501);
    assert.match(JSON.parse(checkpoints.body).message, /no checkpoint and restore/);
    const session = await api(d!.socket, 'POST', '/session');
    assert.deepEqual([session.status, JSON.parse(session.body).message], [400, 'no upgrade proto in request']);
    assert.equal((await api(d!.socket, 'POST', '/build/cancel?id=x')).status, 200);
    assert.equal((await api(d!.socket, 'POST', '/build/cancel')).status, 400);
  });
});
