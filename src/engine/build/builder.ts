/**
 * Docker's legacy builder (`POST /build`, moby's builder/dockerfile): runs a Dockerfile's plan
 * step by step, each step a new image whose parent is the previous one, as dockerd does:
 *
 *   metadata (ENV, LABEL, CMD, USER, EXPOSE, ...)  new config, no layer (history: empty_layer)
 *   RUN                                            a container from the current image runs the
 *                                                  command; its writable layer is the new layer
 *   COPY, ADD, WORKDIR                             a container (never started) gets the files;
 *                                                  its writable layer is the new layer
 *
 * Each step first looks for a cached image: a child of the current image whose
 * `container_config` (the step's config with the instruction, and for COPY/ADD the sources'
 * content hash, as its Cmd) is the same (moby's image/cache). Output is the legacy builder's text
 * (`Step 1/4 : ...`, ` ---> <id>`, ` ---> Running in <id>`, the RUN's output, ...).
 *
 * The builder knows nothing of HTTP: it reads a tar stream and writes to a sink. It reaches
 * images and containers only through `BuildBackend` (backend.ts on the engine's services).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

import { BerthError, InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { ImageConfig } from '../../images/types.js';
import type { JsonMessage } from '../image-progress.js';
import { parseGroup, parsePasswd } from '../containers/user.js';
import { DEFAULT_PATH_ENV } from '../spec/container-spec.js';
import { at, ScopedRoot, type Resolved } from '../containers/scoped-root.js';
import { archiveStream, isArchive, hashSources, sourceTar, SourceTree, unpackContext, type CopyAttrs, type Source } from './context.js';
import { downloadSource, isRemoteSource } from './remote.js';
import {
  BuildArgs,
  parseDockerfile,
  planBuild,
  ShellLex,
  stepCount,
  substitutionEnv,
  toCommand,
  type BuildPlan,
  type Command,
  type Stage,
  type StageArgs,
} from './dockerfile.js';
import { applyToRunConfig, commandOf, isConfigCommand, shellOf, type RunConfig } from './run-config.js';

/** An image as the builder sees it. */
export interface BuildImage {
  id: string;
  config: ImageConfig;
}

export type { RunConfig };

/** What the builder needs of the engine (see backend.ts). */
export interface BuildBackend {
  /** The image `ref` names (name or ID), or undefined. */
  findImage(ref: string): BuildImage | undefined;
  /** Pulls `ref` (progress to `sink`). */
  pullImage(ref: string, sink: (m: JsonMessage) => void, auth: Record<string, { username: string; password: string }>): Promise<BuildImage>;
  /** Images recorded as built on `parent` ('' for from scratch). */
  children(parent: string): BuildImage[];
  /** A new image on `parent` ('' for none), with `container`'s writable layer if given. Returns its ID. */
  createImage(spec: { parent: string; container?: string; config: Partial<ImageConfig>; createdBy: string }): Promise<string>;
  /** An image with no layers and no history, to start containers on for steps after FROM scratch. */
  emptyImage(): Promise<string>;
  removeImage(id: string): Promise<void>;
  /** Checks a tag (repository[:tag]); returns the fully qualified name. */
  normalizeTag(tag: string): string;
  /** Tags the image; returns the name as Docker shows it. */
  tagImage(id: string, name: string): string;
  createContainer(spec: { image: string; cmd: string[]; env: string[]; user?: string; workdir?: string; network?: string; extraHosts?: string[]; limits?: Record<string, unknown> }): Promise<string>;
  /** Starts the container, sends its output (stdout and stderr) to `output`, resolves with its exit status. */
  runContainer(id: string, output: (chunk: Buffer) => void): Promise<number>;
  /** Runs fn with the container's root file system mounted. */
  withRootfs<T>(id: string, fn: (root: ContainerRoot) => Promise<T>): Promise<T>;
  removeContainer(id: string): Promise<void>;
}

