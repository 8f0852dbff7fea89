/** version, info, system df, system prune, events. */
import { CLIENT_MAX_API, jsonLines } from '../client.js';
import { type Define, ExitError, VERSION, action, collect, confirm, errorText, filtersJson, imageDeletions, prunedText } from '../context.js';
import { formatList, humanSize, parseTimestamp, unescapeFormat } from '../format.js';
import { parse, render } from '../template.js';
import { IMAGE_HEADERS, imageRows, type ApiImage } from './images.js';
import { containerRow, PS_HEADERS, type ApiContainer } from './ps.js';

const CLIENT_INFO = {
  Platform: { Name: 'Berth' },
  Version: VERSION,
  ApiVersion: CLIENT_MAX_API,
  DefaultAPIVersion: CLIENT_MAX_API,
  GoVersion: `node${process.versions.node}`,
  Os: process.platform,
  Arch: process.arch === 'x64' ? 'amd64' : process.arch,
  BuildTime: '',
  Context: 'default',
};

const VERSION_TEMPLATE = `Client:
 Version:           {{.Client.Version}}
 API version:       {{.Client.ApiVersion}}{{if ne .Client.ApiVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Node version:      {{.Client.GoVersion}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}
{{- if .Server}}

Server:{{if .Server.Platform.Name}} {{.Server.Platform.Name}}{{end}}
{{- range $c := .Server.Components}}
 {{$c.Name}}:
  Version:          {{$c.Version}}
  {{- if eq $c.Name "Engine"}}
  API version:      {{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:       {{index $c.Details "GoVersion"}}
  Git commit:       {{index $c.Details "GitCommit"}}
  Built:            {{index $c.Details "BuildTime"}}
  OS/Arch:          {{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Experimental:     {{index $c.Details "Experimental"}}
  {{- else}}
  GitCommit:        {{index $c.Details "GitCommit"}}
  {{- end}}
{{- end}}
{{- end}}
`;

export const version: Define = (cmd, ctx, set) =>
  cmd.option('-f, --format <format>', 'Format output using a custom template').action(
    action(set, async (o: { format?: string }) => {
      let server: Record<string, unknown> | undefined;
      let failure: unknown;
      const client = { ...CLIENT_INFO };
      try {
        client.ApiVersion = await ctx.client.version();
        server = await ctx.client.get('/version');
      } catch (e) {
        failure = e;
      }
      // The docker CLI's templates name the Go fields (.Server.APIVersion); the JSON has "ApiVersion".
      for (const o of [client, server]) if (o) Object.defineProperty(o, 'APIVersion', { get: () => o.ApiVersion, enumerable: false });
      const data = { Client: client, Server: server };
      if (o.format) ctx.out(render(unescapeFormat(o.format === 'json' ? '{{json .}}' : o.format), data) + '\n');
      else ctx.out(render(VERSION_TEMPLATE, data).replace(/<no value>/g, ''));
      if (failure) throw new ExitError(1, errorText(failure));
    }),
  );

type Info = Record<string, unknown> & {
  Containers: number; ContainersRunning: number; ContainersPaused: number; ContainersStopped: number; Images: number;
  ServerVersion: string; Driver: string; DriverStatus?: [string, string][]; CgroupDriver?: string; CgroupVersion?: string;
  Runtimes?: Record<string, unknown>; DefaultRuntime?: string; KernelVersion: string; OperatingSystem: string; OSType: string;
  Architecture: string; NCPU: number; MemTotal: number; Name: string; ID: string; DockerRootDir: string; Debug: boolean;
  Labels?: string[]; Warnings?: string[] | null; SecurityOptions?: string[]; LoggingDriver?: string;
  Plugins?: { Volume?: string[] | null; Network?: string[] | null; Authorization?: string[] | null; Log?: string[] | null };
  Swarm?: { LocalNodeState?: string }; InitBinary?: string; ExperimentalBuild?: boolean; LiveRestoreEnabled?: boolean;
  ContainerdCommit?: { ID: string; Expected: string }; RuncCommit?: { ID: string; Expected: string }; InitCommit?: { ID: string; Expected: string };
  RegistryConfig?: { InsecureRegistryCIDRs?: string[] | null; IndexConfigs?: Record<string, { Name: string; Secure: boolean }> | null; Mirrors?: string[] | null } | null;
  HttpProxy?: string; HttpsProxy?: string; NoProxy?: string;
};

