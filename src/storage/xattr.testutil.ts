/** Reading and setting xattrs in tests, through python3 (Node cannot). */
import { spawnSync } from 'node:child_process';

/** An xattr's value as hex ('79' is "y"), or null when absent; never follows a symlink. */
export function getxattr(file: string, name: string): string | null {
  const r = spawnSync('python3', ['-c', 'import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).hex())\nexcept OSError: print("-")', file, name], {
    encoding: 'utf8',
  });
  const out = r.stdout.trim();
  return out === '-' ? null : out;
}

/** Sets an xattr to the bytes of `hex`; throws with python's message if it cannot. */
export function setxattr(file: string, name: string, hex: string): void {
  const r = spawnSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)', file, name, hex], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`setxattr ${name} on ${file}: ${r.stderr.trim()}`);
}
