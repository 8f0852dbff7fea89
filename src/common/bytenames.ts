/**
 * File names are bytes; JavaScript strings are UTF-16, and Node reads names as UTF-8, turning
 * any other byte into U+FFFD, a name no file has. A name that is not valid UTF-8 is kept here
 * as a string whose stray bytes are lone surrogates U+DC80–U+DCFF (Python's "surrogateescape"):
 * valid UTF-8 never yields those, so every name goes back to the disk, to berth-fsop and into a
 * tar byte for byte, while names that are valid UTF-8 stay the strings they always were.
 * Pure: no file system.
 */

/** A lone low surrogate standing for one byte 0x80–0xFF (not the second half of a pair). */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** The name for these bytes: UTF-8 where they are valid, each other byte escaped. */
export function decodeName(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (!text.includes('\uFFFD') || Buffer.from(text, 'utf8').equals(bytes)) return text;
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const length = validSequenceAt(bytes, i);
    if (length === 0) {
      out += String.fromCharCode(0xdc00 + bytes[i]!);
      i += 1;
    } else {
      out += bytes.subarray(i, i + length).toString('utf8');
      i += length;
    }
  }
  return out;
}

/** The bytes of a name: UTF-8, each escaped byte as itself. */
export function encodeName(name: string): Buffer {
  if (!hasEscapedBytes(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    const pairedLow = i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff;
    if (code >= 0xdc80 && code <= 0xdcff && !pairedLow) {
      parts.push(Buffer.from(run, 'utf8'), Buffer.from([code - 0xdc00]));
      run = '';
    } else run += name[i];
  }
  parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** Any surrogate at all: a cheap test that nearly every name fails, before the exact one. */
const SURROGATE = /[\uD800-\uDFFF]/;

export function hasEscapedBytes(name: string): boolean {
  return SURROGATE.test(name) && ESCAPED.test(name);
}

/** A name as tar-stream read it with Latin-1 (one character a byte), as a byte name. */
export function decodeLatin1Name(latin1: string): string {
  return ASCII.test(latin1) ? latin1 : decodeName(Buffer.from(latin1, 'latin1'));
}

const ASCII = /^[\x00-\x7f]*$/;

/** A path for Node's fs calls: the string itself, or its bytes when it holds escaped ones. */
export function fsPath(p: string): string | Buffer {
  return hasEscapedBytes(p) ? encodeName(p) : p;
}

/** A name as a message shows it: escaped bytes as \xNN. */
export function shownName(name: string): string {
  return hasEscapedBytes(name) ? name.replace(/[\uDC80-\uDCFF]/g, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`) : name;
}

/** The length of the valid UTF-8 sequence at i (1–4), or 0 if the byte there starts none. */
function validSequenceAt(b: Buffer, i: number): number {
  const first = b[i]!;
  if (first < 0x80) return 1;
  const cont = (k: number): boolean => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (first >= 0xc2 && first <= 0xdf) return cont(1) ? 2 : 0;
  if (first >= 0xe0 && first <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const second = b[i + 1]!;
    if (first === 0xe0 && second < 0xa0) return 0; // overlong
    if (first === 0xed && second >= 0xa0) return 0; // a surrogate
    return 3;
  }
  if (first >= 0xf0 && first <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const second = b[i + 1]!;
    if (first === 0xf0 && second < 0x90) return 0; // overlong
    if (first === 0xf4 && second >= 0x90) return 0; // beyond U+10FFFF
    return 4;
  }
  return 0;
}
