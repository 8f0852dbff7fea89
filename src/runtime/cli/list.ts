/** berth-oci list: the containers under --root, as a table or JSON. */
import { InvalidArgumentError } from '../../common/errors.js';
import { parseVerbArgs, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values } = parseVerbArgs('list', args, {
    format: { type: 'string', short: 'f', default: 'table' },
    quiet: { type: 'boolean', short: 'q' },
  });
  const entries = ctx.runtime.list();
  if (values.quiet) {
    for (const e of entries) ctx.out(e.id + '\n');
  } else if (values.format === 'json') {
    ctx.out(JSON.stringify(entries.map((e) => ({ ociVersion: e.ociVersion, id: e.id, pid: e.pid ?? 0, status: e.status, bundle: e.bundle, rootfs: ctx.runtime.store.load(e.id).rootfs, created: e.created, owner: e.owner }))) + '\n');
  } else if (values.format === 'table') {
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...entries.map((e) => [e.id, String(e.pid ?? 0), e.status, e.bundle, e.created, e.owner])];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) ctx.out(r.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd() + '\n');
  } else {
    throw new InvalidArgumentError(`invalid format ${JSON.stringify(values.format)}: table or json`, '--format');
  }
  return 0;
};
export default main;
