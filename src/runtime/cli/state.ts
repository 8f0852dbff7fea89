/** berth-oci state: the container's state as the runtime spec defines it, as JSON. */
import { parseVerbArgs, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { positionals } = parseVerbArgs('state', args, {});
  const record = ctx.runtime.store.load(requireId('state', positionals));
  const state = ctx.runtime.state(record.id);
  // runc adds these fields; engines (containerd's go-runc) read "created" and "rootfs".
  const out = { ...state, rootfs: record.rootfs, created: record.created, owner: record.owner };
  ctx.out(JSON.stringify(out, null, 2) + '\n');
  return 0;
};
export default main;
