/**
 * ScopedRoot on a hand-made root with hostile symlinks: every path resolves inside the root
 * (or into a mount's source), whatever the links say; removeAt never follows a link.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { containerPathOf, goFileMode } from './filesystem.js';
import { removeAt, ScopedPathError, ScopedRoot } from './scoped-root.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-scoped-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const root = path.join(tmp, 'root');
const outside = path.join(tmp, 'outside');
const volume = path.join(tmp, 'volume');
fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
fs.mkdirSync(path.join(root, 'data'));
fs.mkdirSync(path.join(root, 'tmp', 'a'), { recursive: true });
fs.mkdirSync(outside);
fs.mkdirSync(volume);
fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'inside');
fs.writeFileSync(path.join(outside, 'passwd'), 'OUTSIDE');
fs.writeFileSync(path.join(volume, 'v.txt'), 'volume');
fs.symlinkSync(outside, path.join(root, 'abs')); // absolute: the host's outside dir on a naive join
fs.symlinkSync('../../../../../../..' + outside, path.join(root, 'tmp', 'a', 'up'));
fs.symlinkSync('/etc', path.join(root, 'etclink'));
fs.symlinkSync('loop2', path.join(root, 'loop1'));
fs.symlinkSync('loop1', path.join(root, 'loop2'));
fs.symlinkSync('/', path.join(root, 'rootlink'));
fs.symlinkSync('/data/..', path.join(root, 'datadotdot'));
fs.mkdirSync(path.join(root, 'outside-named'));
fs.mkdirSync(path.join(root, tmp.slice(1), 'outside'), { recursive: true });
fs.writeFileSync(path.join(root, tmp.slice(1), 'outside', 'passwd'), 'container copy');

const scoped = new ScopedRoot(root, [{ destination: '/data', source: volume, readOnly: false }]);
after(() => scoped.close());

function read(p: string, followLast = true): string | undefined {
  const r = scoped.resolve(p, { followLast });
  try {
    return r.fd === undefined ? undefined : fs.readFileSync(`/proc/self/fd/${r.fd}`, 'utf8');
  } finally {
    r.close();
  }
}

function canonical(p: string, followLast = true): string {
  const r = scoped.resolve(p, { followLast });
  r.close();
  return r.containerPath;
}

describe('ScopedRoot', () => {
  it('resolves plain paths, ".." never above the root', () => {
    assert.equal(read('/etc/passwd'), 'inside');
    assert.equal(read('/../../../etc/passwd'), 'inside');
    assert.equal(read('etc/../etc/./passwd'), 'inside');
    assert.equal(canonical('/'), '/');
    assert.equal(canonical('/tmp/a/..'), '/tmp');
  });

  it('follows symlinks in the scope of the root, never out of it', () => {
    // /abs -> <tmp>/outside: inside the container that is <root><tmp>/outside.
    assert.equal(read('/abs/passwd'), 'container copy');
    assert.equal(read('/tmp/a/up/passwd'), 'container copy');
    assert.equal(read('/etclink/passwd'), 'inside');
    assert.equal(read(`/rootlink/rootlink/etc/passwd`), 'inside');
    assert.equal(canonical('/abs'), `${tmp}/outside`);
    assert.equal(canonical('/datadotdot'), '/');
  });

  it('does not follow the last component unless asked', () => {
    const r = scoped.resolve('/abs', { followLast: false });
    try {
      assert.ok(r.stat?.isSymbolicLink());
      assert.equal(r.containerPath, '/abs');
    } finally {
      r.close();
    }
  });

  it('reports missing paths, non-directories and loops', () => {
    assert.equal(read('/etc/nothing'), undefined);
    assert.throws(() => scoped.resolve('/nothing/x', { followLast: true }), (e: unknown) => e instanceof ScopedPathError && e.code === 'ENOENT');
    assert.throws(() => scoped.resolve('/etc/passwd/x', { followLast: true }), (e: unknown) => e instanceof ScopedPathError && e.code === 'ENOTDIR');
    assert.throws(() => scoped.resolve('/loop1', { followLast: true }), (e: unknown) => e instanceof ScopedPathError && e.code === 'ELOOP');
    assert.throws(() => scoped.resolve('/a\0b', { followLast: true }), /NUL/);
  });

  it('switches to a mount source at its destination, and back out with ".."', () => {
    assert.equal(read('/data/v.txt'), 'volume');
    const r = scoped.resolve('/data/v.txt', { followLast: true });
    assert.equal(r.mount?.source, volume);
    r.close();
    assert.equal(read('/data/../etc/passwd'), 'inside');
  });

  it('makes missing directories beneath the root with mkdirs', () => {
    const r = scoped.resolve('/abs/new/deeper/leaf', { followLast: true, mkdirs: true });
    r.close();
    assert.ok(fs.statSync(path.join(root, tmp.slice(1), 'outside', 'new', 'deeper')).isDirectory());
    assert.ok(!fs.existsSync(path.join(outside, 'new')));
  });

  it('removeAt removes a tree without following links', () => {
    fs.mkdirSync(path.join(root, 'tmp', 'victim', 'sub'), { recursive: true });
    fs.symlinkSync(outside, path.join(root, 'tmp', 'victim', 'sub', 'link'));
    const r = scoped.resolve('/tmp', { followLast: true });
    try {
      removeAt(r.fd!, 'victim');
    } finally {
      r.close();
    }
    assert.ok(!fs.existsSync(path.join(root, 'tmp', 'victim')));
    assert.deepEqual(fs.readdirSync(outside), ['passwd']);
  });
});

describe('archive helpers', () => {
  it('turns st_mode into Go FileMode bits', () => {
    assert.equal(goFileMode(0o40755), 2 ** 31 + 0o755);
    assert.equal(goFileMode(0o120777), 2 ** 27 + 0o777);
    assert.equal(goFileMode(0o100644), 0o644);
    assert.equal(goFileMode(0o104755), 2 ** 23 + 0o755);
    assert.equal(goFileMode(0o20666), 2 ** 26 + 2 ** 21 + 0o666);
  });

  it('keeps a trailing "/" or "/." as "follow the last component"', () => {
    assert.deepEqual(containerPathOf('etc/passwd'), { abs: '/etc/passwd', followLast: false, base: 'passwd' });
    assert.deepEqual(containerPathOf('/etc/'), { abs: '/etc/', followLast: true, base: 'etc' });
    assert.deepEqual(containerPathOf('/etc/.'), { abs: '/etc', followLast: true, base: '.' });
    assert.deepEqual(containerPathOf('/'), { abs: '/', followLast: true, base: '/' });
    assert.throws(() => containerPathOf(''), /path/);
  });
});
