/**
 * Output as docker prints it: human sizes (go-units), "About an hour" durations, tabwriter
 * tables (minwidth 10, padding 3), and `--format` handling (`table`, `json`, templates with
 * `\t`/`\n` escapes, a `table ` prefix that adds a header row).
 */
import { ramInBytes } from '../common/units.js';
import { GO_TYPE, parse as parseTemplate, TemplateError } from './template.js';

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** Go's %.<p>g without exponent for the ranges sizes take. */
function gFormat(n: number, precision: number): string {
  return String(Number(n.toPrecision(precision)));
}

/** go-units HumanSizeWithPrecision: decimal units ("1.99MB", "4.1kB", "0B"). */
export function humanSize(size: number, precision = 3): string {
  let i = 0;
  while (size >= 1000 && i < DECIMAL.length - 1) {
    size /= 1000;
    i++;
  }
  return gFormat(size, precision) + DECIMAL[i];
}

/** go-units BytesSize: binary units ("1.5MiB"). */
export function bytesSize(size: number, precision = 4): string {
  let i = 0;
  while (size >= 1024 && i < BINARY.length - 1) {
    size /= 1024;
    i++;
  }
  return gFormat(size, precision) + BINARY[i];
}

/** go-units HumanDuration ("Less than a second", "About a minute", "3 hours", "2 years"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.round(ms / 3_600_000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** "3 minutes ago" for a time in seconds since the epoch (or an RFC 3339 string). */
export function ago(t: number | string, now = Date.now()): string {
  const ms = typeof t === 'number' ? t * 1000 : Date.parse(t);
  return `${humanDuration(now - ms)} ago`;
}

