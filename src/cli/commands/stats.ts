/** stats: docker's CPU/memory/net/block computation; --no-stream prints once, else redraws every second. */
import { type Define, action } from '../context.js';
import { bytesSize, formatList, humanSize, shortId } from '../format.js';

interface ApiStats {
  id?: string;
  name?: string;
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
  pids_stats?: { current?: number };
}

/** One row of docker stats from one stats sample (as docker's calculateCPUPercentUnix and friends). */
export function statsRow(s: ApiStats, id: string, trunc = true): Record<string, string> {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 1;
  const cpu = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * online * 100 : 0;
  const st = s.memory_stats?.stats ?? {};
  const usage = s.memory_stats?.usage ?? 0;
  const cache = st.total_inactive_file !== undefined && st.total_inactive_file < usage ? st.total_inactive_file : st.inactive_file !== undefined && st.inactive_file < usage ? st.inactive_file : 0;
  const mem = usage - cache;
  const limit = s.memory_stats?.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let rd = 0;
  let wr = 0;
  for (const b of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (b.op.toLowerCase() === 'read') rd += b.value;
    if (b.op.toLowerCase() === 'write') wr += b.value;
  }
  return {
    Container: id,
    ID: trunc ? shortId(s.id ?? id) : (s.id ?? id),
    Name: (s.name ?? '').replace(/^\//, '') || '--',
    CPUPerc: `${cpu.toFixed(2)}%`,
    MemUsage: `${bytesSize(mem)} / ${bytesSize(limit)}`,
    MemPerc: `${(limit ? (mem / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSize(rx)} / ${humanSize(tx)}`,
    BlockIO: `${humanSize(rd)} / ${humanSize(wr)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

const HEADERS = { Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' };
const TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

export const stats: Define = (cmd, ctx, set) =>
  cmd
    .argument('[container...]')
    .option('-a, --all', 'Show all containers (default shows just running)')
    .option('--format <format>', 'Format output using a custom template')
    .option('--no-stream', 'Disable streaming stats and only pull the first result')
    .option('--no-trunc', 'Do not truncate output')
    .action(
      action(set, async (names: string[], o: { all?: boolean; format?: string; stream: boolean; trunc: boolean }) => {
        const ids = async (): Promise<string[]> =>
          names.length ? names : (await ctx.client.get<{ Id: string }[]>('/containers/json', { all: o.all })).map((c) => c.Id);
        const sample = async (): Promise<Record<string, string>[]> =>
          Promise.all(
            (await ids()).map(async (id) => {
              const s = await ctx.client.get<ApiStats>(`/containers/${encodeURIComponent(id)}/stats`, { stream: false });
              return statsRow(s, id, o.trunc);
            }),
          );
        if (!o.stream) {
          ctx.out(formatList(await sample(), { format: o.format, table: TABLE, headers: HEADERS }));
          return;
        }
        ctx.io.exitOnInterrupt(0);
        for (;;) {
          const rows = await sample();
          ctx.out('\x1b[2J\x1b[H' + formatList(rows, { format: o.format, table: TABLE, headers: HEADERS }));
          await new Promise((r) => setTimeout(r, 1000));
        }
      }),
    );
