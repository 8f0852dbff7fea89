/** images, rmi, tag, history, save, load, image prune. */
import fs from 'node:fs';

import { ApiError, imagePath } from '../client.js';
import { type Define, ExitError, action, collect, confirm, eachName, errorText, filtersJson, imageDeletions, prunedText } from '../context.js';
import { ago, ellipsis, formatList, goTime, humanSize, integerFlag, shortId } from '../format.js';
import { displayJsonStream, StreamError } from '../progress.js';
import { archiveOut } from './misc.js';
import { registryAuthHeader } from './login.js';
import { referenceProblem, splitRef } from './pull.js';

const enc = encodeURIComponent;

export interface ApiImage {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  VirtualSize?: number;
  SharedSize?: number;
  Containers?: number;
  Labels?: Record<string, string> | null;
}

/** One row per tag (or `<none>`), the fields of docker's image formatter. */
export function imageRows(images: ApiImage[], o: { trunc: boolean; digests?: boolean }, now = Date.now()): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  for (const img of images) {
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const digests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>');
    const base = {
      ID: o.trunc ? shortId(img.Id) : img.Id,
      CreatedSince: ago(img.Created, now),
      CreatedAt: goTime(img.Created),
      Size: humanSize(img.Size),
      // go-units HumanSize: four significant digits here, where Size has three.
      VirtualSize: humanSize(img.VirtualSize ?? img.Size, 4),
      SharedSize: img.SharedSize !== undefined && img.SharedSize >= 0 ? humanSize(img.SharedSize, 4) : 'N/A',
      UniqueSize: img.SharedSize !== undefined && img.SharedSize >= 0 ? humanSize(img.Size - img.SharedSize, 4) : 'N/A',
      Containers: img.Containers !== undefined && img.Containers >= 0 ? String(img.Containers) : 'N/A',
    };
    const digestOf = (repo: string): string => digests.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
    if (tags.length === 0) {
      if (digests.length) for (const d of digests) rows.push({ ...base, Repository: d.split('@')[0], Tag: '<none>', Digest: d.split('@')[1] });
      else rows.push({ ...base, Repository: '<none>', Tag: '<none>', Digest: '<none>' });
      continue;
    }
    for (const t of tags) {
      const { name, tag } = splitRef(t);
      rows.push({ ...base, Repository: name, Tag: tag ?? '<none>', Digest: digestOf(name) });
    }
  }
  return rows;
}

export const IMAGE_HEADERS = {
  Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE',
  VirtualSize: 'VIRTUAL SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', Containers: 'CONTAINERS',
};

export const images: Define = (cmd, ctx, set) =>
  cmd
    .argument('[repository]')
    .option('-a, --all', 'Show all images (default hides intermediate images)')
    .option('--digests', 'Show digests')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
    .option('--format <format>', 'Format output using a custom template')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only show image IDs')
    .action(
      action(set, async (repo: string | undefined, o: { all?: boolean; digests?: boolean; filter?: string[]; format?: string; trunc: boolean; quiet?: boolean }) => {
        const filters = [...(o.filter ?? []), ...(repo ? [`reference=${repo}`] : [])];
        const list = await ctx.client.get<ApiImage[]>('/images/json', { all: o.all, filters: filtersJson(filters) });
        const rows = imageRows(list, o);
        if (o.quiet && (!o.format || o.format === 'table')) {
          // One line per row, as the docker CLI's {{.ID}}: an image with two tags shows twice.
          ctx.out(rows.map((r) => r.ID + '\n').join(''));
          return;
        }
        const table = o.digests
          ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
          : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
        ctx.out(formatList(rows, { format: o.quiet ? '{{.ID}}' : o.format, table, headers: IMAGE_HEADERS }));
      }),
    );

export const rmi: Define = (cmd, ctx, set) =>
  cmd
    .argument('<image...>')
    .option('-f, --force', 'Force removal of the image')
    .option('--no-prune', 'Do not delete untagged parents')
    .action(
      action(set, async (names: string[], o: { force?: boolean; prune: boolean }) => {
        let failed = false;
        for (const n of names) {
          try {
            const r = await ctx.client.delete<{ Untagged?: string; Deleted?: string }[]>(`/images/${imagePath(n)}`, { force: o.force, noprune: !o.prune });
            const lines = imageDeletions(r).join('\n');
            if (lines) ctx.out(lines + '\n');
          } catch (e) {
            ctx.err(errorText(e) + '\n');
            // As the docker CLI: with --force, an image that is not there is no failure.
            if (!(o.force && e instanceof ApiError && e.status === 404)) failed = true;
          }
        }
        return failed ? 1 : 0;
      }),
    );

