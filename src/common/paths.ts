/** Where Berth's own files are: the package root and the native binaries built by `npm run build`. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (this file is dist/src/common/paths.js once compiled). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function nativeBinary(name: string): string {
  return path.join(process.env.BERTH_NATIVE_DIR ?? path.join(PACKAGE_ROOT, 'native', 'build'), name);
}
