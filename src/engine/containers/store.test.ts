import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import type { ContainerRecord } from './record.js';
import { ContainerStore } from './store.js';

const until = async (ok: () => boolean): Promise<boolean> => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  return ok();
};

/** Runs fn with a fresh store root, removed after. */
async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
  try {
    await fn(root);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

describe('ContainerStore', () => {
  it('rm: the record goes at once, the directory is renamed away and removed in the background', () =>
    withRoot(async (root) => {
      const store = new ContainerStore(root);
      const id = store.newId();
      store.save({ id, name: '/web' } as ContainerRecord);
      fs.writeFileSync(path.join(store.dir(id), `${id}-json.log`), 'log\n');
      store.remove(id);
      assert.equal(store.find(id), undefined);
      assert.equal(fs.existsSync(store.dir(id)), false);
      assert.ok(await until(() => fs.readdirSync(root).length === 0), String(fs.readdirSync(root)));
      // Name free again, and a new store does not see it.
      assert.equal(store.claimableName('web'), '/web');
      assert.equal(new ContainerStore(root).list().length, 0);
    }));

  it('a trash directory left by a killed daemon is removed at load; records load', () =>
    withRoot(async (root) => {
      const first = new ContainerStore(root);
      const id = first.newId();
      first.save({ id, name: '/kept' } as ContainerRecord);
      fs.mkdirSync(path.join(root, `.trash-${'a'.repeat(64)}-1-2`, 'sub'), { recursive: true });
      const store = new ContainerStore(root);
      assert.equal(store.get('kept').id, id);
      assert.ok(await until(() => fs.readdirSync(root).length === 1), String(fs.readdirSync(root)));
    }));
});
