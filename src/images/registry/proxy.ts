/**
 * HTTP proxies for registry requests, from the environment as dockerd takes them (Go's
 * httpproxy): HTTPS_PROXY for https URLs, HTTP_PROXY for http ones (upper case first, then lower),
 * NO_PROXY for the exceptions. Plain http goes to the proxy in absolute form; https goes through
 * a CONNECT tunnel, TLS end to end with the registry. Only http:// proxies.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { basicAuthorization } from './auth.js';

export type ProxyEnv = Record<string, string | undefined>;

function envAny(env: ProxyEnv, ...names: string[]): string {
  for (const n of names) if (env[n]) return env[n]!.trim();
  return '';
}

/** The proxy for `url`, or undefined for none. Loopback and localhost never go through one (as Go). */
export function proxyFor(url: URL, env: ProxyEnv): URL | undefined {
  const setting = url.protocol === 'https:' ? envAny(env, 'HTTPS_PROXY', 'https_proxy') : envAny(env, 'HTTP_PROXY', 'http_proxy');
  if (!setting) return undefined;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost' || isLoopback(host)) return undefined;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (excluded(host, port, envAny(env, 'NO_PROXY', 'no_proxy'))) return undefined;
  let proxy: URL;
  try {
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(setting) ? setting : `http://${setting}`);
  } catch {
    throw new InvalidArgumentError(`invalid proxy address ${JSON.stringify(setting)}`, url.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY');
  }
  if (proxy.protocol !== 'http:') throw new UnsupportedError(`proxy ${proxy.protocol}//${proxy.host}: only http:// proxies are supported`);
  return proxy;
}

function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1';
  return false;
}

/** Whether `ip` (v4 or v6) is inside `cidr` ("10.0.0.0/8", "fd00::/8"); false for anything else. */
export function ipInCidr(ip: string, cidr: string): boolean {
  const [net0, bits, extra] = cidr.split('/');
  const family = net.isIPv4(net0!) ? 'ipv4' : net.isIPv6(net0!) ? 'ipv6' : undefined;
  if (!family || extra !== undefined || !/^\d{1,3}$/.test(bits ?? '') || net.isIP(ip) !== (family === 'ipv4' ? 4 : 6)) return false;
  const list = new net.BlockList();
  try {
    list.addSubnet(net0!, Number(bits), family);
  } catch {
    return false; // a prefix too long for the family
  }
  return list.check(ip, family);
}

/** NO_PROXY: "*", hosts and domains (".example.com" or "example.com": it and its subdomains), IPs and CIDRs, each with an optional ":port". */
function excluded(host: string, port: string, noProxy: string): boolean {
  for (let entry of noProxy.toLowerCase().split(',')) {
    entry = entry.trim();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (ipInCidr(host, entry)) return true;
      continue;
    }
    // An optional port: "host:port", "[v6]:port"; a bare IPv6 address has colons of its own.
    let entryHost = entry;
    let entryPort = '';
    const m = /^\[(.*)\](?::(\d+))?$/.exec(entry) ?? (net.isIPv6(entry) ? null : /^(.*?)(?::(\d+))?$/.exec(entry));
    if (m) {
      entryHost = m[1]!;
      entryPort = m[2] ?? '';
    }
    if (entryPort && entryPort !== port) continue;
    if (net.isIP(entryHost)) {
      if (entryHost === host) return true;
      continue;
    }
    const domain = entryHost.replace(/^\*?\./, '');
    if (host === domain || host.endsWith('.' + domain)) return true;
  }
  return false;
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  return { 'proxy-authorization': basicAuthorization({ username: decodeURIComponent(proxy.username), password: decodeURIComponent(proxy.password) }) };
}

/**
 * What http(s).request takes to send a request for `url` through `proxy`: for http, the proxy's
 * address with the URL as the request target (through the usual keep-alive agent); for https, a
 * TunnelAgent, whose connections are CONNECT tunnels with TLS over them (with `tlsOptions`: the
 * registry's CAs and client certificate), kept alive and reused as the usual agent's are.
 */
export function throughProxy(url: URL, proxy: URL, tunnel: () => TunnelAgent): { target: URL; options: http.RequestOptions } {
  if (url.protocol === 'http:') {
    return { target: proxy, options: { path: url.href, setHost: false, headers: { host: url.host, ...proxyAuthorization(proxy) } } };
  }
  return { target: url, options: { agent: tunnel() } };
}

/** An https agent for one registry host through one proxy (see throughProxy). */
export class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly tlsOptions: tls.ConnectionOptions,
    private readonly timeoutMs: number,
  ) {
    super({ keepAlive: true, timeout: 5000, scheduling: 'lifo' });
  }

  /** Node's Agent takes a connection made later, through the callback (it always passes one). */
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const done = (callback ?? (() => {})) as (err: Error | null, stream?: Duplex) => void; // no stream with an error
    const host = options.host ?? '';
    const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${options.port ?? 443}`;
    const proxy = this.proxy;
    const connect = http.request({
      host: proxy.hostname,
      port: proxy.port || 80,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...proxyAuthorization(proxy) },
      agent: false,
    });
    connect.setTimeout(this.timeoutMs, () => connect.destroy(new Error(`proxy ${proxy.host}: no answer to CONNECT ${authority} within ${this.timeoutMs} ms`)));
    connect.once('connect', (res, socket) => {
      connect.setTimeout(0);
      if (res.statusCode !== 200) {
        socket.destroy();
        done(new Error(`proxy ${proxy.host} refused CONNECT ${authority}: HTTP ${res.statusCode}`));
        return;
      }
      done(null, tls.connect({ ...this.tlsOptions, socket, servername: net.isIP(host) ? undefined : host }));
    });
    connect.once('error', (e) => done(e));
    connect.end();
    return undefined;
  }
}
