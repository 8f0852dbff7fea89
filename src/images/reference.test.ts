import { test } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError, UnsupportedError } from '../common/errors.js';
import { dockerReference, familiarString, missingImageName, normalizeReference, parseReference } from './reference.js';

const hex = 'b385ca93e438646e95ec0a4cf9f3c066669358ef7a1035b95f067d4faaa4dd9a';
const digest = 'sha256:' + hex;

test('normalizes familiar names as Docker does', () => {
  const cases: Array<[string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/user/app:v1', 'docker.io/user/app:v1'],
    ['user/app', 'docker.io/user/app:latest'],
    ['user/nested/deep/app', 'docker.io/user/nested/deep/app:latest'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest'],
    ['127.0.0.1:5000/busybox:v2', '127.0.0.1:5000/busybox:v2'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b:c', 'localhost:5000/a/b:c'],
    ['example.com/a', 'example.com/a:latest'],
    ['Example.COM/a', 'Example.COM/a:latest'], // the domain may have uppercase
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['quay.io/some_org/some-app__x.y:Tag_1.0-rc', 'quay.io/some_org/some-app__x.y:Tag_1.0-rc'],
    ['a--b---c/d', 'docker.io/a--b---c/d:latest'],
    [`busybox@${digest}`, `docker.io/library/busybox@${digest}`],
    [`busybox:1.36@${digest}`, `docker.io/library/busybox@${digest}`], // the digest wins
    [`127.0.0.1:5000/x@${digest}`, `127.0.0.1:5000/x@${digest}`],
  ];
  for (const [input, want] of cases) assert.equal(normalizeReference(input), want, input);
});

test('parseReference keeps tag and digest and splits domain and path', () => {
  assert.deepEqual(parseReference(`127.0.0.1:5000/a/b:t@${digest}`), { domain: '127.0.0.1:5000', path: 'a/b', tag: 't', digest });
  assert.deepEqual(parseReference('busybox'), { domain: 'docker.io', path: 'library/busybox' });
  assert.deepEqual(dockerReference('busybox'), { domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
});

test('familiarString shortens Docker Hub names only', () => {
  assert.equal(familiarString(dockerReference('busybox')), 'busybox:latest');
  assert.equal(familiarString(dockerReference('user/app:1')), 'user/app:1');
  assert.equal(familiarString(dockerReference('127.0.0.1:5000/x')), '127.0.0.1:5000/x:latest');
  assert.equal(familiarString(dockerReference(`busybox@${digest}`)), `busybox@${digest}`);
  assert.equal(familiarString(dockerReference('docker.io/library/a/b')), 'library/a/b:latest');
});

test('rejects bad references with InvalidArgumentError', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /at least one component/],
    ['Busybox', /must be lowercase/],
    ['user/App', /must be lowercase/],
    ['127.0.0.1:5000/Upper', /must be lowercase/],
    [hex, /64-byte hexadecimal/],
    ['busybox:', /not a valid/],
    ['busybox:-tag', /not a valid/],
    ['busybox:' + 'a'.repeat(129), /not a valid/],
    ['busybox@sha256:abc', /not a valid/],
    ['busybox@sha256:' + hex.toUpperCase(), /64 lowercase hex/],
    ['busybox@' + hex, /not a valid/],
    ['/busybox', /not a valid/],
    ['busybox/', /not a valid/],
    ['a//b', /not a valid/],
    ['-a/b', /not a valid/],
    ['a/_b', /not a valid/],
    ['a/b..c', /not a valid/],
    ['a/b___c', /not a valid/],
    ['example.com:port/a', /not a valid/],
    ['-example.com/a', /not a valid/],
    ['a b', /not a valid/],
    ['a/b:c:d', /not a valid/],
    ['../../etc/passwd', /not a valid/],
    ['a/' + 'b'.repeat(260), /more than 255/],
    ['x'.repeat(2000), /longer than 1024/],
  ];
  for (const [input, message] of bad) {
    assert.throws(
      () => normalizeReference(input),
      (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
      input,
    );
  }
  assert.throws(() => normalizeReference('busybox@sha512:' + hex + hex), UnsupportedError);
});

test('pathological input is refused quickly', () => {
  const start = Date.now();
  for (const input of ['a' + '-'.repeat(500) + '!', 'a.'.repeat(400) + '!', 'a/'.repeat(400) + '!', 'A'.repeat(1000) + '/x']) {
    assert.throws(() => normalizeReference(input), InvalidArgumentError);
  }
  assert.ok(Date.now() - start < 1000);
});

test('missingImageName: as dockerd names a reference no image answers to', () => {
  assert.equal(missingImageName('nosuchimage'), 'nosuchimage:latest');
  assert.equal(missingImageName('docker.io/library/busybox'), 'busybox:latest');
  assert.equal(missingImageName('busybox:nosuchtag'), 'busybox:nosuchtag');
  assert.equal(missingImageName('localhost:5000/x/y'), 'localhost:5000/x/y:latest');
  const hex = 'a'.repeat(64);
  assert.equal(missingImageName(`x@sha256:${hex}`), `x@sha256:${hex}`, 'a digest gets no tag');
  assert.equal(missingImageName(hex), `sha256:${hex}`, 'a full ID reads as a digest');
  assert.equal(missingImageName('abc123'), 'abc123:latest', 'a short ID prefix parses as a name, as in dockerd');
  assert.equal(missingImageName('Not/Valid'), 'Not/Valid', 'what does not parse, as given');
});
