/**
 * `docker build` with the legacy builder (`DOCKER_BUILDKIT=0`, `POST /build?version=1`) against
 * a private berthd: a multi-stage Dockerfile with every common instruction, the result run and
 * inspected; the cache on a second build; docker's errors (a failed RUN, an unknown instruction,
 * a missing Dockerfile); hostile contexts (`../` names, symlinks out of the context) that must
 * not read or write outside; docker-py, dockerode and `berth build`.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import Docker from 'dockerode';
import tar from 'tar-stream';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cmd, DOCKER } from '../helpers/engines.js';
import { socketRequest } from '../helpers/http.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !DOCKER ? 'needs the docker CLI' : false;
const PYTHON = '/usr/bin/python3';
const BERTH = path.join(PACKAGE_ROOT, 'bin', 'berth');

const DOCKERFILE = `# a multi-stage build
ARG BASE=busybox
FROM \${BASE} AS builder
ARG GREETING=hello
RUN echo "$GREETING from the builder" > /greeting \\
 && echo built in stage one
FROM busybox
LABEL org.example.name="built image" org.example.stage=final
ENV APP_HOME=/app \\
    MODE=\${MODE:-production}
WORKDIR $APP_HOME
COPY a.txt sub/ ./
COPY --from=builder /greeting /greeting
COPY --chown=1234:1234 a.txt /owned/
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo "run as $(id -u) in $(pwd)"
USER app
EXPOSE 8080/tcp 9090
ENTRYPOINT ["sh", "-c", "cat /greeting; echo \\"$0 $@\\""]
CMD ["from-cmd"]
`;

/** A tar of the given entries (for contexts the docker CLI would never send). */
function tarOf(entries: Array<{ name: string; data?: string; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.linkname !== undefined) pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
    else pack.entry({ name: e.name }, e.data ?? '');
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}

/** POST /build with a raw body on the daemon's socket. */
function postBuild(socket: string, query: string, body: Buffer): Promise<{ status: number; body: string }> {
  return socketRequest(socket, 'POST', `/v1.44/build?${query}`, { 'Content-Type': 'application/x-tar', 'Content-Length': body.length }, body);
}

