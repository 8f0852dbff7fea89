import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MAX_MOUNT_DATA, mountRequest, volatileUpper } from './mount.js';

describe('mountRequest', () => {
  it('binds, and mounts with mount(2) data while the options fit in a page', () => {
    assert.deepEqual(mountRequest({ type: 'bind', source: '/s', options: ['rbind', 'ro'] }, 't'), { op: 'mount', args: ['bind', '/s', 't', 'ro'] });
    const m = { type: 'overlay', source: 'overlay', options: ['index=off', 'lowerdir=/l/a:/l/b', 'upperdir=/u', 'workdir=/w'] };
    assert.deepEqual(mountRequest(m, 't'), { op: 'mount', args: ['overlay', 'overlay', 't', 'index=off,lowerdir=/l/a:/l/b,upperdir=/u,workdir=/w'] });
  });

  it('passes longer overlay options one at a time, a lowerdir+ per layer, top first', () => {
    const lowers = Array.from({ length: 130 }, (_, i) => `/var/lib/berth/snapshots/l/${String(i).padStart(32, '0')}`);
    const options = ['index=off', `lowerdir=${lowers.join(':')}`, 'upperdir=/u', 'workdir=/w'];
    assert.ok(options.join(',').length > MAX_MOUNT_DATA);
    const req = mountRequest({ type: 'overlay', source: 'overlay', options }, 'c/x/rootfs');
    assert.equal(req.op, 'fsmount');
    assert.equal(req.args[0], 'overlay');
    assert.equal(req.args[1], 'c/x/rootfs');
    assert.deepEqual(req.args[2]!.split('\0'), ['source=overlay', 'index=off', ...lowers.map((l) => `lowerdir+=${l}`), 'upperdir=/u', 'workdir=/w']);
  });

  it("unescapes colons in lowerdir's paths", () => {
    const long = '/x'.repeat(MAX_MOUNT_DATA);
    const req = mountRequest({ type: 'overlay', source: 'overlay', options: [`lowerdir=/a\\:b:${long}`] }, 't');
    assert.deepEqual(req.args[2]!.split('\0').slice(1), ['lowerdir+=/a:b', `lowerdir+=${long}`]);
  });
});

describe('volatileUpper', () => {
  it('adds volatile to a writable overlay only, once', () => {
    const rw = { type: 'overlay', source: 'overlay', options: ['lowerdir=/l/a', 'upperdir=/u', 'workdir=/w'] };
    const ro = { type: 'overlay', source: 'overlay', options: ['lowerdir=/l/a:/l/b'] };
    const bind = { type: 'bind', source: '/s', options: ['rbind'] };
    assert.deepEqual(volatileUpper([rw, ro, bind]), [{ ...rw, options: [...rw.options, 'volatile'] }, ro, bind]);
    assert.deepEqual(volatileUpper(volatileUpper([rw])), volatileUpper([rw]));
    assert.deepEqual(rw.options, ['lowerdir=/l/a', 'upperdir=/u', 'workdir=/w'], 'the input is left alone');
  });
});
