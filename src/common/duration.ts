/** Go's time.ParseDuration ("1m30s", "500ms", "0"), to nanoseconds: Docker's health check and build flags take these. */
import { InvalidArgumentError } from './errors.js';

const UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

export function parseGoDuration(text: string): number {
  if (text === '0') return 0;
  if (text === '') throw new InvalidArgumentError('time: invalid duration ""');
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new InvalidArgumentError(`time: invalid duration "${text}"`);
    total += Number(m[1]) * UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  return Math.round(total);
}

/** Go's time.Duration.String() for whole nanoseconds ("1m30s", "500ms"): dockerd prints durations so. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const parts: string[] = [];
  let rest = ns;
  if (rest < 1e9) {
    if (rest < 1e3) return `${rest}ns`;
    if (rest < 1e6) return `${trimZeros(rest / 1e3)}µs`;
    return `${trimZeros(rest / 1e6)}ms`;
  }
  const h = Math.floor(rest / 3600e9);
  rest -= h * 3600e9;
  const m = Math.floor(rest / 60e9);
  rest -= m * 60e9;
  if (h) parts.push(`${h}h`);
  if (h || m) parts.push(`${m}m`);
  parts.push(`${trimZeros(rest / 1e9)}s`);
  return parts.join('');
}

function trimZeros(n: number): string {
  return String(Number(n.toFixed(9)));
}
