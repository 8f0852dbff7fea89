/**
 * The host's user and group names by id, from /etc/passwd and /etc/group, as Go's archive/tar
 * puts them in the headers dockerd writes (`docker cp` from a container shows root/root).
 * Read once per process: the host's accounts do not change under a daemon in a way that matters
 * for a tar header's informational names.
 */
import fs from 'node:fs';

let users: Map<number, string> | undefined;
let groups: Map<number, string> | undefined;

/** name:x:id:… lines → id → the first name with it. */
export function parseIdNames(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (!name || id === undefined || !/^\d+$/.test(id)) continue;
    if (!names.has(Number(id))) names.set(Number(id), name);
  }
  return names;
}

function read(file: string): Map<number, string> {
  try {
    return parseIdNames(fs.readFileSync(file, 'utf8'));
  } catch {
    return new Map();
  }
}

/** The host's names for a file's owner (empty where the host has none). */
export function hostNames(uid: number, gid: number): { uname: string; gname: string } {
  users ??= read('/etc/passwd');
  groups ??= read('/etc/group');
  return { uname: users.get(uid) ?? '', gname: groups.get(gid) ?? '' };
}
