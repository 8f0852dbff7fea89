/** What the shim tests share: their cleanup, and looks at processes and logs. */
import fs from 'node:fs';

import type { Runtime } from '../../src/runtime/runtime.js';
import { shimPid, type LogEntry } from '../../src/shim/client.js';
import type { TestBundle } from './images.js';

/** What a test file created: deleted (and shims killed) by cleanUp, even when tests failed. */
export interface ShimTestResources {
  runtime: Runtime;
  root: string;
  ids: string[];
  shimDirs: string[];
  bundles: TestBundle[];
}

export async function cleanUp(r: ShimTestResources): Promise<void> {
  for (const id of r.ids) await r.runtime.delete(id, true).catch(() => undefined);
  for (const dir of r.shimDirs) {
    const pid = shimPid(dir);
    if (pid) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const b of r.bundles) b.remove();
  fs.rmSync(r.root, { recursive: true, force: true });
}

/** Whether pid runs (a zombie does not: whoever reaps it may take a while). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export function memory(pid: number): { rssKb: number; pssKb: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  const pss = /Pss:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return { rssKb: Number(rss?.[1]), pssKb: Number(pss?.[1]) };
}

/** The text logged on one stream. */
export function logText(entries: LogEntry[], stream: string): string {
  return entries
    .filter((e) => e.stream === stream)
    .map((e) => e.log)
    .join('');
}
