/** berth-oci ps: the container's processes; JSON prints the pids, table runs ps(1) filtered to them, as runc does. */
import { execFileSync } from 'node:child_process';

import { InvalidArgumentError } from '../../common/errors.js';
import { parseVerbArgs, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values, positionals } = parseVerbArgs('ps', args, { format: { type: 'string', short: 'f', default: 'table' } });
  const [id, ...psArgs] = positionals;
  if (!id) throw new InvalidArgumentError('ps requires a container id', 'container-id');
  const pids = ctx.runtime.ps(id);
  if (values.format === 'json') {
    ctx.out(JSON.stringify(pids) + '\n');
    return 0;
  }
  if (values.format !== 'table') throw new InvalidArgumentError(`invalid format ${JSON.stringify(values.format)}: table or json`, '--format');
  const output = execFileSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' });
  const lines = output.split('\n');
  const pidColumn = lines[0].trim().split(/\s+/).indexOf('PID');
  if (pidColumn < 0) throw new InvalidArgumentError('ps output has no PID column');
  ctx.out(lines[0] + '\n');
  const wanted = new Set(pids.map(String));
  for (const line of lines.slice(1)) if (wanted.has(line.trim().split(/\s+/)[pidColumn])) ctx.out(line + '\n');
  return 0;
};
export default main;