/** The security options as the docker CLI prints them: each name, and a profile beneath it. */
function securityLines(options: string[]): string[] {
  return options.flatMap((option) => {
    const kv = Object.fromEntries(option.split(',').map((p) => [p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    return [`  ${kv.name ?? option}`, ...(kv.profile ? [`   Profile: ${kv.profile}`] : [])];
  });
}

/** The registry part of docker info: the insecure registries (names, then CIDRs) and the mirrors. */
function registryLines(config: Info['RegistryConfig']): string[] {
  if (!config) return [];
  const insecureNames = Object.values(config.IndexConfigs ?? {}).filter((c) => !c.Secure).map((c) => c.Name);
  const cidrs = config.InsecureRegistryCIDRs ?? [];
  return [
    ...(insecureNames.length || cidrs.length ? [' Insecure Registries:', ...insecureNames.map((n) => `  ${n}`), ...cidrs.map((c) => `  ${c}`)] : []),
    ...(config.Mirrors?.length ? [' Registry Mirrors:', ...config.Mirrors.map((m) => `  ${m}`)] : []),
  ];
}

export const info: Define = (cmd, ctx, set) =>
  cmd.option('-f, --format <format>', 'Format output using a custom template').action(
    action(set, async (o: { format?: string }) => {
      const i = await ctx.client.get<Info>('/info');
      if (o.format) {
        ctx.out(render(unescapeFormat(o.format === 'json' ? '{{json .}}' : o.format), { ...i, ClientInfo: CLIENT_INFO }) + '\n');
        return;
      }
      const lines = [
        'Client:',
        ` Version:    ${VERSION}`,
        ` Context:    default`,
        ` Debug Mode: ${ctx.debug}`,
        '',
        'Server:',
        ` Containers: ${i.Containers}`,
        `  Running: ${i.ContainersRunning}`,
        `  Paused: ${i.ContainersPaused}`,
        `  Stopped: ${i.ContainersStopped}`,
        ` Images: ${i.Images}`,
        ` Server Version: ${i.ServerVersion}`,
        // In the docker CLI's order (prettyPrintServerInfo), each part where it prints one.
        ...(i.Driver ? [` Storage Driver: ${i.Driver}`, ...(i.DriverStatus ?? []).map(([k, v]) => `  ${k}: ${v}`)] : []),
        ...(i.LoggingDriver ? [` Logging Driver: ${i.LoggingDriver}`] : []),
        ...(i.CgroupDriver ? [` Cgroup Driver: ${i.CgroupDriver}`, ...(i.CgroupVersion ? [` Cgroup Version: ${i.CgroupVersion}`] : [])] : []),
        ' Plugins:',
        `  Volume: ${(i.Plugins?.Volume ?? []).join(' ')}`,
        `  Network: ${(i.Plugins?.Network ?? []).join(' ')}`,
        ...(i.Plugins?.Authorization?.length ? [`  Authorization: ${i.Plugins.Authorization.join(' ')}`] : []),
        `  Log: ${(i.Plugins?.Log ?? []).join(' ')}`,
        ` Swarm: ${i.Swarm?.LocalNodeState ?? ''}`,
        ...(Object.keys(i.Runtimes ?? {}).length ? [` Runtimes: ${Object.keys(i.Runtimes ?? {}).sort().join(' ')}`, ` Default Runtime: ${i.DefaultRuntime ?? ''}`] : []),
        ...(i.OSType === 'linux'
          ? [
              ` Init Binary: ${i.InitBinary ?? ''}`,
              ...(
                [
                  ['containerd', i.ContainerdCommit],
                  ['runc', i.RuncCommit],
                  ['init', i.InitCommit],
                ] as const
              ).map(([name, c]) => ` ${name} version: ${c?.ID ?? ''}${c && c.ID !== c.Expected ? ` (expected: ${c.Expected})` : ''}`),
              ...(i.SecurityOptions?.length ? [' Security Options:', ...securityLines(i.SecurityOptions)] : []),
            ]
          : []),
        ` Kernel Version: ${i.KernelVersion}`,
        ` Operating System: ${i.OperatingSystem}`,
        ` OSType: ${i.OSType}`,
        ` Architecture: ${i.Architecture}`,
        ` CPUs: ${i.NCPU}`,
        ` Total Memory: ${(await import('../format.js')).bytesSize(i.MemTotal)}`,
        ` Name: ${i.Name}`,
        ` ID: ${i.ID}`,
        ` Docker Root Dir: ${i.DockerRootDir}`,
        ` Debug Mode: ${i.Debug}`,
        ` Experimental: ${i.ExperimentalBuild ?? false}`,
        ...(i.HttpProxy ? [` HTTP Proxy: ${i.HttpProxy}`] : []),
        ...(i.HttpsProxy ? [` HTTPS Proxy: ${i.HttpsProxy}`] : []),
        ...(i.NoProxy ? [` No Proxy: ${i.NoProxy}`] : []),
        ...registryLines(i.RegistryConfig),
        ...(i.Labels?.length ? [' Labels:', ...i.Labels.map((l) => `  ${l}`)] : []),
        ` Live Restore Enabled: ${i.LiveRestoreEnabled ?? false}`,
        '',
        '',
      ];
      ctx.out(lines.join('\n'));
      for (const w of i.Warnings ?? []) ctx.err(`${w}\n`);
    }),
  );

/**
 * `system df -v` as the docker CLI writes it: a table each for images (one row per image, its
 * first tag), containers (no virtual size), volumes and the build cache.
 */
function verboseDiskUsage(images: ApiImage[], containers: ApiContainer[], volumes: { Name: string; UsageData?: { Size: number; RefCount: number } | null }[], builderSize: number): string {
  const imageTable = formatList(
    images.flatMap((i) => {
      const tags = (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      return imageRows([{ ...i, RepoTags: tags.slice(0, 1), RepoDigests: [] }], { trunc: true }).slice(0, 1);
    }),
    { table: 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}', headers: IMAGE_HEADERS },
  );
  const containerTable = formatList(
    containers.map((c) => containerRow({ ...c, SizeRootFs: 0 }, true)),
    { table: 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}', headers: PS_HEADERS },
  );
  const volumeTable = formatList(
    volumes.map((v) => ({ Name: v.Name, Links: v.UsageData ? String(v.UsageData.RefCount) : 'N/A', Size: v.UsageData && v.UsageData.Size >= 0 ? humanSize(v.UsageData.Size, 4) : 'N/A' })),
    { table: 'table {{.Name}}\t{{.Links}}\t{{.Size}}', headers: { Name: 'VOLUME NAME', Links: 'LINKS', Size: 'SIZE' } },
  );
  const cacheTable = formatList([], {
    table: 'table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}',
    headers: { ID: 'CACHE ID', CacheType: 'CACHE TYPE', Size: 'SIZE', CreatedSince: 'CREATED', LastUsedSince: 'LAST USED', UsageCount: 'USAGE', Shared: 'SHARED' },
  });
  return `Images space usage:\n\n${imageTable}\nContainers space usage:\n\n${containerTable}\nLocal Volumes space usage:\n\n${volumeTable}\nBuild cache usage: ${humanSize(builderSize, 4)}\n\n${cacheTable}`;
}

export const df: Define = (cmd, ctx, set) =>
  cmd
    .option('--format <format>', 'Format output using a custom template')
    .option('-v, --verbose', 'Show detailed information on space usage')
    .action(
      action(set, async (o: { format?: string; verbose?: boolean }) => {
        const d = await ctx.client.get<{
          LayersSize?: number;
          Images?: (ApiImage & { Size: number; SharedSize: number; Containers: number })[] | null;
          Containers?: (ApiContainer & { SizeRw?: number; State: string })[] | null;
          Volumes?: { Name: string; UsageData?: { Size: number; RefCount: number } | null }[] | null;
          BuildCache?: { Size: number; InUse: boolean; Shared: boolean }[] | null;
          BuilderSize?: number;
        }>('/system/df');
        if (o.verbose && !o.format) {
          ctx.out(verboseDiskUsage(d.Images ?? [], d.Containers ?? [], d.Volumes ?? [], d.BuilderSize ?? 0));
          return;
        }
        const images = d.Images ?? [];
        const containers = d.Containers ?? [];
        const volumes = d.Volumes ?? [];
        const cache = d.BuildCache ?? [];
        const pct = (part: number, total: number): string => (total > 0 ? ` (${Math.floor((part * 100) / total)}%)` : '');
        const imgSize = d.LayersSize ?? images.reduce((s, i) => s + i.Size, 0);
        const imgActive = images.filter((i) => i.Containers > 0);
        const imgReclaim = imgSize - imgActive.reduce((s, i) => s + i.Size - Math.max(0, i.SharedSize), 0) - 0;
        const ctrSize = containers.reduce((s, c) => s + (c.SizeRw ?? 0), 0);
        const ctrActive = containers.filter((c) => c.State === 'running');
        const ctrReclaim = containers.filter((c) => c.State !== 'running').reduce((s, c) => s + (c.SizeRw ?? 0), 0);
        const volSize = volumes.reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0);
        const volActive = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0);
        const volReclaim = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0);
        const cacheSize = cache.reduce((s, c) => s + c.Size, 0);
        const cacheReclaim = cache.filter((c) => !c.InUse && !c.Shared).reduce((s, c) => s + c.Size, 0);
        const rows = [
          { Type: 'Images', TotalCount: String(images.length), Active: String(imgActive.length), Size: humanSize(imgSize, 4), Reclaimable: humanSize(Math.max(0, imgReclaim), 4) + pct(Math.max(0, imgReclaim), imgSize) },
          { Type: 'Containers', TotalCount: String(containers.length), Active: String(ctrActive.length), Size: humanSize(ctrSize, 4), Reclaimable: humanSize(ctrReclaim, 4) + pct(ctrReclaim, ctrSize) },
          { Type: 'Local Volumes', TotalCount: String(volumes.length), Active: String(volActive.length), Size: humanSize(volSize, 4), Reclaimable: humanSize(volReclaim, 4) + pct(volReclaim, volSize) },
          { Type: 'Build Cache', TotalCount: String(cache.length), Active: String(cache.filter((c) => c.InUse).length), Size: humanSize(cacheSize, 4), Reclaimable: humanSize(cacheReclaim, 4) },
        ];
        ctx.out(
          formatList(rows, {
            format: o.format,
            table: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
            headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
          }),
        );
      }),
    );

export const prune: Define = (cmd, ctx, set) =>
  cmd
    .option('-a, --all', 'Remove all unused images not just dangling ones')
    .option('--filter <filter>', 'Provide filter values (e.g. "label=<key>=<value>")', collect)
    .option('-f, --force', 'Do not prompt for confirmation')
    .option('--volumes', 'Prune anonymous volumes')
    .action(
      action(set, async (o: { all?: boolean; filter?: string[]; force?: boolean; volumes?: boolean }) => {
        // Volumes have no creation time to filter on: the docker CLI refuses before asking.
        if (o.volumes && o.filter?.some((f) => f.split('=')[0]?.trim().toLowerCase() === 'until')) throw new ExitError(1, 'ERROR: The "until" filter is not supported with "--volumes"');
        const items = ['all stopped containers', 'all networks not used by at least one container'];
        if (o.volumes) items.push('all anonymous volumes not used by at least one container');
        items.push(o.all ? 'all images without at least one container associated to them' : 'all dangling images');
        items.push(o.all ? 'all build cache' : 'unused build cache');
        if (!(await confirm(ctx, `WARNING! This will remove:\n${items.map((i) => `  - ${i}`).join('\n')}\n`, o.force))) return;
        const filters = filtersJson(o.filter);
        let total = 0;
        const c = await ctx.client.post<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { filters });
        ctx.out(prunedText('Containers', c.ContainersDeleted));
        total += c.SpaceReclaimed ?? 0;
        const n = await ctx.client.post<{ NetworksDeleted?: string[] | null }>('/networks/prune', { filters });
        ctx.out(prunedText('Networks', n.NetworksDeleted));
        if (o.volumes) {
          const v = await ctx.client.post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { filters });
          ctx.out(prunedText('Volumes', v.VolumesDeleted));
          total += v.SpaceReclaimed ?? 0;
        }
        const imgFilters = filtersJson([...(o.filter ?? []), `dangling=${o.all ? 'false' : 'true'}`]);
        const im = await ctx.client.post<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', { filters: imgFilters });
        ctx.out(prunedText('Images', imageDeletions(im.ImagesDeleted, true)));
        total += im.SpaceReclaimed ?? 0;
        try {
          const b = await ctx.client.post<{ SpaceReclaimed?: number }>('/build/prune', { all: o.all, filters });
          total += b?.SpaceReclaimed ?? 0;
        } catch {
          /* a daemon without a builder */
        }
        ctx.out(`Total reclaimed space: ${humanSize(total)}\n`);
      }),
    );

