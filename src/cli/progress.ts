/**
 * Docker's JSON progress stream (pull, push, load, import) shown as the docker CLI shows it
 * (moby's pkg/jsonmessage): on a terminal one line per layer ID, rewritten in place with a
 * `[====>   ]  1.2MB/3.4MB` bar; elsewhere only the lines without a running progress bar.
 * Written by hand: progress-bar packages (cli-progress, progress) draw bars of their own
 * design and cannot keep docker's layout of status lines keyed by layer ID.
 */
import type { Readable } from 'node:stream';

import { jsonLines } from './client.js';
import { humanDuration, humanSize } from './format.js';

export interface JsonMessage {
  id?: string;
  status?: string;
  stream?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number; start?: number; units?: string; hidecounts?: boolean };
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: Record<string, unknown>;
  from?: string;
}

export class StreamError extends Error {
  constructor(
    message: string,
    /** errorDetail.code: a failed build step's exit status. */
    readonly code?: number,
  ) {
    super(message);
  }
}

/** moby's JSONProgress.String(). */
export function progressString(p: NonNullable<JsonMessage['progressDetail']>, width: number, now = Date.now()): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current, 4).padStart(8);
  let percentage = Math.floor(Math.floor((current / total) * 100) / 2);
  if (percentage > 50) percentage = 50;
  let bar = '';
  if (width > 110) bar = `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] `;
  let numbers = '';
  if (!p.hidecounts) {
    const c = p.units ? String(current) : humanSize(current, 4);
    const t = p.units ? String(total) : humanSize(total, 4);
    numbers = current > total ? c.padStart(8) : `${c.padStart(8)}/${t}`;
  }
  let left = '';
  if (current > 0 && p.start && p.start > 0 && percentage < 50) {
    const elapsed = now - p.start * 1000;
    const perEntry = elapsed / current;
    left = ' ' + humanDuration(perEntry * (total - current));
  }
  return bar + numbers + left;
}

/**
 * Renders the stream to `out`; rejects with the first `error` message. Returns the `aux`
 * objects (push digests, load results).
 */
export async function displayJsonStream(stream: Readable, out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }, isTerminal = !!out.isTTY): Promise<Record<string, unknown>[]> {
  const ids = new Map<string, number>();
  const aux: Record<string, unknown>[] = [];
  const width = isTerminal && out.columns ? out.columns : 200;
  for await (const jm of jsonLines<JsonMessage>(stream)) {
    if (jm.error || jm.errorDetail?.message) throw new StreamError(jm.errorDetail?.message ?? jm.error ?? 'unknown error', jm.errorDetail?.code);
    if (jm.aux) {
      aux.push(jm.aux);
      continue;
    }
    const hasProgress = jm.progressDetail !== undefined || !!jm.progress;
    let diff = 0;
    if (jm.id && hasProgress) {
      let line = ids.get(jm.id);
      if (line === undefined) {
        line = ids.size;
        ids.set(jm.id, line);
        if (isTerminal) out.write('\n');
      }
      diff = ids.size - line;
      if (isTerminal && diff > 0) out.write(`\x1b[${diff}A`);
    } else ids.clear();

    const progress = jm.progressDetail ? progressString(jm.progressDetail, width) : '';
    let s = '';
    let endl = '';
    if (isTerminal && !jm.stream && hasProgress) {
      s += '\x1b[2K\r';
      endl = '\r';
    } else if (progress) {
      continue; // no progress bars off a terminal
    }
    if (jm.id) s += `${jm.id}: `;
    if (jm.from) s += `(from ${jm.from}) `;
    if (hasProgress && isTerminal) s += `${jm.status ?? ''} ${progress || jm.progress || ''}${endl}`;
    else if (jm.stream) s += jm.stream;
    else s += `${jm.status ?? ''}${endl}\n`;
    out.write(s);
    if (jm.id && isTerminal && diff > 0) out.write(`\x1b[${diff}B`);
  }
  return aux;
}
