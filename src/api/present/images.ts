/** Image records → the JSON of Docker's `/images/json`, `/images/{name}/json` and `/images/{name}/history`. */
import path from 'node:path';

import type { Engine } from '../../engine/engine.js';
import { familiar, type HistoryItem } from '../../engine/images.js';
import type { ImageRecord } from '../../images/types.js';
import { compareVersions } from '../versions.js';
import { goMap, withGoMaps } from './go-map.js';

/** "docker.io/library/busybox:latest" → "busybox:latest", as Docker shows names. */
export const familiarName = familiar;

/** An image's names as dockerd lists them: familiar, sorted (its reference store's lexical order). */
function familiarNames(names: readonly string[]): string[] {
  return names.map(familiarName).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function createdSeconds(created: string | undefined, fallback: string): number {
  return Math.floor((Date.parse(created ?? fallback) || 0) / 1000);
}

/**
 * Before API 1.43 untagged images showed "<none>:<none>" and "<none>@<none>", and a list left
 * empty beside the other was null; from 1.43 both are lists (moby's getImagesJSON).
 */
function placeholders(version: string | undefined, tags: string[], digests: string[]): { tags: string[] | null; digests: string[] | null } {
  if (version === undefined || compareVersions(version, '1.43') >= 0) return { tags, digests };
  if (tags.length === 0 && digests.length === 0) return { tags: ['<none>:<none>'], digests: ['<none>@<none>'] };
  return { tags: tags.length ? tags : null, digests: digests.length ? digests : null };
}

/** VirtualSize went away in API 1.44. */
function virtualSize(version: string | undefined, size: number): { VirtualSize?: number } {
  return version !== undefined && compareVersions(version, '1.44') < 0 ? { VirtualSize: size } : {};
}

export function imageSummary(engine: Engine, image: ImageRecord, opts: { version?: string; containers?: number } = {}): object {
  const config = engine.imageService.config(image);
  const size = engine.imageService.size(image, config);
  const { tags, digests } = placeholders(opts.version, familiarNames(image.names), familiarNames(image.repoDigests ?? []));
  return {
    Containers: opts.containers ?? -1,
    Created: createdSeconds(config.created, image.created),
    Id: image.config,
    Labels: goMap(config.config?.Labels ?? null),
    ParentId: image.parent ?? '',
    RepoDigests: digests,
    RepoTags: tags,
    SharedSize: -1,
    Size: size,
    ...virtualSize(opts.version, size),
  };
}

export function imageInspect(engine: Engine, image: ImageRecord, version?: string): object {
  const config = engine.imageService.config(image);
  const size = engine.imageService.size(image, config);
  const layers = engine.imageService.layerDirectories(image, config);
  const c = config.config ?? {};
  return {
    Id: image.config,
    RepoTags: familiarNames(image.names),
    RepoDigests: familiarNames(image.repoDigests ?? []),
    Parent: image.parent ?? '',
    Comment: typeof config.comment === 'string' ? config.comment : '',
    Created: config.created ?? image.created,
    ...(version !== undefined && compareVersions(version, '1.45') < 0 ? { Container: typeof config.container === 'string' ? config.container : '', ContainerConfig: { ...emptyConfig(), ...withGoMaps(containerConfigOf(config)) } } : {}),
    DockerVersion: typeof config.docker_version === 'string' ? config.docker_version : '',
    Author: config.author ?? '',
    Config: { ...emptyConfig(), ...withGoMaps(c) },
    Architecture: config.architecture,
    ...(config.variant ? { Variant: config.variant } : {}),
    Os: config.os,
    ...(typeof config['os.version'] === 'string' ? { OsVersion: config['os.version'] } : {}),
    Size: size,
    ...virtualSize(version, size),
    // dockerd's overlay2 names all four for an image; its merged and work directories exist only
    // while a container uses them, and here never for an image (the snapshotter has neither).
    GraphDriver: {
      Name: 'overlay2',
      Data: layers
        ? { ...(layers.lowers.length ? { LowerDir: layers.lowers.join(':') } : {}), MergedDir: path.join(path.dirname(layers.upper), 'merged'), UpperDir: layers.upper, WorkDir: path.join(path.dirname(layers.upper), 'work') }
        : null,
    },
    RootFS: { Type: 'layers', Layers: config.rootfs?.diff_ids ?? [] },
    Metadata: { LastTagTime: image.lastTagTime ?? '0001-01-01T00:00:00Z' },
  };
}

/** The image's container_config (a commit's container, a build step's config), if it has one. */
function containerConfigOf(config: Record<string, unknown>): Record<string, unknown> {
  const cc = config['container_config'];
  return cc && typeof cc === 'object' && !Array.isArray(cc) ? (cc as Record<string, unknown>) : {};
}

/** Docker's container.Config with nothing set, as inspect shows the fields an image lacks. */
function emptyConfig(): Record<string, unknown> {
  return {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: null,
    Cmd: null,
    Image: '',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
  };
}

export function imageHistory(items: HistoryItem[]): object[] {
  return items.map((h) => ({ Comment: h.Comment, Created: h.Created, CreatedBy: h.CreatedBy, Id: h.Id, Size: h.Size, Tags: h.Tags }));
}
