/**
 * Digest strings. Only sha256 is accepted, in canonical form ("sha256:" + 64 lowercase hex):
 * every path built from a digest goes through `digestHex`, so nothing else reaches the disk.
 */
import { createHash } from 'node:crypto';

import { InvalidArgumentError } from '../common/errors.js';
import type { Digest } from './types.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST.test(value);
}

/** Throws InvalidArgumentError (naming `field`) unless `value` is a canonical sha256 digest. */
export function assertDigest(value: unknown, field = 'digest'): asserts value is Digest {
  if (!isDigest(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 100 ? value.slice(0, 100) + '…' : value) : typeof value;
    throw new InvalidArgumentError(`invalid digest ${shown}: want "sha256:" and 64 lowercase hex digits`, field);
  }
}

/** The 64 hex digits of a validated digest. */
export function digestHex(digest: Digest): string {
  assertDigest(digest);
  return digest.slice('sha256:'.length);
}

export function sha256Digest(data: Buffer | string): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** "sha256:0123456789ab…" → "0123456789ab", as Docker shows short IDs. */
export function shortDigest(digest: Digest): string {
  return digestHex(digest).slice(0, 12);
}
