#!/usr/bin/env node
// Times the Docker API's create + start + wait + remove of `busybox true` against any
// Docker-compatible socket (berthd, dockerd, podman system service): no CLI process, just HTTP
// over the unix socket, as an SDK would. Prints the median and quartiles in milliseconds.
//
//   node bench/engine-api.mjs SOCKET [RUNS] [IMAGE]
// HOSTCONFIG='{"Ulimits":[...]}' adds to the HostConfig (podman needs rlimits it can set here).
import { containerCycle } from './docker-api.mjs';

const [socketPath, runsArg = '30', image = 'busybox'] = process.argv.slice(2);
if (!socketPath) {
  console.error('usage: engine-api.mjs SOCKET [RUNS] [IMAGE]');
  process.exit(2);
}
const once = async () => (await containerCycle(socketPath, { image, hostConfig: JSON.parse(process.env.HOSTCONFIG ?? '{}') })).total;

const runs = Number(runsArg);
await once(); // warm up: image layers, caches
const times = [];
for (let i = 0; i < runs; i++) times.push(await once());
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(JSON.stringify({ socket: socketPath, runs, median: +q(0.5).toFixed(1), p25: +q(0.25).toFixed(1), p75: +q(0.75).toFixed(1) }));
