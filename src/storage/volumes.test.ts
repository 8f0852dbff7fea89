import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { ConflictError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { ANONYMOUS_LABEL, mountErrorText, needsMount, validateDriverOptions, VolumeStore, validateVolumeName } from './volumes.js';

const tmps: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-vol-'));
  tmps.push(d);
  return d;
}
after(() => {
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

describe('volume names', () => {
  it('follows Docker: [a-zA-Z0-9][a-zA-Z0-9_.-]+', () => {
    for (const n of ['ab', 'my-vol', 'a.b_c', 'A1', 'x'.repeat(255)]) validateVolumeName(n);
    for (const n of ['', 'a', '.x', '-x', '_x', 'a/b', '..', '../x', 'a b', 'a:b', 'x'.repeat(256), 7]) {
      assert.throws(() => validateVolumeName(n), InvalidArgumentError, String(n));
    }
  });
});

describe('local driver options', () => {
  it("are checked as dockerd's local driver checks them", () => {
    validateDriverOptions({});
    validateDriverOptions({ type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    validateDriverOptions({ type: 'none', device: '/x', o: 'bind', size: '0' });
    assert.throws(() => validateDriverOptions({ colour: 'red' }), /DriverOpts: invalid option: "colour"/);
    assert.throws(() => validateDriverOptions({ colour: 'red' }, 'bv'), /^InvalidArgumentError: create bv: invalid option: "colour"$|create bv: invalid option: "colour"/, "dockerd's words for a named volume");
    assert.throws(() => validateDriverOptions({ device: '/x' }), /missing required option: "type"/);
    assert.throws(() => validateDriverOptions({ o: 'bind', type: 'none' }), /missing required option: "device"/);
    assert.throws(() => validateDriverOptions({ type: 'none', device: '/x', size: '10m' }), /quota size requested but no quota support/);
    assert.throws(() => validateDriverOptions({ type: 1 as never, device: '/x' }), /"type": must be a string/);
  });

  it("a mount that fails is named as moby/sys/mount names it (flags, then the other options, a password hidden)", () => {
    assert.equal(mountErrorText('/dev/x', '/v/_data', ''), 'mount /dev/x:/v/_data');
    assert.equal(mountErrorText('/src', '/v/_data', 'bind'), 'mount /src:/v/_data, flags: 0x1000');
    assert.equal(mountErrorText('/src', '/v/_data', 'ro,bind,rw'), 'mount /src:/v/_data, flags: 0x1001');
    assert.equal(mountErrorText('tmpfs', '/v/_data', 'size=1m,noexec,uid=1000'), 'mount tmpfs:/v/_data, flags: 0x8, data: size=1m,uid=1000');
    assert.equal(mountErrorText('//h/s', '/v/_data', 'username=u,password=secret'), 'mount //h/s:/v/_data, data: username=u,password=********');
  });

  it('are kept with the volume; only a volume with a type or a device is mounted', async () => {
    const v = new VolumeStore(tmpdir());
    const t = await v.create({ name: 'tmp', options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    assert.deepEqual(v.inspect('tmp').Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    assert.ok(needsMount(t));
    assert.ok(!needsMount(await v.create({ name: 'plain' })));
    // A plain volume: mount and unmount do nothing (no mount(8) run, no root needed).
    await v.mount('plain');
    await v.unmount('plain');
  });
});

describe('VolumeStore', () => {
  it('creates, inspects, lists with filters, removes', async () => {
    const used = new Set<string>();
    const v = new VolumeStore(tmpdir(), { inUse: (n) => used.has(n) });
    const a = await v.create({ name: 'data', labels: { app: 'web', tier: 'db' } });
    assert.equal(a.Mountpoint, path.join(v.root, 'volumes/data/_data'));
    assert.equal(a.Driver, 'local');
    assert.ok(fs.statSync(a.Mountpoint).isDirectory());
    assert.deepEqual(v.inspect('data'), a);
    assert.deepEqual(await v.create({ name: 'data' }), a, 'creating an existing volume returns it');
    const anon = await v.create();
    assert.match(anon.Name, /^[a-f0-9]{64}$/);
    assert.ok(ANONYMOUS_LABEL in anon.Labels);
    await v.create({ name: 'cache' });

    assert.deepEqual(v.list().map((x) => x.Name).sort(), [anon.Name, 'cache', 'data'].sort());
    assert.deepEqual(v.list({ name: ['ach'] }).map((x) => x.Name), ['cache']);
    assert.deepEqual(v.list({ label: ['app'] }).map((x) => x.Name), ['data']);
    assert.deepEqual(v.list({ label: ['app=web', 'tier=db'] }).map((x) => x.Name), ['data']);
    assert.deepEqual(v.list({ label: ['app=db'] }), []);
    used.add('data');
    assert.deepEqual(v.list({ dangling: false }).map((x) => x.Name), ['data']);
    assert.ok(!v.list({ dangling: true }).some((x) => x.Name === 'data'));

    await assert.rejects(v.remove('data'), ConflictError);
    // dockerd's words, with the users when the caller names them.
    await assert.rejects(v.remove('data'), { message: 'remove data: volume is in use' });
    await assert.rejects(v.remove('data', () => ['c1', 'c2']), { message: 'remove data: volume is in use - [c1, c2]' });
    assert.deepEqual(v.list({ dangling: true }, () => ['c1']), [], 'a list of users counts as in use');
    await assert.rejects(v.remove('nope'), NotFoundError);
    await assert.rejects(v.remove('nope'), { message: 'get nope: no such volume' });
    // A name no volume can have is not found (dockerd's 404), and no path is made of it.
    await assert.rejects(v.remove('../x'), (e) => e instanceof NotFoundError && e.message === 'get ../x: no such volume');
    assert.throws(() => v.inspect('y'), (e) => e instanceof NotFoundError && e.message === 'get y: no such volume');
    await assert.rejects(v.create({ name: 'a' }), /volume name is too short, names should be at least two alphanumeric characters/);
    await assert.rejects(v.create({ name: 'x', driver: 'nfs' }), (e) => e instanceof NotFoundError && e.message === 'create x: error looking up volume plugin nfs: plugin "nfs" not found');
    await assert.rejects(v.create({ name: 'x', options: { type: 'tmpfs' } }), /create x: missing required option: "device"/);
    used.delete('data');
    await v.remove('data');
    assert.equal(fs.existsSync(path.join(v.root, 'volumes/data')), false);
    assert.throws(() => v.inspect('data'), NotFoundError);
  });

  it('prunes unused anonymous volumes (all: named ones too)', async () => {
    const used = new Set<string>();
    const v = new VolumeStore(tmpdir(), { inUse: (n) => used.has(n) });
    const a1 = await v.create();
    const a2 = await v.create();
    fs.writeFileSync(path.join(a1.Mountpoint, 'f'), '12345');
    await v.create({ name: 'named' });
    used.add(a2.Name);
    const r = await v.prune();
    assert.deepEqual(r, { deleted: [a1.Name], spaceReclaimed: 5 });
    const r2 = await v.prune({ all: true });
    assert.deepEqual(r2.deleted, ['named']);
    assert.deepEqual(v.list().map((x) => x.Name), [a2.Name]);
  });

  it('survives a crash mid-create: temp dirs of dead processes vanish, metadata is whole', async () => {
    const root = tmpdir();
    const v = new VolumeStore(root);
    await v.create({ name: 'ok' });
    const stale = path.join(root, 'volumes', '.tmp-999999999-abcd');
    fs.mkdirSync(path.join(stale, '_data'), { recursive: true });
    fs.writeFileSync(path.join(stale, 'volume.json'), '{"Na');
    const v2 = new VolumeStore(root);
    assert.equal(fs.existsSync(stale), false);
    assert.deepEqual(v2.list().map((x) => x.Name), ['ok']);
    assert.deepEqual(fs.readdirSync(path.join(root, 'volumes/ok')).sort(), ['_data', 'volume.json']);
    JSON.parse(fs.readFileSync(path.join(root, 'volumes/ok/volume.json'), 'utf8'));
  });

  it('copies image content into an empty volume once, keeping modes and links, never through symlinks', async () => {
    const v = new VolumeStore(tmpdir());
    const rootfs = tmpdir();
    const src = path.join(rootfs, 'vol');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'seed.txt'), 'seed');
    fs.chmodSync(path.join(src, 'seed.txt'), 0o640);
    fs.linkSync(path.join(src, 'seed.txt'), path.join(src, 'hard.txt'));
    fs.symlinkSync('/etc/passwd', path.join(src, 'sub', 'link'));
    fs.chmodSync(src, 0o750);
    fs.utimesSync(path.join(src, 'seed.txt'), 1000, 1000);
    const vol = await v.create({ name: 'seeded' });

    assert.equal(await v.copyUp('seeded', src, rootfs), true);
    const d = vol.Mountpoint;
    assert.equal(fs.readFileSync(path.join(d, 'seed.txt'), 'utf8'), 'seed');
    const st = fs.statSync(path.join(d, 'seed.txt'));
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.mtimeMs, 1000_000);
    assert.equal(st.ino, fs.statSync(path.join(d, 'hard.txt')).ino);
    assert.equal(fs.readlinkSync(path.join(d, 'sub', 'link')), '/etc/passwd');
    assert.equal(fs.statSync(d).mode & 0o7777, 0o750);

    fs.writeFileSync(path.join(src, 'later.txt'), 'x');
    assert.equal(await v.copyUp('seeded', src, rootfs), false, 'not empty: no copy');
    assert.equal(fs.existsSync(path.join(d, 'later.txt')), false);

    // A mount point reached through a symlink (here: out of the rootfs) is refused.
    const outside = tmpdir();
    fs.writeFileSync(path.join(outside, 'secret'), 's');
    fs.symlinkSync(outside, path.join(rootfs, 'evil'));
    await v.create({ name: 'other' });
    await assert.rejects(v.copyUp('other', path.join(rootfs, 'evil'), rootfs), InvalidArgumentError);
    await assert.rejects(v.copyUp('other', outside, rootfs), InvalidArgumentError);
    assert.deepEqual(fs.readdirSync(v.mountpoint('other')), []);
    assert.equal(await v.copyUp('other', path.join(rootfs, 'absent'), rootfs), false);
  });
});