/** Go's RFC 3339 with the local zone as docker prints CreatedAt: "2024-01-02 15:04:05 +0000 UTC". */
export function goTime(t: number | string): string {
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  const p = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const zone = Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? 'UTC';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${zone === 'GMT' ? 'UTC' : zone}`;
}

/** "sha256:abc…" → the first 12 hex digits (or the full hex with noTrunc). */
export function shortId(id: string, noTrunc = false): string {
  const hex = id.startsWith('sha256:') ? id.slice(7) : id;
  return noTrunc ? id : hex.slice(0, 12);
}

/**
 * The docker CLI's order of volume and network names (fvbommel/sortorder's NaturalLess): runs of
 * digits compare as numbers ("v2" before "v10"), and before other characters; the rest bytewise.
 */
export function naturalCompare(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  const digit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    const d1 = digit(x[i]);
    const d2 = digit(y[j]);
    if (d1 !== d2) return d1 ? -1 : 1;
    if (!d1) {
      if (x[i] !== y[j]) return x[i]! - y[j]!;
      i++;
      j++;
      continue;
    }
    while (x[i] === 0x30) i++;
    while (y[j] === 0x30) j++;
    const start1 = i;
    const start2 = j;
    while (digit(x[i])) i++;
    while (digit(y[j])) j++;
    if (i - start1 !== j - start2) return i - start1 - (j - start2);
    const n = Buffer.compare(x.subarray(start1, i), y.subarray(start2, j));
    if (n !== 0) return n;
    if (start1 !== start2) return start1 - start2;
  }
  return x.length - i - (y.length - j);
}

/** Truncates to n characters with docker's ellipsis "…". */
export function ellipsis(s: string, n: number): string {
  return [...s].length > n ? [...s].slice(0, n - 1).join('') + '…' : s;
}

/**
 * Go's text/tabwriter as docker configures it (minwidth 10, tabwidth 1, padding 3, spaces):
 * tab-terminated cells are aligned per column; the last cell of a line is not padded.
 */
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const lines = text.split('\n');
  const trailingNewline = lines[lines.length - 1] === '';
  if (trailingNewline) lines.pop();
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const r of rows) {
    for (let c = 0; c < r.length - 1; c++) widths[c] = Math.max(widths[c] ?? minwidth, [...r[c]].length + padding);
  }
  const out = rows.map((r) => r.map((cell, c) => (c < r.length - 1 ? cell + ' '.repeat(widths[c] - [...cell].length) : cell)).join(''));
  return out.join('\n') + (trailingNewline ? '\n' : '');
}

export interface ListFormat {
  /** The --format value, if any. */
  format?: string;
  /** The default table template, e.g. "table {{.ID}}\t{{.Image}}". */
  table: string;
  /** Header names per field; others are shown upper-cased. */
  headers: Record<string, string>;
  /** The docker CLI's Go type of a row, named in errors about fields it lacks. */
  goType?: string;
}

/** docker's escapes in --format: a literal \t and \n become a tab and a newline. */
export function unescapeFormat(f: string): string {
  return f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

/** Renders rows as docker's formatter does (table with header, json lines, or a template per row). */
export function formatList(rows: object[], lf: ListFormat): string {
  let format = lf.format && lf.format !== 'table' ? lf.format : lf.table;
  if (format === 'json') format = '{{json .}}';
  const isTable = format.startsWith('table');
  if (isTable) format = format.slice('table'.length);
  format = unescapeFormat(format.trim() === '' && isTable ? lf.table.slice('table'.length) : format).replace(/^ +| +$/g, '');
  try {
    return renderList(rows, lf, format, isTable);
  } catch (err) {
    // The docker CLI's formatter says the same of a template that does not parse or run.
    if (err instanceof TemplateError) throw new TemplateError(`template parsing error: ${err.message}`);
    throw err;
  }
}

function renderList(rows: object[], lf: ListFormat, format: string, isTable: boolean): string {
  // Rows have every field of docker's formatter context: a field they lack is an error, as there.
  const tpl = parseTemplate(format, { strictFields: true });
  let out = '';
  if (isTable) {
    const header = new Proxy({} as Record<string, string>, {
      get: (_t, k) => (typeof k === 'string' ? (lf.headers[k] ?? k.toUpperCase()) : undefined),
      has: (_t, k) => typeof k === 'string',
    });
    let h = '';
    try {
      h = tpl.execute(header);
    } catch {
      /* a header row from a template with functions of non-strings: leave it out */
    }
    out += h + '\n';
  }
  for (const r of rows) {
    if (lf.goType) Object.defineProperty(r, GO_TYPE, { value: lf.goType });
    // {{json .}} of a row: its fields in name order, as docker's formatters marshal a map.
    if (!Object.hasOwn(r, 'toJSON')) Object.defineProperty(r, 'toJSON', { value: () => Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) });
    out += tpl.execute(r) + '\n';
  }
  return isTable ? tabwrite(out) : out;
}

/** The RAM sizes docker accepts ("64m", "1g", "512k", "100"): binary units. */
/** A bad flag value, in the docker CLI's words (the commands exit 125 with it). */
export class FlagError extends Error {}

/** An integer flag value, as Go's strconv.ParseInt reads one. */
export function integerFlag(value: string, flag: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new FlagError(`invalid argument "${value}" for "${flag}" flag: strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

export function parseRamSize(s: string): number {
  const size = ramInBytes(s);
  if (size === undefined) throw new Error(`invalid size: '${s}'`);
  return size;
}

/** go-units' reason a RAM size does not parse: "invalid suffix: 'x'", or "invalid size: 'x'". */
function ramSizeProblem(s: string): string {
  const sep = Math.max(...[...'0123456789. '].map((c) => s.lastIndexOf(c)));
  if (sep < 0) return `invalid size: '${s}'`;
  const num = s.slice(0, sep + 1);
  if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(num)) return `strconv.ParseFloat: parsing ${JSON.stringify(num)}: invalid syntax`;
  return `invalid suffix: '${s.slice(sep + 1)}'`;
}

/** A RAM-size flag (-m, --shm-size, ...) as the docker CLI reads it; its errors name the flag. */
export function ramFlag(value: string, flag: string): number {
  const size = ramInBytes(value);
  if (size === undefined) throw new FlagError(`invalid argument "${value}" for "${flag}" flag: ${ramSizeProblem(value)}`);
  return size;
}

/** Seconds since the epoch from docker's --since/--until forms: a duration ("10m"), RFC 3339 or a timestamp. */
export function parseTimestamp(v: string, now = Date.now()): string {
  const dur = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (dur) {
    const mult = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[dur[2] as 's'];
    return String(Math.floor((now - Number(dur[1]) * mult) / 1000));
  }
  if (/^\d+(\.\d+)?$/.test(v)) return v;
  const t = Date.parse(v);
  // The docker client's words (timetypes.GetTimestamp).
  if (Number.isNaN(t)) throw new Error(`failed to parse value as time or duration: ${JSON.stringify(v)}`);
  return String(Math.floor(t / 1000));
}

/** `k=v` / `k` flags (labels, driver options) → an object. */
export function keyValues(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const x of list ?? []) {
    const i = x.indexOf('=');
    out[i < 0 ? x : x.slice(0, i)] = i < 0 ? '' : x.slice(i + 1);
  }
  return out;
}
