import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { RegistryClient } from './client.js';
import { listTags, nextPage } from './tags.js';

describe('tag listing', () => {
  let server: http.Server;
  let host = '';
  const pages: Record<string, { body: string; link?: string }> = {};
  before(async () => {
    server = http.createServer((req, res) => {
      const page = pages[req.url!];
      if (!page) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
      res.writeHead(200, { 'content-type': 'application/json', ...(page.link ? { link: page.link } : {}) }).end(page.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());
  const client = () => new RegistryClient(host, host, { insecure: true, auth: 'anonymous' });

  it('follows the Link header page after page', async () => {
    pages['/v2/a/b/tags/list'] = { body: '{"name":"a/b","tags":["v1","v2"]}', link: '</v2/a/b/tags/list?last=v2&n=2>; rel="next"' };
    pages['/v2/a/b/tags/list?last=v2&n=2'] = { body: '{"name":"a/b","tags":["latest"]}' };
    assert.deepEqual(await listTags(client(), 'a/b'), ['v1', 'v2', 'latest']);
  });

  it('takes null tags as none; refuses what is not a tag list, and an unknown repository', async () => {
    pages['/v2/empty/tags/list'] = { body: '{"name":"empty","tags":null}' };
    assert.deepEqual(await listTags(client(), 'empty'), []);
    pages['/v2/bad/tags/list'] = { body: '{"tags":["../x"]}' };
    await assert.rejects(listTags(client(), 'bad', { retries: 1 }), /tags of bad: the registry sent a tag list with something other than tags/);
    pages['/v2/notjson/tags/list'] = { body: 'nope' };
    await assert.rejects(listTags(client(), 'notjson', { retries: 1 }), /not JSON/);
    await assert.rejects(listTags(client(), 'missing', { retries: 1 }), /repository name not known to registry/);
  });

  it('nextPage: the rel="next" target on the same registry only', () => {
    const base = 'http://127.0.0.1:5000';
    assert.equal(nextPage(null, '/v2/x/tags/list', base), undefined);
    assert.equal(nextPage('</v2/x/tags/list?last=b&n=100>; rel="next"', '/v2/x/tags/list', base), '/v2/x/tags/list?last=b&n=100');
    assert.throws(() => nextPage('<http://elsewhere:1/v2/x/tags/list?last=b>; rel="next"', '/v2/x/tags/list', base), /another host/);
  });
});
