/**
 * Registry authentication: WWW-Authenticate parsing, Basic credentials, Bearer tokens from
 * the challenge's realm (scoped `repository:<name>:pull[,push]`, cached per scope set), and
 * credentials from a docker-style config file (`auths.<host>.auth` = base64 "user:pass").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { InvalidArgumentError, SystemError } from '../../common/errors.js';
import type { RegistryResponse } from './client.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * How to authenticate: explicit credentials, a docker config file to look the registry up in,
 * or 'anonymous'. Undefined means the default docker config file
 * (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) if it has an entry.
 */
export type RegistryAuth = Credentials | { configPath: string } | 'anonymous';

export interface Challenge {
  scheme: string; // lower case: "basic", "bearer"
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header value (possibly several challenges). */
export function parseWWWAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i])) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipWs();
    while (i < n && header[i] === ',') {
      i++;
      skipWs();
    }
    const scheme = token();
    if (!scheme) break;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    for (;;) {
      skipWs();
      const save = i;
      const name = token();
      skipWs();
      if (!name || header[i] !== '=') {
        i = save; // the next challenge's scheme (or token68, which we ignore)
        if (!name) {
          if (header[i] === ',') {
            i++;
            continue;
          }
          break;
        }
        // token68 or next scheme: a name not followed by '=' starts the next challenge
        break;
      }
      i++; // '='
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i++];
        }
        i++; // closing quote
      } else {
        value = token();
      }
      ch.params[name.toLowerCase()] = value;
      skipWs();
      if (header[i] === ',') i++;
      else break;
    }
  }
  return out;
}

/** `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`). */
export function defaultDockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

function normalizeAuthKey(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z]+:\/\//i, '');
  k = k.replace(/\/.*$/, '');
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = 'docker.io';
  return k.toLowerCase();
}

/**
 * Looks `registry` up in a docker config file's `auths`; returns undefined when the file or
 * the entry is absent. A malformed file or entry is an InvalidArgumentError naming it.
 */
export function credentialsFromDockerConfig(registry: string, configPath = defaultDockerConfigPath()): Credentials | undefined {
  let text: string;
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SystemError(`cannot read ${configPath}: ${(e as Error).message}`, { cause: e });
  }
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`not valid JSON: ${(e as Error).message}`, configPath);
  }
  const auths = (cfg as { auths?: unknown })?.auths;
  if (!auths || typeof auths !== 'object') return undefined;
  const want = normalizeAuthKey(registry);
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (normalizeAuthKey(key) !== want || !entry || typeof entry !== 'object') continue;
    const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
    if (typeof e.auth === 'string' && e.auth !== '') {
      const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new InvalidArgumentError('auth is not base64 of "user:password"', `${configPath}: auths.${key}.auth`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  }
  return undefined;
}

/** Resolves a RegistryAuth option to credentials for `registry` (or undefined: anonymous). */
export function resolveCredentials(registry: string, auth: RegistryAuth | undefined): Credentials | undefined {
  if (auth === 'anonymous') return undefined;
  if (auth === undefined) return credentialsFromDockerConfig(registry);
  if ('configPath' in auth) return credentialsFromDockerConfig(registry, auth.configPath);
  return auth;
}

export function basicAuthorization(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64');
}

/** `repository:<name>:pull` or `repository:<name>:pull,push`. */
export function repositoryScope(name: string, push = false): string {
  return `repository:${name}:${push ? 'pull,push' : 'pull'}`;
}

interface CachedToken {
  token: string;
  expires: number;
}

/** Fetches and caches Bearer tokens; one instance per registry endpoint. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  constructor(
    private readonly credentials: Credentials | undefined,
    private readonly fetchToken: (url: URL, headers: Record<string, string>) => Promise<RegistryResponse>,
  ) {}

  private key(realm: string, service: string, scopes: string[]): string {
    return JSON.stringify([realm, service, [...scopes].sort()]);
  }

  cached(challenge: Challenge, scopes: string[]): string | undefined {
    const k = this.key(challenge.params.realm ?? '', challenge.params.service ?? '', scopes);
    const t = this.tokens.get(k);
    return t && t.expires > Date.now() ? t.token : undefined;
  }

  invalidate(challenge: Challenge, scopes: string[]): void {
    this.tokens.delete(this.key(challenge.params.realm ?? '', challenge.params.service ?? '', scopes));
  }

  /** GET realm?service=..&scope=.. (Basic with credentials), as docker and skopeo do. */
  async get(challenge: Challenge, scopes: string[]): Promise<string> {
    const have = this.cached(challenge, scopes);
    if (have) return have;
    const realm = challenge.params.realm;
    if (!realm) throw new InvalidArgumentError('Bearer challenge without realm', 'WWW-Authenticate');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new InvalidArgumentError(`invalid realm ${JSON.stringify(realm)}`, 'WWW-Authenticate');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`realm is not http(s): ${realm}`, 'WWW-Authenticate');
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    // The challenge's own scope belongs to the request that got it: used only when the caller
    // names none (a later request for another repository must not ask for the first one's).
    const allScopes = new Set(scopes);
    if (allScopes.size === 0 && challenge.params.scope) for (const s of challenge.params.scope.split(' ')) if (s) allScopes.add(s);
    for (const s of allScopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credentials) headers.authorization = basicAuthorization(this.credentials);
    const res = await this.fetchToken(url, headers);
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      throw new InvalidArgumentError(`token server ${url.origin} refused the credentials (HTTP ${res.status}): ${text.slice(0, 200)}`, 'auth');
    }
    if (!res.ok) throw new SystemError(`token server ${url.origin} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text);
    } catch {
      throw new SystemError(`token server ${url.origin} answered with invalid JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new SystemError(`token server ${url.origin} answered without a token`);
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    // Renew 10 s early (or halfway for very short tokens).
    const margin = Math.min(10, expiresIn / 2);
    this.tokens.set(this.key(realm, challenge.params.service ?? '', scopes), { token, expires: Date.now() + (expiresIn - margin) * 1000 });
    return token;
  }
}
