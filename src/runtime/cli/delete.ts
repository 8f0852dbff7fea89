/** berth-oci delete: remove a stopped container (with --force, kill it first). */
import { NotFoundError } from '../../common/errors.js';
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values, positionals } = parseVerbArgs('delete', args, { force: { type: 'boolean', short: 'f' } });
  const id = requireId('delete', positionals);
  try {
    await ctx.runtime.delete(id, values.force ?? false);
  } catch (err) {
    // runc: deleting a missing container with --force is not an error.
    if (err instanceof NotFoundError && values.force) return 0;
    throw err;
  }
  return 0;
};
export default main;
