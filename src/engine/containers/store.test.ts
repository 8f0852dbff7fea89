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
  it("legacy links: a link's name finds its target; renames of either side carry over, on disk too", () =>
    withRoot(async (root) => {
      const store = new ContainerStore(root);
      const [target, parent] = [store.newId(), store.newId()];
      store.save({ id: target, name: '/db', hostConfig: {} } as ContainerRecord);
      store.save({ id: parent, name: '/web', hostConfig: { Links: ['/db:/web/al'] } } as unknown as ContainerRecord);
      assert.equal(store.find('web/al')?.id, target);
      assert.equal(store.find('/web/al')?.id, target);
      assert.equal(store.find('web/other'), undefined);
      assert.equal(store.find('db/al'), undefined, 'under its parent only');
      assert.deepEqual(store.linkNames(), new Map([['/db', ['/web/al']]]));
      store.rename(store.get('db'), '/db2');
      store.rename(store.get('web'), '/web2');
      assert.equal(store.find('web2/al')?.id, target);
      assert.equal(store.find('web/al'), undefined);
      assert.deepEqual(new ContainerStore(root).get('web2').hostConfig.Links, ['/db2:/web2/al']);
    }));

  it('saveSoon: at once in memory, on disk a moment later; a save or remove before that supersedes it', () =>
    withRoot(async (root) => {
      const store = new ContainerStore(root);
      const id = store.newId();
      const file = path.join(store.dir(id), 'container.json');
      const onDisk = (): string | undefined => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string }).name : undefined);
      store.save({ id, name: '/a' } as ContainerRecord);
      store.saveSoon({ id, name: '/b' } as ContainerRecord);
      assert.equal(store.find(id)?.name, '/b');
      assert.equal(store.find('b')?.id, id);
      assert.equal(onDisk(), '/a', 'not written yet');
      assert.ok(await until(() => onDisk() === '/b'), 'written within a moment');

      // A save in between: its record stands, the held-back one is not written over it.
      store.saveSoon({ id, name: '/c' } as ContainerRecord);
      store.save({ id, name: '/d' } as ContainerRecord);
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(onDisk(), '/d');

      // A remove in between: nothing comes back.
      store.saveSoon({ id, name: '/e' } as ContainerRecord);
      store.remove(id);
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(fs.existsSync(store.dir(id)), false);
      assert.equal(store.find(id), undefined);

      // flush(): what is held back is written now.
      const other = store.newId();
      store.save({ id: other, name: '/f' } as ContainerRecord);
      store.saveSoon({ id: other, name: '/g' } as ContainerRecord);
      store.flush();
      assert.equal((JSON.parse(fs.readFileSync(path.join(store.dir(other), 'container.json'), 'utf8')) as { name: string }).name, '/g');
    }));

  it('rm: the record goes at once, the directory is renamed away and removed in the background', () =>
    withRoot(async (root) => {
      const store = new ContainerStore(root);
      const id = store.newId();
      store.save({ id, name: '/web' } as ContainerRecord);
      fs.writeFileSync(path.join(store.dir(id), `${id}-json.log`), 'log\n');
      store.remove(id);
      assert.equal(store.find(id), undefined);
      assert.equal(fs.existsSync(store.dir(id)), false);
      assert.ok(await until(() => fs.readdirSync(root).filter((n) => !n.startsWith('.spare-')).length === 0), String(fs.readdirSync(root)));
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
      const notSpare = (): string[] => fs.readdirSync(root).filter((n) => !n.startsWith('.spare-'));
      assert.ok(await until(() => notSpare().length === 1), String(fs.readdirSync(root)));
    }));

  it("a new container's directory is a spare made ahead, renamed into place with its record; spares left by a daemon are removed at load", () =>
    withRoot(async (root) => {
      const first = new ContainerStore(root);
      const spares = (): string[] => fs.readdirSync(root).filter((n) => n.startsWith('.spare-'));
      first.save({ id: first.newId(), name: '/first' } as ContainerRecord);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(spares().length, 2, 'made ahead after the first');
      const id = first.newId();
      first.save({ id, name: '/fresh' } as ContainerRecord);
      assert.equal(spares().length, 1, 'one taken');
      assert.deepEqual(fs.readdirSync(path.join(root, id)), ['container.json']);
      assert.equal(fs.statSync(path.join(root, id)).mode & 0o777, 0o711);
      assert.equal(fs.statSync(path.join(root, id, 'container.json')).mode & 0o777, 0o600);
      assert.equal(JSON.parse(fs.readFileSync(path.join(root, id, 'container.json'), 'utf8')).name, '/fresh');
      // A directory of that id already there (not empty): the record goes into it as before.
      const other = first.newId();
      fs.mkdirSync(path.join(root, other));
      fs.writeFileSync(path.join(root, other, 'log.json'), '');
      await new Promise((resolve) => setImmediate(resolve));
      first.save({ id: other, name: '/other' } as ContainerRecord);
      assert.deepEqual(fs.readdirSync(path.join(root, other)).sort(), ['container.json', 'log.json']);
      await new Promise((resolve) => setImmediate(resolve)); // the first store's last spares made

      const second = new ContainerStore(root);
      assert.deepEqual(spares(), [], 'the first store\'s spares removed at load');
      assert.equal(second.get('fresh').id, id);
    }));
});
