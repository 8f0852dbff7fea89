import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { parseMirror, throughMirrors } from './mirrors.js';

describe('registry mirrors', () => {
  it("takes http(s) URLs without a path, as dockerd's ValidateMirror", () => {
    assert.deepEqual(parseMirror('https://mirror.example:5000'), { url: 'https://mirror.example:5000/', host: 'mirror.example:5000', secure: true });
    assert.deepEqual(parseMirror('http://127.0.0.1:5000/'), { url: 'http://127.0.0.1:5000/', host: '127.0.0.1:5000', secure: false });
    for (const [bad, message] of [
      ['ftp://mirror.example', /invalid mirror: unsupported scheme "ftp"/],
      ['mirror.example', /is not a valid URI|unsupported scheme/],
      ['https://mirror.example/v2/', /path, query, or fragment at end of the URI/],
      ['https://mirror.example/?x=1', /path, query, or fragment/],
      ['https://user:pw@mirror.example', /credentials in the URI/],
    ] as const) {
      assert.throws(() => parseMirror(bad), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message) && e.message.startsWith('registry-mirrors: '), bad);
    }
  });

  it('asks each mirror in turn, then Docker Hub; the last failure is the one thrown', async () => {
    const [a, b] = [parseMirror('http://a.example'), parseMirror('http://b.example')];
    const asked: string[] = [];
    const skipped: string[] = [];
    const attempt = (failing: Set<string>) => async (m: { host: string } | undefined) => {
      const name = m?.host ?? 'hub';
      asked.push(name);
      if (failing.has(name)) throw new Error(`${name} failed`);
      return name;
    };
    assert.equal(await throughMirrors([a, b], attempt(new Set(['a.example'])), (m) => skipped.push(m.host)), 'b.example');
    assert.deepEqual([asked, skipped], [['a.example', 'b.example'], ['a.example']]);
    asked.length = 0;
    await assert.rejects(throughMirrors([a, b], attempt(new Set(['a.example', 'b.example', 'hub']))), /hub failed/);
    assert.deepEqual(asked, ['a.example', 'b.example', 'hub']);
    asked.length = 0;
    assert.equal(await throughMirrors([], attempt(new Set())), 'hub');
  });
});
