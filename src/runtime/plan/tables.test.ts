import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../common/errors.js';
import {
  CAPABILITIES,
  LAST_CAP,
  RLIMITS,
  capabilityNumber,
  parseMountOptions,
  parseSignal,
  NAMESPACE_CLONE_FLAGS,
  NAMESPACE_PROC_NAMES,
  KNOWN_MOUNT_OPTIONS,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_SHARED,
  MS_SLAVE,
  MS_STRICTATIME,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR__ATIME,
} from './tables.js';

function assertInvalid(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(error)}`);
    assert.equal(error.field, field);
    if (message) assert.match(error.message, message);
    return true;
  });
}

test('capabilities are numbered 0..LAST_CAP without gaps', () => {
  const numbers = Object.values(CAPABILITIES).sort((a, b) => a - b);
  assert.deepEqual(
    numbers,
    Array.from({ length: LAST_CAP + 1 }, (_, i) => i),
  );
  assert.equal(CAPABILITIES.CAP_CHOWN, 0);
  assert.equal(CAPABILITIES.CAP_SYS_ADMIN, 21);
  assert.equal(CAPABILITIES.CAP_AUDIT_WRITE, 29);
  assert.equal(CAPABILITIES.CAP_CHECKPOINT_RESTORE, 40);
  assert.equal(capabilityNumber('CAP_NET_BIND_SERVICE', 'x'), 10);
});

test('capabilityNumber rejects unknown names with the given field', () => {
  assertInvalid(() => capabilityNumber('CAP_FLY', 'process.capabilities.bounding[3]'), 'process.capabilities.bounding[3]', /CAP_FLY/);
  assertInvalid(() => capabilityNumber('chown', 'f'), 'f');
  assertInvalid(() => capabilityNumber('toString', 'f'), 'f');
});

test('rlimits follow the generic numbering', () => {
  assert.equal(RLIMITS.RLIMIT_CPU, 0);
  assert.equal(RLIMITS.RLIMIT_NOFILE, 7);
  assert.equal(RLIMITS.RLIMIT_NPROC, 6);
  assert.equal(RLIMITS.RLIMIT_RTTIME, 15);
  assert.equal(Object.keys(RLIMITS).length, 16);
});

test('proc mount options: nosuid,noexec,nodev', () => {
  const parsed = parseMountOptions(['nosuid', 'noexec', 'nodev'], 'mounts[0].options');
  assert.equal(parsed.flags, MS_NOSUID | MS_NOEXEC | MS_NODEV);
  assert.equal(parsed.clearFlags, 0);
  assert.deepEqual(parsed.data, []);
  assert.deepEqual(parsed.propagation, []);
  assert.equal(parsed.bind, false);
});

test('devpts mount options keep fs data in order', () => {
  const parsed = parseMountOptions(
    ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    'mounts[2].options',
  );
  assert.equal(parsed.flags, MS_NOSUID | MS_NOEXEC);
  assert.deepEqual(parsed.data, ['newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
});

test('tmpfs /dev options', () => {
  const parsed = parseMountOptions(['nosuid', 'strictatime', 'mode=755', 'size=65536k'], 'f');
  assert.equal(parsed.flags, MS_NOSUID | MS_STRICTATIME);
  assert.deepEqual(parsed.data, ['mode=755', 'size=65536k']);
});

test('bind mount rbind,ro,rprivate', () => {
  const parsed = parseMountOptions(['rbind', 'ro', 'rprivate'], 'f');
  assert.equal(parsed.flags, MS_BIND | MS_REC | MS_RDONLY);
  assert.equal(parsed.bind, true);
  assert.equal(parsed.recursiveBind, true);
  assert.deepEqual(parsed.propagation, [MS_PRIVATE | MS_REC]);
  assert.deepEqual(parsed.data, []);
});

test('plain bind is not recursive; propagation keeps order', () => {
  const parsed = parseMountOptions(['bind', 'shared', 'rslave', 'private'], 'f');
  assert.equal(parsed.bind, true);
  assert.equal(parsed.recursiveBind, false);
  assert.deepEqual(parsed.propagation, [MS_SHARED, MS_SLAVE | MS_REC, MS_PRIVATE]);
});

test('later options override earlier ones and record cleared flags', () => {
  const parsed = parseMountOptions(['ro', 'rw', 'nosuid', 'suid', 'relatime'], 'f');
  assert.equal(parsed.flags, MS_RELATIME);
  assert.equal(parsed.clearFlags, MS_RDONLY | MS_NOSUID);
  const again = parseMountOptions(['rw', 'ro'], 'f');
  assert.equal(again.flags, MS_RDONLY);
  assert.equal(again.clearFlags, 0);
});

test('recursive attributes go to mount_setattr, atime modes clear the atime mask', () => {
  const parsed = parseMountOptions(['rbind', 'rro', 'rnosuid'], 'f');
  assert.equal(parsed.attrSet, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  assert.equal(parsed.attrClr, 0);
  assert.equal(parsed.flags, MS_BIND | MS_REC);
  const atime = parseMountOptions(['rnoatime'], 'f');
  assert.equal(atime.attrSet, MOUNT_ATTR_NOATIME);
  assert.equal(atime.attrClr, MOUNT_ATTR__ATIME);
  const flip = parseMountOptions(['rro', 'rrw'], 'f');
  assert.equal(flip.attrSet, 0);
  assert.equal(flip.attrClr, MOUNT_ATTR_RDONLY);
});

test('idmap, ridmap, tmpcopyup and defaults are runtime options', () => {
  const parsed = parseMountOptions(['defaults', 'tmpcopyup', 'idmap'], 'f');
  assert.equal(parsed.tmpcopyup, true);
  assert.equal(parsed.idmap, true);
  assert.equal(parsed.recursiveIdmap, false);
  assert.equal(parsed.flags, 0);
  assert.deepEqual(parsed.data, []);
  assert.equal(parseMountOptions(['rbind', 'ridmap'], 'f').recursiveIdmap, true);
});

test('undefined options parse to nothing; bad entries name their index', () => {
  const parsed = parseMountOptions(undefined, 'f');
  assert.equal(parsed.flags, 0);
  assert.deepEqual(parsed.data, []);
  assertInvalid(() => parseMountOptions(['ro', 5 as unknown as string], 'mounts[1].options'), 'mounts[1].options[1]');
  assertInvalid(() => parseMountOptions(['ro', ''], 'mounts[1].options'), 'mounts[1].options[1]');
  assertInvalid(() => parseMountOptions('ro' as unknown as string[], 'mounts[1].options'), 'mounts[1].options');
});

test('KNOWN_MOUNT_OPTIONS covers the runc list', () => {
  for (const option of ['defaults', 'ro', 'rw', 'rbind', 'rprivate', 'rro', 'rnosymfollow', 'idmap', 'ridmap', 'tmpcopyup', 'lazytime']) {
    assert.ok(KNOWN_MOUNT_OPTIONS.includes(option), option);
  }
  assert.ok(!KNOWN_MOUNT_OPTIONS.includes('mode=755'));
});

test('namespace tables', () => {
  assert.equal(NAMESPACE_CLONE_FLAGS.mount, 0x20000);
  assert.equal(NAMESPACE_CLONE_FLAGS.time, 0x80);
  assert.equal(NAMESPACE_CLONE_FLAGS.user, 0x10000000);
  assert.equal(NAMESPACE_CLONE_FLAGS.network, 0x40000000);
  assert.equal(NAMESPACE_PROC_NAMES.network, 'net');
  assert.equal(NAMESPACE_PROC_NAMES.mount, 'mnt');
  assert.equal(Object.keys(NAMESPACE_PROC_NAMES).length, 8);
});

test('parseSignal accepts names, numbers and realtime signals', () => {
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('SIGKILL'), 9);
  assert.equal(parseSignal('sigterm'), 15);
  assert.equal(parseSignal('term'), 15);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('64'), 64);
  assert.equal(parseSignal('SIGCHLD'), 17);
  assert.equal(parseSignal('RTMIN'), 34);
  assert.equal(parseSignal('RTMIN+3'), 37);
  assert.equal(parseSignal('sigrtmax-1'), 63);
  assert.equal(parseSignal('SIGRTMAX'), 64);
});

test('parseSignal rejects unknown and out-of-range signals', () => {
  for (const bad of ['', 'FOO', 'SIGFOO', '0', '65', '-1', 'RTMIN+31', 'RTMAX+1', 'RTMIN-1', '9x']) {
    assertInvalid(() => parseSignal(bad), 'signal');
  }
});
