/**
 * Manifests, indexes and image configs from bytes (pure): JSON and media types are checked
 * before anything trusts a field, and errors name the field (`manifest.layers[1].digest`).
 * Docker schema 2 and OCI image-spec v1 are accepted; Docker schema 1 is refused.
 */
import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../common/errors.js';
import { isDigest } from './digest.js';
import { MEDIA_TYPES } from './types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from './types.js';

/** Registries refuse manifests above 4 MiB (distribution's limit); so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Default bound on one layer's uncompressed size (decompression-bomb guard): pulls, loads, imports. */
export const MAX_LAYER_BYTES = 16 * 1024 ** 3;
/** Bound on what a compressed `docker load` archive may decompress to, all its layers together. */
export const MAX_ARCHIVE_BYTES = 64 * 1024 ** 3;

export type ParsedManifest = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

/** A parsed manifest or index with the media type it was read as (for a Content-Type when pushing it). */
export type TypedManifest = ParsedManifest & { mediaType: string };

const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
/** Every media type parseManifest accepts (image manifests, then indexes), e.g. for an Accept header. */
export const SUPPORTED_MANIFEST_TYPES: readonly string[] = [...MANIFEST_TYPES, ...INDEX_TYPES];
const SCHEMA1_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);
/** Content types that say nothing about the manifest kind (some registries send these). */
const GENERIC_TYPES: ReadonlySet<string> = new Set(['application/json', 'application/octet-stream', 'text/plain']);

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonObject(bytes: Buffer | string, what: string): Json {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  if (size > MAX_MANIFEST_BYTES) throw new InvalidArgumentError(`${what} is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw new InvalidArgumentError(`${what} must be a JSON object`);
  return value;
}

function checkString(value: unknown, field: string, optional = false): void {
  if (value === undefined && optional) return;
  if (typeof value !== 'string') throw new InvalidArgumentError(`must be a string`, field);
}

function checkStringMap(value: unknown, field: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw new InvalidArgumentError('must be an object of strings', field);
  for (const [key, v] of Object.entries(value)) checkString(v, `${field}.${key}`);
}

function checkStringArray(value: unknown, field: string): void {
  if (!Array.isArray(value)) throw new InvalidArgumentError('must be an array of strings', field);
  value.forEach((v, i) => checkString(v, `${field}[${i}]`));
}

function checkPlatform(value: unknown, field: string): void {
  if (!isObject(value)) throw new InvalidArgumentError('must be an object', field);
  checkString(value.architecture, `${field}.architecture`);
  checkString(value.os, `${field}.os`);
  checkString(value.variant, `${field}.variant`, true);
  checkString(value['os.version'], `${field}.os.version`, true);
  if (value['os.features'] !== undefined) checkStringArray(value['os.features'], `${field}.os.features`);
}

function checkDescriptor(value: unknown, field: string): asserts value is Descriptor {
  if (!isObject(value)) throw new InvalidArgumentError('must be a descriptor object', field);
  checkString(value.mediaType, `${field}.mediaType`);
  if (!isDigest(value.digest)) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(value.digest)}: want "sha256:" and 64 lowercase hex digits`, `${field}.digest`);
  }
  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new InvalidArgumentError('must be a non-negative integer', `${field}.size`);
  }
  if (value.urls !== undefined) checkStringArray(value.urls, `${field}.urls`);
  checkStringMap(value.annotations, `${field}.annotations`);
  if (value.platform !== undefined) checkPlatform(value.platform, `${field}.platform`);
  checkString(value.artifactType, `${field}.artifactType`, true);
}

function checkSchemaVersion(value: Json, field: string): void {
  if (value.schemaVersion !== 2) {
    throw new InvalidArgumentError(`schemaVersion ${JSON.stringify(value.schemaVersion)} is not supported (want 2)`, `${field}.schemaVersion`);
  }
}

/** The media type without parameters (`; charset=utf-8`), lowercased. */
function bareMediaType(mediaType: string): string {
  return mediaType.split(';')[0].trim().toLowerCase();
}

/**
 * Parses a manifest or an index. `mediaType` is what the registry said (Content-Type) or the
 * descriptor's; without it (or with a generic one) the JSON's own `mediaType`, then its shape,
 * decides. A `mediaType` that contradicts the JSON's is refused.
 */
export function parseManifest(bytes: Buffer | string, mediaType?: string): ParsedManifest {
  const typed = parseTypedManifest(bytes, mediaType);
  return typed.kind === 'manifest' ? { kind: 'manifest', manifest: typed.manifest } : { kind: 'index', index: typed.index };
}

