/**
 * cp, both directions, as tar through the archive endpoints with docker's path rules: into an
 * existing directory the source keeps its name; to a path that does not exist it takes that
 * name. `-` is a tar stream on stdin/stdout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsPath } from '../../common/bytenames.js';
import { readLinkSync, readNamesSync } from '../../common/fsutil.js';
import { tarExtract } from '../../common/tar-extract.js';
import { xattrPack } from '../../storage/xattrs.js';

import { ApiError } from '../client.js';
import { type Ctx, type Define, ExitError, action } from '../context.js';

const enc = encodeURIComponent;

interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Splits CONTAINER:PATH (a local path with a slash before any colon is local). */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

async function statInContainer(ctx: Ctx, container: string, p: string): Promise<PathStat | undefined> {
  try {
    const res = await ctx.client.raw('HEAD', `/containers/${enc(container)}/archive`, { query: { path: p } });
    res.resume();
    const h = res.headers['x-docker-container-path-stat'];
    return typeof h === 'string' ? (JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as PathStat) : undefined;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && !/no such container/i.test(e.message)) return undefined;
    throw e;
  }
}

const isDirMode = (mode: number): boolean => (mode & 0x80000000) !== 0; // Go's os.ModeDir
const isSymlinkMode = (mode: number): boolean => (mode & 0x8000000) !== 0; // Go's os.ModeSymlink

/**
 * Extracts a container's tar of `srcBase` to `dest`, renaming the top entry when dest does not
 * exist (or to `rebase`, a followed link's own name). The tar of "dir/." holds the contents as
 * "./…": they go into dest itself.
 */
async function extractTo(stream: NodeJS.ReadableStream, srcBase: string, dest: string, srcIsDir: boolean, srcContentsOnly: boolean, rebase?: string): Promise<void> {
  let destExists = fs.existsSync(dest);
  const destIsDir = destExists && fs.statSync(dest).isDirectory();
  // The docker CLI's checks and words (archive.CopyTo and its callers).
  if (!srcIsDir && dest.endsWith('/') && !destExists) throw new ExitError(1, `Error: destination directory "${dest}" must exist`);
  if (srcIsDir && destExists && !destIsDir) throw new ExitError(1, 'cannot copy directory');
  const parent = path.dirname(path.resolve(dest));
  if (!destExists && !fs.existsSync(parent)) throw new ExitError(1, `invalid output path: directory ${JSON.stringify(path.dirname(dest))} does not exist`);
  // Where the entry named srcBase lands.
  let mapTop: (name: string) => string;
  const renamed = (n: string): string => (rebase ? [rebase, ...n.split('/').slice(1)].join('/') : n);
  if (srcIsDir && srcContentsOnly) mapTop = (n) => path.join(dest, n === '.' ? '' : n);
  else if (destIsDir) mapTop = (n) => path.join(dest, renamed(n));
  else mapTop = (n) => path.join(dest, n.split('/').slice(1).join('/'));
  destExists = false;
  const ex = tarExtract(); // names as their bytes (common/bytenames)
  const dirs: [string, Date][] = [];
  ex.on('entry', (h, s, next) => {
    const name = h.name.replace(/^\.?\//, '').replace(/\/$/, '');
    // The path as fs takes it: the bytes of a name that is not UTF-8 (common/bytenames).
    const targetName = mapTop(name || srcBase);
    const target = fsPath(targetName);
    const done = (e?: unknown): void => (e ? ex.destroy(e as Error) : next());
    try {
      if (h.type === 'directory') {
        fs.mkdirSync(target, { recursive: true, mode: h.mode });
        dirs.push([targetName, h.mtime ?? new Date()]);
        s.resume();
        s.on('end', () => done());
      } else if (h.type === 'symlink') {
        fs.rmSync(target, { force: true });
        fs.symlinkSync(fsPath(h.linkname ?? ''), target);
        s.resume();
        s.on('end', () => done());
      } else if (h.type === 'link') {
        fs.rmSync(target, { force: true });
        fs.linkSync(fsPath(mapTop(String(h.linkname).replace(/^\.?\//, ''))), target);
        s.resume();
        s.on('end', () => done());
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        fs.mkdirSync(fsPath(path.dirname(targetName)), { recursive: true });
        const w = fs.createWriteStream(target, { mode: h.mode });
        pipeline(s, w).then(() => {
          if (h.mtime) fs.utimesSync(target, h.mtime, h.mtime);
          fs.chmodSync(target, (h.mode ?? 0o644) & 0o7777);
          done();
        }, done);
      } else {
        s.resume();
        s.on('end', () => done());
      }
    } catch (e) {
      done(e);
    }
  });
  await pipeline(stream, ex);
  for (const [d, t] of dirs.reverse()) fs.utimesSync(fsPath(d), t, t);
}

/** Packs a local path as a tar whose top entry is `name`. */
function packLocal(src: string, name: string): NodeJS.ReadableStream {
  const pack = xattrPack(); // names with bytes that are not UTF-8 written as those bytes
  const add = async (p: string, n: string): Promise<void> => {
    const st = fs.lstatSync(fsPath(p));
    const base = { name: n, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      pack.entry({ ...base, type: 'directory' });
      for (const e of readNamesSync(p).sort()) await add(path.join(p, e), `${n}/${e}`);
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...base, type: 'symlink', linkname: readLinkSync(p) });
    } else if (st.isFile()) {
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ ...base, type: 'file', size: st.size }, (err) => (err ? reject(err) : resolve()));
        fs.createReadStream(fsPath(p)).on('error', reject).pipe(entry);
      });
    }
  };
  add(src, name).then(
    () => pack.finalize(),
    (e) => pack.destroy(e as Error),
  );
  return pack as unknown as NodeJS.ReadableStream;
}