interface Event {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
  status?: string;
  id?: string;
  from?: string;
}

/** RFC 3339 with nanoseconds in UTC, as docker prints event times (jsonmessage.RFC3339NanoFixed). */
export function eventTime(e: Event): string {
  const nano = e.timeNano ? BigInt(e.timeNano) : BigInt(e.time ?? 0) * 1_000_000_000n;
  const secs = Number(nano / 1_000_000_000n);
  const frac = String(nano % 1_000_000_000n).padStart(9, '0');
  return new Date(secs * 1000).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
}

export function formatEvent(e: Event): string {
  const attrs = Object.entries(e.Actor?.Attributes ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return `${eventTime(e)} ${e.Type} ${e.Action} ${e.Actor?.ID ?? ''}${attrs ? ` (${attrs})` : ''}`;
}

export const events: Define = (cmd, ctx, set) =>
  cmd
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
    .option('--format <format>', 'Format output using a custom template')
    .option('--since <time>', 'Show all events created since timestamp')
    .option('--until <time>', 'Stream events until this timestamp')
    .action(
      action(set, async (o: { filter?: string[]; format?: string; since?: string; until?: string }) => {
        const res = await ctx.client.raw('GET', '/events', {
          query: { since: o.since ? parseTimestamp(o.since) : undefined, until: o.until ? parseTimestamp(o.until) : undefined, filters: filtersJson(o.filter) },
        });
        // As the docker CLI's events: the template as given (no table, no \t escapes).
        const tpl = o.format ? parse(o.format === 'json' ? '{{json .}}' : o.format) : undefined;
        ctx.io.exitOnInterrupt(0);
        for await (const e of jsonLines<Event>(res)) ctx.out((tpl ? tpl.execute(e) : formatEvent(e)) + '\n');
      }),
    );