/** As parseManifest, with the media type it decided on (given, declared or inferred from the shape). */
export function parseTypedManifest(bytes: Buffer | string, mediaType?: string): TypedManifest {
  const json = parseJsonObject(bytes, 'manifest');
  const declared = json.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw new InvalidArgumentError('must be a string', 'manifest.mediaType');

  let given = mediaType === undefined ? undefined : bareMediaType(mediaType);
  if (given !== undefined && GENERIC_TYPES.has(given)) given = undefined;
  if (given !== undefined && declared !== undefined && given !== declared) {
    throw new InvalidArgumentError(`media type ${given} does not match the manifest's own mediaType ${declared}`);
  }
  let type = given ?? declared;
  if (type === undefined) {
    // OCI allows omitting mediaType; the shape tells a manifest from an index.
    if ('manifests' in json) type = MEDIA_TYPES.ociIndex;
    else if ('config' in json || 'layers' in json) type = MEDIA_TYPES.ociManifest;
    else throw new InvalidArgumentError('manifest has no mediaType and is neither an image manifest nor an index');
  }
  if (SCHEMA1_TYPES.has(type) || json.schemaVersion === 1) {
    throw new UnsupportedError(`Docker image manifest schema 1 (${type}) is not supported: the image must be re-pushed with schema 2`);
  }

  if (MANIFEST_TYPES.has(type)) return { kind: 'manifest', manifest: checkManifest(json), mediaType: type };
  if (INDEX_TYPES.has(type)) return { kind: 'index', index: checkIndex(json), mediaType: type };
  throw new InvalidArgumentError(`unknown manifest media type ${JSON.stringify(type)}`);
}

function checkManifest(json: Json): ImageManifest {
  checkSchemaVersion(json, 'manifest');
  checkDescriptor(json.config, 'manifest.config');
  if (!Array.isArray(json.layers)) throw new InvalidArgumentError('must be an array of descriptors', 'manifest.layers');
  json.layers.forEach((layer, i) => checkDescriptor(layer, `manifest.layers[${i}]`));
  checkStringMap(json.annotations, 'manifest.annotations');
  if (json.subject !== undefined) checkDescriptor(json.subject, 'manifest.subject');
  return json as unknown as ImageManifest;
}

function checkIndex(json: Json): ImageIndex {
  checkSchemaVersion(json, 'index');
  if (!Array.isArray(json.manifests)) throw new InvalidArgumentError('must be an array of descriptors', 'index.manifests');
  json.manifests.forEach((entry, i) => checkDescriptor(entry, `index.manifests[${i}]`));
  checkStringMap(json.annotations, 'index.annotations');
  return json as unknown as ImageIndex;
}

/**
 * The digests a blob refers to if it is a manifest (config, layers) or an index (its
 * manifests); [] for anything else. Lenient (for garbage collection): never throws, and skips
 * entries whose digest is not canonical.
 */
export function referencedDigests(bytes: Buffer): string[] {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return [];
  }
  if (!isObject(json)) return [];
  const descriptors: unknown[] = [];
  if (Array.isArray(json.manifests)) descriptors.push(...json.manifests);
  if (isObject(json.config) && Array.isArray(json.layers)) descriptors.push(json.config, ...json.layers);
  return descriptors.flatMap((d) => (isObject(d) && isDigest(d.digest) ? [d.digest] : []));
}

// ---------------------------------------------------------------- image config

