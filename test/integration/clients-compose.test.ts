/**
 * docker-compose (Debian's docker-compose 1.29, which talks to the engine through docker-py at
 * API 1.41) drives berthd through a small project: a web server with a named volume, a client
 * that reaches it by its service name on the project's network, and a service built from a
 * Dockerfile with a published port and a health check. up, ps, logs, exec, run --rm, recreate,
 * scale, stop/start and down -v --rmi local; afterwards nothing of the project may be left:
 * no container, network, volume, built image or mount.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cmd, dockerdSkip, poll, which } from '../helpers/engines.js';

const COMPOSE = which('/usr/bin/docker-compose', 'docker-compose');

function composeMissing(): string | false {
  if (COMPOSE) return false;
  // CI installs it (.ci/run): there a missing docker-compose is a failure, not a skip.
  if (process.env.CI) return false;
  return 'needs docker-compose (apt-get install docker-compose)';
}

const skip = dockerdSkip || composeMissing();
const TAG = process.pid % 200;
const PROJECT = `bc${process.pid}`;
const SUBNET = `10.224.${TAG}.0/24`;
const BRIDGE = `bcmp${process.pid % 100000}`;

/**
 * The project. Every service stops at once (stop_grace_period): busybox's httpd and sh as PID 1
 * ignore SIGTERM, and compose would otherwise wait its 10 s per container, as with dockerd.
 */
function composeFile(port: number): string {
  return `version: "3.8"
services:
  web:
    image: web:latest
    volumes:
      - data:/data
    labels:
      role: server
    stop_grace_period: 1s
  client:
    image: busybox:latest
    depends_on: [web]
    command: ["sh", "-c", "for i in $$(seq 1 40); do wget -q -O - http://web/ && break; sleep 0.25; done; echo client-done; exec sleep 1000"]
    environment:
      GREETING: hello from compose
    stop_grace_period: 1s
  site:
    build: ./app
    ports:
      - "127.0.0.1:${port}:80"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 10
    stop_grace_period: 1s
volumes:
  data: {}
networks:
  default:
    ipam:
      config:
        - subnet: ${SUBNET}
`;
}

const DOCKERFILE = `FROM busybox:latest
RUN mkdir -p /www && echo built by compose > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
`;

