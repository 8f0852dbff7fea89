/** Image records → the JSON of Docker's `/images/json` and `/images/{name}/json`. */
import type { Engine } from '../../engine/engine.js';
import { parseImageConfig, parseManifest } from '../../images/manifest.js';
import { familiarString, parseReference } from '../../images/reference.js';
import type { ImageRecord } from '../../images/types.js';

/** "docker.io/library/busybox:latest" → "busybox:latest", as Docker shows names. */
export function familiarName(name: string): string {
  try {
    return familiarString(parseReference(name));
  } catch {
    return name;
  }
}

function imageSize(engine: Engine, image: ImageRecord): number {
  try {
    const parsed = parseManifest(engine.content.readBlob(image.manifest));
    if (parsed.kind !== 'manifest') return 0;
    // Docker reports the unpacked size; the compressed size is what we know without unpacking.
    return parsed.manifest.layers.reduce((sum, l) => sum + l.size, 0);
  } catch {
    return 0;
  }
}

export function imageSummary(engine: Engine, image: ImageRecord): object {
  const config = parseImageConfig(engine.content.readBlob(image.config));
  const size = imageSize(engine, image);
  return {
    Id: image.config,
    ParentId: '',
    RepoTags: image.names.map(familiarName),
    RepoDigests: (image.repoDigests ?? []).map(familiarName),
    Created: Math.floor(Date.parse(config.created ?? image.created) / 1000) || 0,
    Size: size,
    VirtualSize: size,
    SharedSize: -1,
    Labels: config.config?.Labels ?? null,
    Containers: -1,
  };
}

export function imageInspect(engine: Engine, image: ImageRecord): object {
  const config = parseImageConfig(engine.content.readBlob(image.config));
  const size = imageSize(engine, image);
  return {
    Id: image.config,
    RepoTags: image.names.map(familiarName),
    RepoDigests: (image.repoDigests ?? []).map(familiarName),
    Parent: '',
    Comment: (config as { comment?: string }).comment ?? '',
    Created: config.created ?? image.created,
    DockerVersion: '',
    Author: config.author ?? '',
    Config: { Env: null, Cmd: null, Entrypoint: null, WorkingDir: '', User: '', Labels: null, Volumes: null, ExposedPorts: null, ...(config.config ?? {}) },
    Architecture: config.architecture,
    Variant: config.variant,
    Os: config.os,
    Size: size,
    VirtualSize: size,
    GraphDriver: { Name: 'overlay2', Data: null },
    RootFS: { Type: 'layers', Layers: config.rootfs?.diff_ids ?? [] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}