/** A container's mounted root, scoped (symlinks stay inside), and how to extract a tar into it. */
export interface ContainerRoot {
  path: string;
  scoped: ScopedRoot;
  extract(dest: string, tar: Readable): Promise<void>;
  readFile(p: string): string | undefined;
  /** The host ids of ids in the container (not the same in a user namespace of its own). */
  hostIds(ids: { uid: number; gid: number }): { uid: number; gid: number };
}

export interface BuildOptions {
  /** The Dockerfile's path in the context. */
  dockerfile: string;
  tags: string[];
  /** null: declared by the client without a value (not given). */
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  noCache: boolean;
  rm: boolean;
  forceRm: boolean;
  pull: boolean;
  target?: string;
  networkMode?: string;
  extraHosts: string[];
  /**
   * The RUN steps' limits (the build's ulimits, memory, memswap, cpushares, cpuperiod,
   * cpuquota, cpusetcpus, cpusetmems, shmsize, cgroupparent) as HostConfig fields.
   */
  runLimits?: Record<string, unknown>;
  /** X-Registry-Config: credentials by registry, for the FROM images' pulls. */
  auth: Record<string, { username: string; password: string }>;
}

/** Where the build's messages go: text lines and JSON messages (pull progress, aux). */
export interface BuildSink {
  stream(text: string): void;
  message(m: JsonMessage): void;
}

