/** volume create/ls/inspect/rm/prune. */
import { type Define, action, collect, confirm, eachName, filtersJson, prunedText } from '../context.js';
import { formatList, humanSize, keyValues, naturalCompare } from '../format.js';
import { volumeInspect } from './inspect.js';

export const create: Define = (cmd, ctx, set) =>
  cmd
    .argument('[name]')
    .option('-d, --driver <driver>', 'Specify volume driver name', 'local')
    .option('--label <label>', 'Set metadata for a volume', collect)
    .option('-o, --opt <opt>', 'Set driver specific options', collect)
    .action(
      action(set, async (name: string | undefined, o: { driver: string; label?: string[]; opt?: string[] }) => {
        const v = await ctx.client.post<{ Name: string }>('/volumes/create', undefined, { Name: name ?? '', Driver: o.driver, DriverOpts: keyValues(o.opt), Labels: keyValues(o.label) });
        ctx.out(`${v.Name}\n`);
      }),
    );

export const ls: Define = (cmd, ctx, set) =>
  cmd
    .option('-f, --filter <filter>', 'Provide filter values (e.g. "dangling=true")', collect)
    .option('--format <format>', 'Format output using a custom template')
    .option('-q, --quiet', 'Only display volume names')
    .action(
      action(set, async (o: { filter?: string[]; format?: string; quiet?: boolean }) => {
        const r = await ctx.client.get<{ Volumes: { Name: string; Driver: string; Scope?: string; Mountpoint?: string; Labels?: Record<string, string> | null }[] | null }>('/volumes', {
          filters: filtersJson(o.filter),
        });
        const rows = (r.Volumes ?? [])
          .sort((a, b) => naturalCompare(a.Name, b.Name))
          .map((v) => {
            // docker's volume context: usage and cluster fields are "N/A" when the list has none.
            const row = {
              Name: v.Name,
              Driver: v.Driver,
              Scope: v.Scope ?? 'local',
              Mountpoint: v.Mountpoint ?? '',
              Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).sort().join(','),
              Links: 'N/A',
              Size: 'N/A',
              Group: 'N/A',
              Availability: 'N/A',
              Status: 'N/A',
            };
            Object.defineProperty(row, 'Label', { value: (key: unknown) => v.Labels?.[String(key)] ?? '' });
            return row;
          });
        if (o.quiet && (!o.format || o.format === 'table')) {
          ctx.out(rows.map((x) => x.Name + '\n').join(''));
          return;
        }
        ctx.out(formatList(rows, { format: o.quiet ? '{{.Name}}' : o.format, table: 'table {{.Driver}}\t{{.Name}}', headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS' }, goType: '*formatter.volumeContext' }));
      }),
    );

export const inspect = volumeInspect;

export const rm: Define = (cmd, ctx, set) =>
  cmd
    .argument('<volume...>')
    .option('-f, --force', 'Force the removal of one or more volumes')
    .action(
      action(set, async (names: string[], o: { force?: boolean }) =>
        eachName(ctx, names, async (n) => {
          await ctx.client.delete(`/volumes/${encodeURIComponent(n)}`, { force: o.force });
          return n;
        }),
      ),
    );

export const prune: Define = (cmd, ctx, set) =>
  cmd
    .option('-a, --all', 'Remove all unused volumes, not just anonymous ones')
    .option('--filter <filter>', 'Provide filter values (e.g. "label=<label>")', collect)
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(
      action(set, async (o: { all?: boolean; filter?: string[]; force?: boolean }) => {
        if (!(await confirm(ctx, o.all ? 'WARNING! This will remove all local volumes not used by at least one container.' : 'WARNING! This will remove anonymous local volumes not used by at least one container.', o.force))) return;
        const version = await ctx.client.version();
        const filters = [...(o.filter ?? [])];
        if (o.all && Number(version.split('.')[1]) >= 42) filters.push('all=true');
        const r = await ctx.client.post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { filters: filtersJson(filters) });
        ctx.out(prunedText('Volumes', r.VolumesDeleted, r.SpaceReclaimed ?? 0, humanSize));
      }),
    );
