import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { decodeName, encodeName, fsPath, hasEscapedBytes, shownName } from './bytenames.js';

describe('byte names', () => {
  it('leave valid UTF-8 names as they are', () => {
    for (const name of ['plain', 'café', '日本', 'emoji 😀', '', 'a\uFFFDb']) {
      assert.equal(decodeName(Buffer.from(name, 'utf8')), name);
      assert.deepEqual(encodeName(name), Buffer.from(name, 'utf8'));
      assert.equal(hasEscapedBytes(name), false);
      assert.equal(fsPath(name), name);
    }
  });

  it('keep every other byte, both ways, whatever surrounds it', () => {
    const cases = [
      Buffer.from([0x63, 0x61, 0x66, 0xe9]), // Latin-1 "café"
      Buffer.from([0xff, 0xfe, 0x00 + 0x41]),
      Buffer.from([0xc3]), // a cut sequence
      Buffer.from([0xe0, 0x80, 0x80]), // overlong
      Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // beyond U+10FFFF
      Buffer.concat([Buffer.from('😀', 'utf8'), Buffer.from([0x80]), Buffer.from('é', 'utf8')]),
    ];
    for (const bytes of cases) {
      const name = decodeName(bytes);
      assert.ok(hasEscapedBytes(name), bytes.toString('hex'));
      assert.deepEqual(encodeName(name), bytes, bytes.toString('hex'));
      assert.deepEqual(fsPath(`/dir/${name}`), Buffer.concat([Buffer.from('/dir/'), bytes]));
    }
    assert.equal(shownName(decodeName(Buffer.from([0x63, 0x61, 0x66, 0xe9]))), 'caf\\xe9');
  });

  it('take a surrogate pair for the character it is, not for escaped bytes', () => {
    const name = '\uD83D\uDC80'; // U+1F480, whose low half lies in the escape range
    assert.equal(hasEscapedBytes(name), false);
    assert.deepEqual(encodeName(name), Buffer.from(name, 'utf8'));
  });
});
