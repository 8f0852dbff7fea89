import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { TreeDeleter } from './fsop.js';

const isRoot = process.getuid?.() === 0;
const tmps: string[] = [];
after(() => {
  for (const d of tmps) {
    spawnSync('umount', ['-R', '-l', d], { stdio: 'ignore' });
    fs.rmSync(d, { recursive: true, force: true });
  }
});
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-rmtree-'));
  tmps.push(d);
  return d;
}

describe('TreeDeleter (berth-fsop rmtree)', () => {
  it('removes a whole tree beneath its root without following symlinks out of it', async () => {
    const root = tmpdir();
    const outside = tmpdir();
    fs.writeFileSync(path.join(outside, 'keep'), 'outside');
    const tree = path.join(root, 'trash', 't1');
    fs.mkdirSync(path.join(tree, 'a/b/c'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'a/b/c/file'), 'x');
    fs.writeFileSync(path.join(tree, 'top'), 'y');
    fs.symlinkSync(outside, path.join(tree, 'a/link-dir'));
    fs.symlinkSync(path.join(outside, 'keep'), path.join(tree, 'link-file'));
    spawnSync('mkfifo', [path.join(tree, 'a/fifo')]);
    fs.chmodSync(path.join(tree, 'a/b'), 0o500); // read-only: root empties it all the same, as rm -rf
    const deleter = new TreeDeleter(root);
    try {
      if (!isRoot) fs.chmodSync(path.join(tree, 'a/b'), 0o755);
      await deleter.remove(tree);
      assert.equal(fs.existsSync(tree), false);
      assert.deepEqual(fs.readdirSync(path.join(root, 'trash')), []);
      assert.equal(fs.readFileSync(path.join(outside, 'keep'), 'utf8'), 'outside', 'a symlink target outside is untouched');
      await deleter.remove(tree); // not there: not an error
      await deleter.remove(path.join(outside, 'nothing')); // outside the root: fs.rm, force
    } finally {
      deleter.close();
    }
  });

  it('never deletes across a mount point: what is mounted below stays, and the error names it', { skip: !isRoot && 'needs root' }, async () => {
    const root = tmpdir();
    const tree = path.join(root, 't2');
    fs.mkdirSync(path.join(tree, 'x/mnt'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'x/other'), 'gone');
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(tree, 'x/mnt')]).status, 0);
    fs.writeFileSync(path.join(tree, 'x/mnt/precious'), 'kept');
    const deleter = new TreeDeleter(root);
    try {
      await assert.rejects(deleter.remove(tree), /x\/mnt \(a mount point\)/);
      assert.equal(fs.readFileSync(path.join(tree, 'x/mnt/precious'), 'utf8'), 'kept');
      assert.equal(fs.existsSync(path.join(tree, 'x/other')), false, 'the rest went');
      await assert.rejects(deleter.remove(path.join(tree, 'x/mnt')), /mount point/);
      assert.equal(spawnSync('umount', [path.join(tree, 'x/mnt')]).status, 0);
      await deleter.remove(tree);
      assert.equal(fs.existsSync(tree), false);
    } finally {
      deleter.close();
    }
  });
});
