/**
 * A container's own range of host ids, when it runs in a user namespace of its own
 * (src/engine/containers/userns.ts): id N inside is host id `base + N`, for N < size.
 *
 * Its writable layer holds files owned by host ids, so the tars the engine writes of such a
 * container (commit, export, cp out) translate them to the ids the container sees, and what it
 * extracts into one (cp in) gets the host ids that the container sees as the tar's, as dockerd
 * does with --userns-remap.
 */
import { InvalidArgumentError } from '../common/errors.js';

export interface IdRange {
  base: number;
  size: number;
}

/** What the kernel shows for an id the namespace does not map (/proc/sys/kernel/overflowuid). */
export const OVERFLOW_ID = 65534;

/** The id a host id appears as inside the range's namespace; no range: the host id itself. */
export function idInside(range: IdRange | undefined, hostId: number): number {
  if (!range) return hostId;
  return hostId >= range.base && hostId - range.base < range.size ? hostId - range.base : OVERFLOW_ID;
}

/**
 * The host id of an id inside the range's namespace; no range: the id itself. An id the range
 * does not hold is refused (dockerd: "Container ID N cannot be mapped to a host ID").
 */
export function hostIdOf(range: IdRange | undefined, id: number, what: string): number {
  if (!range) return id;
  if (!Number.isInteger(id) || id < 0 || id >= range.size) {
    throw new InvalidArgumentError(`${what}: id ${id} cannot be mapped into the container's user namespace (ids 0-${range.size - 1})`, 'archive');
  }
  return range.base + id;
}
