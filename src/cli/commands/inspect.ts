/** inspect (containers, images, volumes, networks), with -f/--format and --type. */
import { ApiError, imagePath } from '../client.js';
import type { Ctx, Define } from '../context.js';
import { action, ExitError } from '../context.js';
import { unescapeFormat } from '../format.js';
import { parse, TemplateError, TemplateParseError, type Template } from '../template.js';

type Kind = 'container' | 'image' | 'volume' | 'network';
const PATHS: Record<Kind, (n: string, size?: boolean) => string> = {
  container: (n) => `/containers/${encodeURIComponent(n)}/json`,
  image: (n) => `/images/${imagePath(n)}/json`,
  volume: (n) => `/volumes/${encodeURIComponent(n)}`,
  network: (n) => `/networks/${encodeURIComponent(n)}`,
};
const NOUN: Record<Kind, string> = { container: 'container', image: 'image', volume: 'volume', network: 'network' };

/** Go's json.MarshalIndent(v, "", "    ") with its HTML escaping. */
export function goJsonIndent(v: unknown): string {
  return JSON.stringify(v, null, 4).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

async function inspectAll(ctx: Ctx, names: string[], kinds: Kind[], o: { format?: string; size?: boolean }): Promise<number> {
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const n of names) {
    let obj: unknown;
    let notFound: ApiError | undefined;
    for (const k of kinds) {
      try {
        obj = await ctx.client.get(PATHS[k](n), k === 'container' && o.size ? { size: true } : undefined);
        break;
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
        notFound = e;
      }
    }
    // As the docker CLI: one kind asked for, the daemon's words; any kind, "No such object".
    if (obj === undefined) errors.push(kinds.length === 1 ? `Error response from daemon: ${notFound?.message ?? `No such ${NOUN[kinds[0]!]}: ${n}`}` : `Error: No such object: ${n}`);
    else found.push(obj);
  }
  if (o.format) {
    // The docker CLI's words and codes: 64 for a template that does not parse, 1 for one that fails.
    let tpl: Template;
    try {
      tpl = parse(unescapeFormat(o.format === 'json' ? '{{json .}}' : o.format));
    } catch (err) {
      if (err instanceof TemplateParseError) throw new ExitError(64, `template parsing error: ${err.message}`);
      throw err;
    }
    for (const obj of found) {
      try {
        ctx.out(tpl.execute(obj) + '\n');
      } catch (err) {
        if (err instanceof TemplateError) throw new ExitError(1, `template parsing error: ${err.message}`);
        throw err;
      }
    }
  } else ctx.out(goJsonIndent(found) + '\n');
  for (const e of errors) ctx.err(e + '\n');
  return errors.length ? 1 : 0;
}

const define =
  (kinds: Kind[] | undefined): Define =>
  (cmd, ctx, set) => {
    cmd
      .argument('<name...>')
      .option('-f, --format <format>', 'Format output using a custom template')
      .option('-s, --size', 'Display total file sizes if the type is container');
    if (!kinds) cmd.option('--type <type>', 'Return JSON for specified type');
    cmd.action(
      action(set, async (names: string[], o: { format?: string; size?: boolean; type?: string }) => {
        let k: Kind[] = kinds ?? ['container', 'image', 'volume', 'network'];
        if (o.type) {
          if (!(o.type in PATHS)) {
            ctx.err(`"${o.type}" is not a valid value for --type\n`);
            return 1;
          }
          k = [o.type as Kind];
        }
        return inspectAll(ctx, names, k, o);
      }),
    );
  };

export const inspect = define(undefined);
export const containerInspect = define(['container']);
export const imageInspect = define(['image']);
export const volumeInspect = define(['volume']);
export const networkInspect = define(['network']);
