import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resolveUser } from './user.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n';
const GROUP = 'root:x:0:\nwheel:x:10:web,root\nweb:x:1000:\nnogroup:x:65534:\n';

describe('resolveUser', () => {
  it('defaults to root with root\'s home', () => {
    assert.deepEqual(resolveUser('', PASSWD, GROUP), { uid: 0, gid: 0, additionalGids: [10], home: '/root' });
  });
  it('looks names up and adds the groups listing the user', () => {
    assert.deepEqual(resolveUser('web', PASSWD, GROUP), { uid: 1000, gid: 1000, additionalGids: [10], home: '/home/web' });
  });
  it('accepts unknown numeric ids, with gid 0 and home /', () => {
    assert.deepEqual(resolveUser('4242', PASSWD, GROUP), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
    assert.deepEqual(resolveUser('4242:77', undefined, undefined), { uid: 4242, gid: 77, additionalGids: [], home: '/' });
  });
  it('takes a named group and then leaves out the supplementary ones', () => {
    assert.deepEqual(resolveUser('web:nogroup', PASSWD, GROUP), { uid: 1000, gid: 65534, additionalGids: [], home: '/home/web' });
  });
  it('adds GroupAdd by name and number', () => {
    assert.deepEqual(resolveUser('nobody', PASSWD, GROUP, ['wheel', '99']).additionalGids, [10, 99]);
    assert.throws(() => resolveUser('nobody', PASSWD, GROUP, ['ghosts']), /^InvalidArgumentError: Unable to find group ghosts: no matching entries in group file$/); // dockerd's capital
  });
  it('refuses unknown names with Docker\'s message', () => {
    assert.throws(() => resolveUser('ghost', PASSWD, GROUP), /unable to find user ghost: no matching entries in passwd file/);
    assert.throws(() => resolveUser('web:ghosts', PASSWD, GROUP), /unable to find group ghosts/);
    assert.throws(() => resolveUser('99999999999', PASSWD, GROUP), /uids and gids must be in range 0-2147483647/);
    assert.throws(() => resolveUser('2147483648', PASSWD, GROUP), /uids and gids must be in range 0-2147483647/, 'the bound is 2^31 - 1, as dockerd');
  });
});
