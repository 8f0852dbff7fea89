import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { SpareDirs } from './spare-dirs.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('SpareDirs', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spares-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const name = (dir: string) => (): string => path.join(dir, `spare-${n++}`);

  it('hands out directories made ahead, with their subdirectories and modes, and makes more after each', async () => {
    const dir = fs.mkdtempSync(path.join(root, 'a-'));
    const spares = new SpareDirs({ name: name(dir), mode: 0o711, subdirs: [['fs', 0o755], ['work', 0o700]], count: 2 });
    assert.equal(spares.take(), undefined, 'none before a turn of the event loop');
    await nextTurn();
    assert.equal(fs.readdirSync(dir).length, 2, 'count of them made');
    const first = spares.take();
    assert.ok(first);
    assert.equal(fs.statSync(first).mode & 0o7777, 0o711);
    assert.equal(fs.statSync(path.join(first, 'fs')).mode & 0o7777, 0o755);
    assert.equal(fs.statSync(path.join(first, 'work')).mode & 0o7777, 0o700);
    fs.renameSync(first, path.join(dir, 'taken'));
    const second = spares.take();
    assert.ok(second && second !== first);
    assert.equal(spares.take(), undefined, 'both taken, the next is not made yet');
    await nextTurn();
    assert.ok(spares.take(), 'made again after the takes');
  });

  it('gives none once they cannot be made (the caller makes its own), and discards what is ready', async () => {
    const dir = fs.mkdtempSync(path.join(root, 'b-'));
    const spares = new SpareDirs({ name: name(dir), mode: 0o700 });
    spares.fill();
    await nextTurn();
    const ready = fs.readdirSync(dir);
    assert.equal(ready.length, 2);
    spares.discard();
    assert.deepEqual(fs.readdirSync(dir), [], 'the ready ones removed');
    assert.equal(spares.take(), undefined);

    const gone = path.join(root, 'gone');
    const broken = new SpareDirs({ name: name(gone), mode: 0o700 });
    broken.fill();
    await nextTurn();
    assert.equal(broken.take(), undefined, 'no spare in a directory that does not exist, and no throw');
    await nextTurn();
    assert.equal(fs.existsSync(gone), false);
  });
});
