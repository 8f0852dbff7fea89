import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../common/errors.js';
import { boolFilter, checkFilterKeys, filterMatch, globToRegExp, matchesLabels, matchesReference, parseTimestamp, pruneMatcher } from './image-filters.js';

describe('image filters', () => {
  it('refuses unknown keys', () => {
    assert.throws(() => checkFilterKeys({ nope: ['1'] }, ['dangling']), (e: unknown) => e instanceof InvalidArgumentError && /Invalid filter 'nope'/.test(e.message));
    checkFilterKeys({ dangling: ['true'] }, ['dangling']);
  });
  it('reads booleans', () => {
    assert.equal(boolFilter({}, 'dangling'), undefined);
    assert.equal(boolFilter({ dangling: ['true'] }, 'dangling'), true);
    assert.equal(boolFilter({ dangling: ['0'] }, 'dangling'), false);
    assert.throws(() => boolFilter({ dangling: ['maybe'] }, 'dangling'), /Invalid filter 'dangling=\[maybe\]'$/);
    assert.throws(() => boolFilter({ dangling: ['TRUE'] }, 'dangling'), /Invalid filter 'dangling=\[TRUE\]'$/, 'spelled exactly, as dockerd');
    assert.equal(boolFilter({ dangling: ['maybe', 'true'] }, 'dangling'), true, 'others beside a boolean are ignored');
    assert.throws(() => boolFilter({ dangling: ['true', '0'] }, 'dangling'), /Invalid filter 'dangling=\[true 0\]'$/, 'conflicting');
  });
  it('matches globs as Go path.Match', () => {
    assert.ok(globToRegExp('busy*').test('busybox'));
    assert.ok(!globToRegExp('*').test('a/b'));
    assert.ok(globToRegExp('[a-c]?').test('bx'));
    assert.ok(globToRegExp('a.b').test('a.b') && !globToRegExp('a.b').test('axb'));
  });
  it('matches references by name or repository', () => {
    const refs = ['busybox:latest', '127.0.0.1:5000/x/busybox:1', 'busybox@sha256:' + 'a'.repeat(64)];
    assert.ok(matchesReference('busybox', refs));
    assert.ok(matchesReference('busybox:lat*', refs));
    assert.ok(matchesReference('127.0.0.1:5000/*/busybox', refs));
    assert.ok(!matchesReference('busybox:1', refs));
    assert.ok(!matchesReference('web', refs));
  });
  it('matches names as dockerd (filters.Match): exactly, or a regular expression anywhere; a broken one matches nothing', () => {
    assert.ok(filterMatch('web', 'web'));
    assert.ok(filterMatch('eb', 'web'));
    assert.ok(filterMatch('^w.b$', 'web'));
    assert.ok(!filterMatch('^eb', 'web'));
    assert.ok(!filterMatch('(', 'web'), 'no exception');
    assert.ok(filterMatch('(', '('), 'but the same text matches');
  });

  it('matches labels', () => {
    const labels = { a: '1', 'b.c': 'x y' };
    assert.ok(matchesLabels(['a'], labels));
    assert.ok(matchesLabels(['a=1', 'b.c=x y'], labels));
    assert.ok(!matchesLabels(['a=2'], labels));
    assert.ok(!matchesLabels(['z'], null));
    assert.ok(matchesLabels(undefined, null));
  });
  it('parses timestamps', () => {
    assert.equal(parseTimestamp('1700000000'), 1_700_000_000_000);
    assert.equal(parseTimestamp('10m', 1_000_000), 1_000_000 - 600_000);
    assert.equal(parseTimestamp('1h30m', 10_000_000), 10_000_000 - 5_400_000);
    assert.equal(parseTimestamp('2024-01-02T03:04:05Z'), Date.parse('2024-01-02T03:04:05Z'));
    assert.throws(() => parseTimestamp('yesterday'), InvalidArgumentError);
  });
});

describe('prune filters', () => {
  it('until, label and label! as dockerd; other keys refused', () => {
    const old = { created: '2020-01-01T00:00:00Z', labels: { keep: '1', team: 'a' } };
    const fresh = { created: new Date().toISOString(), labels: {} };
    assert.equal(pruneMatcher({ until: ['1h'] })(old), true);
    assert.equal(pruneMatcher({ until: ['1h'] })(fresh), false);
    assert.equal(pruneMatcher({ label: ['team=a'] })(old), true);
    assert.equal(pruneMatcher({ label: ['team=b'] })(old), false);
    assert.equal(pruneMatcher({ 'label!': ['keep'] })(old), false);
    assert.equal(pruneMatcher({ 'label!': ['keep=2'] })(old), true);
    assert.equal(pruneMatcher({ 'label!': ['keep'] })(fresh), true);
    assert.throws(() => pruneMatcher({ dangling: ['true'] }), /Invalid filter 'dangling'/);
  });
});
