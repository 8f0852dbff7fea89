/** Volumes as dockerd shows them. Pure. */
import type { Volume } from '../../storage/volumes.js';
import { goMap } from './go-map.js';

/**
 * dockerd's volume object: Labels and Options null when there are none, CreatedAt in RFC 3339
 * to the second (Go's time.RFC3339), as `volume inspect`, `volume ls` and the create answer give them.
 */
export function volumeView(v: Volume): object {
  return {
    ...v,
    CreatedAt: v.CreatedAt.replace(/\.\d+(?=Z$)/, ''),
    Labels: Object.keys(v.Labels ?? {}).length ? goMap(v.Labels) : null,
    Options: Object.keys(v.Options ?? {}).length ? goMap(v.Options) : null,
  };
}
