import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mountPointsIn, parseMountinfo } from './mountinfo.js';

const text = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '90 27 0:50 / /tmp/d/exec rw - tmpfs tmpfs rw',
  '91 90 0:51 / /tmp/d/exec/c/abc/rootfs rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w',
  '92 27 0:52 / /tmp/with\\040space/m rw - tmpfs tmpfs rw',
  '93 27 0:53 / /tmp/d/exec-other rw - tmpfs tmpfs rw',
].join('\n');

test('mountPointsIn: the mount points at or below a directory, deepest first', () => {
  assert.deepEqual(mountPointsIn(text, '/tmp/d/exec'), ['/tmp/d/exec/c/abc/rootfs', '/tmp/d/exec']);
  assert.deepEqual(mountPointsIn(text, '/tmp/d/exec/c'), ['/tmp/d/exec/c/abc/rootfs']);
  assert.deepEqual(mountPointsIn(text, '/tmp/d/exec/'), ['/tmp/d/exec/c/abc/rootfs']);
  assert.deepEqual(mountPointsIn(text, '/tmp/nothing'), []);
});

test('mountPointsIn: paths that mountinfo escapes are found', () => {
  assert.deepEqual(mountPointsIn(text, '/tmp/with space'), ['/tmp/with space/m']);
  assert.deepEqual(parseMountinfo(text).find((m) => m.fsType === 'tmpfs' && m.mountPoint.includes(' '))?.mountPoint, '/tmp/with space/m');
});
