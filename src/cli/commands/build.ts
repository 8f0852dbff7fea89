/**
 * `berth build`: the docker CLI's legacy build. The context directory is sent as a tar made
 * here (tar-stream), without what `.dockerignore` excludes (the Dockerfile and .dockerignore
 * always go: the daemon needs them), owners set to root as the docker CLI does; `-` sends a tar
 * (maybe gzip'd) from stdin as is. A Dockerfile outside the context (or `-f -`) is added to it
 * under a random name. The daemon's JSON stream is shown as docker shows it; a failed RUN exits
 * with the step's status, as docker does.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';

import dockerignore from '@balena/dockerignore';
import tar from 'tar-stream';
import { fsPath } from '../../common/bytenames.js';
import { readLinkSync, readNamesSync } from '../../common/fsutil.js';
import { xattrPack } from '../../storage/xattrs.js';

import { ApiError } from '../client.js';
import { type Ctx, type Define, ExitError, action, collect } from '../context.js';
import { humanSize } from '../format.js';
import { displayJsonStream, StreamError } from '../progress.js';
import { registryConfigHeader } from './login.js';

interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  label: string[];
  cache: boolean;
  quiet?: boolean;
  rm: string;
  forceRm?: boolean;
  target?: string;
  pull?: boolean;
  network?: string;
  addHost: string[];
  platform?: string;
  iidfile?: string;
}

/** `.dockerignore` patterns (comments and blank lines dropped). */
function readIgnore(dir: string): string[] {
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, '.dockerignore'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * The context directory as a tar stream: paths relative to it, symlinks as symlinks, owners
 * root; `extra` files (an outside Dockerfile) added at the end.
 */
export function contextTar(dir: string, keep: string[], extra: Array<{ name: string; data: Buffer }> = []): Readable {
  const patterns = readIgnore(dir);
  const ig = dockerignore.default().add(patterns);
  const mayReinclude = patterns.some((p) => p.startsWith('!'));
  const pack = xattrPack(); // names that are not UTF-8 go as their bytes (common/bytenames)
  const add = async (rel: string): Promise<void> => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(fsPath(abs));
    const skipped = rel !== '' && !keep.includes(rel) && ig.ignores(rel);
    const common = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
    if (st.isDirectory()) {
      if (skipped && !mayReinclude) return;
      if (rel !== '' && !skipped) pack.entry({ ...common, type: 'directory' });
      for (const name of readNamesSync(abs).sort()) await add(rel ? `${rel}/${name}` : name);
      return;
    }
    if (skipped) return;
    if (st.isSymbolicLink()) pack.entry({ ...common, type: 'symlink', linkname: readLinkSync(abs) });
    else if (st.isFile()) {
      const entry = pack.entry({ ...common, type: 'file', size: st.size });
      for await (const chunk of fs.createReadStream(fsPath(abs))) if (!entry.write(chunk)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
      await new Promise<void>((resolve, reject) => entry.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
  };
  void (async () => {
    await add('');
    for (const f of extra) pack.entry({ name: f.name, mode: 0o644, uid: 0, gid: 0, mtime: new Date() }, f.data);
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}

/** `--build-arg KEY=VALUE`, or `KEY` (its value from the environment; null if unset), as docker does. */
export function buildArgs(list: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq >= 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else out[a] = process.env[a] ?? null;
  }
  return out;
}

/**
 * Whether the first bytes of a build's stdin are an archive, as the docker CLI's IsArchive
 * judges them: a compressed stream (gzip, bzip2, xz, zstd), or a tar header whose checksum holds.
 */
export function looksLikeArchive(head: Buffer): boolean {
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b) || starts(0x42, 0x5a, 0x68) || starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00) || starts(0x28, 0xb5, 0x2f, 0xfd)) return true;
  if (head.length < 512) return false;
  const stored = parseInt(head.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : head[i]!;
  return Number.isInteger(stored) && stored === sum;
}

/** The first `n` bytes of a stream (fewer at its end), and a stream of all of it, those bytes first. */
async function peek(input: NodeJS.ReadableStream, n: number): Promise<{ head: Buffer; whole: Readable }> {
  const chunks: Buffer[] = [];
  let have = 0;
  const iterator = input[Symbol.asyncIterator]();
  let done = false;
  while (have < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as string);
    chunks.push(chunk);
    have += chunk.length;
  }
  const head = Buffer.concat(chunks);
  const whole = Readable.from(
    (async function* () {
      yield head;
      if (done) return;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value as Buffer;
    })(),
  );
  return { head, whole };
}

async function readAll(input: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export const build: Define = (cmd, ctx, set) =>
  cmd
    .argument('<path>', 'the build context: a directory, or - for a tar on stdin')
    .option('-t, --tag <name>', 'Name and optionally a tag in the "name:tag" format', collect, [])
    .option('-f, --file <file>', "Name of the Dockerfile (Default is 'PATH/Dockerfile')")
    .option('--build-arg <arg>', 'Set build-time variables', collect, [])
    .option('--label <label>', 'Set metadata for an image', collect, [])
    .option('--no-cache', 'Do not use cache when building the image')
    .option('-q, --quiet', 'Suppress the build output and print image ID on success')
    .option('--rm [bool]', 'Remove intermediate containers after a successful build', 'true')
    .option('--force-rm', 'Always remove intermediate containers')
    .option('--target <stage>', 'Set the target build stage to build')
    .option('--pull', 'Always attempt to pull a newer version of the image')
    .option('--network <mode>', 'Set the networking mode for the RUN instructions during build')
    .option('--add-host <host:ip>', 'Add a custom host-to-IP mapping', collect, [])
    .option('--platform <platform>', 'Set platform if server is multi-platform capable')
    .option('--iidfile <file>', 'Write the image ID to the file')
    .action(action(set, (context: string, o: BuildFlags) => runBuild(ctx, context, o)));

async function runBuild(ctx: Ctx, context: string, o: BuildFlags): Promise<number> {
  let body: Readable;
  let dockerfile = o.file;
  let dockerfileOnStdin = false;
  if (context === '-') {
    if (o.file === '-') throw new ExitError(1, 'invalid argument: can\'t use stdin for both build context and dockerfile');
    // An archive is the context; anything else is a Dockerfile, the whole context (as the docker CLI).
    const { head, whole } = await peek(process.stdin, 1024);
    if (looksLikeArchive(head)) body = whole;
    else {
      dockerfileOnStdin = true;
      dockerfile = 'Dockerfile';
      const pack = tar.pack();
      pack.entry({ name: 'Dockerfile', mode: 0o600, uid: 0, gid: 0, mtime: new Date() }, await readAll(whole));
      pack.finalize();
      body = pack as unknown as Readable;
    }
  } else {
    let st: fs.Stats;
    try {
      st = fs.statSync(context);
    } catch {
      throw new ExitError(1, `unable to prepare context: path "${context}" not found`);
    }
    if (!st.isDirectory()) throw new ExitError(1, `unable to prepare context: context must be a directory: ${context}`);
    const extra: Array<{ name: string; data: Buffer }> = [];
    let rel = o.file ? path.relative(context, path.resolve(o.file)) : 'Dockerfile';
    if (o.file === '-' || rel.startsWith('..') || path.isAbsolute(rel)) {
      // A Dockerfile from stdin or outside the context travels in the tar under a random name.
      const data = o.file === '-' ? await readAll(process.stdin) : fs.readFileSync(o.file!);
      rel = `.dockerfile.${randomBytes(10).toString('hex')}`;
      extra.push({ name: rel, data });
    } else if (!fs.existsSync(path.join(context, rel))) {
      throw new ExitError(1, `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${path.resolve(context, rel)}: no such file or directory`);
    }
    dockerfile = rel;
    body = contextTar(context, [rel, '.dockerignore'], extra);
  }

  // Counted on the way, for docker's "Sending build context" line.
  let sent = 0;
  const counted = new PassThrough();
  body.on('error', (err) => counted.destroy(err));
  body.on('data', (c: Buffer) => (sent += c.length));
  body.pipe(counted);
  const labels = Object.fromEntries(o.label.map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, ''])));
  const sending = (): void => {
    if (!o.quiet && (context !== '-' || dockerfileOnStdin)) ctx.out(`Sending build context to Docker daemon  ${humanSize(sent, 4)}\n`);
  };
  const res = await ctx.client.raw('POST', '/build', {
    query: {
      t: o.tag.length ? o.tag : undefined,
      dockerfile,
      buildargs: JSON.stringify(buildArgs(o.buildArg)),
      labels: JSON.stringify(labels),
      nocache: o.cache === false ? '1' : undefined,
      q: o.quiet ? '1' : undefined,
      rm: ['false', '0'].includes(String(o.rm)) ? '0' : '1',
      forcerm: o.forceRm ? '1' : undefined,
      pull: o.pull ? '1' : undefined,
      target: o.target,
      networkmode: o.network,
      extrahosts: o.addHost.length ? o.addHost.join(',') : undefined,
      platform: o.platform,
      version: '1',
    },
    headers: { 'Content-Type': 'application/x-tar', 'X-Registry-Config': registryConfigHeader(ctx) },
    body: counted,
  }).catch((err: unknown) => {
    // The context went up before the daemon refused it (a Dockerfile that does not parse): docker says so first.
    if (err instanceof ApiError) sending();
    throw err;
  });
  sending();

  // Quiet: the daemon sends only the ID (or what it said, and the error).
  const held: string[] = [];
  const out = o.quiet ? ({ write: (s: string) => held.push(s) > 0, isTTY: false } as unknown as NodeJS.WriteStream) : process.stdout;
  let aux: Record<string, unknown>[];
  try {
    aux = await displayJsonStream(res, out);
  } catch (e) {
    if (e instanceof StreamError) {
      if (o.quiet) ctx.err(held.join(''));
      throw new ExitError(e.code || 1, e.message);
    }
    throw e;
  }
  const id = aux.map((a) => a.ID).filter((x): x is string => typeof x === 'string').at(-1);
  if (o.quiet) ctx.out(held.join('') || (id ? `${id}\n` : ''));
  if (o.iidfile && id) fs.writeFileSync(o.iidfile, id);
  return 0;
}
