/** berth-oci kill: send a signal (default SIGTERM) to the container's init, or to all its processes. */
import { parseSignal } from '../plan/tables.js';
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values, positionals } = parseVerbArgs('kill', args, { all: { type: 'boolean', short: 'a' } });
  const id = requireId('kill', positionals, 1);
  ctx.runtime.kill(id, parseSignal(positionals[1] ?? 'SIGTERM'), values.all ?? false);
  return 0;
};
export default main;
