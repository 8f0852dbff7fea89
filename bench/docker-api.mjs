// What bench/engine-api.mjs and bench/engine-api-ab.mjs share: HTTP to a Docker API socket, and
// one container cycle (create, wait, start, remove) timed per request.
import http from 'node:http';
import net from 'node:net';

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

/** Resolves with the socket once the daemon has answered a hijack (101 or 200) to `path`. */
function hijack(socketPath, path) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () =>
      socket.write(`POST ${path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`),
    );
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!/^HTTP\/1\.1 (101|200)/.test(head)) return reject(new Error(`attach: ${head.split('\r\n')[0]}`));
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

/**
 * The requests of `docker run --rm IMAGE true` (no CLI process): create with AutoRemove, then
 * the attach (hijacked) and wait (condition=removed) before the start, then the output to its
 * end and the wait's answer. In ms: the whole and each phase (attach: the attach and wait in
 * place; start: the start's answer; exit: from there to the wait's answer, i.e. exit and removal).
 */
export async function runCycle(socket, { image = 'busybox', hostConfig = {} } = {}) {
  const t0 = process.hrtime.bigint();
  const { Id } = await request(socket, 'POST', '/v1.44/containers/create', { Image: image, Cmd: ['true'], AttachStdout: true, AttachStderr: true, HostConfig: { NetworkMode: 'none', AutoRemove: true, ...hostConfig } });
  const create = elapsed(t0);
  const [attached] = await Promise.all([hijack(socket, `/v1.44/containers/${Id}/attach?stream=1&stdout=1&stderr=1`)]);
  const output = new Promise((resolve) => {
    attached.on('data', () => undefined);
    attached.on('close', resolve);
  });
  const waited = request(socket, 'POST', `/v1.44/containers/${Id}/wait?condition=removed`);
  const attach = elapsed(t0) - create;
  await request(socket, 'POST', `/v1.44/containers/${Id}/start`);
  const start = elapsed(t0) - create - attach;
  const [{ StatusCode }] = await Promise.all([waited, output]);
  if (StatusCode !== 0) throw new Error(`exit ${StatusCode}`);
  const total = elapsed(t0);
  return { total, create, attach, start, exit: total - create - attach - start };
}
