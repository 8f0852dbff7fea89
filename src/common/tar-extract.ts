/**
 * tar-stream's extractor, ending an archive where Go's archive/tar does. Go's reader (dockerd's)
 * takes a stream that stops right after the last entry's data, without its padding to 512 bytes
 * or the two end blocks, as a complete archive; the docker CLI's own writer sends such a stream
 * (`docker build -f - DIR`: the context with the Dockerfile added, unterminated). tar-stream
 * refuses it ("Unexpected end of data"), but only when its reader kept up (else it has already
 * finished): here it is accepted whenever nothing but that padding is missing. A stream cut
 * inside a header or an entry's data is still refused. This reads tar-stream 3.x internals
 * (pinned in package-lock.json; storage/xattrs.ts does too) and does nothing if they change.
 */
import tar from 'tar-stream';

interface ExtractInternals {
  _final?: (cb: (err?: Error | null) => void) => void;
  _stream?: unknown;
  _missing?: unknown;
  _longHeader?: unknown;
  _buffer?: { buffered?: unknown };
}

export function tarExtract(): tar.Extract {
  const ex = tar.extract();
  const internals = ex as unknown as ExtractInternals;
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
