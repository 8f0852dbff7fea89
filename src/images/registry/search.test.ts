import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BerthError, InvalidArgumentError, SystemError } from '../../common/errors.js';
import { fakeRegistryForSuite } from './fake-registry.testutil.js';
import { checkSearchLimit, parseSearchAnswer, searchRepositories, splitSearchTerm } from './search.js';

describe('splitSearchTerm (moby splitReposSearchTerm)', () => {
  it('sends short names and user/repo to Docker Hub, without library/', () => {
    assert.deepEqual(splitSearchTerm('busybox'), { index: 'docker.io', official: true, remoteName: 'busybox' });
    assert.deepEqual(splitSearchTerm('library/busybox'), { index: 'docker.io', official: true, remoteName: 'busybox' });
    assert.deepEqual(splitSearchTerm('user/repo'), { index: 'docker.io', official: true, remoteName: 'user/repo' });
    assert.deepEqual(splitSearchTerm('docker.io/library/x'), { index: 'docker.io', official: true, remoteName: 'x' });
    assert.deepEqual(splitSearchTerm('index.docker.io/u/x'), { index: 'docker.io', official: true, remoteName: 'u/x' });
    // No slash: the whole term is searched on Docker Hub, host-like or not (as dockerd).
    assert.deepEqual(splitSearchTerm('127.0.0.1:5000'), { index: 'docker.io', official: true, remoteName: '127.0.0.1:5000' });
  });
  it('takes a first part with a dot, a colon or localhost as the index', () => {
    assert.deepEqual(splitSearchTerm('127.0.0.1:5000/foo'), { index: '127.0.0.1:5000', official: false, remoteName: 'foo' });
    assert.deepEqual(splitSearchTerm('localhost/library/foo'), { index: 'localhost', official: false, remoteName: 'library/foo' });
    assert.deepEqual(splitSearchTerm('r.example.com/a/b/c'), { index: 'r.example.com', official: false, remoteName: 'a/b/c' });
  });
  it("refuses a scheme and a hyphen at an index name's ends, in dockerd's words", () => {
    assert.throws(() => splitSearchTerm('http://r.example.com/foo'), { message: 'Invalid repository name (ex: "registry.domain.tld/myrepos")' });
    assert.throws(() => splitSearchTerm('-bad.io/foo'), new InvalidArgumentError('invalid index name (-bad.io). Cannot begin or end with a hyphen'));
    assert.throws(() => splitSearchTerm('bad.io-/foo'), /Cannot begin or end with a hyphen/);
  });
  it('limits are 1 to 100', () => {
    checkSearchLimit(1);
    checkSearchLimit(100);
    assert.throws(() => checkSearchLimit(0), new InvalidArgumentError('Limit 0 is outside the range of [1, 100]'));
    assert.throws(() => checkSearchLimit(101), /Limit 101 is outside/);
  });
});

describe('parseSearchAnswer', () => {
  it('takes the results, filling absent fields as Go zero values', () => {
    const r = parseSearchAnswer(Buffer.from(JSON.stringify({ num_results: 2, results: [{ name: 'a', star_count: 3, is_official: true }, { name: 'b', description: 'd', is_automated: true }] })));
    assert.deepEqual(r, [
      { star_count: 3, is_official: true, name: 'a', is_automated: false, description: '' },
      { star_count: 0, is_official: false, name: 'b', is_automated: true, description: 'd' },
    ]);
    assert.deepEqual(parseSearchAnswer(Buffer.from('{"results":null}')), []);
    assert.deepEqual(parseSearchAnswer(Buffer.from('{}')), []);
  });
  it('refuses what is not a search answer, naming what is wrong', () => {
    assert.throws(() => parseSearchAnswer(Buffer.from('not json')), (e: unknown) => e instanceof SystemError && /^error decoding registry search results: /.test(e.message));
    assert.throws(() => parseSearchAnswer(Buffer.from('[]')), /not a JSON object/);
    assert.throws(() => parseSearchAnswer(Buffer.from('{"results":{}}')), /"results" is not a list/);
    assert.throws(() => parseSearchAnswer(Buffer.from('{"results":[7]}')), /result 0 is not an object/);
    assert.throws(() => parseSearchAnswer(Buffer.from('{"results":[{"name":1}]}')), /result 0: name is not a string/);
    assert.throws(() => parseSearchAnswer(Buffer.from('{"results":[{"star_count":1.5}]}')), /star_count is not a whole number/);
  });
});

describe('searchRepositories against an index on loopback', () => {
  const { reg } = fakeRegistryForSuite();
  const seen: string[] = [];
  const answer = (status: number, body: string) => {
    reg.hook = (req, res) => {
      seen.push(`${req.url} ${req.headers.authorization ?? '-'}`);
      if (req.url === '/v1/_ping') res.writeHead(404).end('404 page not found');
      else res.writeHead(status, { 'content-type': 'application/json' }).end(body);
      return true;
    };
  };

  it('pings, then asks /v1/search with the term and limit, and returns the results', async () => {
    seen.length = 0;
    answer(200, JSON.stringify({ results: [{ name: 'u/foo', star_count: 4, description: 'x' }] }));
    const results = await searchRepositories(`${reg.host}/foo bar`, { insecure: [reg.host], limit: 7 });
    assert.deepEqual(results, [{ star_count: 4, is_official: false, name: 'u/foo', is_automated: false, description: 'x' }]);
    assert.deepEqual(seen, ['/v1/_ping -', '/v1/search?q=foo+bar&n=7 -']);
  });
  it('sends Basic credentials with the search when it has them', async () => {
    seen.length = 0;
    answer(200, '{"results":[]}');
    assert.deepEqual(await searchRepositories(`${reg.host}/x`, { insecure: [reg.host], auth: { username: 'me', password: 'pw' } }), []);
    assert.equal(seen.at(-1), `/v1/search?q=x&n=25 Basic ${Buffer.from('me:pw').toString('base64')}`);
  });
  it('a registry without the search API (404) is "Unexpected status code 404"', async () => {
    answer(404, '404 page not found');
    await assert.rejects(searchRepositories(`${reg.host}/x`, { insecure: [reg.host] }), new SystemError('Unexpected status code 404'));
  });
  it('a bad limit is refused after the ping, before the search', async () => {
    seen.length = 0;
    answer(200, '{"results":[]}');
    await assert.rejects(searchRepositories(`${reg.host}/x`, { insecure: [reg.host], limit: 0 }), /Limit 0 is outside the range/);
    assert.deepEqual(seen, ['/v1/_ping -']);
  });
  it('an index that does not answer is an invalid registry endpoint', async () => {
    await assert.rejects(searchRepositories('127.0.0.1:1/x', { insecure: ['127.0.0.1:1'] }), (e: unknown) => {
      assert.ok(e instanceof BerthError);
      assert.match(e.message, /^invalid registry endpoint "http:\/\/127\.0\.0\.1:1\/v1\/": Get "http:\/\/127\.0\.0\.1:1\/v1\/_ping": dial tcp 127\.0\.0\.1:1: connect: connection refused$/);
      return true;
    });
  });
});
