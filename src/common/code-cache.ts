/**
 * Loads our CommonJS bundles with a V8 code cache, so that a CLI start deserializes the bytecode of
 * the bundle instead of compiling it (~15 ms of a `berth-oci run`). Node 20 has no
 * module.enableCompileCache (Node 22), so this is vm.Script's cachedData, as in the
 * v8-compile-cache package; it works the same on Node 22 and 24.
 *
 * `npm run build` writes FILE.cache beside each bundle and chunk (writeCodeCache); start-up only
 * reads it. A cache file is MAGIC, a copy of the bundle it was made from, then V8's data:
 * - it is used only if that copy equals the bundle byte for byte (a memcmp: loading node:crypto to
 *   hash the bundle costs ~5 ms, a hash in JS a few ms);
 * - V8 rejects data from another V8 version or other V8 flags;
 * - V8 checksums its data when --verify-snapshot-checksum is on (a release build checks nothing
 *   by default, and a flipped byte in a header field crashed V8 in a test);
 * any failure (missing, stale, corrupt, unreadable) is a plain compile, never an error.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

const MAGIC = Buffer.from('berth code cache 1\n');

export function codeCachePath(file: string): string {
  return `${file}.cache`;
}

/** A CommonJS file as node's module loader wraps it. */
function wrap(source: Buffer): string {
  return `(function (exports, require, module, __filename, __dirname) {${source.toString()}\n})`;
}

/**
 * Runs fn with V8's code cache checksums on: written by createCachedData, checked on use. Only
 * around our own compile: left on, the flag makes node's built-in modules, whose embedded cache has
 * no checksum, compile from scratch (~12 ms).
 */
function withChecksums<T>(fn: () => T): T {
  v8.setFlagsFromString('--verify-snapshot-checksum');
  try {
    return fn();
  } finally {
    v8.setFlagsFromString('--no-verify-snapshot-checksum');
  }
}

/** V8's part of FILE.cache if the cache was made from exactly this source; else undefined. */
function readCodeCache(file: string, source: Buffer): Buffer | undefined {
  let cache: Buffer;
  try {
    cache = fs.readFileSync(codeCachePath(file));
  } catch {
    return undefined;
  }
  const end = MAGIC.length + source.length;
  if (cache.length <= end || !cache.subarray(0, MAGIC.length).equals(MAGIC) || !cache.subarray(MAGIC.length, end).equals(source)) return undefined;
  return cache.subarray(end);
}

/**
 * Writes FILE.cache (atomically: concurrent starts read the old file or the new one), compiled
 * eagerly: every function, not only those one run calls, so that it covers every command.
 */
export function writeCodeCache(file: string): void {
  const source = fs.readFileSync(file);
  const data = withChecksums(() => {
    v8.setFlagsFromString('--no-lazy');
    let script: vm.Script;
    try {
      script = new vm.Script(wrap(source), { filename: file });
    } finally {
      v8.setFlagsFromString('--lazy'); // V8 records the flags of a normal start in the cache
    }
    return script.createCachedData();
  });
  const tmp = `${codeCachePath(file)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat([MAGIC, source, data]));
  fs.renameSync(tmp, codeCachePath(file));
}

const modules = new Map<string, { exports: unknown }>();

type Require = (id: string) => unknown;

/**
 * What a bundle's non-relative require gets: node's builtins, the only modules left out of our
 * bundles. process.getBuiltinModule (Node >= 20.16) gives them without node:module, whose
 * createRequire loads node's ES module loader: ~3 ms of every CLI start. Older Node: the main
 * module's (boot.cjs is CommonJS) Module.createRequire.
 */
function builtinRequire(file: string): Require {
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (getBuiltin) {
    return (id: string) => {
      const m = getBuiltin(id);
      if (m === undefined) throw new Error(`${file}: require('${id}'): only node's built-in modules are left out of the bundle`);
      return m;
    };
  }
  const Module = process.mainModule?.constructor as { createRequire?: (file: string) => Require } | undefined;
  if (!Module?.createRequire) throw new Error(`${file}: cannot load node's built-in modules here (Node >= 20.16, or a CommonJS main module)`);
  return Module.createRequire(file);
}

/** What became of each loaded file's cache: used, rejected by V8, or none (missing or not for this source). */
export const codeCacheState = new Map<string, 'used' | 'rejected' | 'none'>();

/**
 * Runs FILE as a CommonJS module, compiled with its code cache when that is valid, and returns its
 * exports. Its relative requires (the berth CLI's chunks) load the same way; others (node
 * builtins) go to node's require.
 */
export function loadWithCodeCache(file: string): unknown {
  const known = modules.get(file);
  if (known) return known.exports;
  const source = fs.readFileSync(file);
  const cachedData = readCodeCache(file, source);
  const script = withChecksums(() => new vm.Script(wrap(source), { filename: file, cachedData }));
  codeCacheState.set(file, !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'used');
  const module = { exports: {} };
  modules.set(file, module);
  const nodeRequire = builtinRequire(file);
  const dir = path.dirname(file);
  const require = (id: string): unknown => (id.startsWith('./') || id.startsWith('../') ? loadWithCodeCache(path.join(dir, id)) : nodeRequire(id));
  script.runInThisContext()(module.exports, require, module, file, dir);
  return module.exports;
}
