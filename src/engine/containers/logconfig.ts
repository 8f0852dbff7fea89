/**
 * A container's log driver and options (HostConfig.LogConfig, `--log-driver`/`--log-opt`), as
 * dockerd checks and merges them, and what they mean for the shim. The shim writes json-file
 * lines, so the drivers are json-file, local (read back the same way; no compression here) and
 * none; drivers that ship logs elsewhere (syslog, journald, gelf...) are refused by name.
 * Pure: no file system.
 */
import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { fromHumanSize, goParseBool } from '../../common/units.js';

export interface LogConfig {
  Type?: string;
  Config?: Record<string, string> | null;
}

/** A log config after the daemon's defaults are merged in: what the record keeps. */
export interface EffectiveLogConfig {
  Type: 'json-file' | 'local' | 'none';
  Config: Record<string, string>;
}

/**
 * berthd's default: json-file, rotated at these sizes (dockerd's json-file keeps one file
 * growing forever unless told otherwise; its "local" driver rotates at 20 MB, 5 files).
 */
export const DEFAULT_LOG_CONFIG: EffectiveLogConfig = { Type: 'json-file', Config: { 'max-size': '20m', 'max-file': '5' } };

const OPTIONS: Record<EffectiveLogConfig['Type'], Set<string>> = {
  'json-file': new Set(['max-file', 'max-size', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']),
  local: new Set(['max-file', 'max-size', 'compress']),
  none: new Set(),
};
/** Drivers dockerd has that ship the output elsewhere: known, but not carried out here. */
const ELSEWHERE = new Set(['syslog', 'journald', 'gelf', 'fluentd', 'awslogs', 'splunk', 'etwlogs', 'gcplogs', 'logentries']);

const FIELD = 'HostConfig.LogConfig';


function parseBool(text: string): boolean {
  const value = goParseBool(text);
  if (value === undefined) throw driverError(`strconv.ParseBool: parsing ${JSON.stringify(text)}: invalid syntax`);
  return value;
}

/**
 * The container's log config: its driver (the daemon's when it names none) with its options,
 * the daemon's options added where the driver is the daemon's and the container leaves them
 * out (dockerd's mergeAndVerifyLogConfig); checked as dockerd's drivers check them.
 */
export function resolveLogConfig(requested: LogConfig | null | undefined, daemon: EffectiveLogConfig = DEFAULT_LOG_CONFIG): EffectiveLogConfig {
  if (requested !== undefined && requested !== null && (typeof requested !== 'object' || Array.isArray(requested))) throw new InvalidArgumentError('must be an object', FIELD);
  const type = requested?.Type || daemon.Type;
  if (typeof type !== 'string') throw new InvalidArgumentError('Type: must be a string', FIELD);
  const config: Record<string, string> = {};
  const given = requested?.Config ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) throw new InvalidArgumentError('Config: must be an object', FIELD);
  for (const [k, v] of Object.entries(given)) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`Config[${JSON.stringify(k)}]: must be a string`, FIELD);
    config[k] = v;
  }
  if (type === daemon.Type) for (const [k, v] of Object.entries(daemon.Config)) if (!(k in config)) config[k] = v;
  if (ELSEWHERE.has(type)) throw new UnsupportedError(`${FIELD}: the ${type} log driver is not supported by berthd (json-file, local, none)`);
  if (type !== 'json-file' && type !== 'local' && type !== 'none') throw new InvalidArgumentError(`error looking up logging plugin ${type}: plugin ${JSON.stringify(type)} not found`); // dockerd's words
  for (const key of Object.keys(config)) if (!OPTIONS[type].has(key)) throw new InvalidArgumentError(`unknown log opt '${key}' for ${type} log driver`);
  const effective: EffectiveLogConfig = { Type: type, Config: config };
  rotation(effective); // checks max-size, max-file and compress
  return effective;
}

/** The local driver's limits when its options leave them out (moby's local.New): 20 MiB, 5 files. */
const LOCAL_DEFAULTS = { maxSize: 20 * 1024 * 1024, maxFiles: 5 };

/** An option the driver refuses when it starts, in dockerd's words. */
function driverError(message: string): InvalidArgumentError {
  return new InvalidArgumentError(`failed to initialize logging driver: ${message}`);
}

