/**
 * Go's encoding/json writes a map's keys sorted, so every map in dockerd's answers (labels,
 * exposed ports, volumes, port bindings, options, networks) comes sorted whatever order it was
 * given in; Berth keeps the given order in its records and sorts at presentation. Pure.
 */

/** A copy of a map with its keys in Go's order; null and undefined pass through. */
export function goMap<T>(map: Record<string, T>): Record<string, T>;
export function goMap<T>(map: Record<string, T> | null | undefined): Record<string, T> | null | undefined;
export function goMap<T>(map: Record<string, T> | null | undefined): Record<string, T> | null | undefined {
  if (map === null || map === undefined || typeof map !== 'object' || Array.isArray(map)) return map;
  const out: Record<string, T> = {};
  for (const key of Object.keys(map).sort(byteOrder)) out[key] = map[key]!;
  return out;
}

/** A container or image config with its maps (Labels, ExposedPorts, Volumes) in Go's order. */
export function withGoMaps<C extends object>(config: C): C {
  const out = { ...config } as Record<string, unknown>;
  for (const field of ['Labels', 'ExposedPorts', 'Volumes']) {
    const value = out[field];
    if (value && typeof value === 'object' && !Array.isArray(value)) out[field] = goMap(value as Record<string, unknown>);
  }
  return out as C;
}

/** Go compares strings byte by byte (UTF-8), which is code point order. */
function byteOrder(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}