export const tag: Define = (cmd, ctx, set) =>
  cmd
    .argument('<source>')
    .argument('<target>')
    .action(
      action(set, async (source: string, target: string) => {
        // The docker CLI parses the target itself, and says so in distribution/reference's words.
        const problem = referenceProblem(target);
        if (problem) throw new ExitError(1, `Error parsing reference: ${JSON.stringify(target)} is not a valid repository/tag: ${problem}`);
        const t = splitRef(target);
        if (t.digest) throw new ExitError(1, 'refusing to create a tag with a digest reference');
        await ctx.client.post(`/images/${imagePath(source)}/tag`, { repo: t.name, tag: t.tag ?? 'latest' });
      }),
    );

/** Seconds since the epoch as Go's time.RFC3339 in local time ("2024-01-01T00:00:00Z", or with its offset). */
function rfc3339(seconds: number): string {
  const d = new Date(seconds * 1000);
  const offset = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offset * 60_000).toISOString().replace(/\.\d+Z$/, '');
  if (offset === 0) return `${local}Z`;
  const abs = Math.abs(offset);
  return `${local}${offset > 0 ? '+' : '-'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

export const history: Define = (cmd, ctx, set) =>
  cmd
    .argument('<image>')
    .option('--format <format>', 'Format output using a custom template')
    .option('-H, --human', 'Print sizes and dates in human readable format', true)
    .option('--no-human', 'Print sizes and dates as numbers')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only show image IDs')
    .action(
      action(set, async (name: string, o: { format?: string; human: boolean; trunc: boolean; quiet?: boolean }) => {
        const h = await ctx.client.get<{ Id: string; Created: number; CreatedBy: string; Size: number; Comment: string; Tags: string[] | null }[]>(`/images/${imagePath(name)}/history`);
        const rows = h.map((x) => {
          const createdBy = x.CreatedBy.replace(/\t/g, ' ');
          return {
            ID: x.Id === '<missing>' || !o.trunc ? x.Id : shortId(x.Id),
            CreatedSince: o.human ? ago(x.Created) : rfc3339(x.Created),
            CreatedAt: rfc3339(x.Created),
            CreatedBy: o.trunc ? ellipsis(createdBy, 45) : createdBy,
            Size: o.human ? humanSize(x.Size) : String(x.Size),
            Comment: x.Comment,
          };
        });
        if (o.quiet) {
          ctx.out(rows.map((r) => r.ID + '\n').join(''));
          return;
        }
        ctx.out(
          formatList(rows, {
            format: o.format,
            // Not human: the time itself, under its own header, as the docker CLI's non-human table.
            table: o.human ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}' : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
            headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
          }),
        );
      }),
    );

export const save: Define = (cmd, ctx, set) =>
  cmd
    .argument('<image...>')
    .option('-o, --output <file>', 'Write to a file, instead of STDOUT')
    .option('--platform <platform>', 'Save only the given platform variant')
    .action(
      action(set, async (names: string[], o: { output?: string; platform?: string }) => {
        if (!o.output && process.stdout.isTTY) throw new ExitError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
        const q = names.map((n) => `names=${enc(n)}`).join('&');
        await archiveOut(await ctx.client.raw('GET', `/images/get?${q}`), o.output);
      }),
    );

/** A file to send as a request's body, opened first: one that cannot be read is docker's message, not a stream's unhandled 'error'. */
function openInput(ctx: Parameters<Define>[1], file: string): NodeJS.ReadableStream {
  let fd: number;
  try {
    fd = fs.openSync(ctx.path(file), 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ExitError(1, `open ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
  return fs.createReadStream('', { fd });
}

export const load: Define = (cmd, ctx, set) =>
  cmd
    .option('-i, --input <file>', 'Read from tar archive file, instead of STDIN')
    .option('-q, --quiet', 'Suppress the load output')
    .option('--platform <platform>', 'Load only the given platform variant')
    .action(
      action(set, async (o: { input?: string; quiet?: boolean }) => {
        if (!o.input && process.stdin.isTTY) throw new ExitError(1, 'requested load from stdin, but stdin is empty');
        const body = o.input ? openInput(ctx, o.input) : process.stdin;
        const res = await ctx.client.raw('POST', '/images/load', { query: { quiet: o.quiet || !process.stdout.isTTY }, body, headers: { 'Content-Type': 'application/x-tar' } });
        try {
          await displayJsonStream(res, process.stdout);
        } catch (e) {
          if (e instanceof StreamError) throw new ExitError(1, e.message);
          throw e;
        }
      }),
    );

