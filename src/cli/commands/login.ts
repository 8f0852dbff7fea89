/**
 * login/logout and the registry credentials in docker's config.json
 * ($DOCKER_CONFIG/config.json, ~/.docker/config.json, or --config DIR): `auths` entries with
 * base64 `user:password`, sent on pull/push as the X-Registry-Auth header.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ApiError } from '../client.js';
import { type Ctx, type Define, ExitError, action } from '../context.js';

export const DEFAULT_REGISTRY = 'https://index.docker.io/v1/';

interface ConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  [k: string]: unknown;
}

function configPath(ctx: Ctx): string {
  const dir = ctx.configDir ?? ctx.io.env.DOCKER_CONFIG ?? path.join(ctx.io.env.HOME || os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

function readConfig(ctx: Ctx): ConfigFile {
  try {
    return JSON.parse(fs.readFileSync(configPath(ctx), 'utf8')) as ConfigFile;
  } catch {
    return {};
  }
}

function writeConfig(ctx: Ctx, cfg: ConfigFile): void {
  const p = configPath(ctx);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(cfg, null, '\t') + '\n', { mode: 0o600 });
  fs.renameSync(tmp, p);
}

/** The registry host of an image reference (docker.io's index for names without one). */
export function registryOf(ref: string): string {
  const first = ref.split('/')[0];
  if (ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first;
  return DEFAULT_REGISTRY;
}

const normalizeServer = (s: string): string => (['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(s.replace(/^https?:\/\//, '').replace(/\/.*$/, '')) ? DEFAULT_REGISTRY : s.replace(/^https?:\/\//, '').replace(/\/$/, ''));

/** config.json's `auth`: base64 "user:password". */
function decodeAuth(auth: string): { username: string; password: string } {
  const dec = Buffer.from(auth, 'base64').toString('utf8');
  const i = dec.indexOf(':');
  return { username: dec.slice(0, i), password: dec.slice(i + 1) };
}

/** URL-safe base64 JSON of the stored credentials for ref's registry, for X-Registry-Auth ({} if none). */
export function registryAuthHeader(ctx: Ctx, ref: string): string {
  const server = registryOf(ref);
  const entry = readConfig(ctx).auths?.[server] ?? readConfig(ctx).auths?.[`https://${server}`];
  let cred: Record<string, string> = {};
  if (entry?.auth) cred = { ...decodeAuth(entry.auth), serveraddress: server };
  if (entry?.identitytoken) cred.identitytoken = entry.identitytoken;
  // Go's base64.URLEncoding, padding included: dockerd 20.10 ignores the header without it.
  return Buffer.from(JSON.stringify(cred)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** X-Registry-Config for a build: base64 JSON of every stored credential, by registry (as the docker CLI sends it). */
export function registryConfigHeader(ctx: Ctx): string {
  const out: Record<string, { username: string; password: string; serveraddress: string }> = {};
  for (const [server, entry] of Object.entries(readConfig(ctx).auths ?? {})) {
    if (entry?.auth) out[server] = { ...decodeAuth(entry.auth), serveraddress: server };
  }
  return Buffer.from(JSON.stringify(out)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export const login: Define = (cmd, ctx, set) =>
  cmd
    .argument('[server]')
    .option('-u, --username <username>', 'Username')
    .option('-p, --password <password>', 'Password')
    .option('--password-stdin', 'Take the password from stdin')
    .action(
      action(set, async (serverArg: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
        const server = serverArg ? normalizeServer(serverArg) : DEFAULT_REGISTRY;
        let password = o.password;
        if (o.passwordStdin) {
          if (o.password) throw new ExitError(1, 'conflicting options: cannot specify both --password and --password-stdin');
          if (!o.username) throw new ExitError(1, 'Must provide --username with --password-stdin');
          password = await readStdin();
        }
        // Neither given: the stored credentials first, as the docker CLI tries them.
        const stored = readConfig(ctx).auths?.[server];
        if (!o.username && password === undefined && stored?.auth) {
          const { username, password: storedPassword } = decodeAuth(stored.auth);
          ctx.err(`Authenticating with existing credentials... [Username: ${username}]\n`);
          await ctx.client.post('/auth', undefined, { username, password: storedPassword, serveraddress: server });
          ctx.err(" Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n");
          ctx.out('Login Succeeded\n');
          return;
        }
        if (!o.username || password === undefined) throw new ExitError(1, 'Error: Cannot perform an interactive login from a non TTY device');
        if (o.password) ctx.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
        let token: string | undefined;
        try {
          const r = await ctx.client.post<{ Status?: string; IdentityToken?: string }>('/auth', undefined, { username: o.username, password, serveraddress: server });
          token = r?.IdentityToken || undefined;
        } catch (e) {
          // A daemon without /auth (404 for the path itself) cannot check: keep the credentials.
          if (!(e instanceof ApiError && e.status === 404 && /page not found/i.test(e.message))) throw e;
        }
        const cfg = readConfig(ctx);
        cfg.auths ??= {};
        cfg.auths[server] = token ? { auth: '', identitytoken: token } : { auth: Buffer.from(`${o.username}:${password}`).toString('base64') };
        writeConfig(ctx, cfg);
        // No credential helper here: the docker CLI's warning about the plain file.
        ctx.err(`WARNING! Your credentials are stored unencrypted in '${configPath(ctx)}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n`);
        ctx.out('Login Succeeded\n');
      }),
    );

export const logout: Define = (cmd, ctx, set) =>
  cmd.argument('[server]').action(
    action(set, async (serverArg: string | undefined) => {
      const server = serverArg ? normalizeServer(serverArg) : DEFAULT_REGISTRY;
      const cfg = readConfig(ctx);
      // The docker CLI (since 24) says so whether or not there were credentials.
      ctx.out(`Removing login credentials for ${server}\n`);
      if (!cfg.auths?.[server]) return;
      delete cfg.auths[server];
      writeConfig(ctx, cfg);
    }),
  );
