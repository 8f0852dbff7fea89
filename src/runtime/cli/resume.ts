/** berth-oci resume: thaw a paused container. */
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { positionals } = parseVerbArgs('resume', args, {});
  ctx.runtime.resume(requireId('resume', positionals));
  return 0;
};
export default main;
