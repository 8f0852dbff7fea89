/**
 * The entry of the CLIs: bin/berth and bin/berth-oci run `node dist/boot.cjs BUNDLE ARGS...`,
 * which runs BUNDLE with its code cache (code-cache.ts) as `node BUNDLE ARGS...` would run it.
 * A separate, tiny CommonJS file: what it loads is compiled through the cache, it is not.
 */
import path from 'node:path';

import { loadWithCodeCache } from './code-cache.js';

const bundle = path.resolve(process.argv[2]);
process.argv.splice(1, 2, bundle); // the bundle sees process.argv as under `node BUNDLE ARGS...`
loadWithCodeCache(bundle);
