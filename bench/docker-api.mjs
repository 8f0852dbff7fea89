// What bench/engine-api.mjs and bench/engine-api-ab.mjs share: HTTP to a Docker API socket, and
// one container cycle (create, wait, start, remove) timed per request.
import http from 'node:http';

/** One request; resolves with the parsed JSON answer (undefined for none), rejects on >= 400. */
export function request(socketPath, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {};
    const req = http.request({ socketPath, method, path, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 400) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(text ? JSON.parse(text) : undefined);
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

const elapsed = (from) => Number(process.hrtime.bigint() - from) / 1e6;

/**
 * create + wait (condition=next-exit, sent before the start, as `docker run` does) + start +
 * remove of IMAGE running `true`, in ms: the whole cycle and each phase as the client sees it
 * (wait: from the start's answer to the exit's).
 */
export async function containerCycle(socket, { image = 'busybox', hostConfig = {} } = {}) {
  const t0 = process.hrtime.bigint();
  const { Id } = await request(socket, 'POST', '/v1.41/containers/create', { Image: image, Cmd: ['true'], HostConfig: { NetworkMode: 'none', ...hostConfig } });
  const create = elapsed(t0);
  const waited = request(socket, 'POST', `/v1.41/containers/${Id}/wait?condition=next-exit`);
  await request(socket, 'POST', `/v1.41/containers/${Id}/start`);
  const start = elapsed(t0) - create;
  const { StatusCode } = await waited;
  const wait = elapsed(t0) - create - start;
  if (StatusCode !== 0) throw new Error(`exit ${StatusCode}`);
  await request(socket, 'DELETE', `/v1.41/containers/${Id}?force=1`);
  const total = elapsed(t0);
  return { total, create, start, wait, remove: total - create - start - wait };
}
