/** berth-oci run: create + start; without --detach, wait and exit with the container's status, then delete it. */
import { exitStatus } from '../runtime.js';
import { createOptions } from './create.js';
import { parseCount, parseVerbArgs, preservedFds, requireId, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values, positionals } = parseVerbArgs('run', args, {
    ...createOptions,
    detach: { type: 'boolean', short: 'd' },
    keep: { type: 'boolean' },
  });
  const id = requireId('run', positionals);
  const detach = values.detach ?? false;
  const launched = await ctx.runtime.create(id, {
    bundle: ctx.path(values.bundle),
    consoleSocket: ctx.path(values['console-socket']),
    pidFile: ctx.path(values['pid-file']),
    noPivot: values['no-pivot'],
    preserveFds: preservedFds(parseCount(values['preserve-fds'], '--preserve-fds')),
    foreground: !detach,
  });
  try {
    await ctx.runtime.start(id);
  } catch (err) {
    await ctx.runtime.delete(id, true);
    throw err;
  }
  if (detach) return 0;
  ctx.forwardSignals(launched.pid); // as runc run does
  const status = await exitStatus(launched.stage0);
  if (!values.keep) await ctx.runtime.delete(id, true);
  return status;
};
export default main;