/** A failed RUN: its status becomes the error message's code, as dockerd sends it. */
export class RunFailedError extends BerthError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * The Cmd a step's image records, behind the current shell as dockerd has it: metadata steps as
 * [...shell, "#(nop) ", "ENV A=1"], file steps as [...shell, "#(nop) COPY ..."] (dockerd's two forms).
 */
const nop = (runConfig: RunConfig, comment: string): string[] => [...shellOf(runConfig), '#(nop) ', comment];
const nopString = (runConfig: RunConfig, comment: string): string[] => [...shellOf(runConfig), `#(nop) ${comment}`];

/** The lexer's result; its error names the word, in moby's shell lexer's words. */
function lexed<T>(text: string, lex: () => T): T {
  try {
    return lex();
  } catch (err) {
    throw new InvalidArgumentError(`failed to process ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** JSON with sorted keys and no empty values: what the cache compares. */
function canonical(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x === undefined || x === null || x === '' || (Array.isArray(x) && x.length === 0) || (typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length === 0)) continue;
        out[k] = norm(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}

/** One stage's state: the current image and config, its ARGs. */
interface StageState {
  /** '' before the first step of a FROM scratch stage. */
  imageId: string;
  image?: BuildImage;
  runConfig: RunConfig;
  args: StageArgs;
  /** Whether this stage set CMD (an ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  author?: string;
  platform: { architecture: string; os: string; variant?: string };
}

export class Builder {
  constructor(
    private readonly backend: BuildBackend,
    private readonly tmpDir: string,
  ) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    fs.mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Unpacks the context and reads and checks the Dockerfile: what fails here fails before any
   * output (an HTTP error). The caller runs the returned build, then closes it.
   */
  async prepare(input: Readable, options: BuildOptions): Promise<Build> {
    for (const t of options.tags) this.backend.normalizeTag(t);
    const dir = fs.mkdtempSync(path.join(this.tmpDir, 'ctx-'));
    let tree: SourceTree | undefined;
    try {
      const root = path.join(dir, 'context');
      await unpackContext(input, root);
      const probe = new SourceTree(root, 'context');
      const ignoreText = probe.readFile('.dockerignore')?.toString('utf8');
      let name = options.dockerfile.replace(/^\/+/, '') || 'Dockerfile';
      let text = probe.readFile(name);
      // dockerd's fallback: "dockerfile" when the default name is absent.
      if (text === undefined && name === 'Dockerfile' && !options.dockerfile.includes('/')) {
        text = probe.readFile('dockerfile');
        if (text !== undefined) name = 'dockerfile';
      }
      probe.close();
      if (text === undefined) throw new InvalidArgumentError(`Cannot locate specified Dockerfile: ${options.dockerfile || 'Dockerfile'}`);
      const plan = planBuild(text.toString('utf8'), { target: options.target, name });
      // The `labels` parameter is a LABEL step at the end, as dockerd adds it.
      const labels = Object.keys(options.labels).sort();
      if (labels.length > 0) {
        const line = `LABEL ${labels.map((k) => `${JSON.stringify(k)}='${options.labels[k]}'`).join(' ')}`;
        plan.stages.at(-1)!.commands.push(toCommand(parseDockerfile(line).instructions[0]!, '\\'));
      }
      tree = new SourceTree(root, 'context', ignoreText);
      return new Build(this.backend, options, plan, tree, dir);
    } catch (err) {
      tree?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
}

/** A prepared build: run it once, then close it. */
export class Build {
  private sink!: BuildSink;
  private readonly lex: ShellLex;
  private step = 0;
  private readonly total: number;
  private readonly stages = new Map<string, string>();
  private empty: string | undefined;
  /** Containers of failed steps, removed at the end with forcerm. */
  private readonly leftContainers: string[] = [];
  private cancelled = false;
  /** The RUN container running now, killed by cancel(). */
  private running: string | undefined;

  constructor(
    private readonly backend: BuildBackend,
    private readonly options: BuildOptions,
    private readonly plan: BuildPlan,
    private readonly context: SourceTree,
    private readonly dir: string,
  ) {
    this.lex = new ShellLex(plan.escape);
    this.total = stepCount(plan);
  }

  /** The client went away: stop at the next step (a running RUN is stopped now), as dockerd cancels. */
  cancel(): void {
    this.cancelled = true;
    if (this.running) void this.removeContainer(this.running);
  }

  close(): void {
    this.context.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs the build; returns the image ID. */
  async run(sink: BuildSink): Promise<string> {
    this.sink = sink;
    try {
      return await this.runStages();
    } finally {
      if (this.options.forceRm) for (const id of this.leftContainers) await this.removeContainer(id);
      if (this.empty) await this.backend.removeImage(this.empty).catch(() => undefined);
    }
  }

  private out(text: string): void {
    this.sink.stream(text);
  }

  private printStep(original: string): void {
    if (this.cancelled) throw new InvalidArgumentError('the build was cancelled: the client went away');
    this.out(`Step ${++this.step}/${this.total} : ${original}\n`);
  }

  private async runStages(): Promise<string> {
    const args = new BuildArgs(this.options.buildArgs);
    for (const meta of this.plan.metaArgs) {
      this.printStep(meta.ins.original);
      for (const a of meta.args) args.addMeta(a.key, a.value !== undefined ? this.word(a.value, args.metaEnv()) : undefined);
    }
    let state: StageState | undefined;
    for (const stage of this.plan.stages) {
      this.printStep(stage.from.original);
      state = await this.from(stage, args);
      this.out(` ---> ${short(state.imageId)}\n`);
      for (const command of stage.commands) {
        this.printStep(command.ins.original);
        await this.dispatch(state, command);
        this.out(` ---> ${short(state.imageId)}\n`);
      }
      if (state.imageId) this.sink.message({ aux: { ID: state.imageId } });
      this.stages.set(String(stage.index), state.imageId);
      if (stage.name) this.stages.set(stage.name, state.imageId);
    }
    const warning = args.unusedWarning();
    if (warning) this.out(warning);
    const id = state?.imageId;
    if (!id) throw new InvalidArgumentError('No image was generated. Is your Dockerfile empty?');
    this.out(`Successfully built ${short(id)}\n`);
    for (const t of this.options.tags) this.out(`Successfully tagged ${this.backend.tagImage(id, t)}\n`);
    return id;
  }

  /** A word with variables substituted (one word, or split into words). */
  private word(text: string, env: ReadonlyMap<string, string>): string {
    return lexed(text, () => this.lex.processWord(text, env));
  }

  private words(text: string, env: ReadonlyMap<string, string>): string[] {
    return lexed(text, () => this.lex.processWords(text, env));
  }

  // ---- FROM ------------------------------------------------------------------------------------

  private async from(stage: Stage, args: BuildArgs): Promise<StageState> {
    const name = this.word(stage.base, args.metaEnv());
    if (name === '') throw new InvalidArgumentError('base name (' + stage.base + ') should not be blank');
    let image: BuildImage | undefined;
    const fromStage = this.stages.get(name.toLowerCase());
    if (fromStage !== undefined && !/^\d+$/.test(name)) {
      image = fromStage ? this.backend.findImage(fromStage) : undefined;
    } else if (name.toLowerCase() !== 'scratch') {
      image = await this.image(name);
    }
    const state: StageState = {
      imageId: image?.id ?? '',
      ...(image ? { image } : {}),
      runConfig: structuredClone(image?.config.config ?? {}),
      args: args.stage(),
      cmdSet: false,
      platform: image ? { architecture: image.config.architecture, os: image.config.os, ...(image.config.variant ? { variant: image.config.variant } : {}) } : { architecture: '', os: '' },
    };
    // moby's setDefaultPath: every stage whose base sets no PATH (FROM scratch) gets Linux's default.
    const env = (state.runConfig.Env ??= []);
    if (!env.some((e) => e.startsWith('PATH='))) env.push(DEFAULT_PATH_ENV);
    // The base image's ONBUILD triggers run now, and are not inherited.
    const triggers = state.runConfig.OnBuild as string[] | undefined;
    if (Array.isArray(triggers) && triggers.length > 0) {
      state.runConfig.OnBuild = [];
      this.out(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      for (const trigger of triggers) {
        const parsed = parseDockerfile(trigger).instructions[0];
        if (!parsed) continue;
        if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(parsed.keyword)) throw new InvalidArgumentError(`${parsed.keyword} isn't allowed as an ONBUILD trigger`);
        await this.dispatch(state, toCommand({ ...parsed, line: stage.from.line }, this.plan.escape));
      }
    }
    return state;
  }

  /** An image by name or ID: pulled when missing, or always with `pull`. */
  private async image(name: string): Promise<BuildImage> {
    const local = this.backend.findImage(name);
    if (local && (!this.options.pull || /^(sha256:)?[0-9a-f]{12,64}$/.test(name))) return local;
    return this.backend.pullImage(name, (m) => this.sink.message(m), this.options.auth);
  }

  // ---- steps -----------------------------------------------------------------------------------

  private async dispatch(state: StageState, command: Command): Promise<void> {
    const env = substitutionEnv(state.runConfig.Env ?? [], state.args);
    const w = (text: string): string => this.word(text, env);
    const rc = state.runConfig;
    switch (command.kind) {
      case 'ARG': {
        const parts: string[] = [];
        for (const a of command.args) {
          const value = a.value !== undefined ? w(a.value) : undefined;
          state.args.declare(a.key, value);
          parts.push(value !== undefined ? `${a.key}=${value}` : a.key);
        }
        return this.commit(state, `ARG ${parts.join(' ')}`);
      }
      case 'MAINTAINER':
        state.author = w(command.value);
        return this.commit(state, `MAINTAINER ${state.author}`);
      case 'WORKDIR':
        return this.workdir(state, w(command.value));
      case 'RUN':
        return this.runStep(state, command.line);
      case 'COPY':
      case 'ADD':
        return this.copy(state, command, w);
      default: {
        if (!isConfigCommand(command)) throw new InvalidArgumentError(`unknown instruction: ${command.kind}`);
        if (command.kind === 'HEALTHCHECK') {
          const old = rc.Healthcheck?.Test;
          if (old && old.length > 0 && old[0] !== 'NONE') this.out(`Note: overriding previous HEALTHCHECK: [${old.join(' ')}]\n`);
        }
        const text = applyToRunConfig(rc, command, { word: w, words: (t) => this.words(t, env) }, state);
        if (command.kind === 'ENTRYPOINT' && rc.Entrypoint?.length === 0) rc.Entrypoint = null; // moby's emptyAsNil in a build
        return this.commit(state, text);
      }
    }
  }


  /** The image of this step from the cache, if there is one: a child of the current image made with the same config. */
  private cached(state: StageState, probe: RunConfig): BuildImage | undefined {
    if (this.options.noCache) return undefined;
    const want = canonical(probe);
    const hits = this.backend.children(state.imageId).filter((c) => canonical(c.config.container_config) === want);
    hits.sort((a, b) => Date.parse(b.config.created ?? '') - Date.parse(a.config.created ?? ''));
    return hits[0];
  }

  private useCache(state: StageState, probe: RunConfig): boolean {
    const hit = this.cached(state, probe);
    if (!hit) return false;
    this.out(' ---> Using cache\n');
    state.imageId = hit.id;
    state.image = hit;
    return true;
  }

  /** The image of a step: the current config (and the container's layer), recorded with the probe config. */
  private async newImage(state: StageState, probe: RunConfig, container?: string): Promise<void> {
    const config: Partial<ImageConfig> = {
      ...(state.platform.architecture ? { architecture: state.platform.architecture, os: state.platform.os } : {}),
      ...(state.platform.variant ? { variant: state.platform.variant } : {}),
      ...(state.author ? { author: state.author } : {}),
      config: { ...structuredClone(state.runConfig), Image: state.imageId },
      container_config: probe,
      ...(container ? { container } : {}),
    };
    const id = await this.backend.createImage({ parent: state.imageId, ...(container ? { container } : {}), config, createdBy: (probe.Cmd ?? []).join(' ') });
    state.imageId = id;
    state.image = this.backend.findImage(id);
  }

  /** A metadata step: a new image with the changed config and no layer. */
  private async commit(state: StageState, comment: string): Promise<void> {
    const probe = { ...structuredClone(state.runConfig), Cmd: nop(state.runConfig, comment) };
    if (this.useCache(state, probe)) return;
    await this.newImage(state, probe);
  }

  /** The image a step's container starts from: an empty one before the first step of FROM scratch. */
  private async baseForContainer(state: StageState): Promise<string> {
    if (state.imageId) return state.imageId;
    this.empty ??= await this.backend.emptyImage();
    return this.empty;
  }

  private async removeContainer(id: string): Promise<void> {
    await this.backend.removeContainer(id).catch(() => undefined);
  }

  private async runStep(state: StageState, line: { args: string[]; shell: boolean }): Promise<void> {
    const cmd = commandOf(state.runConfig, line);
    const buildArgs = state.args.filterAllowed(state.runConfig.Env ?? []);
    let saveCmd = cmd;
    if (buildArgs.length > 0) {
      const recorded = buildArgs.filter((e) => state.args.recorded(e.split('=', 1)[0]!));
      saveCmd = [`|${recorded.length}`, ...recorded, ...cmd];
    }
    const probe: RunConfig = { ...structuredClone(state.runConfig), Cmd: saveCmd, Entrypoint: null };
    if (this.useCache(state, probe)) return;
    const id = await this.backend.createContainer({
      image: await this.baseForContainer(state),
      cmd,
      env: [...(state.runConfig.Env ?? []), ...buildArgs],
      ...(state.runConfig.User ? { user: state.runConfig.User } : {}),
      ...(state.runConfig.WorkingDir ? { workdir: state.runConfig.WorkingDir } : {}),
      ...(this.options.networkMode ? { network: this.options.networkMode } : {}),
      extraHosts: this.options.extraHosts,
      ...(this.options.runLimits ? { limits: this.options.runLimits } : {}),
    });
    this.out(` ---> Running in ${short(id)}\n`);
    let status: number;
    this.running = id;
    try {
      const text = new StringDecoder('utf8');
      status = await this.backend.runContainer(id, (chunk) => this.out(text.write(chunk)));
      const rest = text.end();
      if (rest) this.out(rest);
    } catch (err) {
      this.leftContainers.push(id);
      throw err;
    } finally {
      this.running = undefined;
    }
    if (this.cancelled) throw new InvalidArgumentError('the build was cancelled: the client went away');
    if (status !== 0) {
      this.leftContainers.push(id);
      throw new RunFailedError(`The command '${cmd.join(' ')}' returned a non-zero code: ${status}`, status);
    }
    await this.newImage(state, probe, id);
    if (this.options.rm || this.options.forceRm) {
      this.out(`Removing intermediate container ${short(id)}\n`);
      await this.removeContainer(id);
    }
  }

  /** WORKDIR: the path (relative ones on the current one) is made if missing, in a layer. */
  private async workdir(state: StageState, requested: string): Promise<void> {
    if (requested === '') throw new InvalidArgumentError('cannot normalize nothing');
    const dir = path.posix.resolve('/', state.runConfig.WorkingDir || '/', requested);
    state.runConfig.WorkingDir = dir;
    const probe = { ...structuredClone(state.runConfig), Cmd: nopString(state.runConfig, `WORKDIR ${dir}`) };
    if (this.useCache(state, probe)) return;
    const id = await this.backend.createContainer({ image: await this.baseForContainer(state), cmd: probe.Cmd as string[], env: state.runConfig.Env ?? [] });
    try {
      await this.backend.withRootfs(id, async (root) => ensureDir(root, dir, { uid: 0, gid: 0 }));
      await this.newImage(state, probe, id);
    } finally {
      await this.removeContainer(id);
    }
  }

  // ---- COPY and ADD ----------------------------------------------------------------------------

  private async copy(state: StageState, command: Command & { kind: 'COPY' | 'ADD' }, w: (s: string) => string): Promise<void> {
    const keyword = command.kind;
    const sources = command.sources.map(w);
    const rawDest = w(command.dest);
    for (const s of sources) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^git@/.test(s)) {
        if (keyword === 'COPY') throw new InvalidArgumentError(`source can't be a URL for COPY`);
        if (!isRemoteSource(s)) throw new UnsupportedError(`ADD of ${s} is not supported by berthd (http and https URLs are)`);
      }
    }
    const remote = keyword === 'ADD' ? sources.filter(isRemoteSource) : [];
    const locals = sources.filter((s) => !remote.includes(s));
    const chown = command.chown !== undefined ? w(command.chown) : undefined;
    const chmod = command.chmod !== undefined ? parseChmod(w(command.chmod)) : undefined;
    const from = command.from !== undefined ? w(command.from) : undefined;
    if (sources.length > 1 && !rawDest.endsWith('/')) throw new InvalidArgumentError(`When using ${keyword} with more than one source file, the destination must be a directory and end with a /`);
    const dest = (rawDest.startsWith('/') ? path.posix.normalize(rawDest) : path.posix.join(state.runConfig.WorkingDir || '/', rawDest)).replace(/(.)\/$/, '$1');
    const destIsDir = rawDest.endsWith('/') || rawDest === '.' || rawDest.endsWith('/.');

    // The tree the sources come from: the context, or another stage's (or image's) files.
    let fromImage: string | undefined;
    if (from !== undefined) {
      const stage = this.stages.get(from.toLowerCase());
      if (stage !== undefined) {
        if (!stage) throw new InvalidArgumentError(`the stage ${from} has no image (it is an empty FROM scratch stage)`);
        fromImage = stage;
      } else if (/^\d+$/.test(from)) {
        throw new InvalidArgumentError(`invalid from flag value ${from}: refers to current build stage`);
      } else {
        try {
          fromImage = (await this.image(from)).id;
        } catch (err) {
          // dockerd's words, on the error as it is (its kind, and so its status, kept).
          if (err instanceof BerthError) err.message = `invalid from flag value ${from}: ${err.message}`;
          throw err;
        }
      }
    }
    // moby's performCopy runs the flag into the source hash ("--chown=1:2file:…"): history and cache keys keep that.
    const flags = `${chown ? `--chown=${chown}` : ''}${chmod !== undefined ? `--chmod=${chmod.toString(8)}` : ''}`;
    const withTree = async <T>(fn: (tree: SourceTree) => Promise<T>): Promise<T> => {
      if (!fromImage) return fn(this.context);
      const src = await this.backend.createContainer({ image: fromImage, cmd: ['/bin/sh'], env: [] });
      try {
        return await this.backend.withRootfs(src, async (root) => {
          const tree = new SourceTree(root.path, 'image');
          try {
            return await fn(tree);
          } finally {
            tree.close();
          }
        });
      } finally {
        await this.removeContainer(src);
      }
    };

    // URLs are downloaded at every build, as dockerd does: the cache can only know their content.
    const downloads = await this.download(remote, keyword);
    try {
      // The cache key: the sources' content (another image's files: that image and the paths).
      let description: string;
      if (fromImage) description = `${keyword} ${flags}from:${fromImage} ${locals.join(' ')} in ${rawDest} `;
      else {
        const parts = locals.length > 0 ? [await hashSources(this.context, this.context.resolve(locals, keyword))] : [];
        for (const d of downloads) parts.push(await hashSources(d.tree, [d.source]));
        description = `${keyword} ${flags}${parts.join(' ')} in ${rawDest} `;
      }
      const probe = { ...structuredClone(state.runConfig), Cmd: nopString(state.runConfig, description) };
      if (this.useCache(state, probe)) return;

      const id = await this.backend.createContainer({ image: await this.baseForContainer(state), cmd: probe.Cmd as string[], env: state.runConfig.Env ?? [] });
      try {
        await this.backend.withRootfs(id, (root) =>
          withTree(async (tree) => {
            const resolved = locals.length > 0 ? tree.resolve(locals, keyword) : [];
            const attrs: CopyAttrs = { ...(chown ? chownIdentity(chown, root) : { uid: 0, gid: 0 }), ...(chmod !== undefined ? { mode: chmod } : {}) };
            const existing = lookupDir(root.scoped, dest);
            const intoDir = destIsDir || resolved.length + downloads.length > 1 || existing === 'dir';
            // A file (or symlink): into the destination directory under `name`, or as the destination.
            const place = (from: SourceTree, source: Source, name: string): Promise<void> =>
              intoDir ? root.extract(ensureDir(root, dest, attrs), sourceTar(from, source, name, attrs)) : root.extract(ensureDir(root, path.posix.dirname(dest), attrs), sourceTar(from, source, path.posix.basename(dest), attrs));
            // A downloaded file is copied as it is (an archive too), under its name.
            for (const d of downloads) {
              if (intoDir && d.name === '') throw new InvalidArgumentError(`cannot determine filename for source ${d.url}`);
              await place(d.tree, d.source, d.name);
            }
            for (const source of resolved) {
              const archive = keyword === 'ADD' && !fromImage && source.stat.isFile() && (await isArchive(source.abs));
              if (archive) await root.extract(ensureDir(root, dest, attrs), archiveStream(source.abs));
              else if (source.stat.isDirectory()) await root.extract(ensureDir(root, dest, attrs), sourceTar(tree, source, undefined, attrs));
              else await place(tree, source, path.posix.basename(source.path));
            }
          }),
        );
        await this.newImage(state, probe, id);
      } finally {
        await this.removeContainer(id);
      }
    } finally {
      for (const d of downloads) d.tree.close();
    }
  }

  /** ADD's URLs, each downloaded into a directory of its own under the build's. */
  private async download(urls: string[], keyword: 'COPY' | 'ADD'): Promise<Download[]> {
    const downloads: Download[] = [];
    try {
      for (const url of urls) {
        const { file, name } = await downloadSource(url, fs.mkdtempSync(path.join(this.dir, 'download-')));
        const tree = new SourceTree(path.dirname(file), 'context');
        downloads.push({ url, name, tree, source: tree.resolve([path.basename(file)], keyword)[0]! });
      }
      return downloads;
    } catch (err) {
      for (const d of downloads) d.tree.close();
      throw err;
    }
  }
}

