/**
 * `ADD <url>`: the legacy builder's remote source. The daemon GETs the URL (redirects followed,
 * as Go's client follows them, 10 at most) into a directory of the build's own; the file is
 * named by the URL's last path segment, else by the answer's Content-Disposition, has mode
 * 0600 and the answer's Last-Modified as its time (else the epoch), and is never extracted,
 * as dockerd's downloadSource does it. Node's http(s) because the registry client uses it too
 * and a download is one GET; the bytes go straight to the file.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

import { InvalidArgumentError, SystemError } from '../../common/errors.js';
import { netErrorText } from '../../common/net-errors.js';

const MAX_REDIRECTS = 10;

/** Whether an ADD source is a URL the legacy builder downloads. */
export function isRemoteSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * The name a downloaded file gets (moby's getFilenameForDownload): the last segment of the URL's
 * path as given (not of a redirect's), unless that path ends with "/"; else Content-Disposition's
 * filename; else none.
 */
export function downloadName(url: URL, contentDisposition: string | undefined): string {
  if (url.pathname !== '' && !url.pathname.endsWith('/')) {
    let decoded = url.pathname;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      /* a malformed escape: the name as written */
    }
    const last = path.posix.basename(decoded);
    if (last !== '') return last;
  }
  const m = /(?:^|;)\s*filename\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentDisposition ?? '');
  const given = m ? (m[1] ?? m[2] ?? '') : '';
  return given !== '' && !given.endsWith('/') ? path.posix.basename(given) : '';
}

function get(url: URL, redirects: number, signal: AbortSignal | undefined): Promise<{ res: http.IncomingMessage; url: URL }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).get(url, { signal, headers: { 'user-agent': 'berthd' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) return reject(new InvalidArgumentError(`Get ${JSON.stringify(url.href)}: stopped after ${MAX_REDIRECTS} redirects`));
        let next: URL;
        try {
          next = new URL(res.headers.location, url);
        } catch {
          return reject(new InvalidArgumentError(`Get ${JSON.stringify(url.href)}: bad redirect ${JSON.stringify(res.headers.location)}`));
        }
        if (!isRemoteSource(next.href)) return reject(new InvalidArgumentError(`Get ${JSON.stringify(url.href)}: redirect to a non-HTTP URL ${JSON.stringify(next.href)}`));
        return get(next, redirects + 1, signal).then(resolve, reject);
      }
      resolve({ res, url });
    });
    request.on('error', (e) => reject(new SystemError(`Get ${JSON.stringify(url.href)}: ${netErrorText(e, url)}`, { cause: e })));
  });
}

/** Downloads `source` into `dir` (made here); where the file is and its name. */
export async function downloadSource(source: string, dir: string, signal?: AbortSignal): Promise<{ file: string; name: string }> {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new InvalidArgumentError(`invalid URL ${JSON.stringify(source)}`);
  }
  const { res } = await get(url, 0, signal);
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    let body = '';
    for await (const chunk of res) if (body.length < 512) body += (chunk as Buffer).toString('utf8');
    throw new InvalidArgumentError(`failed to GET ${source} with status ${status} ${res.statusMessage ?? ''}: ${body.slice(0, 512).trim()}`);
  }
  const name = downloadName(url, res.headers['content-disposition']);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The name cannot leave dir: it is one path segment, and neither "." nor "..".
  const file = path.join(dir, name === '' || name === '.' || name === '..' || name.includes('/') ? 'download' : name);
  try {
    await pipeline(res, fs.createWriteStream(file, { mode: 0o600, flags: 'wx' }));
  } catch (e) {
    throw new SystemError(`Get ${JSON.stringify(source)}: ${netErrorText(e, url)}`, { cause: e });
  }
  fs.chmodSync(file, 0o600);
  const modified = res.headers['last-modified'] ? new Date(res.headers['last-modified']) : new Date(0);
  const time = Number.isNaN(modified.getTime()) ? new Date(0) : modified;
  fs.utimesSync(file, time, time);
  return { file, name };
}
