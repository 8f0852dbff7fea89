/**
 * The builder's BuildBackend on the engine: images through the ImageService (lookup, pull,
 * createImage with parent links, tag), containers through the ContainerService (create, start
 * with attached output, wait, remove; a container's root mounted for COPY), files through the
 * scoped-root walk and the extractor `docker cp` uses.
 */
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { FrameParser, type Frame } from '../../shim/client.js';
import { dockerReference, type ImageReference } from '../../images/reference.js';
import type { ImageRecord } from '../../images/types.js';
import { hostIdOf } from '../../storage/idrange.js';
import { extractArchive } from '../containers/filesystem.js';
import { readSmall, ScopedRoot } from '../containers/scoped-root.js';
import type { ContainerService } from '../containers/service.js';
import { familiar, targetName, type ImageService } from '../images.js';
import type { BuildBackend, BuildImage } from './builder.js';

/** The message of a typed error without its "field: " prefix. */
function bare(err: unknown): string {
  const e = err as InvalidArgumentError;
  return e.field && e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : (err as Error).message;
}

/** Credentials for a registry from X-Registry-Config (keys may be URLs, as the docker CLI writes them). */
function authFor(ref: ImageReference, auth: Record<string, { username: string; password: string }>): { username: string; password: string } | undefined {
  for (const [key, value] of Object.entries(auth)) {
    const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
    const domain = ['index.docker.io', 'registry-1.docker.io'].includes(host) ? 'docker.io' : host;
    if (domain === ref.domain && value?.username) return value;
  }
  return undefined;
}

export function engineBuildBackend(containers: ContainerService, images: ImageService): BuildBackend {
  const view = (record: ImageRecord): BuildImage => ({ id: record.config, config: images.config(record) });
  return {
    findImage(ref) {
      try {
        return view(images.get(ref));
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    },

    async pullImage(name, sink, auth) {
      let ref: ImageReference;
      try {
        ref = dockerReference(name);
      } catch (err) {
        throw new InvalidArgumentError(`invalid reference format: ${name}: ${bare(err)}`);
      }
      const found = authFor(ref, auth);
      return view(await images.pull(ref, { sink, ...(found ? { auth: found } : {}) }));
    },

    children(parent) {
      return images.children(parent).map(view);
    },

    createImage(spec) {
      return images.createImage({
        ...(spec.parent ? { base: images.get(spec.parent) } : {}),
        ...(spec.container ? { layer: { container: spec.container } } : {}),
        config: spec.config,
        history: { created_by: spec.createdBy },
        parent: spec.parent,
      });
    },

    emptyImage() {
      return images.createImage({ config: { config: {} }, history: {} });
    },

    async removeImage(id) {
      await images.remove(id, { force: true });
    },

    normalizeTag(tag) {
      try {
        return targetName(tag, undefined);
      } catch (err) {
        throw new InvalidArgumentError(`invalid tag ${JSON.stringify(tag)}: ${bare(err)}`, 't');
      }
    },

    tagImage(id, name) {
      return familiar(images.tag(id, name, undefined));
    },

    async createContainer(spec) {
      const { id } = await containers.create({
        config: {
          Image: spec.image,
          Cmd: spec.cmd,
          Entrypoint: [],
          Env: spec.env,
          User: spec.user ?? '',
          WorkingDir: spec.workdir ?? '',
          // A build step is not watched by the image's health check.
          Healthcheck: { Test: ['NONE'] },
        },
        hostConfig: { ...(spec.limits ?? {}), NetworkMode: spec.network ?? 'default', ...(spec.extraHosts?.length ? { ExtraHosts: spec.extraHosts } : {}) },
      });
      return id;
    },

    async runContainer(id, output) {
      const session = await containers.attach(id);
      const exit = containers.wait(id, 'next-exit');
      try {
        await containers.start(id);
        const socket = await session.connected;
        if (socket) {
          for await (const frame of socket.pipe(new FrameParser())) output((frame as Frame).data);
        }
        return (await exit).StatusCode;
      } finally {
        session.close();
      }
    },

    withRootfs(id, fn) {
      return containers.withRootfs(id, async (rootfs, record) => {
        const scoped = new ScopedRoot(rootfs);
        try {
          return await fn({
            path: rootfs,
            scoped,
            extract: (dest, tar) => extractArchive(scoped, record, dest, tar),
            readFile: (p) => readSmall(scoped, p),
            hostIds: ({ uid, gid }) => ({ uid: hostIdOf(record.idRange, uid, 'owner'), gid: hostIdOf(record.idRange, gid, 'owner') }),
          });
        } finally {
          scoped.close();
        }
      });
    },

    async removeContainer(id) {
      await containers.remove(id, { force: true, volumes: true });
    },
  };
}