describe('docker build (legacy builder) against berthd', { skip, timeout: 600_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-api-build-'));
  const ctxDir = path.join(tmp, 'ctx');
  let d: PrivateBerthd;
  let env: NodeJS.ProcessEnv;
  let firstId = '';

  const build = (args: string[], dir = ctxDir) => cmd(DOCKER!, ['build', ...args, dir], { env, timeoutMs: 180_000 });

  before(async () => {
    fs.mkdirSync(path.join(ctxDir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(ctxDir, 'Dockerfile'), DOCKERFILE);
    fs.writeFileSync(path.join(ctxDir, 'a.txt'), 'file a\n');
    fs.writeFileSync(path.join(ctxDir, 'sub', 'b.txt'), 'file b\n');
    fs.writeFileSync(path.join(ctxDir, 'secret.txt'), 'must not be sent\n');
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), '# comment\nsecret.txt\n');
    d = await startBerthd({ prefix: 'berthd-build-' });
    env = { ...d.env, DOCKER_BUILDKIT: '0' };
    d.loadImages('busybox');
  });

  after(async () => {
    await d?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('builds a multi-stage Dockerfile with the docker CLI', () => {
    const r = build(['-t', 'built:1', '--build-arg', 'GREETING=hi', '--build-arg', 'UNUSED=x']);
    assert.equal(r.status, 0, r.stderr + r.stdout + d.logTail());
    assert.match(r.stdout, /^Step 1\/16 : ARG BASE=busybox$/m);
    assert.match(r.stdout, /^Step 2\/16 : FROM \$\{BASE\} AS builder$/m);
    assert.match(r.stdout, /^ ---> Running in [0-9a-f]{12}\nbuilt in stage one\nRemoving intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}$/m);
    assert.match(r.stdout, /^run as 0 in \/app$/m);
    assert.match(r.stdout, /\[Warning\] One or more build-args \[UNUSED\] were not consumed/);
    const built = /^Successfully built ([0-9a-f]{12})$/m.exec(r.stdout);
    assert.ok(built, r.stdout);
    firstId = built[1]!;
    assert.match(r.stdout, /^Successfully tagged built:1$/m);
    // No intermediate container is left.
    assert.equal(d.dockerOk(['ps', '-aq']).trim(), '');
  });

  it('runs the result: files, owner, env, user, workdir, entrypoint and cmd', () => {
    const run = (args: string[]) => d.dockerOk(['run', '--rm', '--network', 'none', ...args]);
    assert.equal(run(['built:1']), 'hi from the builder\nfrom-cmd \n');
    const script = 'cat /app/a.txt /app/b.txt; ls /app; stat -c "%u:%g" /owned/a.txt /owned; id -u; pwd; echo "$MODE $APP_HOME"';
    assert.equal(run(['--entrypoint', 'sh', 'built:1', '-c', script]), 'file a\nfile b\na.txt\nb.txt\n1234:1234\n1234:1234\n1234\n/app\nproduction /app\n');
    const [inspect] = JSON.parse(d.dockerOk(['image', 'inspect', 'built:1'])) as Array<{ Config: Record<string, unknown>; Parent: string }>;
    assert.deepEqual(inspect!.Config.ExposedPorts, { '8080/tcp': {}, '9090/tcp': {} });
    const labels = inspect!.Config.Labels as Record<string, string>;
    assert.deepEqual([labels['org.example.name'], labels['org.example.stage']], ['built image', 'final']);
    assert.equal(inspect!.Config.User, 'app');
    assert.equal(inspect!.Config.WorkingDir, '/app');
    assert.deepEqual(inspect!.Config.Cmd, ['from-cmd']);
    assert.match(inspect!.Parent, /^sha256:/);
  });

  it('copies a context file whose name is not UTF-8 under its own bytes (COPY of a directory and by wildcard)', () => {
    const dir = path.join(tmp, 'bytes-ctx');
    fs.mkdirSync(path.join(dir, 'in'), { recursive: true });
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(dir, 'in', 'caf')), Buffer.from([0xe9])]), 'latin1\n');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nCOPY in /in/\nCOPY in/caf* /wild/\n');
    const r = build(['-q', '-t', 'bytes:1'], dir);
    assert.equal(r.status, 0, r.stderr + r.stdout + d.logTail());
    const out = d.dockerOk(['run', '--rm', '--network', 'none', 'bytes:1', 'sh', '-c', 'cat /in/caf* /wild/caf*; for f in /in/* /wild/*; do echo "$f"; done | od -An -c']);
    assert.match(out, /^latin1\nlatin1\n/, out);
    assert.match(out.replace(/\s+/g, ''), /\/in\/caf351\\n\/wild\/caf351\\n/, out);
    d.dockerOk(['rmi', 'bytes:1']);
  });

  it('records history as the legacy builder does, intermediate images hidden', () => {
    const history = d.dockerOk(['history', '--no-trunc', '--format', '{{.ID}}\t{{.CreatedBy}}', 'built:1']).trim().split('\n');
    assert.match(history[0]!, /^sha256:[0-9a-f]{64}\t\/bin\/sh -c #\(nop\)  CMD \["from-cmd"\]$/);
    assert.ok(history.some((l) => /\t\/bin\/sh -c echo 'app:x:1234/.test(l)), history.join('\n'));
    assert.ok(history.some((l) => /\t\/bin\/sh -c #\(nop\)  ENV APP_HOME=\/app MODE=production$/.test(l)), history.join('\n'));
    assert.ok(history.some((l) => /\t\/bin\/sh -c #\(nop\) COPY multi:[0-9a-f]{64} in \.\/ $/.test(l)), history.join('\n'));
    const listed = d.dockerOk(['images', '--format', '{{.Repository}}:{{.Tag}}']).trim().split('\n');
    // The final image and the builder stage's result (dangling, as with dockerd); the steps only with -a.
    assert.equal(listed.filter((l) => l === '<none>:<none>').length, 1, listed.join('\n'));
    assert.ok(d.dockerOk(['images', '-a', '-q']).trim().split('\n').length >= 14);
    // dangling=true lists heads only (no image is built on them), -a or not, as dockerd.
    assert.equal(d.dockerOk(['images', '-a', '-q', '--filter', 'dangling=true']), d.dockerOk(['images', '-q', '--filter', 'dangling=true']));
  });

  it('uses the cache on a second identical build', () => {
    const r = build(['-t', 'built:2', '--build-arg', 'GREETING=hi']);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal((r.stdout.match(/ ---> Using cache/g) ?? []).length, 13, r.stdout);
    assert.doesNotMatch(r.stdout, /Running in/);
    assert.match(r.stdout, new RegExp(`^Successfully built ${firstId}$`, 'm'));
    // A changed file misses the cache from its COPY on; --no-cache misses it everywhere.
    fs.writeFileSync(path.join(ctxDir, 'a.txt'), 'file a, changed\n');
    const changed = build(['-t', 'built:3', '--build-arg', 'GREETING=hi']);
    assert.equal(changed.status, 0, changed.stderr);
    assert.equal((changed.stdout.match(/ ---> Using cache/g) ?? []).length, 5, changed.stdout);
    const nocache = build(['--no-cache', '-q', '--build-arg', 'GREETING=hi']);
    assert.equal(nocache.status, 0, nocache.stderr);
    assert.match(nocache.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  });

  it("gives RUN steps the build's limits: --ulimit, --memory, --cpu-shares", () => {
    const dir = path.join(tmp, 'limits');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN ulimit -n > /u; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares >> /u\n');
    const r = build(['-q', '--ulimit', 'nofile=512:512', '--memory', '64m', '--cpu-shares', '256', '-t', 'limits'], dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(d.dockerOk(['run', '--rm', 'limits', 'cat', '/u']), `512\n${64 << 20}\n256\n`);
    d.dockerOk(['rmi', 'limits']);
  });

  it('fails a RUN as docker does, and keeps its container unless --force-rm', () => {
    const dir = path.join(tmp, 'failing');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo before\nRUN false\n');
    const r = build([], dir);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /The command '\/bin\/sh -c false' returned a non-zero code: 1/);
    assert.equal(d.dockerOk(['ps', '-aq']).trim().split('\n').filter(Boolean).length, 1);
    d.dockerOk(['container', 'prune', '-f']);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN exit 3\n');
    const forced = build(['--force-rm'], dir);
    assert.equal(forced.status, 3);
    assert.equal(d.dockerOk(['ps', '-aq']).trim(), '');
  });

  it('refuses bad Dockerfiles and contexts with docker messages, before any output', async () => {
    const dir = path.join(tmp, 'unknown');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nFOO bar\n');
    const r = build([], dir);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /dockerfile parse error line 2: unknown instruction: FOO/);

    const missing = await postBuild(d.socket, '', await tarOf([{ name: 'other', data: 'x' }]));
    assert.equal(missing.status, 400);
    assert.match(missing.body, /Cannot locate specified Dockerfile: Dockerfile/);
    const notTar = await postBuild(d.socket, '', Buffer.from('this is not a tar archive, not at all'.repeat(20)));
    assert.equal(notTar.status, 400, notTar.body);
    const badArgs = await postBuild(d.socket, 'buildargs=%7Bnope', await tarOf([{ name: 'Dockerfile', data: 'FROM busybox\n' }]));
    assert.equal(badArgs.status, 400);
    assert.match(badArgs.body, /buildargs/);
    // The platform as containerd's platforms.Parse reads it (dockerd's words for a bad one); only this host's is built.
    const context = await tarOf([{ name: 'Dockerfile', data: 'FROM busybox\n' }]);
    const bogus = await postBuild(d.socket, 'platform=bogus', context);
    assert.equal(bogus.status, 400);
    assert.match(bogus.body, /\\"bogus\\": unknown operating system or architecture: invalid argument/);
    const other = await postBuild(d.socket, 'platform=linux%2Faarch64', context);
    assert.equal(other.status, 501);
    assert.match(other.body, /berthd builds only for linux\/amd64, not linux\/arm64/);
    assert.equal((await postBuild(d.socket, 'platform=linux&q=1', context)).status, 200, 'an OS alone is this host');
  });

  it('never reads or writes outside the context or the image', async () => {
    const marker = path.join(tmp, 'escaped');
    const escape = await postBuild(d.socket, '', await tarOf([{ name: 'Dockerfile', data: 'FROM busybox\n' }, { name: `../../../../../..${marker}`, data: 'x' }]));
    assert.equal(escape.status, 400);
    assert.match(escape.body, /component \(it could escape/);
    const through = await postBuild(d.socket, '', await tarOf([{ name: 'Dockerfile', data: 'FROM busybox\n' }, { name: 'l', linkname: tmp }, { name: 'l/escaped', data: 'x' }]));
    assert.equal(through.status, 400);
    assert.ok(!fs.existsSync(marker));

    // A symlink to the host's /etc/shadow resolves inside the context (where there is none).
    const shadow = await postBuild(d.socket, 't=shadow', await tarOf([{ name: 'Dockerfile', data: 'FROM busybox\nCOPY link /stolen\n' }, { name: 'link', linkname: '/etc/shadow' }]));
    assert.equal(shadow.status, 200);
    assert.match(shadow.body, /"errorDetail":\{"message":"COPY failed: file not found in build context or excluded by \.dockerignore: stat link: file does not exist"\}/);
    // A Dockerfile that is a symlink out of the context is not found either.
    const df = await postBuild(d.socket, '', await tarOf([{ name: 'Dockerfile', linkname: '/etc/passwd' }]));
    assert.equal(df.status, 400);
    // Symlinks inside a copied directory are copied as symlinks, not followed.
    const links = await postBuild(
      d.socket,
      't=links:1',
      await tarOf([{ name: 'Dockerfile', data: 'FROM busybox\nCOPY dir /copied/\n' }, { name: 'dir/host-passwd', linkname: '/etc/passwd' }, { name: 'dir/up', linkname: '../../..' }]),
    );
    assert.equal(links.status, 200, links.body);
    assert.match(links.body, /Successfully tagged links:1/);
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'none', 'links:1', 'sh', '-c', 'readlink /copied/host-passwd; readlink /copied/up']), '/etc/passwd\n../../..\n');
  });

  it('builds with docker-py (gzip context, labels, target)', { skip: !fs.existsSync(PYTHON) && 'needs python3' }, () => {
    const script = `
import docker, sys
c = docker.DockerClient(base_url='unix://${d.socket}')
img, logs = c.images.build(path='${ctxDir}', tag='py:1', buildargs={'GREETING': 'py'}, labels={'via': 'docker-py'}, target='builder', gzip=True)
print(img.labels['via'])
print(''.join(l.get('stream', '') for l in logs).count('Step '))
try:
    c.images.build(fileobj=__import__('io').BytesIO(b'FROM busybox\\nRUN exit 4\\n'))
except docker.errors.BuildError as e:
    print(e.msg)
`;
    const r = spawnSync(PYTHON, ['-c', script], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0 && /No module named 'docker'/.test(r.stderr) && !process.env.CI) return;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "docker-py\n5\nThe command '/bin/sh -c exit 4' returned a non-zero code: 4\n");
  });

  it('builds with dockerode', async () => {
    const docker = new Docker({ socketPath: d.socket });
    const stream = await docker.buildImage({ context: ctxDir, src: ['Dockerfile', 'a.txt', 'sub/b.txt', 'secret.txt', '.dockerignore'] }, { t: 'dode:1', buildargs: { GREETING: 'dockerode' } });
    const out = await new Promise<Array<{ stream?: string; aux?: { ID?: string } }>>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, res: Array<{ stream?: string; aux?: { ID?: string } }>) => (err ? reject(err) : resolve(res))));
    assert.match(out.map((m) => m.stream ?? '').join(''), /Successfully tagged dode:1/);
    assert.match(out.filter((m) => m.aux).at(-1)!.aux!.ID!, /^sha256:/);
    // dockerode sent secret.txt: the daemon's .dockerignore still keeps it out of COPY.
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'none', '--entrypoint', 'ls', 'dode:1', '/app']), 'a.txt\nb.txt\n');
  });

  it('ADD <url>: downloaded by the daemon (redirects followed), named, 0600, Last-Modified kept, not extracted; a 404 fails the build', async () => {
    const archive = await tarOf([{ name: 'inside.txt', data: 'x' }]);
    const server = http.createServer((req, res) => {
      if (req.url === '/files/hello.txt') res.writeHead(200, { 'Last-Modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end('hello from the web\n');
      else if (req.url === '/go') res.writeHead(302, { Location: '/files/hello.txt' }).end();
      else if (req.url === '/archive.tar') res.writeHead(200).end(archive);
      else if (req.url === '/named/') res.writeHead(200, { 'Content-Disposition': 'attachment; filename="cd.txt"' }).end('by disposition\n');
      else res.writeHead(404).end('nope');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const dir = fs.mkdtempSync(path.join(tmp, 'url-'));
    // The docker CLI runs while this process serves the files: asynchronously.
    const dockerAsync = (args: string[], input?: string) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(DOCKER!, args, { env, timeout: 120_000 }, (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
        if (input !== undefined) child.stdin!.end(input);
      });
    try {
      fs.writeFileSync(
        path.join(dir, 'Dockerfile'),
        `FROM busybox\nADD ${base}/files/hello.txt /web/\nADD ${base}/go /web/redirected.txt\nADD --chown=7:8 ${base}/archive.tar /web/\nADD ${base}/named/ /web/\nRUN cd /web && stat -c '%n %a %u:%g %Y' * && cat hello.txt redirected.txt\n`,
      );
      const first = await dockerAsync(['build', '--no-cache', '-t', 'fromurl:1', dir]);
      assert.equal(first.status, 0, first.stderr + first.stdout);
      for (const line of ['archive.tar 600 7:8 0', 'cd.txt 600 0:0 0', 'hello.txt 600 0:0 1445412480', 'redirected.txt 600 0:0 1445412480', 'hello from the web\nhello from the web']) assert.ok(first.stdout.includes(line), `${line} in:\n${first.stdout}`);
      // Downloaded again, the same content: the cache is used.
      const second = await dockerAsync(['build', '-t', 'fromurl:2', dir]);
      assert.equal(second.status, 0, second.stderr);
      assert.equal(second.stdout.match(/Using cache/g)?.length, 5, second.stdout);
      const missing = await dockerAsync(['build', '-f', '-', dir], `FROM busybox\nADD ${base}/missing /x\n`);
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr + missing.stdout, new RegExp(`failed to GET ${base}/missing with status 404 Not Found: nope`));
      assert.match((await dockerAsync(['build', '-f', '-', dir], 'FROM busybox\nADD ftp://127.0.0.1/x /x\n')).stderr, /ADD of ftp:\/\/127\.0\.0\.1\/x is not supported/);
    } finally {
      server.close();
      d.docker(['rmi', 'fromurl:1', 'fromurl:2']);
    }
  });

  it('ADD of a local archive extracts it plain, gzip, zstd, xz or bzip2 (moby DecompressStream); a corrupt one is copied as a file', () => {
    const dir = path.join(tmp, 'add-archives');
    fs.mkdirSync(path.join(dir, 'in'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'in', 'inside.txt'), 'from the archive\n');
    const plain = spawnSync('tar', ['-C', path.join(dir, 'in'), '-cf', '-', 'inside.txt']).stdout;
    fs.writeFileSync(path.join(dir, 'a.tar'), plain);
    const kinds = ['gzip', 'zstd', 'xz', 'bzip2'];
    for (const kind of kinds) {
      const packed = spawnSync(kind, ['-c', '-q'], { input: plain });
      assert.equal(packed.status, 0, `${kind}: ${packed.stderr}`);
      fs.writeFileSync(path.join(dir, `a.tar.${kind}`), packed.stdout);
    }
    fs.writeFileSync(path.join(dir, 'cut.tar.xz'), fs.readFileSync(path.join(dir, 'a.tar.xz')).subarray(0, 20));
    const adds = ['a.tar', ...kinds.map((k) => `a.tar.${k}`), 'cut.tar.xz'].map((f) => `ADD ${f} /x/${f}/\n`).join('');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM busybox\n${adds}`);
    const r = build(['-q', '-t', 'add-archives'], dir);
    assert.equal(r.status, 0, r.stderr + r.stdout + d.logTail());
    const listing = d.dockerOk(['run', '--rm', '--network', 'none', 'add-archives', 'sh', '-c', 'cd /x && for f in *; do echo "$f: $(ls $f)"; done; cat /x/a.tar.xz/inside.txt']);
    assert.equal(listing, ['a.tar: inside.txt', 'a.tar.bzip2: inside.txt', 'a.tar.gzip: inside.txt', 'a.tar.xz: inside.txt', 'a.tar.zstd: inside.txt', 'cut.tar.xz: cut.tar.xz', 'from the archive', ''].join('\n'));
  });

  it("records metadata and file steps behind the current SHELL, --chown run into the hash, an empty CMD and ENTRYPOINT [] as dockerd's builder", () => {
    const r = cmd(DOCKER!, ['build', '-q', '-t', 'shell-history', '-f', '-', ctxDir], { env, timeoutMs: 120_000, input: 'FROM busybox\nSHELL ["/bin/sh", "-ec"]\nCOPY --chown=1:2 a.txt /a\nENTRYPOINT []\nCMD\n' });
    assert.equal(r.status, 0, r.stderr + d.logTail());
    const history = d.dockerOk(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'shell-history']).trim().split('\n');
    assert.deepEqual(history.slice(0, 4).map((l) => l.replace(/[0-9a-f]{64}/, 'H')), [
      '/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec"]',
      '/bin/sh -ec #(nop)  ENTRYPOINT []',
      '/bin/sh -ec #(nop) COPY --chown=1:2file:H in /a ',
      '/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]',
    ]);
    assert.equal(d.dockerOk(['image', 'inspect', '-f', '{{json .Config.Entrypoint}} {{json .Config.Cmd}}', 'shell-history']).trim(), 'null ["/bin/sh","-ec"]');
    d.dockerOk(['rmi', 'shell-history']);
  });

  it('docker build -f - DIR: the Dockerfile from stdin, in the unterminated tar the docker CLI sends', () => {
    const r = cmd(DOCKER!, ['build', '-q', '-f', '-', ctxDir], { env, timeoutMs: 120_000, input: 'FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt\n' });
    assert.equal(r.status, 0, r.stderr + d.logTail());
    assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
    const missing = cmd(DOCKER!, ['build', '-f', '-', ctxDir], { env, timeoutMs: 120_000, input: 'FROM busybox\nCOPY secret.txt /x\n' });
    assert.match(missing.stderr + missing.stdout, /COPY failed: file not found in build context or excluded by \.dockerignore: stat secret\.txt: file does not exist/);
    // A stage on scratch gets Linux's default PATH, as moby's builder gives every stage without one.
    const scratch = cmd(DOCKER!, ['build', '-q', '-f', '-', ctxDir], { env, timeoutMs: 120_000, input: 'FROM scratch\nCOPY a.txt /a.txt\n' });
    assert.equal(scratch.status, 0, scratch.stderr);
    assert.equal(d.dockerOk(['image', 'inspect', '-f', '{{json .Config.Env}}', scratch.stdout.trim()]).trim(), '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]');
    // COPY --from an image that cannot be had: dockerd's prefix on the reason.
    const from = cmd(DOCKER!, ['build', '-f', '-', ctxDir], { env, timeoutMs: 120_000, input: 'FROM busybox\nCOPY --from=127.0.0.1:1/none /a /b\n' });
    assert.notEqual(from.status, 0);
    assert.match(from.stderr + from.stdout, /invalid from flag value 127\.0\.0\.1:1\/none: /);
  });

  it('builds with `berth build` (directory, -f -, tar on stdin)', () => {
    const berth = (args: string[], input?: string) => cmd(BERTH, ['-H', `unix://${d.socket}`, 'build', ...args], { timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) });
    const r = berth(['-t', 'viaberth:1', '--build-arg', 'GREETING=berth', '--label', 'by=berth', ctxDir]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^Sending build context to Docker daemon {2}\d/);
    assert.match(r.stdout, /Step 17\/17 : LABEL "by"='berth'/);
    assert.match(r.stdout, /Successfully tagged viaberth:1/);
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'none', 'viaberth:1']), 'berth from the builder\nfrom-cmd \n');
    const failing = berth(['-f', '-', ctxDir], 'FROM busybox\nRUN exit 5\n');
    assert.equal(failing.status, 5, failing.stdout);
    assert.match(failing.stderr, /returned a non-zero code: 5/);
    const tarball = spawnSync('tar', ['-C', ctxDir, '-czf', '-', '.']).stdout;
    const stdin = spawnSync(BERTH, ['-H', `unix://${d.socket}`, 'build', '-q', '--build-arg', 'GREETING=hi', '-'], { input: tarball, encoding: 'utf8', timeout: 120_000 });
    assert.equal(stdin.status, 0, stdin.stderr);
    assert.match(stdin.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  });

  it('removes the intermediate images with the image; build/prune answers', async () => {
    const before = d.dockerOk(['images', '-aq']).trim().split('\n').length;
    const out = d.dockerOk(['rmi', 'viaberth:1']);
    assert.ok((out.match(/^Deleted: /gm) ?? []).length >= 2, out);
    assert.ok(d.dockerOk(['images', '-aq']).trim().split('\n').length < before);
    assert.match(d.dockerOk(['builder', 'prune', '-f']), /Total reclaimed space: 0B/);
  });
});
