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