/** Parses and checks an image config (OCI config.md; Docker's is a superset). */
export function parseImageConfig(bytes: Buffer | string): ImageConfig {
  const json = parseJsonObject(bytes, 'image config');
  checkString(json.architecture, 'config.architecture');
  checkString(json.os, 'config.os');
  checkString(json.variant, 'config.variant', true);
  checkString(json.created, 'config.created', true);
  if (!isObject(json.rootfs)) throw new InvalidArgumentError('must be an object', 'config.rootfs');
  if (json.rootfs.type !== 'layers') throw new InvalidArgumentError(`type ${JSON.stringify(json.rootfs.type)} is not supported (want "layers")`, 'config.rootfs.type');
  if (!Array.isArray(json.rootfs.diff_ids)) throw new InvalidArgumentError('must be an array of digests', 'config.rootfs.diff_ids');
  json.rootfs.diff_ids.forEach((id, i) => {
    if (!isDigest(id)) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(id)}`, `config.rootfs.diff_ids[${i}]`);
  });
  const config = json.config;
  if (config !== undefined && config !== null) {
    if (!isObject(config)) throw new InvalidArgumentError('must be an object', 'config.config');
    checkString(config.User, 'config.config.User', true);
    checkString(config.WorkingDir, 'config.config.WorkingDir', true);
    checkString(config.StopSignal, 'config.config.StopSignal', true);
    if (config.Env !== undefined && config.Env !== null) checkStringArray(config.Env, 'config.config.Env');
    for (const key of ['Entrypoint', 'Cmd'] as const) {
      if (config[key] !== undefined && config[key] !== null) checkStringArray(config[key], `config.config.${key}`);
    }
    for (const key of ['ExposedPorts', 'Volumes'] as const) {
      if (config[key] !== undefined && config[key] !== null && !isObject(config[key])) throw new InvalidArgumentError('must be an object', `config.config.${key}`);
    }
    if (config.Labels !== null) checkStringMap(config.Labels, 'config.config.Labels');
  }
  if (json.history !== undefined && !Array.isArray(json.history)) throw new InvalidArgumentError('must be an array', 'config.history');
  return json as unknown as ImageConfig;
}

// ---------------------------------------------------------------- platforms

/** The platform this process runs on, in OCI terms (linux/amd64 on x64). */
export function hostPlatform(): Platform {
  const archByNode: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };
  const architecture = archByNode[process.arch] ?? process.arch;
  const platform: Platform = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture };
  if (architecture === 'arm') {
    const armVersion = (process.config.variables as Record<string, unknown>).arm_version;
    platform.variant = `v${typeof armVersion === 'string' || typeof armVersion === 'number' ? armVersion : 7}`;
  }
  return platform;
}

/** Normalizes os/arch/variant spellings as containerd's platforms package does (simplified). */
export function normalizePlatform(platform: Platform): { os: string; architecture: string; variant: string } {
  let os = platform.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = platform.architecture.toLowerCase();
  let variant = (platform.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = 'v' + variant;
      break;
  }
  return { os, architecture, variant };
}

const KNOWN_OS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos', 'macos']);
const KNOWN_ARCH = new Set(['386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm']);

/**
 * A `--platform` specifier as containerd's platforms.Parse reads it: "os/arch[/variant]", or an
 * OS or an architecture alone (the rest this host's); spellings normalized ("x86_64", "aarch64").
 * Errors in its words: `"bogus": unknown operating system or architecture: invalid argument`.
 */
export function parsePlatformSpecifier(specifier: string, host: Platform = hostPlatform()): Platform {
  if (specifier.includes('*')) throw new InvalidArgumentError(`${JSON.stringify(specifier)}: wildcards not yet supported: invalid argument`);
  const parts = specifier.toLowerCase().split('/');
  const platform = (os: string, architecture: string, variant: string): Platform => ({ os, architecture, ...(variant ? { variant } : {}) });
  // An architecture without a variant: arm means arm/v7, given back as plain arm (containerd's rule).
  const archOnly = (arch: string): { architecture: string; variant: string } => {
    const n = normalizePlatform({ os: '', architecture: arch });
    return { architecture: n.architecture, variant: n.architecture === 'arm' && n.variant === 'v7' ? '' : n.variant };
  };
  if (parts.length === 1) {
    const os = normalizePlatform({ os: parts[0]!, architecture: '' }).os;
    if (KNOWN_OS.has(os)) return platform(os, host.architecture, host.variant ?? '');
    const a = archOnly(parts[0]!);
    if (KNOWN_ARCH.has(a.architecture)) return platform(host.os, a.architecture, a.variant);
    throw new InvalidArgumentError(`${JSON.stringify(specifier)}: unknown operating system or architecture: invalid argument`); // containerd's platforms words, as dockerd gives them
  }
  if (parts.length === 2 && parts.every(Boolean)) {
    const a = archOnly(parts[1]!);
    return platform(normalizePlatform({ os: parts[0]!, architecture: '' }).os, a.architecture, a.variant);
  }
  if (parts.length === 3 && parts.every(Boolean)) {
    const n = normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2]! });
    return platform(n.os, n.architecture, n.architecture === 'arm64' && n.variant === '' ? 'v8' : n.variant);
  }
  throw new InvalidArgumentError(`${JSON.stringify(specifier)}: cannot parse platform specifier: invalid argument`); // containerd's words, as dockerd gives them
}

/**
 * The variants an image may have to run on `want`, best first: a CPU runs code built for
 * older variants of its architecture (amd64 v3 runs v2 and v1, arm v7 runs v6 and v5).
 */
function compatibleVariants(architecture: string, variant: string): string[] {
  const level = /^v(\d+)$/.exec(variant);
  if (architecture === 'amd64' && level) {
    const out: string[] = [];
    for (let v = Number(level[1]); v >= 2; v--) out.push(`v${v}`);
    return [...out, ''];
  }
  if (architecture === 'arm' && level) {
    const out: string[] = [];
    for (let v = Number(level[1]); v >= 5; v--) out.push(`v${v}`);
    return out;
  }
  if (architecture === 'arm64' && variant !== '') return [variant, ''];
  return [variant];
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** Whether an entry for `have` can run on `want`, and how well: lower rank is better, -1 is no. */
export function platformRank(have: Platform, want: Platform): number {
  const h = normalizePlatform(have);
  const w = normalizePlatform(want);
  if (h.os !== w.os || h.architecture !== w.architecture) return -1;
  return compatibleVariants(w.architecture, w.variant).indexOf(h.variant);
}

/**
 * The index entry to run on `want` (default: this host): the best variant match, the first
 * one on ties. Entries without a platform (attestations, artifacts) are never chosen.
 * Throws NotFoundError naming the platform and what the index offers.
 */
export function selectPlatform(index: ImageIndex, want: Platform = hostPlatform()): Descriptor {
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const entry of index.manifests) {
    if (!entry.platform) continue;
    const rank = platformRank(entry.platform, want);
    if (rank >= 0 && rank < bestRank) {
      best = entry;
      bestRank = rank;
    }
  }
  if (best) return best;
  const offered = index.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
  throw new NotFoundError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries (has: ${offered.join(', ') || 'none'})`);
}
