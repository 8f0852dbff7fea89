/** ps / container ls: docker's table, --format, -q, -a, -n, -l, -s, --filter, --no-trunc. */
import { type Define, ExitError, action, collect, filtersJson } from '../context.js';
import { ago, ellipsis, formatList, goTime, humanSize, shortId, unescapeFormat } from '../format.js';
import { GO_TYPE, parse as parseTemplate, TemplateError, TemplateParseError } from '../template.js';

interface ApiPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface ApiContainer {
  Id: string;
  Names?: string[];
  Image: string;
  ImageID?: string;
  Command: string;
  Created: number;
  Ports?: ApiPort[];
  Labels?: Record<string, string> | null;
  State: string;
  Status: string;
  SizeRw?: number;
  SizeRootFs?: number;
  Mounts?: { Name?: string; Source?: string; Type?: string }[];
  NetworkSettings?: { Networks?: Record<string, unknown> };
}

/** "0.0.0.0:8080->80/tcp, 53/udp" as docker prints a container's ports. */
export function formatPorts(ports: ApiPort[] | undefined): string {
  if (!ports?.length) return '';
  const items = [...ports].sort((a, b) => a.PrivatePort - b.PrivatePort || a.Type.localeCompare(b.Type) || (a.IP ?? '').localeCompare(b.IP ?? ''));
  const out: string[] = [];
  for (const p of items) {
    const s = p.PublicPort ? `${p.IP?.includes(':') ? `[${p.IP}]` : (p.IP ?? '')}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`;
    if (!out.includes(s)) out.push(s);
  }
  return out.join(', ');
}

const sortedLabels = (l: Record<string, string> | null | undefined): string =>
  Object.entries(l ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');

/** docker's container Size: the writable layer's, and the whole file system's when known. */
function sizeText(rw: number, rootFs: number): string {
  return rootFs > 0 ? `${humanSize(rw)} (virtual ${humanSize(rootFs)})` : humanSize(rw);
}

/** The fields docker's container formatter offers, as strings. */
export function containerRow(c: ApiContainer, trunc: boolean, now = Date.now()): Record<string, string | null> {
  const names = (c.Names ?? []).map((n) => n.replace(/^\//, '')).filter((n) => !trunc || !n.includes('/'));
  let image = c.Image;
  if (trunc && image.startsWith('sha256:')) image = shortId(image);
  const row: Record<string, string | null> = {
    ID: trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Command: JSON.stringify(trunc ? ellipsis(c.Command ?? '', 20) : (c.Command ?? '')),
    CreatedAt: goTime(c.Created),
    RunningFor: ago(c.Created, now),
    Ports: formatPorts(c.Ports),
    State: c.State,
    Status: c.Status,
    // dockerd leaves SizeRw out when it is 0; the docker CLI shows "0B (virtual …)" then.
    Size: c.SizeRw !== undefined || c.SizeRootFs !== undefined ? sizeText(c.SizeRw ?? 0, c.SizeRootFs ?? 0) : '',
    Names: names.join(','),
    Labels: sortedLabels(c.Labels),
    Mounts: (c.Mounts ?? []).map((m) => (trunc ? ellipsis(m.Name || m.Source || '', 15) : m.Name || m.Source || '')).join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).sort().join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === 'volume').length),
    // The image manifest's platform, which dockerd sends from API 1.48 on only: none here.
    Platform: null,
  };
  // {{.Label "key"}}: a method, as on docker's container context (not a field, so not in {{json .}}).
  Object.defineProperty(row, 'Label', { value: (key: unknown) => c.Labels?.[String(key)] ?? '' });
  return row;
}

const PS_GO_TYPE = '*formatter.ContainerContext';

export const PS_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
export const PS_HEADERS = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', RunningFor: 'CREATED', CreatedAt: 'CREATED AT', Status: 'STATUS',
  Ports: 'PORTS', Names: 'NAMES', Size: 'SIZE', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS', State: 'STATE', LocalVolumes: 'LOCAL VOLUMES',
};

export const ps: Define = (cmd, ctx, set) =>
  cmd
    .option('-a, --all', 'Show all containers (default shows just running)')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
    .option('--format <format>', 'Format output using a custom template')
    .option('-n, --last <n>', 'Show n last created containers (includes all states)')
    .option('-l, --latest', 'Show the latest created container (includes all states)')
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only display container IDs')
    .option('-s, --size', 'Display total file sizes')
    .action(
      action(set, async (o: { all?: boolean; filter?: string[]; format?: string; last?: string; latest?: boolean; trunc: boolean; quiet?: boolean; size?: boolean }) => {
        const limit = o.latest ? 1 : o.last !== undefined ? Number(o.last) : undefined;
        const list = await ctx.client.get<ApiContainer[]>('/containers/json', {
          all: o.all || (limit !== undefined && limit > 0),
          limit: limit !== undefined && limit > 0 ? limit : undefined,
          // The docker CLI asks for sizes when the template uses .Size, or shows whole rows as JSON.
          size: o.size || (o.format?.includes('.Size') ?? false) || o.format === 'json' || /\{\{\s*json\s+\.\s*\}\}/.test(o.format ?? ''),
          filters: filtersJson(o.filter),
        });
        const rows = list.map((c) => containerRow(c, o.trunc));
        if (o.format && !o.quiet && o.format !== 'table') {
          // The docker CLI tries the template on an empty row first (to learn whether .Size is used).
          try {
            parseTemplate(unescapeFormat(o.format === 'json' ? '{{json .}}' : o.format.replace(/^table/, '')), { strictFields: true }).execute(
              Object.defineProperty(containerRow({ Id: '', Image: '', Command: '', Created: 0, State: '', Status: '' }, true), GO_TYPE, { value: PS_GO_TYPE }),
            );
          } catch (err) {
            if (err instanceof TemplateParseError) throw new ExitError(1, `failed to parse template: ${err.message}`);
            if (err instanceof TemplateError) throw new ExitError(1, `failed to execute template: ${err.message}`);
            throw err;
          }
        }
        if (o.quiet && (!o.format || o.format === 'table')) {
          ctx.out(rows.map((r) => r.ID + '\n').join(''));
          return;
        }
        const table = o.size ? `${PS_TABLE}\t{{.Size}}` : PS_TABLE;
        ctx.out(formatList(rows, { format: o.quiet ? '{{.ID}}' : o.format, table, headers: PS_HEADERS, goType: PS_GO_TYPE }));
      }),
    );
