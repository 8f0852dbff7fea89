/** berth-oci pause: freeze every process of the container (cgroup freezer). */
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { positionals } = parseVerbArgs('pause', args, {});
  ctx.runtime.pause(requireId('pause', positionals));
  return 0;
};
export default main;
