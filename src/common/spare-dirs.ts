/**
 * Directories made ahead of need. A `docker create` needs new directories (a writable layer
 * with its `fs` and `work`, the container's own), and making a directory costs a new inode:
 * 40–300 µs each on this VM's ext4, more than any other step of a create. A spare made earlier,
 * in a turn of the event loop of its own after the request that took the last one, is renamed
 * into place instead, in ~20 µs. Made synchronously there: on the thread pool, a spare could
 * appear in a directory this process is removing at that moment, and fail the removal.
 *
 * Spares live in a directory of the owner's on the destination's file system (rename), named
 * by the owner, which removes leftovers at start-up along with its other temporary files. When
 * none is ready, or making them fails, take() returns undefined and the caller makes its
 * directory as before.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface SpareDirsOptions {
  /** A new unused path in the spares' directory, for each spare. */
  name: () => string;
  /** The spare's mode (as mkdir's: the umask applies). */
  mode: number;
  /** Subdirectories made in each spare, with their modes. */
  subdirs?: ReadonlyArray<readonly [name: string, mode: number]>;
  /** How many to keep ready (default 2: a burst of creates uses them up and then waits for none). */
  count?: number;
}

export class SpareDirs {
  private readonly ready: string[] = [];
  private filling = false;
  private broken = false;

  constructor(private readonly opts: SpareDirsOptions) {}

  /** A ready spare, now the caller's to fill and rename (or remove); makes the next meanwhile. */
  take(): string | undefined {
    const spare = this.ready.pop();
    this.fill();
    return spare;
  }

  /** Makes spares until `count` are ready, in a later turn of the event loop (no-op after a failure). */
  fill(): void {
    if (this.filling || this.broken || this.ready.length >= (this.opts.count ?? 2)) return;
    this.filling = true;
    setImmediate(() => {
      this.filling = false;
      try {
        while (!this.broken && this.ready.length < (this.opts.count ?? 2)) this.ready.push(this.makeOne());
      } catch {
        // The directory went away, the disk is full...: callers make their own from now on.
        this.broken = true;
      }
    }).unref();
  }

  /** The ready spares, removed (e.g. before the directory holding them goes); no more are made. */
  discard(): void {
    this.broken = true;
    for (const spare of this.ready.splice(0)) fs.rmSync(spare, { recursive: true, force: true });
  }

  private makeOne(): string {
    const spare = this.opts.name();
    fs.mkdirSync(spare, { mode: this.opts.mode });
    try {
      for (const [name, mode] of this.opts.subdirs ?? []) fs.mkdirSync(path.join(spare, name), { mode });
    } catch (err) {
      fs.rmSync(spare, { recursive: true, force: true });
      throw err;
    }
    return spare;
  }
}
