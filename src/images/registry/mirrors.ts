/**
 * Registry mirrors for Docker Hub (dockerd's --registry-mirror, daemon.json registry-mirrors): a
 * pull of a docker.io image asks each mirror in turn, then Docker Hub itself, the repository path
 * unchanged ("library/busybox"). Pushes never go to a mirror. A mirror named with http:// is
 * reached over plain HTTP, as dockerd does. Pure.
 */
import { InvalidArgumentError } from '../../common/errors.js';

export interface Mirror {
  /** As given, normalized: "https://mirror.example:5000/" (what `docker info` lists). */
  url: string;
  /** host[:port], the API endpoint. */
  host: string;
  /** false: plain HTTP. */
  secure: boolean;
}

/** Checks a mirror as dockerd's ValidateMirror does, in its words. */
export function parseMirror(text: string): Mirror {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`invalid mirror: ${JSON.stringify(text)} is not a valid URI`, 'registry-mirrors');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`invalid mirror: unsupported scheme ${JSON.stringify(url.protocol.replace(/:$/, ''))} in ${JSON.stringify(text)}`, 'registry-mirrors');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) throw new InvalidArgumentError(`invalid mirror: path, query, or fragment at end of the URI ${JSON.stringify(text)}`, 'registry-mirrors');
  if (url.username || url.password) throw new InvalidArgumentError(`invalid mirror: credentials in the URI ${JSON.stringify(text)} (use docker login)`, 'registry-mirrors');
  return { url: `${url.protocol}//${url.host}/`, host: url.host, secure: url.protocol === 'https:' };
}

/**
 * Runs `attempt` against each mirror, then without one (Docker Hub), until one succeeds; the last
 * failure is what is thrown. `skipped` hears of each mirror that failed (for the log).
 */
export async function throughMirrors<T>(mirrors: readonly Mirror[], attempt: (mirror: Mirror | undefined) => Promise<T>, skipped?: (mirror: Mirror, err: unknown) => void): Promise<T> {
  for (const mirror of mirrors) {
    try {
      return await attempt(mirror);
    } catch (err) {
      skipped?.(mirror, err);
    }
  }
  return attempt(undefined);
}
