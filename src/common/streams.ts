/** Small helpers for Node and streamx streams. */

/** Resolves at the writable's next 'drain', or at its 'close' (destroyed meanwhile): never hangs on a dead stream that closes. */
export function drained(w: { on(event: string, fn: () => void): unknown; off(event: string, fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}
