/** pull and push: the daemon's JSON progress stream shown as docker shows it. */
import { imagePath } from '../client.js';
import { type CliIo, type Ctx, type Define, ExitError, action } from '../context.js';
import { displayJsonStream, StreamError } from '../progress.js';
import { dockerReference, InvalidReferenceError } from '../../images/reference.js';
import { registryAuthHeader } from './login.js';

/** Splits `name[:tag][@digest]` (a registry port is not a tag). */
export function splitRef(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, digest };
}

/**
 * Why a reference does not parse, in distribution/reference's words as the docker CLI prints
 * them ("invalid reference format[: repository name (library/BAD) must be lowercase]"), or undefined.
 */
export function referenceProblem(name: string): string | undefined {
  try {
    dockerReference(name);
    return undefined;
  } catch (e) {
    if (e instanceof InvalidReferenceError) return e.dockerText;
    throw e;
  }
}

/** The docker CLI parses a pull's or push's reference itself first, and says only why when it does not parse. */
function checkReference(name: string): void {
  const problem = referenceProblem(name);
  if (problem) throw new ExitError(1, problem);
}

/** The reference as docker prints it: a tag added when neither tag nor digest is given. */
export function withDefaultTag(ref: string): string {
  const r = splitRef(ref);
  return r.tag || r.digest ? ref : `${ref}:latest`;
}

/** POST /images/create with progress on `out`; docker's closing lines. */
export async function pullImage(ctx: Ctx, ref: string, out: CliIo['stdout'], opts: { platform?: string; quiet?: boolean; allTags?: boolean } = {}): Promise<void> {
  const r = splitRef(ref);
  const tag = r.digest ? r.digest : (r.tag ?? (opts.allTags ? undefined : 'latest'));
  const res = await ctx.client.raw('POST', '/images/create', {
    query: { fromImage: r.name, tag, platform: opts.platform },
    headers: { 'X-Registry-Auth': registryAuthHeader(ctx, ref) },
  });
  const sink = opts.quiet ? ({ write: () => true } as unknown as NodeJS.WriteStream) : out;
  try {
    await displayJsonStream(res, sink, opts.quiet ? false : undefined);
  } catch (e) {
    if (e instanceof StreamError) throw new ExitError(1, e.message);
    throw e;
  }
}

export const pull: Define = (cmd, ctx, set) =>
  cmd
    .argument('<name>')
    .option('-a, --all-tags', 'Download all tagged images in the repository')
    .option('--platform <platform>', 'Set platform if server is multi-platform capable')
    .option('-q, --quiet', 'Suppress verbose output')
    .action(
      action(set, async (name: string, o: { allTags?: boolean; platform?: string; quiet?: boolean }) => {
        checkReference(name);
        const r = splitRef(name);
        if (!o.quiet && !o.allTags && !r.tag && !r.digest) ctx.out('Using default tag: latest\n');
        await pullImage(ctx, name, ctx.io.stdout, o);
        const full = o.allTags ? name : withDefaultTag(name);
        const qualified = full.split('/').length === 1 || !/[.:]|^localhost$/.test(full.split('/')[0]) ? `docker.io/${full.includes('/') ? '' : 'library/'}${full}` : full;
        ctx.out(`${qualified}\n`);
      }),
    );

export const push: Define = (cmd, ctx, set) =>
  cmd
    .argument('<name>')
    .option('-a, --all-tags', 'Push all tags of an image to the repository')
    .option('-q, --quiet', 'Suppress verbose output')
    .action(
      action(set, async (name: string, o: { allTags?: boolean; quiet?: boolean }) => {
        checkReference(name);
        const r = splitRef(name);
        if (!r.tag && !o.allTags && !o.quiet) ctx.out('Using default tag: latest\n');
        const res = await ctx.client.raw('POST', `/images/${imagePath(r.name)}/push`, {
          query: { tag: r.tag ?? (o.allTags ? undefined : 'latest') },
          headers: { 'X-Registry-Auth': registryAuthHeader(ctx, name) },
        });
        // -q: the progress goes nowhere; the reference pushed is the one line, as the docker CLI prints it.
        const sink = o.quiet ? ({ write: () => true } as unknown as NodeJS.WriteStream) : ctx.io.stdout;
        try {
          await displayJsonStream(res, sink, o.quiet ? false : undefined);
        } catch (e) {
          if (e instanceof StreamError) throw new ExitError(1, e.message);
          throw e;
        }
        if (o.quiet) ctx.out(`${o.allTags ? name : withDefaultTag(name)}\n`);
      }),
    );
