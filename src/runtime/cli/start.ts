/** berth-oci start: run the user's program in a created container. */
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { positionals } = parseVerbArgs('start', args, {});
  await ctx.runtime.start(requireId('start', positionals));
  return 0;
};
export default main;
