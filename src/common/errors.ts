/**
 * Typed errors shared by every component. Each class has a stable `code`; the API layer maps
 * codes to HTTP status in one place, the CLIs map them to exit codes and messages.
 */

export type ErrorCode =
  | 'INVALID_ARGUMENT' // bad input: flag, request field, config field
  | 'NOT_FOUND'
  | 'CONFLICT' // already exists, wrong state
  | 'FORBIDDEN' // never allowed on this object (a predefined network), or it overlaps another
  | 'UNSUPPORTED' // valid but not supported here
  | 'UNAVAILABLE' // not in the state to serve it (swarm endpoints on a daemon that is not a swarm node)
  | 'SYSTEM'; // the kernel or a tool failed

export class BerthError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input. `field` names what is wrong, e.g. `process.args` or `--bundle`. */
export class InvalidArgumentError extends BerthError {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super('INVALID_ARGUMENT', field ? `${field}: ${message}` : message);
    this.field = field;
  }
}

export class NotFoundError extends BerthError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class ConflictError extends BerthError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

export class ForbiddenError extends BerthError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

export class UnsupportedError extends BerthError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

export class UnavailableError extends BerthError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** dockerd's answer (503) to what needs swarm mode, which berthd does not have. */
export const NOT_A_SWARM_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

export class SystemError extends BerthError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SYSTEM', message, options);
  }
}
