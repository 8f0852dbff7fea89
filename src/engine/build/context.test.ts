import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { globMatch, isArchive, hashSources, SourceTree } from './context.js';

describe('build context sources', () => {
  let dir: string;
  let outside: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ctx-'));
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-outside-'));
    fs.writeFileSync(path.join(outside, 'secret'), 'host secret\n');
    fs.mkdirSync(path.join(dir, 'src', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a.conf'), 'a');
    fs.writeFileSync(path.join(dir, 'b.conf'), 'b');
    fs.writeFileSync(path.join(dir, 'src', 'main.c'), 'int main;');
    fs.writeFileSync(path.join(dir, 'src', 'deep', 'x.o'), 'obj');
    fs.writeFileSync(path.join(dir, 'src', 'keep.o'), 'kept');
    fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'abs-link'));
    fs.symlinkSync('../../../../../../..' + outside, path.join(dir, 'up-link'));
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it("matches Go's filepath.Match", () => {
    assert.ok(globMatch('*.conf', 'a.conf'));
    assert.ok(!globMatch('*.conf', 'dir/a.conf'));
    assert.ok(globMatch('src/*.[ch]', 'src/main.c'));
    assert.ok(globMatch('?.conf', 'b.conf'));
    assert.ok(!globMatch('[!ab].conf', 'a.conf'));
  });

  it('resolves paths and wildcards, honours .dockerignore with exceptions', () => {
    const tree = new SourceTree(dir, 'context', '*.o\n**/*.o\n!src/keep.o\n');
    try {
      assert.deepEqual(
        tree.resolve(['*.conf'], 'COPY').map((s) => s.path),
        ['/a.conf', '/b.conf'],
      );
      const src = tree.resolve(['/src/../src'], 'COPY')[0]!;
      assert.deepEqual(
        [...tree.walk(src)].map((e) => e.rel),
        ['', 'deep', 'keep.o', 'main.c'],
      );
      assert.throws(() => tree.resolve(['src/deep/x.o'], 'COPY'), /COPY failed: file not found in build context or excluded by \.dockerignore: stat src\/deep\/x\.o/);
      assert.throws(() => tree.resolve(['../etc/passwd'], 'COPY'), /^InvalidArgumentError: COPY failed: forbidden path outside the build context: \.\.\/etc\/passwd \(\)$/);
      assert.throws(() => tree.resolve(['*.none'], 'ADD'), /ADD failed: no source files were specified/);
    } finally {
      tree.close();
    }
  });

  it('never follows a symlink out of the context', () => {
    const tree = new SourceTree(dir, 'context');
    try {
      // Both links resolve inside the context, where their targets do not exist.
      assert.throws(() => tree.resolve(['abs-link'], 'COPY'), /file not found/);
      assert.throws(() => tree.resolve(['up-link/secret'], 'COPY'), /file not found/);
      assert.equal(tree.readFile('abs-link'), undefined);
      // Inside a copied directory a symlink is an entry, not followed.
      const root = tree.resolve(['/'], 'COPY')[0]!;
      const link = [...tree.walk(root)].find((e) => e.rel === 'abs-link');
      assert.equal(link?.linkname, path.join(outside, 'secret'));
    } finally {
      tree.close();
    }
  });

  it('hashes content, not times', async () => {
    const tree = new SourceTree(dir, 'context');
    try {
      const h1 = await hashSources(tree, tree.resolve(['src'], 'COPY'));
      assert.match(h1, /^dir:[0-9a-f]{64}$/);
      fs.utimesSync(path.join(dir, 'src', 'main.c'), new Date(0), new Date(0));
      assert.equal(await hashSources(tree, tree.resolve(['src'], 'COPY')), h1);
      fs.writeFileSync(path.join(dir, 'src', 'main.c'), 'int main(void);');
      assert.notEqual(await hashSources(tree, tree.resolve(['src'], 'COPY')), h1);
      assert.match(await hashSources(tree, tree.resolve(['a.conf', 'b.conf'], 'COPY')), /^multi:/);
    } finally {
      tree.close();
    }
  });

  it('tells tar archives (plain, gzip, zstd, xz, bzip2) from other files', async () => {
    const arch = path.join(dir, 'arch');
    fs.mkdirSync(arch);
    execFileSync('tar', ['-C', dir, '-cf', path.join(arch, 'p.tar'), 'a.conf']);
    execFileSync('tar', ['-C', dir, '-czf', path.join(arch, 'g.tgz'), 'a.conf']);
    execFileSync('gzip', ['-k', path.join(dir, 'b.conf')]);
    assert.equal(await isArchive(path.join(arch, 'p.tar')), true);
    assert.equal(await isArchive(path.join(arch, 'g.tgz')), true);
    assert.equal(await isArchive(path.join(dir, 'b.conf.gz')), false);
    assert.equal(await isArchive(path.join(dir, 'a.conf')), false);
    for (const program of ['zstd', 'xz', 'bzip2']) {
      const packed = execFileSync(program, ['-c', '-q', path.join(arch, 'p.tar')]);
      fs.writeFileSync(path.join(arch, `p.tar.${program}`), packed);
      assert.equal(await isArchive(path.join(arch, `p.tar.${program}`)), true, program);
      fs.writeFileSync(path.join(arch, `conf.${program}`), execFileSync(program, ['-c', '-q', path.join(dir, 'a.conf')]));
      assert.equal(await isArchive(path.join(arch, `conf.${program}`)), false, program);
      fs.writeFileSync(path.join(arch, `cut.${program}`), packed.subarray(0, 12)); // corrupt: copied as a file, as moby does
      assert.equal(await isArchive(path.join(arch, `cut.${program}`)), false, program);
    }
  });
});