/** An ADD URL's file: its tree (a directory of its own), the file there and the name it goes by. */
interface Download {
  url: string;
  name: string;
  tree: SourceTree;
  source: Source;
}

function parseChmod(text: string): number {
  if (!/^[0-7]{3,4}$/.test(text)) throw new InvalidArgumentError(`invalid chmod parameter ${JSON.stringify(text)}: only octal modes are supported`);
  return parseInt(text, 8);
}

/** `--chown=user[:group]`, names looked up in the image's /etc/passwd and /etc/group (moby's parseChownFlag). */
export function chownIdentity(spec: string, root: Pick<ContainerRoot, 'readFile'>): { uid: number; gid: number } {
  const parts = spec.split(':');
  if (parts.length > 2) throw new InvalidArgumentError(`invalid chown string format: ${spec}`);
  const userPart = parts[0]!;
  const groupPart = parts[1] ?? parts[0]!;
  const numeric = (s: string): number | undefined => (/^\d+$/.test(s) ? Number(s) : undefined);
  let uid = numeric(userPart);
  if (uid === undefined) {
    const user = parsePasswd(root.readFile('/etc/passwd')).find((u) => u.name === userPart);
    if (!user) throw new InvalidArgumentError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${userPart}: no such user: ${userPart}`);
    uid = user.uid;
  }
  let gid = numeric(groupPart);
  if (gid === undefined) {
    const group = parseGroup(root.readFile('/etc/group')).find((g) => g.name === groupPart);
    if (!group) throw new InvalidArgumentError(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${groupPart}: no such group: ${groupPart}`);
    gid = group.gid;
  }
  return { uid, gid };
}

