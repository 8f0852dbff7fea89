/**
 * `--user` / the image's User → uid, gid and supplementary groups, looked up in the container's
 * own /etc/passwd and /etc/group as Docker does (moby/sys/user GetExecUser): names must exist,
 * numbers need not; the primary group is the passwd entry's unless a group is given; the
 * supplementary groups are those listing the user by name, plus HostConfig.GroupAdd.
 */
import { InvalidArgumentError } from '../../common/errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMBER = /^\d+$/;
/** dockerd's (runc's user package's) bound: 2^31 - 1. */
const MAX_ID = 2 ** 31 - 1;

function parseId(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > MAX_ID) throw new InvalidArgumentError(`uids and gids must be in range 0-${MAX_ID}`); // dockerd's words
  return n;
}

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(':');
    if (f.length < 4 || f[0]!.startsWith('#') || !NUMBER.test(f[2]!) || !NUMBER.test(f[3]!)) continue;
    entries.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' });
  }
  return entries;
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(':');
    if (f.length < 3 || f[0]!.startsWith('#') || !NUMBER.test(f[2]!)) continue;
    entries.push({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return entries;
}

/**
 * `user` is "", "name", "uid", "name:group", "uid:gid" (any mix). `passwd`/`group` are the
 * files' contents, undefined when the image has none.
 */
export function resolveUser(user: string | undefined, passwd: string | undefined, group: string | undefined, groupAdd: string[] = []): ResolvedUser {
  const spec = user ?? '';
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);

  let entry: PasswdEntry | undefined;
  let uid: number;
  if (userPart === '') {
    uid = 0;
    entry = users.find((u) => u.uid === 0);
  } else if (NUMBER.test(userPart)) {
    uid = parseId(userPart, 'uid');
    entry = users.find((u) => u.uid === uid);
  } else {
    entry = users.find((u) => u.name === userPart);
    if (!entry) throw new InvalidArgumentError(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }

  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMBER.test(groupPart)) gid = parseId(groupPart, 'gid');
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new InvalidArgumentError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }

  const additional: number[] = [];
  // With an explicit group, Docker (like su) does not add the user's other groups.
  if (entry && (groupPart === undefined || groupPart === '')) {
    for (const g of groups) if (g.members.includes(entry.name) && g.gid !== gid) additional.push(g.gid);
  }
  for (const extra of groupAdd) {
    if (NUMBER.test(extra)) additional.push(parseId(extra, 'gid'));
    else {
      const g = groups.find((x) => x.name === extra);
      if (!g) throw new InvalidArgumentError(`Unable to find group ${extra}: no matching entries in group file`); // dockerd's words
      additional.push(g.gid);
    }
  }
  return { uid, gid, additionalGids: [...new Set(additional)], home: entry?.home || '/' };
}
