/**
 * tar-stream's extractor, with names as their bytes (byteNames below) and ending an archive
 * where Go's archive/tar does. Go's reader (dockerd's)
 * takes a stream that stops right after the last entry's data, without its padding to 512 bytes
 * or the two end blocks, as a complete archive; the docker CLI's own writer sends such a stream
 * (`docker build -f - DIR`: the context with the Dockerfile added, unterminated). tar-stream
 * refuses it ("Unexpected end of data"), but only when its reader kept up (else it has already
 * finished): here it is accepted whenever nothing but that padding is missing. A stream cut
 * inside a header or an entry's data is still refused. This reads tar-stream 3.x internals
 * (pinned in package-lock.json; storage/xattrs.ts does too) and does nothing if they change.
 */
import tar from 'tar-stream';

import { decodeLatin1Name } from './bytenames.js';

interface ExtractInternals {
  _final?: (cb: (err?: Error | null) => void) => void;
  _stream?: unknown;
  _missing?: unknown;
  _longHeader?: unknown;
  _buffer?: { buffered?: unknown };
  _header?: { type?: string; name?: string; linkname?: string | null };
  _pax?: Record<string, string> | null;
  _paxGlobal?: Record<string, string> | null;
  _decodeLongHeader?: (buf: Buffer) => void;
  _applyLongHeaders?: () => void;
}

/** The records of a PAX header block, keys as text and values as their raw bytes. */
export function paxRecords(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let rest = buf;
  while (rest.length) {
    const sp = rest.indexOf(0x20);
    if (sp <= 0) break;
    const len = parseInt(rest.subarray(0, sp).toString('latin1'), 10);
    if (!(len > sp + 1) || len > rest.length) break;
    const kv = rest.subarray(sp + 1, len - 1);
    const eq = kv.indexOf(0x3d);
    if (eq > 0) out.set(kv.subarray(0, eq).toString('utf8'), Buffer.from(kv.subarray(eq + 1)));
    rest = rest.subarray(len);
  }
  return out;
}

/**
 * Names as their bytes (common/bytenames): tar-stream decodes them as UTF-8, turning a byte
 * that is not into U+FFFD. Header fields and GNU long names are read as Latin-1 (one character
 * a byte), PAX path/linkpath records from their raw bytes, then each name as a byte name.
 */
function byteNames(internals: ExtractInternals): void {
  const decodeLong = internals._decodeLongHeader;
  const applyLong = internals._applyLongHeaders;
  if (typeof decodeLong !== 'function' || typeof applyLong !== 'function') return;
  internals._decodeLongHeader = function (this: ExtractInternals, buf: Buffer) {
    decodeLong.call(this, buf);
    const type = this._header?.type;
    if (type !== 'pax-header' && type !== 'pax-global-header') return;
    const target = type === 'pax-header' ? this._pax : this._paxGlobal;
    if (!target) return;
    for (const [key, value] of paxRecords(buf)) if (key === 'path' || key === 'linkpath') target[key] = value.toString('latin1');
  };
  internals._applyLongHeaders = function (this: ExtractInternals) {
    applyLong.call(this);
    const header = this._header;
    if (!header) return;
    if (typeof header.name === 'string') header.name = decodeLatin1Name(header.name);
    if (typeof header.linkname === 'string') header.linkname = decodeLatin1Name(header.linkname);
  };
}

export function tarExtract(): tar.Extract {
  const ex = tar.extract({ filenameEncoding: 'latin1' } as never);
  const internals = ex as unknown as ExtractInternals;
  byteNames(internals);
  const final = internals._final;
  if (typeof final !== 'function') return ex;
  internals._final = function (this: ExtractInternals, cb) {
    const missing = this._missing;
    const onlyPadding = this._stream === null && this._longHeader === false && this._buffer?.buffered === 0 && typeof missing === 'number' && missing > 0 && missing < 512;
    if (onlyPadding) this._missing = 0;
    final.call(this, cb);
  };
  return ex;
}
