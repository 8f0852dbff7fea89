/** Where Berth's own files are: the package root and the native binaries built by `npm run build`. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this module with package.json (works bundled or not). */
function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export const PACKAGE_ROOT = findPackageRoot();

export function nativeBinary(name: string): string {
  return path.join(process.env.BERTH_NATIVE_DIR ?? path.join(PACKAGE_ROOT, 'native', 'build'), name);
}
