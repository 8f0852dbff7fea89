/**
 * `docker import`: a plain root filesystem tarball (uncompressed, or gzip, zstd, xz or bzip2 as
 * dockerd reads it) becomes a one-layer image. The layer is stored uncompressed (its digest is
 * its diff_id) under a Docker schema 2 manifest; the config gets the host's os/architecture (or
 * `platform`), the given container config (with any `--change` already applied by the engine:
 * engine/build/run-config.ts), and a history entry with `message`. The tarball must be a
 * readable tar archive; its contents are not judged here (the unpacker refuses hostile entries
 * when the layer is used).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';


import { decompressed } from '../../common/compression.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { tarExtract } from '../../common/tar-extract.js';
import { sha256Digest } from '../digest.js';
import { hostPlatform, MAX_LAYER_BYTES, parseImageConfig } from '../manifest.js';
import type { ImageConfig, ImageManifest, Platform } from '../types.js';
import { MEDIA_TYPES } from '../types.js';
import { bufferSource, canonicalName, commitImages, hashTo, type LoadedImage, type Stores } from './common.js';
import { DOCKER_LAYER_TAR } from './docker-archive.js';

export type ContainerConfig = NonNullable<ImageConfig['config']>;

export interface RootfsImportOptions {
  /** Name to give the image ("busybox:imported"); none leaves it untagged. */
  name?: string;
  /** The image's container config (Cmd, Env, WorkingDir, …): `--change`s are the engine's (engine/build/run-config.ts). */
  config?: ContainerConfig;
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
  const containerConfig = structuredClone(opts.config ?? {});
  const scratch = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'berth-import-'));
  try {
    const layerFile = path.join(scratch, 'layer.tar');
    const input = typeof source === 'string' ? fs.createReadStream(source) : source;
    let layer;
    try {
      layer = await hashTo(decompressed(input, 'rootfs', MAX_LAYER_BYTES), layerFile);
    } catch (err) {
      input.destroy();
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
      [{ names, manifest: manifestDigest, config: configDigest, created: new Date().toISOString(), ...(names.length ? { lastTagTime: new Date().toISOString() } : {}) }],
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