/** What is at p in the container (symlinks followed in scope). */
function lookupDir(scoped: ScopedRoot, p: string): 'dir' | 'other' | undefined {
  let res: Resolved | undefined;
  try {
    res = scoped.resolve(p, { followLast: true });
    if (res.fd === undefined) return undefined;
    return res.stat?.isDirectory() ? 'dir' : 'other';
  } catch {
    return undefined;
  } finally {
    res?.close();
  }
}

/**
 * Makes the directory p and its missing parents (0755, owned as given, as moby's
 * MkdirAllAndChownNew), each beneath its parent's descriptor; returns its canonical path.
 */
function ensureDir(root: ContainerRoot, p: string, owner: { uid: number; gid: number }): string {
  const { scoped } = root;
  const host = root.hostIds(owner);
  let current = '/';
  for (const part of p.split('/').filter(Boolean)) {
    const next = path.posix.join(current, part);
    let res: Resolved;
    try {
      res = scoped.resolve(next, { followLast: true });
    } catch (err) {
      throw new InvalidArgumentError(`cannot make directory ${p}: ${(err as Error).message}`);
    }
    try {
      if (res.fd === undefined) {
        fs.mkdirSync(at(res.parentFd, res.name), 0o755);
        fs.lchownSync(at(res.parentFd, res.name), host.uid, host.gid);
        current = path.posix.join(path.posix.dirname(res.containerPath), res.name);
      } else if (!res.stat?.isDirectory()) {
        throw new InvalidArgumentError(`cannot copy to non-directory: ${next}`);
      } else current = res.containerPath;
    } finally {
      res.close();
    }
  }
  return current;
}
