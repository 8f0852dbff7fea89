/** berth-oci spec: write a default config.json into the bundle (refuses to overwrite one). */
import fs from 'node:fs';
import path from 'node:path';

import { ConflictError } from '../../common/errors.js';
import { defaultSpec } from '../spec/defaults.js';
import { parseVerbArgs, type VerbMain } from './context.js';

const main: VerbMain = async (args, ctx) => {
  const { values } = parseVerbArgs('spec', args, { bundle: { type: 'string', short: 'b', default: '.' }, rootless: { type: 'boolean' } });
  const file = path.join(ctx.path(values.bundle), 'config.json');
  if (fs.existsSync(file)) throw new ConflictError(`File ${file} exists. Remove it first`);
  fs.writeFileSync(file, JSON.stringify(defaultSpec({ rootless: values.rootless }), null, '\t') + '\n', { flag: 'wx' });
  return 0;
};
export default main;
