import { InvalidArgumentError } from '../../common/errors.js';
import { parseSignal as parseSignalName } from '../../runtime/plan/tables.js';

/**
 * Signal names and numbers as Docker's `kill -s` and StopSignal take them ("KILL", "SIGKILL", "9",
 * "RTMIN+3"), refused in dockerd's words ("Invalid signal: BOGUS").
 */
export function parseSignal(signal: string | number | undefined, fallback = 'SIGKILL'): number {
  const text = String(signal ?? '').trim() || fallback;
  try {
    return parseSignalName(text);
  } catch {
    throw new InvalidArgumentError(`Invalid signal: ${text}`);
  }
}

/**
 * A signal for `docker kill`, as dockerd's ContainerKill checks it: a name or number parseSignal
 * takes; a number it does not know is "not supported", a bad name (or 0) invalid.
 */
export function parseKillSignal(signal: string | undefined): number {
  const text = String(signal ?? '').trim();
  if (/^\d+$/.test(text) && Number(text) !== 0) {
    try {
      return parseSignal(text);
    } catch {
      throw new InvalidArgumentError(`the linux daemon does not support signal ${Number(text)}`);
    }
  }
  return parseSignal(text, 'SIGKILL');
}

