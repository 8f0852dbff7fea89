/** berth-oci create: set the container up; its process waits for `start`. */
import { exitStatus } from '../runtime.js';
import { parseCount, parseVerbArgs, preservedFds, requireId, type VerbMain } from './context.js';

export const createOptions = {
  bundle: { type: 'string', short: 'b', default: '.' },
  'console-socket': { type: 'string' },
  'pid-file': { type: 'string' },
  'no-pivot': { type: 'boolean' },
  'no-new-keyring': { type: 'boolean' },
  'preserve-fds': { type: 'string' },
} as const;

const main: VerbMain = async (args, ctx) => {
  const { values, positionals } = parseVerbArgs('create', args, createOptions);
  const id = requireId('create', positionals);
  await ctx.runtime.create(id, {
    bundle: ctx.path(values.bundle),
    consoleSocket: ctx.path(values['console-socket']),
    pidFile: ctx.path(values['pid-file']),
    noPivot: values['no-pivot'],
    preserveFds: preservedFds(parseCount(values['preserve-fds'], '--preserve-fds')),
  });
  return 0;
};
export default main;
export { exitStatus };