export const cp: Define = (cmd, ctx, set) =>
  cmd
    .argument('<src>')
    .argument('<dest>')
    .option('-a, --archive', 'Archive mode (copy all uid/gid information)')
    .option('-L, --follow-link', 'Always follow symbol link in SRC_PATH')
    .option('-q, --quiet', 'Suppress progress output during copy')
    .action(
      action(set, async (srcArg: string, destArg: string, o: { archive?: boolean; followLink?: boolean }) => {
        const src = splitCpArg(srcArg);
        const dest = splitCpArg(destArg);
        if (src.container && dest.container) throw new ExitError(1, 'copying between containers is not supported');
        if (!src.container && !dest.container) throw new ExitError(1, 'must specify at least one container source');
        if (src.container) {
          // -L: a link is followed to what it points at, which keeps the link's name (docker's GetRebaseName).
          let srcPath = src.path;
          let rebase: string | undefined;
          if (o.followLink) {
            const linkStat = await statInContainer(ctx, src.container, srcPath);
            if (linkStat && isSymlinkMode(linkStat.mode)) {
              rebase = path.posix.basename(srcPath);
              srcPath = path.posix.isAbsolute(linkStat.linkTarget) ? linkStat.linkTarget : path.posix.join(path.posix.dirname(srcPath), linkStat.linkTarget);
            }
          }
          const res = await ctx.client.raw('GET', `/containers/${enc(src.container)}/archive`, { query: { path: srcPath } });
          if (dest.path === '-') {
            await pipeline(res, process.stdout);
            return;
          }
          const h = res.headers['x-docker-container-path-stat'];
          const stat = typeof h === 'string' ? (JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as PathStat) : undefined;
          const srcIsDir = stat ? isDirMode(stat.mode) : false;
          await extractTo(res, stat?.name ?? path.basename(srcPath), dest.path, srcIsDir, /\/\.$/.test(srcPath), rebase);
          return;
        }
        // Local → container.
        const container = dest.container!;
        const put = (dir: string, body: NodeJS.ReadableStream): Promise<unknown> =>
          ctx.client.json('PUT', `/containers/${enc(container)}/archive`, {
            query: { path: dir, noOverwriteDirNonDir: true, copyUIDGID: o.archive },
            body,
            headers: { 'Content-Type': 'application/x-tar' },
          });
        if (src.path === '-') {
          // A tar on stdin goes into a directory that is there, as the docker CLI requires.
          const target = await statInContainer(ctx, container, dest.path);
          if (!target || !isDirMode(target.mode)) throw new ExitError(1, `destination "${container}:${dest.path}" must be a directory`);
          await put(dest.path, process.stdin);
          return;
        }
        if (!fs.existsSync(src.path)) throw new ExitError(1, `lstat ${path.resolve(src.path)}: no such file or directory`);
        const srcIsDir = fs.statSync(src.path).isDirectory();
        const dstat = await statInContainer(ctx, container, dest.path);
        if (dstat && isDirMode(dstat.mode)) {
          if (srcIsDir && /\/\.$/.test(src.path)) {
            // "dir/." copies the contents: pack each entry at the top.
            for (const e of readNamesSync(src.path)) await put(dest.path, packLocal(path.join(src.path, e), e));
            return;
          }
          await put(dest.path, packLocal(src.path, path.basename(path.resolve(src.path))));
          return;
        }
        if (dstat && srcIsDir) throw new ExitError(1, 'cannot copy directory');
        // A file to a directory path that is not there: the docker CLI's archive.ErrDirNotExists. A
        // directory is made there instead (its parent must exist), as PrepareArchiveCopy does.
        if (!dstat && dest.path.endsWith('/') && !srcIsDir) throw new ExitError(1, 'no such directory');
        const target = dest.path.replace(/(.)\/+$/, '$1');
        await put(path.posix.dirname(target), packLocal(src.path, path.posix.basename(target)));
      }),
    );
