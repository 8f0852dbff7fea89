/**
 * Extended attributes where Docker keeps them (issue 3), through the docker CLI and a private
 * berthd: a file given a capability (setcap) and user.* xattrs in a running container (set from
 * the host through its merged root, as busybox has no setcap) keeps them through `docker
 * commit` into a container of the new image, and in the tars of `docker export` and `docker cp`
 * (PAX SCHILY.xattr.* records, read back by GNU tar). overlayfs' own xattrs (an opaque
 * directory, copy-up origins) never reach a tar: the opaque directory is a .wh..wh..opq entry.
 * `docker cp` into a container applies the same set from the tar's records; the rest (overlayfs'
 * own, other namespaces, what the file system refuses) is left out and said so in the daemon log.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { makeTar } from '../../src/storage/tar.testutil.js';
import { getxattr, setxattr } from '../../src/storage/xattr.testutil.js';
import { savedTopLayer, startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip, poll, which } from '../helpers/engines.js';

const skip = dockerdSkip || (!which('setcap', '/usr/sbin/setcap', '/sbin/setcap') ? 'needs setcap' : false);
const SETCAP = which('setcap', '/usr/sbin/setcap', '/sbin/setcap') ?? 'setcap';
const GETCAP = which('getcap', '/usr/sbin/getcap', '/sbin/getcap') ?? 'getcap';

const hex = (s: string): string => Buffer.from(s).toString('hex');
function getcap(file: string): string {
  return spawnSync(GETCAP, [file], { encoding: 'utf8' }).stdout.trim();
}

describe('xattrs through commit, export and cp', { skip, timeout: 300_000 }, () => {
  let d: PrivateBerthd;
  let src = '';
  let work = '';
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-xattr-' });
    work = path.join(d.dir, 'work');
    fs.mkdirSync(work);
    d.loadImages('busybox');
    // An opaque directory (rm + mkdir of an image directory) and a file for the host to mark.
    src = d.dockerOk(['run', '-d', '--network', 'none', 'busybox', 'sh', '-c', 'rm -rf /usr/sbin && mkdir /usr/sbin && echo new > /usr/sbin/only && echo tool > /tool && touch /ready && sleep 300']).trim();
    const merged = d.dockerOk(['inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', src]).trim();
    assert.ok(await poll(() => fs.existsSync(path.join(merged, 'ready')), 10_000), 'the container prepared its files');
    assert.equal(spawnSync(SETCAP, ['cap_net_raw+ep', path.join(merged, 'tool')]).status, 0);
    setxattr(path.join(merged, 'tool'), 'user.test', hex('hello'));
    setxattr(path.join(merged, 'etc/passwd'), 'user.note', hex('copied up')); // an image file: copy-up
  });
  after(async () => {
    await d?.stop();
  });

  it('docker commit keeps them, and a container of the new image has them', async () => {
    d.dockerOk(['commit', src, 'xattr-img']);
    const top = savedTopLayer(d, 'xattr-img', work);
    assert.ok(!top.includes('trusted.overlay'), "no overlayfs xattr in the committed layer");
    const list = spawnSync('tar', ['-tf', '-'], { input: top, encoding: 'utf8' }).stdout.split('\n');
    assert.ok(list.includes('usr/sbin/.wh..wh..opq'), `the opaque directory as a marker: ${list.join(' ')}`);
    assert.ok(list.includes('tool'));

    const id = d.dockerOk(['run', '-d', '--network', 'none', 'xattr-img', 'sleep', '300']).trim();
    const merged = d.dockerOk(['inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', id]).trim();
    assert.match(getcap(path.join(merged, 'tool')), /cap_net_raw[=+]ep/);
    assert.equal(getxattr(path.join(merged, 'tool'), 'user.test'), hex('hello'));
    assert.equal(getxattr(path.join(merged, 'etc/passwd'), 'user.note'), hex('copied up'));
    const inside = d.dockerOk(['exec', id, 'sh', '-c', 'cat /tool; ls /usr/sbin']);
    assert.equal(inside, 'tool\nonly\n', 'the opaque directory hides the image’s /usr/sbin');
    d.dockerOk(['rm', '-f', id]);
  });

  it('docker export and docker cp carry them as PAX records', () => {
    const exported = path.join(work, 'export.tar');
    d.dockerOk(['export', '-o', exported, src]);
    const out = path.join(work, 'export');
    fs.mkdirSync(out);
    const x = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-xf', exported, '-C', out, 'tool', 'etc/passwd'], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    assert.match(getcap(path.join(out, 'tool')), /cap_net_raw[=+]ep/);
    assert.equal(getxattr(path.join(out, 'tool'), 'user.test'), hex('hello'));
    assert.equal(getxattr(path.join(out, 'etc/passwd'), 'user.note'), hex('copied up'));

    const cp = spawnSync('docker', ['cp', `${src}:/tool`, '-'], { env: d.env, maxBuffer: 1 << 24 });
    assert.equal(cp.status, 0, cp.stderr?.toString());
    const cpOut = path.join(work, 'cp');
    fs.mkdirSync(cpOut);
    const y = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-xf', '-', '-C', cpOut], { input: cp.stdout, encoding: 'utf8' });
    assert.equal(y.status, 0, y.stderr);
    assert.match(getcap(path.join(cpOut, 'tool')), /cap_net_raw[=+]ep/);
    assert.equal(getxattr(path.join(cpOut, 'tool'), 'user.test'), hex('hello'));
  });

  it('docker cp into a container applies them, never overlayfs\' own, and logs what it leaves out', () => {
    const cap = Buffer.alloc(20); // a plain (v2) capability set: cap_net_raw, effective
    cap.writeUInt32LE(0x02000001, 0);
    cap.writeUInt32LE(1 << 13, 4);
    const archive = makeTar([
      { name: 'cpin', type: 'dir', pax: { 'SCHILY.xattr.user.dir': 'd' } },
      {
        name: 'cpin/tool',
        data: 'tool\n',
        mode: 0o755,
        pax: {
          'SCHILY.xattr.security.capability': cap,
          'SCHILY.xattr.user.bin': Buffer.from([0xff, 0x00, 0xfe]),
          'SCHILY.xattr.trusted.t': 'tv',
          'SCHILY.xattr.trusted.overlay.redirect': '/etc',
          'SCHILY.xattr.user.overlay.origin': 'x',
          'SCHILY.xattr.security.selinux': 'system_u:object_r:bin_t:s0',
        },
      },
      { name: 'cpin/link', type: 'symlink', linkname: 'tool', pax: { 'SCHILY.xattr.user.l': 'l' } }, // user.* on a symlink: refused by the kernel
      { name: 'etc', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }, // would hide the image's /etc
    ]);
    const cp = spawnSync('docker', ['cp', '-', `${src}:/`], { env: d.env, input: archive, encoding: 'utf8' });
    assert.equal(cp.status, 0, `${cp.stderr}\n${d.logTail()}`);

    const merged = d.dockerOk(['inspect', '-f', '{{.GraphDriver.Data.MergedDir}}', src]).trim();
    const tool = path.join(merged, 'cpin/tool');
    assert.match(getcap(tool), /cap_net_raw[=+]ep/);
    assert.equal(getxattr(tool, 'user.bin'), 'ff00fe');
    assert.equal(getxattr(tool, 'trusted.t'), hex('tv'));
    assert.equal(getxattr(path.join(merged, 'cpin'), 'user.dir'), hex('d'));
    // The container's writable layer, not overlayfs' view of it.
    const upper = path.join(d.dir, 'data', 'snapshots', 'snapshots', src, 'fs');
    for (const name of ['trusted.overlay.redirect', 'user.overlay.origin', 'security.selinux']) assert.equal(getxattr(path.join(upper, 'cpin/tool'), name), null, name);
    assert.equal(getxattr(path.join(upper, 'etc'), 'trusted.overlay.opaque'), null);
    assert.equal(d.dockerOk(['exec', src, 'sh', '-c', 'cat /cpin/tool; grep -c ^root: /etc/passwd']), 'tool\n1\n', 'the image’s /etc is still seen');

    const log = fs.readFileSync(path.join(d.dir, 'berthd.log'), 'utf8');
    for (const [entry, why] of [
      ['cpin/tool', "trusted.overlay.redirect (overlayfs' own)"],
      ['cpin/tool', "user.overlay.origin (overlayfs' own)"],
      ['cpin/tool', 'security.selinux (not applied'],
      ['cpin/link', 'user.l (Operation not permitted)'],
      ['etc', "trusted.overlay.opaque (overlayfs' own)"],
    ]) {
      assert.ok(log.split('\n').some((l) => l.includes(`"${entry}"`) && l.includes(why)), `the log says ${entry}: ${why}\n${d.logTail()}`);
    }
  });
});
