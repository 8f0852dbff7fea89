/**
 * `docker import`: a plain root filesystem tarball (gzip'd or not) becomes a one-layer image.
 * The layer is stored uncompressed (its digest is its diff_id) under a Docker schema 2
 * manifest; the config gets the host's os/architecture (or `platform`), the given container
 * config and `changes` (Dockerfile instructions as `docker import --change` takes them: CMD,
 * ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL), and a history entry
 * with `message`. The tarball must be a readable tar archive; its contents are not judged
 * here (the unpacker refuses hostile entries when the layer is used).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';


import { InvalidArgumentError } from '../../common/errors.js';
import { tarExtract } from '../../common/tar-extract.js';
import { sha256Digest } from '../digest.js';
import { hostPlatform, parseImageConfig } from '../manifest.js';
import type { ImageConfig, ImageManifest, Platform } from '../types.js';
import { MEDIA_TYPES } from '../types.js';
import { bufferSource, canonicalName, commitImages, hashTo, type LoadedImage, type Stores } from './common.js';
import { DOCKER_LAYER_TAR } from './docker-archive.js';
import { decompress } from './tree.js';

export type ContainerConfig = NonNullable<ImageConfig['config']>;

export interface RootfsImportOptions {
  /** Name to give the image ("busybox:imported"); none leaves it untagged. */
  name?: string;
  /** Container config to start from (Cmd, Env, WorkingDir, …). */
  config?: ContainerConfig;
  /** Dockerfile instructions applied on top, e.g. `CMD ["sh"]`, `ENV A=1`. */
  changes?: string[];
  /** The history comment (docker: "Imported from <source>"). */
  message?: string;
  /** Default: this host's. */
  platform?: Platform;
  /** The config's `created` (default: now). */
  created?: string;
  tmpDir?: string;
}