describe('docker-compose against berthd', { skip }, () => {
  let d: PrivateBerthd;
  let project: string;
  let port: number;

  /** docker-compose in the project's directory; fails the test with its output if it fails. */
  const compose = (args: string[], timeoutMs = 120_000): string => {
    const r = spawnSync(COMPOSE!, ['--ansi', 'never', '-p', PROJECT, ...args], { cwd: project, env: { ...d.env, COMPOSE_HTTP_TIMEOUT: '60' }, encoding: 'utf8', timeout: timeoutMs });
    assert.equal(r.status, 0, `docker-compose ${args.join(' ')} (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${r.stdout}\n${r.stderr}\n${d.logTail()}`);
    return r.stdout + r.stderr;
  };
  const projectContainers = (): string[] =>
    d
      .dockerOk(['ps', '-a', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--format', '{{.Names}}'])
      .split('\n')
      .filter(Boolean)
      .sort();
  const exec = (service: string, script: string): string => compose(['exec', '-T', service, 'sh', '-c', script]).trim();

  before(async () => {
    d = await startBerthd({ prefix: 'berthd-compose-', bridge: { name: BRIDGE, cidr: `10.223.${TAG}.1/24` } });
    d.loadImages('busybox', 'web');
    project = path.join(d.dir, 'project');
    fs.mkdirSync(path.join(project, 'app'), { recursive: true });
    port = 20000 + (process.pid % 20000);
    fs.writeFileSync(path.join(project, 'docker-compose.yml'), composeFile(port));
    fs.writeFileSync(path.join(project, 'app', 'Dockerfile'), DOCKERFILE);
  });
  after(async () => {
    if (d && project && fs.existsSync(project)) spawnSync(COMPOSE!, ['--ansi', 'never', '-p', PROJECT, 'down', '-v', '--rmi', 'local', '-t', '1'], { cwd: project, env: d.env, timeout: 60_000 });
    await d?.stop();
  });

  it('up -d --build: builds the image, makes the network and the volume, starts the services in order', () => {
    const out = compose(['up', '-d', '--build']);
    assert.match(out, /Successfully built/);
    assert.deepEqual(projectContainers(), [`${PROJECT}_client_1`, `${PROJECT}_site_1`, `${PROJECT}_web_1`]);
    const network = JSON.parse(d.dockerOk(['network', 'inspect', `${PROJECT}_default`]))[0];
    assert.equal(network.IPAM.Config[0].Subnet, SUBNET);
    assert.equal(network.Labels['com.docker.compose.project'], PROJECT);
    assert.equal(JSON.parse(d.dockerOk(['volume', 'inspect', `${PROJECT}_data`]))[0].Labels['com.docker.compose.volume'], 'data');
    const web = JSON.parse(d.dockerOk(['inspect', `${PROJECT}_web_1`]))[0];
    assert.equal(web.Config.Labels.role, 'server');
    assert.equal(web.Config.Labels['com.docker.compose.service'], 'web');
    assert.ok(web.NetworkSettings.Networks[`${PROJECT}_default`].Aliases.includes('web'), 'the service name is an alias on the project network');
  });

  it('the client reaches the web server by its service name; logs show both sides', async () => {
    let logs = '';
    const done = await poll(() => {
      logs = compose(['logs', '--no-color', 'client']);
      return logs.includes('client-done');
    }, 20_000, 250);
    assert.ok(done, `no client-done in the client's logs:\n${logs}`);
    assert.match(logs, /hello from the web test image/);
    const clientIp = JSON.parse(d.dockerOk(['inspect', `${PROJECT}_client_1`]))[0].NetworkSettings.Networks[`${PROJECT}_default`].IPAddress as string;
    assert.ok(clientIp.startsWith(`10.224.${TAG}.`), `client address ${clientIp} in ${SUBNET}`);
    assert.ok(compose(['logs', '--no-color', 'web']).includes(`${clientIp}]`), "the web server's log shows the client's address");
  });

  it('ps; the published port answers; the health check turns healthy', async () => {
    let ps = '';
    const healthy = await poll(() => {
      ps = compose(['ps']);
      return /site_1 .*Up \(healthy\)/.test(ps);
    }, 30_000, 500);
    assert.ok(healthy, `site not healthy:\n${ps}`);
    assert.match(ps, new RegExp(`127\\.0\\.0\\.1:${port}->80/tcp`));
    assert.match(ps, /web_1 .* Up/);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal((await res.text()).trim(), 'built by compose');
  });

  it('exec -T sees the environment; run --rm runs a one-off container and removes it', () => {
    assert.equal(exec('client', 'echo "$GREETING"'), 'hello from compose');
    assert.match(compose(['run', '--rm', 'client', 'echo', 'one-off ran']), /one-off ran/);
    assert.deepEqual(projectContainers(), [`${PROJECT}_client_1`, `${PROJECT}_site_1`, `${PROJECT}_web_1`], 'the one-off container is gone');
  });

  it("the named volume's data survives a recreate of its service", () => {
    exec('web', 'echo kept > /data/file');
    const before = JSON.parse(d.dockerOk(['inspect', `${PROJECT}_web_1`]))[0].Id as string;
    compose(['up', '-d', '--force-recreate', '--no-deps', 'web']);
    const after = JSON.parse(d.dockerOk(['inspect', `${PROJECT}_web_1`]))[0].Id as string;
    assert.notEqual(after, before, 'a new container');
    assert.equal(exec('web', 'cat /data/file'), 'kept');
  });

  it('scale, stop and start', () => {
    compose(['up', '-d', '--scale', 'client=2']);
    assert.deepEqual(projectContainers(), [`${PROJECT}_client_1`, `${PROJECT}_client_2`, `${PROJECT}_site_1`, `${PROJECT}_web_1`]);
    compose(['stop']);
    const states = (): string[] => d.dockerOk(['ps', '-a', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--format', '{{.State}}']).split('\n').filter(Boolean);
    assert.deepEqual(states(), ['exited', 'exited', 'exited', 'exited']);
    compose(['start']);
    assert.deepEqual(states(), ['running', 'running', 'running', 'running']);
  });

  it('down -v --rmi local removes the containers, the network, the volume and the built image', () => {
    compose(['down', '-v', '--rmi', 'local', '-t', '1']);
    assert.deepEqual(projectContainers(), []);
    assert.equal(d.docker(['network', 'inspect', `${PROJECT}_default`]).status, 1);
    assert.equal(d.docker(['volume', 'inspect', `${PROJECT}_data`]).status, 1);
    const images = d.dockerOk(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n').filter(Boolean).sort();
    assert.deepEqual(images, ['busybox:latest', 'web:latest']);
    assert.deepEqual(d.mountsLeft(), []);
    assert.equal(cmd('ip', ['-o', 'addr', 'show', 'to', SUBNET]).stdout.trim(), '', "the project network's bridge is gone");
  });
});
