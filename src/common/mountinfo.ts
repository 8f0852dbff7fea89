/** /proc/<pid>/mountinfo, parsed: shared by the cgroup layout detection and mount cleanup. */
import fs from 'node:fs';

export interface MountinfoEntry {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
  /** The optional fields: "shared:N", "master:N", "propagate_from:N", "unbindable". */
  optionalFields: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountinfoEntry[] {
  const entries: MountinfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [before, after] = line.split(' - ');
    if (after === undefined) continue;
    const fields = before.split(' ');
    const [fsType, , superOptions = ''] = after.split(' ');
    if (fields.length < 5) continue;
    entries.push({
      root: unescapeMountField(fields[3]),
      mountPoint: unescapeMountField(fields[4]),
      fsType,
      superOptions: superOptions.split(','),
      optionalFields: fields.slice(6).filter(Boolean),
    });
  }
  return entries;
}

/** Mount points at or below dir in this process's mount namespace, deepest first (the order to unmount them). */
export function mountPointsUnder(dir: string): string[] {
  return mountPointsIn(fs.readFileSync('/proc/self/mountinfo', 'utf8'), dir);
}

/** As mountPointsUnder, in a mountinfo text. */
export function mountPointsIn(mountinfo: string, dir: string): string[] {
  // Most calls find nothing: skip the parse when the path, as mountinfo writes it, is not there
  // (with many containers running the text holds a long overlay line for each).
  if (!mountinfo.includes(dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`))) return [];
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  return parseMountinfo(mountinfo)
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}
