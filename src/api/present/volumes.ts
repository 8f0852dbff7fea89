/** Volumes as dockerd shows them. Pure. */
import type { Volume } from '../../storage/volumes.js';
import { goMap } from './go-map.js';

/**
 * dockerd's volume object: its fields in the order of moby's Volume struct (which `volume
 * inspect` prints as is), Labels and Options null when there are none, CreatedAt in RFC 3339
 * to the second (Go's time.RFC3339), as `volume inspect`, `volume ls` and the create answer give them.
 */
export function volumeView(v: Volume): object {
  return {
    CreatedAt: v.CreatedAt.replace(/\.\d+(?=Z$)/, ''),
    Driver: v.Driver,
    Labels: Object.keys(v.Labels ?? {}).length ? goMap(v.Labels) : null,
    Mountpoint: v.Mountpoint,
    Name: v.Name,
    Options: Object.keys(v.Options ?? {}).length ? goMap(v.Options) : null,
    Scope: v.Scope,
  };
}
