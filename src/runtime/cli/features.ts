/** berth-oci features: what this runtime supports, per the runtime spec's features.md. */
import { runtimeFeatures } from '../spec/features.js';
import { parseVerbArgs, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  parseVerbArgs('features', args, {});
  ctx.out(JSON.stringify(runtimeFeatures(), null, 2) + '\n');
  return 0;
};
export default main;