/** What the shim is told: rotation by size over a number of files, or no log file (none). */
export function rotation(cfg: EffectiveLogConfig): { maxSize?: number; maxFiles: number } | false {
  if (cfg.Type === 'none') return false;
  const c = cfg.Config;
  let maxSize: number | undefined = cfg.Type === 'local' ? LOCAL_DEFAULTS.maxSize : undefined;
  if (c['max-size'] !== undefined) {
    maxSize = fromHumanSize(c['max-size']);
    if (maxSize === undefined) throw driverError(`invalid size: '${c['max-size']}'`);
    if (maxSize <= 0) throw driverError('max-size must be a positive number');
  }
  let maxFiles = cfg.Type === 'local' ? LOCAL_DEFAULTS.maxFiles : 1;
  if (c['max-file'] !== undefined) {
    if (!/^[+-]?\d+$/.test(c['max-file'])) throw driverError(`strconv.Atoi: parsing ${JSON.stringify(c['max-file'])}: invalid syntax`);
    maxFiles = Number(c['max-file']);
    if (maxFiles < 1) throw driverError('max-file cannot be less than 1');
  }
  if (c.compress !== undefined && parseBool(c.compress)) {
    if (maxFiles === 1 || maxSize === undefined) throw driverError('compress cannot be true when max-file is less than 2 or max-size is not set');
    throw new UnsupportedError(`${FIELD}: compress: compressed rotated log files are not supported by berthd`);
  }
  return { ...(maxSize !== undefined ? { maxSize } : {}), maxFiles };
}

/** The container as the log attributes and the tag template see it. */
export interface LogSubject {
  id: string;
  /** With its leading "/". */
  name: string;
  imageId: string;
  imageName: string;
  labels: Record<string, string>;
  env: string[];
}

/**
 * The "attrs" of each json-file line: the labels and environment variables named by
 * labels/env (or matched by labels-regex/env-regex), and the tag when one is asked for
 * (dockerd's ExtraAttributes and ParseLogTag). Undefined when there are none.
 */
export function logAttributes(cfg: EffectiveLogConfig, subject: LogSubject): Record<string, string> | undefined {
  if (cfg.Type !== 'json-file') return undefined;
  const c = cfg.Config;
  const attrs: Record<string, string> = {};
  const regex = (key: string): RegExp | undefined => {
    if (c[key] === undefined) return undefined;
    try {
      return new RegExp(c[key]!);
    } catch (err) {
      throw new InvalidArgumentError(`${key}: ${(err as Error).message}`, FIELD);
    }
  };
  const labelKeys = new Set((c.labels ?? '').split(',').filter(Boolean));
  const labelRegex = regex('labels-regex');
  for (const [k, v] of Object.entries(subject.labels)) if (labelKeys.has(k) || labelRegex?.test(k)) attrs[k] = v;
  const envKeys = new Set((c.env ?? '').split(',').filter(Boolean));
  const envRegex = regex('env-regex');
  for (const entry of subject.env) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const k = entry.slice(0, eq);
    if (envKeys.has(k) || envRegex?.test(k)) attrs[k] = entry.slice(eq + 1);
  }
  if (c.tag !== undefined) attrs.tag = logTag(c.tag, subject);
  if (!Object.keys(attrs).length) return undefined;
  // The shim takes at most this much (native/shim/log.h LOG_ATTRS_MAX, its NUL included).
  if (JSON.stringify(attrs).length > MAX_ATTRS_JSON) throw new InvalidArgumentError(`the log attributes (labels, env, tag) come to more than ${MAX_ATTRS_JSON} bytes of JSON`, FIELD);
  return attrs;
}

const MAX_ATTRS_JSON = 4095;

const TAG_FIELDS: Record<string, (s: LogSubject) => string> = {
  ID: (s) => s.id.slice(0, 12),
  FullID: (s) => s.id,
  Name: (s) => s.name.replace(/^\//, ''),
  ImageID: (s) => s.imageId.replace(/^sha256:/, '').slice(0, 12),
  ImageFullID: (s) => s.imageId,
  ImageName: (s) => s.imageName,
  DaemonName: () => 'docker',
};

/** dockerd's log tag: a template of the container's {{.ID}}, {{.Name}}, {{.ImageName}}...; empty: {{.ID}}. */
export function logTag(template: string, subject: LogSubject): string {
  const text = template === '' ? '{{.ID}}' : template;
  return text.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_, expr: string) => {
    const field = /^\.(\w+)$/.exec(expr)?.[1];
    const get = field ? TAG_FIELDS[field] : undefined;
    if (!get) throw new InvalidArgumentError(`tag: the template ${JSON.stringify(template)} uses ${JSON.stringify(expr)}: only {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageID}}, {{.ImageFullID}}, {{.ImageName}} and {{.DaemonName}} are supported`, FIELD);
    return get(subject);
  });
}

/** `docker logs --details`: the attributes as k=v pairs (values query-escaped, keys in order), then a space. */
export function detailsPrefix(attrs: Record<string, string> | undefined): string {
  const pairs = Object.keys(attrs ?? {})
    .sort()
    .map((k) => `${k}=${queryEscape(attrs![k]!)}`);
  return `${pairs.join(',')} `;
}

/** Go's url.QueryEscape: all but letters, digits and -_.~ escaped, a space as "+". */
function queryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}
