/**
 * Gunzip on a worker thread, for large layers.
 *
 * Node's zlib stream runs each inflate step on the thread pool, but the main thread starts the
 * next step when it handles the last one's completion. The unpacker holds the main thread with
 * its file system calls, chunk after buffered chunk, so the inflater waited for it: the Debian
 * layer unpacked on a tmpfs in ~650 ms, when its gunzip alone takes ~300 ms and the same tar
 * uncompressed ~430 ms. On a thread of its own the inflater runs ahead of the unpacker, as
 * `gzip -d` does ahead of `tar`, bounded by credits (bench/README.md, session 21).
 *
 * The worker also hashes what it sends (the diff ID), which took the main thread ~70 ms of
 * that layer. Chunks cross as transferred copies (a stream's chunks may share one allocation). The worker's
 * code is a string of CommonJS using only node: modules, so that it runs the same from dist/src
 * and from the bundles.
 */
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';

/** Decompressed chunks the worker may send ahead of the reader (~256 KiB each). */
const OUTPUT_CREDITS = 16;
/** Compressed bytes sent to the worker and not yet taken by its inflater. */
const MAX_INPUT_IN_FLIGHT = 4 << 20;

const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const zlib = require('node:zlib');
const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
const hash = createHash('sha256');
let credits = ${OUTPUT_CREDITS};
let wake = null;
parentPort.on('message', (m) => {
  if (m.type === 'data') gunzip.write(Buffer.from(m.buf), () => parentPort.postMessage({ type: 'taken', bytes: m.buf.byteLength }));
  else if (m.type === 'end') gunzip.end();
  else if (m.type === 'credit') {
    credits += m.n;
    if (wake) { const w = wake; wake = null; w(); }
  }
});
(async () => {
  try {
    for await (const chunk of gunzip) {
      while (credits <= 0) await new Promise((resolve) => (wake = resolve));
      credits--;
      hash.update(chunk);
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      parentPort.postMessage({ type: 'chunk', buf: copy.buffer }, [copy.buffer]);
    }
    parentPort.postMessage({ type: 'end', digest: 'sha256:' + hash.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ type: 'error', message: e.message, code: e.code });
  }
})();
`;

type FromWorker = { type: 'chunk'; buf: ArrayBuffer } | { type: 'taken'; bytes: number } | { type: 'end'; digest: string } | { type: 'error'; message: string; code?: string };

export interface WorkerGunzip {
  /** The gunzipped `input`; its errors carry zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR...). */
  output: Readable;
  /** "sha256:<hex>" of every byte `output` gave, hashed on the worker; known once it ended. */
  digest(): string;
}

export function gunzipOnWorker(input: Readable): WorkerGunzip {
  const worker = new Worker(WORKER, { eval: true });
  let owedCredits = 0;
  let inputInFlight = 0;
  let inputPaused = false;
  let finished = false;
  let digest: string | undefined;
  const stop = () => {
    if (finished) return;
    finished = true;
    void worker.terminate();
  };
  // Chunk by chunk (objectMode): a byte stream's read() joins what is buffered into one copy.
  const output = new Readable({
    objectMode: true,
    highWaterMark: 4,
    read() {
      if (owedCredits > 0 && !finished) worker.postMessage({ type: 'credit', n: owedCredits });
      owedCredits = 0;
    },
    destroy(err, callback) {
      stop();
      input.destroy();
      callback(err);
    },
  });
  worker.on('message', (m: FromWorker) => {
    switch (m.type) {
      case 'chunk':
        if (output.push(Buffer.from(m.buf))) worker.postMessage({ type: 'credit', n: 1 });
        else owedCredits++;
        break;
      case 'taken':
        inputInFlight -= m.bytes;
        if (inputPaused && inputInFlight < MAX_INPUT_IN_FLIGHT) {
          inputPaused = false;
          input.resume();
        }
        break;
      case 'end':
        stop();
        digest = m.digest;
        output.push(null);
        break;
      case 'error':
        output.destroy(Object.assign(new Error(m.message), { code: m.code }));
        break;
    }
  });
  worker.on('error', (e) => output.destroy(e));
  // Gone without a word (out of memory): the reader must not wait for ever.
  worker.on('exit', (code) => {
    if (!finished) output.destroy(new Error(`the gunzip worker exited (${code}) before the end`));
  });
  input.on('data', (chunk: Buffer) => {
    const copy = new Uint8Array(chunk.length);
    copy.set(chunk);
    inputInFlight += chunk.length;
    worker.postMessage({ type: 'data', buf: copy.buffer }, [copy.buffer]);
    if (inputInFlight >= MAX_INPUT_IN_FLIGHT && !inputPaused) {
      inputPaused = true;
      input.pause();
    }
  });
  input.on('end', () => worker.postMessage({ type: 'end' }));
  input.on('error', (e) => output.destroy(e));
  return {
    output,
    digest: () => {
      if (digest === undefined) throw new Error('the gunzip worker has not ended');
      return digest;
    },
  };
}
