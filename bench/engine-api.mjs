#!/usr/bin/env node
// Times the Docker API's create + start + wait + remove of `busybox true` against any
// Docker-compatible socket (berthd, dockerd, podman system service): no CLI process, just HTTP
// over the unix socket, as an SDK would. Prints the median and quartiles in milliseconds.
//
//   node bench/engine-api.mjs SOCKET [RUNS] [IMAGE]
// HOSTCONFIG='{"Ulimits":[...]}' adds to the HostConfig (podman needs rlimits it can set here).
import http from 'node:http';

const [socketPath, runsArg = '30', image = 'busybox'] = process.argv.slice(2);
if (!socketPath) {
  console.error('usage: engine-api.mjs SOCKET [RUNS] [IMAGE]');
  process.exit(2);
}

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
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

async function once() {
  const t0 = process.hrtime.bigint();
  const { Id } = await request('POST', '/v1.41/containers/create', { Image: image, Cmd: ['true'], HostConfig: { NetworkMode: 'none', ...JSON.parse(process.env.HOSTCONFIG ?? '{}') } });
  const waited = request('POST', `/v1.41/containers/${Id}/wait?condition=next-exit`);
  await request('POST', `/v1.41/containers/${Id}/start`);
  const { StatusCode } = await waited;
  if (StatusCode !== 0) throw new Error(`exit ${StatusCode}`);
  await request('DELETE', `/v1.41/containers/${Id}?force=1`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const runs = Number(runsArg);
await once(); // warm up: image layers, caches
const times = [];
for (let i = 0; i < runs; i++) times.push(await once());
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(JSON.stringify({ socket: socketPath, runs, median: +q(0.5).toFixed(1), p25: +q(0.25).toFixed(1), p75: +q(0.75).toFixed(1) }));
