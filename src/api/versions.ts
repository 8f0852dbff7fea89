/** Docker Engine API versions: what we announce, what we serve, and reading them from a path. */
import { InvalidArgumentError } from '../common/errors.js';

export const API_VERSION = '1.44';
export const MIN_API_VERSION = '1.24';
/** The Docker release whose API is API_VERSION: what `/version` reports as the engine version. */
export const DOCKER_COMPAT_VERSION = '25.0.0';

export function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** Splits "/v1.41/containers/json" into its version and the rest; unversioned paths get API_VERSION. */
export function splitVersion(pathname: string): { version: string; path: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(pathname);
  if (!m) return { version: API_VERSION, path: pathname };
  const version = m[1]!;
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw new InvalidArgumentError(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  if (compareVersions(version, API_VERSION) > 0) {
    throw new InvalidArgumentError(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  return { version, path: m[2]! };
}
