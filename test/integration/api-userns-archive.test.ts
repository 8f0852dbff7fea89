/**
 * A container in a user namespace of its own (UsernsMode "private", or any container of berthd
 * --userns-remap default: root inside is host uid base = 2^30 or above) seen through the
 * archive endpoints, with the docker CLI and a private berthd: its writable layer holds host
 * ids, but `docker commit`, `docker export` (running and stopped) and `docker cp` out carry the
 * ids the container sees (host id minus base; ids outside its range as the overflow id 65534,
 * as the kernel shows them), and capability sets as it reads them (plain, not tied to the host
 * uid of its root); `docker cp` in gives extracted files the host ids the container sees as the
 * tar's, directories made on the way belong to its root, and an id outside its range is
 * refused (as dockerd with --userns-remap does). `docker build` on such a daemon makes layers of
 * the ids its steps see.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import tar from 'tar-stream';

import { makeTar } from '../../src/storage/tar.testutil.js';
import { setxattr } from '../../src/storage/xattr.testutil.js';
import { savedTopLayer, startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip, poll, which } from '../helpers/engines.js';
import { socketRequest } from '../helpers/http.js';

const SETCAP = which('setcap', '/usr/sbin/setcap', '/sbin/setcap');
const GETCAP = which('getcap', '/usr/sbin/getcap', '/sbin/getcap') ?? 'getcap';
const skip = dockerdSkip || (!SETCAP ? 'needs setcap' : false);
const OVERFLOW = 65534;

/** uid:gid of every entry of a tar, by name (directories without their trailing "/"). */
async function tarOwners(bytes: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = tar.extract();
  ex.end(bytes);
  for await (const entry of ex) {
    out.set(entry.header.name.replace(/\/$/, ''), `${entry.header.uid}:${entry.header.gid}`);
    entry.resume();
  }
  return out;
}

/** The capability set of `file` in a tar, as getcap shows it after GNU tar extracts it with its xattrs. */
function capabilityIn(bytes: Buffer, file: string, work: string): string {
  const dir = fs.mkdtempSync(path.join(work, 'caps-'));
  const x = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-xf', '-', '-C', dir, file], { input: bytes, encoding: 'utf8' });
  assert.equal(x.status, 0, x.stderr);
  return spawnSync(GETCAP, [path.join(dir, file)], { encoding: 'utf8' }).stdout.trim();
}

/** A v3 (namespaced) security.capability value with cap_net_raw=ep for the root whose host uid is rootid. */
function nsCapability(rootid: number): string {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0x03000001, 0); // VFS_CAP_REVISION_3 | VFS_CAP_FLAGS_EFFECTIVE
  b.writeUInt32LE(1 << 13, 4); // permitted: CAP_NET_RAW
  b.writeUInt32LE(rootid, 20);
  return b.toString('hex');
}

