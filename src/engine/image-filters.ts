/**
 * Docker's image filters (pure): the keys `GET /images/json` and `POST /images/prune` accept,
 * reference globs (Go's path.Match against "busybox:latest" and "busybox", as
 * reference.FamiliarMatch), labels ("key" or "key=value") and timestamps ("until").
 */
import { parseGoDuration } from '../common/duration.js';
import { InvalidArgumentError } from '../common/errors.js';

export type Filters = Record<string, string[]>;

/**
 * A filter dockerd does not take, in its words: "Invalid filter 'x'", "Invalid filter 'status=x'",
 * and where dockerd names all of a key's values, as Go prints a slice: "Invalid filter 'dangling=[x y]'".
 */
export function invalidFilter(key: string, value?: string | string[]): InvalidArgumentError {
  const shown = Array.isArray(value) ? `[${value.join(' ')}]` : value;
  return new InvalidArgumentError(`Invalid filter '${shown === undefined ? key : `${key}=${shown}`}'`);
}

/**
 * dockerd's filters.Match (the name filters of containers and networks): the value itself, or
 * a regular expression found anywhere in it; one that does not compile matches nothing.
 */
export function filterMatch(pattern: string, value: string): boolean {
  if (pattern === value) return true;
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return false;
  }
}

/** Refuses keys outside `allowed`, as dockerd does. */
export function checkFilterKeys(filters: Filters, allowed: readonly string[]): void {
  for (const key of Object.keys(filters)) {
    if (!allowed.includes(key)) throw invalidFilter(key);
  }
}

/**
 * A boolean filter ("dangling"), as moby's filters.GetBoolOrDefault reads it: undefined when
 * absent; true when "true" or "1" is among the values, false for "false" or "0" (exactly so
 * spelled; other values beside them are ignored); neither, or both, is a 400 naming them all.
 */
export function boolFilter(filters: Filters, key: string): boolean | undefined {
  const values = filters[key];
  if (!values || values.length === 0) return undefined;
  const isTrue = values.includes('true') || values.includes('1');
  const isFalse = values.includes('false') || values.includes('0');
  if (isTrue === isFalse) throw invalidFilter(key, values);
  return isTrue;
}

/** Go's path.Match as a RegExp: `*` and `?` stop at "/", `[...]` classes, `\` escapes. */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += '\\' + pattern[++i];
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new InvalidArgumentError(`syntax error in pattern ${JSON.stringify(pattern)}`, 'filters');
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^')) cls = '^' + cls.slice(1).replace(/[\\\]]/g, '\\$&');
      else cls = cls.replace(/[\\\]^]/g, '\\$&');
      out += `(?!/)[${cls}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/**
 * Whether an image with these familiar names ("busybox:latest") and repo digests
 * ("busybox@sha256:…") matches a reference pattern: the whole name or the repository.
 */
export function matchesReference(pattern: string, familiarRefs: string[]): boolean {
  const re = globToRegExp(pattern);
  return familiarRefs.some((ref) => {
    if (re.test(ref)) return true;
    const repo = ref.includes('@') ? ref.slice(0, ref.indexOf('@')) : ref.replace(/:[^:/]+$/, '');
    return re.test(repo);
  });
}

/** `label=key` or `label=key=value` against an image's labels: every one must hold. */
export function matchesLabels(values: string[] | undefined, labels: Record<string, string> | undefined | null): boolean {
  if (!values || values.length === 0) return true;
  return values.every((v) => matchesLabel(v, labels));
}

export function matchesLabel(value: string, labels: Record<string, string> | undefined | null): boolean {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (!labels || !Object.prototype.hasOwnProperty.call(labels, key)) return false;
  return eq < 0 || labels[key] === value.slice(eq + 1);
}

/**
 * A timestamp filter value ("until"): Unix seconds (with fraction), an RFC 3339 date, or a Go
 * duration ("10m", "1h30m") before `now`. Returns milliseconds since the epoch. Refused in
 * dockerd's words alone.
 */
export function parseTimestamp(value: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const duration = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(value) ? goDuration(value) : undefined;
  if (duration !== undefined) return now - duration;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
  return t;
}

function goDuration(value: string): number {
  return parseGoDuration(value) / 1e6;
}

/**
 * The filters of a prune (containers, networks): `until` (older than), `label` (each must hold)
 * and `label!` (none may), as dockerd takes them; any other key is refused. Returns the test
 * an object must pass to be pruned.
 */
export function pruneMatcher(filters: Filters, allowed: readonly string[] = ['until', 'label', 'label!']): (item: { created: string; labels?: Record<string, string> | null }) => boolean {
  checkFilterKeys(filters, allowed);
  const until = filters.until?.length ? Math.min(...filters.until.map((u) => parseTimestamp(u))) : undefined;
  return (item) => {
    if (until !== undefined && !((Date.parse(item.created) || 0) < until)) return false;
    if (!matchesLabels(filters.label, item.labels)) return false;
    return !(filters['label!'] ?? []).some((l) => matchesLabel(l, item.labels));
  };
}
