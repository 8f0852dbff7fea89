/**
 * `docker top`: as dockerd does it, the host's ps(1) with the client's arguments (default
 * "-ef"), its rows kept for the container's processes (a thread row, "-" in the PID column,
 * goes with the process above it), the last column holding the rest of the line (a command
 * with spaces). Without a ps on the host: PID and CMD from /proc.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';

import { SystemError } from '../../common/errors.js';

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** moby's parsePSOutput: the header's titles; the rows of the given pids. */
export function parsePsOutput(output: string, pids: number[]): TopResult {
  const lines = output.split('\n');
  const titles = (lines[0] ?? '').trim().split(/\s+/).filter(Boolean);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new SystemError("Couldn't find PID field in ps output");
  const wanted = new Set(pids);
  const processes: string[][] = [];
  const add = (fields: string[]): void => void processes.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]);
  let previousKept = false;
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) continue;
    const pidField = fields[pidIndex];
    if (pidField === '-') {
      if (previousKept) add(fields);
      continue;
    }
    const pid = Number(pidField);
    if (!Number.isInteger(pid)) throw new SystemError(`Unexpected pid '${pidField}'`);
    previousKept = wanted.has(pid);
    if (previousKept) add(fields);
  }
  return { Titles: titles, Processes: processes };
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** The container's processes (pids) as `ps psArgs` shows them. */
export function top(pids: number[], psArgs = '-ef'): Promise<TopResult> {
  const args = (psArgs || '-ef').split(' ').filter(Boolean);
  return new Promise((resolve, reject) => {
    execFile('ps', args, { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        resolve({ Titles: ['PID', 'CMD'], Processes: pids.map((pid) => [String(pid), cmdline(pid)]) });
        return;
      }
      if (err) {
        // dockerd's words: the first line of ps's complaint (the rest is its usage text).
        reject(new SystemError(`ps: ${(stderr || err.message).trim().split('\n')[0]}`));
        return;
      }
      try {
        resolve(parsePsOutput(stdout, pids));
      } catch (e) {
        reject(e);
      }
    });
  });
}