describe('a container in its own user namespace through commit, export, cp and diff', { skip, timeout: 300_000 }, () => {
  let d: PrivateBerthd;
  let work = '';
  let id = '';
  let merged = '';
  let base = 0;

  const createPrivate = async (image: string, script: string): Promise<string> => {
    const body = JSON.stringify({ Image: image, Cmd: ['sh', '-c', script], HostConfig: { UsernsMode: 'private', NetworkMode: 'none' } });
    const r = await socketRequest(d.socket, 'POST', '/containers/create', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, body);
    assert.equal(r.status, 201, r.body);
    return (JSON.parse(r.body) as { Id: string }).Id;
  };
  const docker = (args: string[], input?: Buffer): Buffer => {
    const r = spawnSync('docker', args, { env: d.env, input, maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, `docker ${args.join(' ')}: ${r.stderr?.toString()}\n${d.logTail()}`);
    return r.stdout;
  };

  before(async () => {
    d = await startBerthd({ prefix: 'berthd-userns-ar-', extraArgs: ['--userns-remap', 'default'] });
    work = path.join(d.dir, 'work');
    fs.mkdirSync(work);
    d.loadImages('busybox');
    // An image whose layer holds a file with a (plain, v2) capability set, owned by root.
    const plain = d.dockerOk(['run', '-d', '--userns', 'host', '--network', 'none', 'busybox', 'sh', '-c', 'cp /bin/busybox /capped && touch /ready && sleep 300']).trim();
    const plainRoot = d.dockerOk(['inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', plain]).trim();
    assert.ok(await poll(() => fs.existsSync(path.join(plainRoot, 'ready')), 10_000));
    assert.equal(spawnSync(SETCAP!, ['cap_net_raw+ep', path.join(plainRoot, 'capped')]).status, 0);
    d.dockerOk(['commit', plain, 'capped-img']);
    d.dockerOk(['rm', '-f', plain]);

    id = await createPrivate('capped-img', 'test -e /made || { mkdir /d && echo x > /d/f && chown 1000:1001 /d/f && rm /bin/ls && touch /made; }; exec sleep 300');
    d.dockerOk(['start', id]);
    merged = d.dockerOk(['inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', id]).trim();
    assert.ok(await poll(() => fs.existsSync(path.join(merged, 'made')), 10_000), 'the container made its files');
    base = fs.statSync(merged).uid; // its root directory belongs to its root
    assert.ok(base >= 2 ** 30, `root inside is host uid ${base}`);
    assert.equal(fs.statSync(path.join(merged, 'd/f')).uid, base + 1000, 'the writable layer holds host ids');
    // From the host: a file of an id outside the range, and one with a capability set as
    // `setcap` run inside the container writes it (namespaced, naming its root's host uid).
    fs.writeFileSync(path.join(merged, 'outside'), 'host\n');
    fs.chownSync(path.join(merged, 'outside'), 4242, 4242);
    fs.writeFileSync(path.join(merged, 'nscap'), 'cap\n');
    fs.chownSync(path.join(merged, 'nscap'), base, base);
    setxattr(path.join(merged, 'nscap'), 'security.capability', nsCapability(base));
  });
  after(async () => {
    await d?.stop();
  });

  it('docker run works as the docker CLI sends it (OomScoreAdj 0 is written before the user namespace)', () => {
    const r = d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'id -u; cat /proc/self/oom_score_adj']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '0\n0\n');
  });

  it('shows the same ids inside as the archives do', () => {
    const inside = d.dockerOk(['exec', id, 'stat', '-c', '%n %u:%g', '/d/f', '/bin/busybox', '/outside', '/nscap']);
    assert.equal(inside, `/d/f 1000:1001\n/bin/busybox 0:0\n/outside ${OVERFLOW}:${OVERFLOW}\n/nscap 0:0\n`);
  });

  it('docker diff lists its changes', () => {
    const changes = d.dockerOk(['diff', id]).split('\n');
    for (const c of ['A /d', 'A /d/f', 'C /bin', 'D /bin/ls', 'A /outside', 'A /nscap']) assert.ok(changes.includes(c), `${c} in ${changes.join(', ')}`);
  });

  it('docker cp out and docker export carry its ids and capability sets, running or stopped', async () => {
    const cp = await tarOwners(docker(['cp', `${id}:/d`, '-']));
    assert.deepEqual([...cp], [['d', '0:0'], ['d/f', '1000:1001']]);
    for (const state of ['running', 'stopped']) {
      if (state === 'stopped') d.dockerOk(['stop', '-t', '0', id]);
      const exported = docker(['export', id]);
      const owners = await tarOwners(exported);
      assert.equal(owners.get('d/f'), '1000:1001', state);
      assert.equal(owners.get('bin/busybox'), '0:0', `${state}: an image file`);
      assert.equal(owners.get('outside'), `${OVERFLOW}:${OVERFLOW}`, state);
      assert.equal(owners.get('nscap'), '0:0', state);
      for (const file of ['capped', 'nscap']) {
        const cap = capabilityIn(exported, file, work);
        assert.match(cap, /cap_net_raw[=+]ep/, `${state}: ${file}`);
        assert.doesNotMatch(cap, /rootid/, `${state}: ${file} has a plain capability set, as the container reads it`);
      }
    }
    d.dockerOk(['start', id]);
  });

  it('docker commit makes a layer of its ids, and a container of the image sees them', async () => {
    d.dockerOk(['commit', id, 'userns-img']);
    const layer = savedTopLayer(d, 'userns-img', work);
    const owners = await tarOwners(layer);
    assert.equal(owners.get('d'), '0:0');
    assert.equal(owners.get('d/f'), '1000:1001');
    assert.equal(owners.get('outside'), `${OVERFLOW}:${OVERFLOW}`);
    assert.ok(owners.has('bin/.wh.ls'), 'the deleted file as a whiteout');
    assert.doesNotMatch(capabilityIn(layer, 'nscap', work), /rootid/);
    const plain = d.dockerOk(['run', '--rm', '--userns', 'host', '--network', 'none', 'userns-img', 'stat', '-c', '%n %u:%g', '/d/f', '/nscap']);
    assert.equal(plain, '/d/f 1000:1001\n/nscap 0:0\n');
  });

  it('docker cp in gives the files the host ids of the tar ids, and refuses ids outside the range', () => {
    const archive = makeTar([
      { name: 'in', type: 'dir', uid: 0, gid: 0 },
      { name: 'in/a', data: 'a\n', uid: 1234, gid: 2345 },
      { name: 'in/sub/b', data: 'b\n', uid: 7, gid: 8 }, // its parent is made on the way
    ]);
    docker(['cp', '-', `${id}:/`], archive);
    const inside = d.dockerOk(['exec', id, 'stat', '-c', '%n %u:%g', '/in', '/in/a', '/in/sub', '/in/sub/b']);
    assert.equal(inside, '/in 0:0\n/in/a 1234:2345\n/in/sub 0:0\n/in/sub/b 7:8\n');
    assert.equal(fs.statSync(path.join(merged, 'in/a')).uid, base + 1234);

    const bad = spawnSync('docker', ['cp', '-', `${id}:/`], { env: d.env, input: makeTar([{ name: 'far', data: 'x', uid: 70000, gid: 0 }]) });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr.toString(), /70000 cannot be mapped/);
    assert.equal(d.docker(['exec', id, 'test', '-e', '/far']).status, 1, 'nothing extracted');
  });

  it('docker cp into a container not started yet, which then starts and sees the files as its own', async () => {
    const fresh = await createPrivate('busybox', 'stat -c "%n %u:%g" /new /new/f');
    docker(['cp', '-', `${fresh}:/`], makeTar([{ name: 'new', type: 'dir', uid: 0, gid: 0 }, { name: 'new/f', data: 'f\n', uid: 1000, gid: 1000 }]));
    d.dockerOk(['start', '-a', fresh]);
    assert.equal(d.dockerOk(['logs', fresh]), '/new 0:0\n/new/f 1000:1000\n');
    d.dockerOk(['rm', '-f', fresh]);
  });

  it('docker build: RUN, WORKDIR and COPY layers of the ids the steps see', () => {
    const ctx = fs.mkdtempSync(path.join(work, 'ctx-'));
    fs.writeFileSync(path.join(ctx, 'a'), 'a\n');
    fs.writeFileSync(path.join(ctx, 'b'), 'b\n');
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      ['FROM busybox', 'RUN mkdir /r && touch /r/f && chown 1000:1001 /r/f', 'WORKDIR /w', 'COPY --chown=1000:1001 a /c/a', 'COPY b /c2/', ''].join('\n'),
    );
    const built = spawnSync('docker', ['build', '-q', '-t', 'userns-built', ctx], { env: { ...d.env, DOCKER_BUILDKIT: '0' }, encoding: 'utf8' });
    assert.equal(built.status, 0, `${built.stderr}\n${d.logTail()}`);
    const owners = d.dockerOk(['run', '--rm', '--userns', 'host', '--network', 'none', 'userns-built', 'stat', '-c', '%n %u:%g', '/r', '/r/f', '/w', '/c', '/c/a', '/c2', '/c2/b']);
    assert.equal(owners, '/r 0:0\n/r/f 1000:1001\n/w 0:0\n/c 1000:1001\n/c/a 1000:1001\n/c2 0:0\n/c2/b 0:0\n');
  });
});
