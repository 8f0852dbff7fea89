/**
 * The one place where errors become HTTP statuses (as moby's errdefs → httpstatus). Every
 * route throws typed errors (src/common/errors.ts); the server turns them into Docker's
 * `{"message": ...}` bodies.
 */
import { BerthError } from '../common/errors.js';

/** A status the API returns without an error: "not modified" (start of a running container). */
export class HttpStatus extends Error {
  constructor(readonly status: number, message = '') {
    super(message);
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  FORBIDDEN: 403,
  UNSUPPORTED: 501,
  UNAVAILABLE: 503,
  SYSTEM: 500,
};

export function errorStatus(err: unknown): number {
  if (err instanceof HttpStatus) return err.status;
  if (err instanceof BerthError) return STATUS_BY_CODE[err.code] ?? 500;
  return 500;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