export const prune: Define = (cmd, ctx, set) =>
  cmd
    .option('-a, --all', 'Remove all unused images, not just dangling ones')
    .option('--filter <filter>', 'Provide filter values (e.g. "until=<timestamp>")', collect)
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(
      action(set, async (o: { all?: boolean; filter?: string[]; force?: boolean }) => {
        const warning = o.all
          ? 'WARNING! This will remove all images without at least one container associated to them.'
          : 'WARNING! This will remove all dangling images.';
        if (!(await confirm(ctx, warning, o.force))) return;
        const r = await ctx.client.post<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', {
          filters: filtersJson([...(o.filter ?? []), `dangling=${o.all ? 'false' : 'true'}`]),
        });
        ctx.out(prunedText('Images', imageDeletions(r.ImagesDeleted, true), r.SpaceReclaimed ?? 0, humanSize));
      }),
    );

export const importImage: Define = (cmd, ctx, set) =>
  cmd
    .argument('<file>', 'a tarball, or - for STDIN (URLs are not fetched by berthd)')
    .argument('[repository]')
    .option('-c, --change <change>', 'Apply Dockerfile instruction to the created image', collect)
    .option('-m, --message <message>', 'Set commit message for imported image')
    .option('--platform <platform>', 'Set platform if server is multi-platform capable')
    .action(
      action(set, async (file: string, repository: string | undefined, o: { change?: string[]; message?: string; platform?: string }) => {
        let body: NodeJS.ReadableStream = process.stdin;
        let fromSrc = '-';
        if (/^https?:\/\//.test(file)) fromSrc = file; // the daemon answers that it does not fetch URLs
        else if (file !== '-') body = openInput(ctx, file);
        const ref = repository ? splitRef(repository) : undefined;
        const res = await ctx.client.raw('POST', '/images/create', {
          query: { fromSrc, repo: ref?.name, tag: ref?.tag, message: o.message, changes: o.change, platform: o.platform },
          ...(fromSrc === '-' ? { body } : {}),
          headers: { 'Content-Type': 'application/x-tar' },
        });
        try {
          // The stream's last status is the new image's ID, which the docker CLI prints.
          await displayJsonStream(res, process.stdout);
        } catch (e) {
          if (e instanceof StreamError) throw new ExitError(1, e.message);
          throw e;
        }
      }),
    );

/** One search result as the docker CLI shows it: OFFICIAL "[OK]" in tables, "true"/"false" in JSON. */
interface SearchRow {
  Name: string;
  Description: string;
  StarCount: string;
  IsOfficial: string;
}

export const search: Define = (cmd, ctx, set) =>
  cmd
    .argument('<term>')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
    .option('--format <format>', 'Pretty-print search using a Go template')
    .option('--limit <n>', 'Max number of search results', (v: string) => integerFlag(v, '--limit'))
    .option('--no-trunc', "Don't truncate output")
    .action(
      action(set, async (term: string, o: { filter?: string[]; format?: string; limit?: number; trunc: boolean }) => {
        if (o.filter?.some((f) => f.split('=')[0] === 'is-automated')) {
          ctx.err('WARNING: the "is-automated" filter is deprecated, and searching for "is-automated=true" will not yield any results in future.\n');
        }
        const results = await ctx.client.json<{ name: string; description: string; star_count: number; is_official: boolean }[]>('GET', '/images/search', {
          query: { term, ...(o.limit ? { limit: String(o.limit) } : {}), filters: filtersJson(o.filter ?? []) },
          headers: { 'X-Registry-Auth': registryAuthHeader(ctx, term) },
        });
        const rows = results.map((r): SearchRow => {
          const description = r.description.replace(/[\r\n]/g, ' ');
          const row = { Name: r.name, Description: o.trunc ? ellipsis(description, 45) : description, StarCount: String(r.star_count), IsOfficial: r.is_official ? '[OK]' : '' };
          // `{{json .}}` shows the flag as a word, as the docker CLI's searchContext does.
          Object.defineProperty(row, 'toJSON', { value: () => ({ Description: row.Description, IsOfficial: String(r.is_official), Name: row.Name, StarCount: row.StarCount }) });
          return row;
        });
        ctx.out(
          formatList(rows, {
            format: o.format,
            table: 'table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}',
            headers: { Name: 'NAME', Description: 'DESCRIPTION', StarCount: 'STARS', IsOfficial: 'OFFICIAL' },
          }),
        );
      }),
    );
