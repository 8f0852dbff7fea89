import assert from 'node:assert/strict';
import { test } from 'node:test';

import { downloadName, isRemoteSource } from './remote.js';

test("downloadName: the URL path's last segment, else Content-Disposition's filename (moby's getFilenameForDownload)", () => {
  assert.equal(downloadName(new URL('http://h/a/b/file.tar.gz?x=1'), undefined), 'file.tar.gz');
  assert.equal(downloadName(new URL('http://h/a/my%20file'), undefined), 'my file');
  assert.equal(downloadName(new URL('http://h/a/%E0%A4%A'), undefined), '%E0%A4%A');
  assert.equal(downloadName(new URL('http://h/dir/'), 'attachment; filename="cd.txt"'), 'cd.txt');
  assert.equal(downloadName(new URL('http://h/'), 'attachment; filename=plain.bin'), 'plain.bin');
  assert.equal(downloadName(new URL('http://h/'), 'attachment; filename="../../etc/passwd"'), 'passwd');
  assert.equal(downloadName(new URL('http://h/'), 'attachment; filename="d/"'), '');
  assert.equal(downloadName(new URL('http://h/'), undefined), '');
});

test('isRemoteSource: http and https URLs only', () => {
  assert.ok(isRemoteSource('http://x/y'));
  assert.ok(isRemoteSource('HTTPS://x/y'));
  assert.ok(!isRemoteSource('ftp://x/y'));
  assert.ok(!isRemoteSource('git@github.com:a/b.git'));
  assert.ok(!isRemoteSource('files/http:x'));
});