export async function importRootfs(source: string | Readable, stores: Stores, opts: RootfsImportOptions = {}): Promise<LoadedImage> {
  const names = opts.name !== undefined ? [canonicalName(opts.name, 'name')] : [];
  const containerConfig = applyChanges(structuredClone(opts.config ?? {}), opts.changes ?? []);
  const scratch = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'berth-import-'));
  try {
    const layerFile = path.join(scratch, 'layer.tar');
    const input = typeof source === 'string' ? fs.createReadStream(source) : source;
    let layer;
    try {
      layer = await hashTo(decompress(input), layerFile);
    } catch (err) {
      input.destroy();
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code.startsWith('Z_')) throw new InvalidArgumentError(`not a valid gzip stream: ${(err as Error).message}`, 'rootfs');
      throw err;
    }
    await checkTar(layerFile);

    const platform = opts.platform ?? hostPlatform();
    const created = opts.created ?? new Date().toISOString();
    const comment = opts.message ?? 'Imported from tarball';
    // The message is the image's comment as well as its history's, as dockerd's import has it.
    const config: ImageConfig = {
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      created,
      comment,
      config: containerConfig,
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      history: [{ created, created_by: '', comment }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    parseImageConfig(configBytes);
    const configDigest = sha256Digest(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.dockerManifest,
      config: { mediaType: MEDIA_TYPES.dockerConfig, digest: configDigest, size: configBytes.length },
      layers: [{ mediaType: DOCKER_LAYER_TAR, digest: layer.digest, size: layer.size }],
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = sha256Digest(manifestBytes);
    await commitImages(
      stores,
      [
        { digest: layer.digest, size: layer.size, open: () => fs.createReadStream(layerFile) },
        { digest: configDigest, size: configBytes.length, open: bufferSource(configBytes) },
        { digest: manifestDigest, size: manifestBytes.length, open: bufferSource(manifestBytes) },
      ],
      [{ names, manifest: manifestDigest, config: configDigest, created: new Date().toISOString() }],
    );
    return { id: configDigest, manifest: manifestDigest, names };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Reads the whole file as a tar: refuses something that is not one (or is truncated). */
async function checkTar(file: string): Promise<void> {
  const ex = tarExtract();
  const input = fs.createReadStream(file);
  input.pipe(ex as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of ex) entry.resume();
  } catch (err) {
    input.destroy();
    throw new InvalidArgumentError(`not a valid tar archive: ${(err as Error).message}`, 'rootfs');
  }
}

// ---------------------------------------------------------------- --change

/** Applies Dockerfile instructions to a container config (a copy is returned). */
export function applyChanges(config: ContainerConfig, changes: string[]): ContainerConfig {
  changes.forEach((change, i) => {
    const field = `changes[${i}]`;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*?)\s*$/.exec(change);
    if (!m || m[2] === '') throw new InvalidArgumentError(`not an instruction with arguments: ${JSON.stringify(change)}`, field);
    const [, keyword, rest] = m;
    switch (keyword.toUpperCase()) {
      case 'CMD':
        config.Cmd = commandForm(rest);
        break;
      case 'ENTRYPOINT':
        config.Entrypoint = commandForm(rest);
        break;
      case 'ENV': {
        const env = (config.Env ?? []).filter(() => true);
        for (const [k, v] of keyValues(rest, field, true)) {
          const at = env.findIndex((e) => e.split('=', 1)[0] === k);
          if (at >= 0) env[at] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        config.Env = env;
        break;
      }
      case 'LABEL':
        config.Labels = { ...(config.Labels ?? {}) };
        for (const [k, v] of keyValues(rest, field, false)) config.Labels[k] = v;
        break;
      case 'EXPOSE':
        config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
        for (const port of rest.split(/\s+/)) {
          if (!/^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/.test(port)) throw new InvalidArgumentError(`invalid port ${JSON.stringify(port)}`, field);
          config.ExposedPorts[port.includes('/') ? port : `${port}/tcp`] = {};
        }
        break;
      case 'VOLUME':
        config.Volumes = { ...(config.Volumes ?? {}) };
        for (const v of jsonArray(rest) ?? rest.split(/\s+/)) config.Volumes[v] = {};
        break;
      case 'USER':
        config.User = rest;
        break;
      case 'WORKDIR':
        if (!rest.startsWith('/')) throw new InvalidArgumentError(`WORKDIR must be an absolute path: ${JSON.stringify(rest)}`, field);
        config.WorkingDir = rest;
        break;
      case 'STOPSIGNAL':
        config.StopSignal = rest;
        break;
      case 'ONBUILD': {
        // A trigger for builds FROM this image, kept as written (dockerd's and the builder's rule on which).
        const trigger = rest.split(/\s/, 1)[0].toUpperCase();
        if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(trigger)) throw new InvalidArgumentError(`${trigger} isn't allowed as an ONBUILD trigger`, field);
        config.OnBuild = [...(config.OnBuild ?? []), rest];
        break;
      }
      default:
        throw new InvalidArgumentError(`${keyword.toUpperCase()} is not supported in a change (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL are)`, field);
    }
  });
  return config;
}

function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  } catch {
    /* shell form */
  }
  return undefined;
}

/** `["a","b"]` (exec form) or a shell command run with /bin/sh -c. */
function commandForm(text: string): string[] {
  return jsonArray(text) ?? ['/bin/sh', '-c', text];
}

/** `K=V K2="v 2"`, or (legacy) `K the value` when `legacy` is allowed. */
function keyValues(text: string, field: string, legacy: boolean): Array<[string, string]> {
  const words = splitWords(text);
  if (!words[0].includes('=')) {
    if (!legacy) throw new InvalidArgumentError(`want KEY=VALUE pairs: ${JSON.stringify(text)}`, field);
    const sp = text.search(/\s/);
    if (sp < 0) throw new InvalidArgumentError(`want KEY VALUE or KEY=VALUE: ${JSON.stringify(text)}`, field);
    return [[text.slice(0, sp), text.slice(sp).trim()]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`want KEY=VALUE: ${JSON.stringify(w)}`, field);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Whitespace-separated words; double or single quotes group, backslash escapes. */
function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length && quote !== "'") {
      cur += text[++i];
      inWord = true;
    } else if (quote) {
      if (c === quote) quote = null;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
