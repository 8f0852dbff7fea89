/**
 * The `berth` CLI against a daemon that speaks the Docker Engine API. Which daemon is chosen by
 * daemonUnderTest(): a private berthd (test/helpers/berthd.ts) by default, a private dockerd
 * 20.10 (test/helpers/engines.ts) with BERTH_CLI_DAEMON=dockerd, which checks that the CLI
 * speaks Docker's API and not only ours. The test images are loaded with `berth load`,
 * so nothing here needs the docker CLI but the daemon's own setup. Needs root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { cmd, type CmdResult, dockerdSkip, which, MULTILAYER_EXPECTED, ptyRun, shellSteps, splitHostname, startPrivateDockerd } from '../helpers/engines.js';
import { SHARED_DIR, testImagesDir } from '../helpers/images.js';

const BERTH = path.join(PACKAGE_ROOT, 'bin', 'berth');

/** A daemon for the CLI to talk to: its environment (DOCKER_HOST), a label, and how to stop it. */
interface DaemonUnderTest {
  name: string;
  env: NodeJS.ProcessEnv;
  /** Extra `run` flags the daemon needs (the private dockerd has no bridge network). */
  runFlags: string[];
  stop(): Promise<void>;
}

/**
 * The daemon the CLI is tested against: a private berthd by default; a private dockerd with
 * BERTH_CLI_DAEMON=dockerd.
 */
async function daemonUnderTest(): Promise<DaemonUnderTest> {
  if (process.env.BERTH_CLI_DAEMON !== 'dockerd') {
    const { startBerthd } = await import('../helpers/berthd.js');
    const b = await startBerthd({ prefix: 'berth-cli-berthd-' });
    const env = { ...b.env };
    delete env.BERTH_HOST;
    return { name: 'berthd', env, runFlags: ['--network', 'none'], stop: () => b.stop() };
  }
  const d = await startPrivateDockerd({ prefix: 'berth-cli-test-' });
  const env = { ...d.env };
  delete env.BERTH_HOST; // DOCKER_HOST must decide
  return { name: 'private dockerd', env, runFlags: ['--network', 'none'], stop: () => d.stop() };
}

const skip = dockerdSkip;
let daemon: DaemonUnderTest | undefined;
let tmp = '';
const prefix = `berthcli-${process.pid}-`;

const berth = (args: string[], opts: { input?: string; timeoutMs?: number } = {}): CmdResult =>
  cmd(BERTH, args, { env: { ...daemon!.env, DOCKER_CONFIG: path.join(tmp, 'config') }, input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 });
const berthOk = (args: string[], opts: { input?: string; timeoutMs?: number } = {}): string => {
  const r = berth(args, opts);
  assert.equal(r.status, 0, `berth ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
};
const run = (args: string[]): CmdResult => berth(['run', ...daemon!.runFlags, ...args]);

describe('berth CLI', { skip, timeout: 600_000 }, () => {
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cli-'));
    daemon = await daemonUnderTest();
    const images = testImagesDir();
    for (const name of ['busybox', 'multilayer']) {
      assert.match(berthOk(['load', '-i', path.join(images, 'docker-archive', `${name}.tar`)]), new RegExp(`Loaded image: ${name}:latest`));
    }
  });

  after(async () => {
    try {
      const left = berth(['ps', '-aq', '--filter', `name=${prefix}`]).stdout.split('\n').filter(Boolean);
      if (left.length) berth(['rm', '-f', ...left]);
    } finally {
      await daemon?.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('version names both sides', () => {
    const out = berthOk(['version']);
    assert.match(out, /^Client:\n Version: +\d/m);
    assert.match(out, /^Server:/m);
    assert.match(berthOk(['version', '--format', '{{.Client.ApiVersion}}']), /^1\.\d+\n$/);
    // The Go field names docker's templates use, which the JSON spells ApiVersion.
    assert.equal(berthOk(['version', '--format', '{{.Server.APIVersion}} {{.Client.APIVersion}}']), '1.44 1.44\n');
    assert.doesNotMatch(berthOk(['version', '--format', '{{json .}}']), /"APIVersion"/);
  });

  it('run --rm echo: output and status, the container removed', () => {
    const name = `${prefix}echo`;
    const r = run(['--rm', '--name', name, 'busybox', 'echo', 'hello from berth']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello from berth\n');
    assert.equal(berthOk(['ps', '-aq', '--filter', `name=${name}`]), '');
    // --cidfile: the ID written; a file already there refused (another container's), as docker.
    const cidfile = path.join(tmp, 'cid.txt');
    const withCid = run(['--rm', '--cidfile', cidfile, 'busybox', 'true']);
    assert.equal(withCid.status, 0, withCid.stderr);
    assert.match(fs.readFileSync(cidfile, 'utf8'), /^[0-9a-f]{64}$/);
    const again = run(['--rm', '--cidfile', cidfile, 'busybox', 'true']);
    assert.equal(again.status, 125);
    assert.match(again.stderr, /container ID file found, make sure the other container isn't running or delete /);
    fs.rmSync(cidfile);
    assert.notEqual(run(['--rm', '--pull', 'never', '--cidfile', cidfile, `${prefix}no-such-image-here`, 'true']).status, 0);
    assert.ok(!fs.existsSync(cidfile), 'no file left by a failed create');
  });

  it('run: stdout and stderr apart, the exit status passed on; wait prints it', () => {
    const name = `${prefix}exit`;
    const r = run(['--name', name, 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual([r.status, r.stdout], [3, 'out\n']);
    assert.match(r.stderr, /^err$/m);
    assert.equal(berthOk(['wait', name]), '3\n');
    assert.equal(berthOk(['inspect', '-f', '{{.State.ExitCode}} {{.State.Status}}', name]), '3 exited\n');
    berthOk(['rm', name]);
  });

  it('run the multilayer image: its entrypoint, env, user and workdir', () => {
    const r = run(['--rm', 'multilayer']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(splitHostname(r.stdout).rest, MULTILAYER_EXPECTED);
  });

  it('run -d, logs, exec, top, stop, rm', () => {
    const name = `${prefix}detached`;
    const id = run(['-d', '--name', name, '-e', 'FOO=bar', 'busybox', 'sh', '-c', 'echo started; echo $FOO; exec sleep 300']).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    let logs = '';
    for (let i = 0; i < 50 && !logs.includes('bar'); i++) {
      logs = berthOk(['logs', name]);
      if (!logs.includes('bar')) cmd('sleep', ['0.1']);
    }
    assert.equal(logs, 'started\nbar\n');
    assert.equal(berthOk(['logs', '--tail', '1', name]), 'bar\n');
    assert.match(berthOk(['logs', '-t', name]), /^\d{4}-\d\d-\d\dT\S+Z started$/m);
    const ex = berth(['exec', '-e', 'X=1', '-w', '/etc', name, 'sh', '-c', 'echo $X $(pwd); exit 4']);
    assert.deepEqual([ex.status, ex.stdout], [4, '1 /etc\n']);
    assert.match(berthOk(['top', name]), /sleep 300/);
    assert.equal(berthOk(['inspect', '--format', '{{.State.Running}} {{json .Config.Env}}', name]).split(' ')[0], 'true');
    // update: the names, then the daemon's warnings (stdout), as the docker CLI prints them.
    assert.equal(berthOk(['update', '-m', '20m', '--memory-swap', '40m', '--cpus', '0.5', '--pids-limit', '10', '--restart', 'always', name]), `${name}\n`);
    assert.equal(berthOk(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}', name]), '20971520 500000000 10 always\n');
    assert.match(berthOk(['container', 'update', '--kernel-memory', '10m', name]), /^Specifying a kernel memory limit is deprecated/m);
    assert.deepEqual(berth(['update', name]).stderr, 'you must provide one or more flags when using this command\n');
    assert.equal(berthOk(['update', '--restart', 'no', name]), `${name}\n`);
    assert.equal(berthOk(['stop', '-t', '1', name]), `${name}\n`);
    assert.equal(berthOk(['inspect', '-f', '{{.State.Status}}', id]), 'exited\n');
    assert.equal(berthOk(['rm', name]), `${name}\n`);
  });

  it('streamed requests and answers: build (a streamed context), logs -f to the end, events, stats, export, system df', () => {
    const ctx = path.join(tmp, 'build-ctx');
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY big /big\nRUN echo built > /built\n');
    fs.writeFileSync(path.join(ctx, 'big'), Buffer.alloc(3 << 20, 'b')); // a context of several chunks
    const tag = `${prefix}built:1`;
    berthOk(['build', '-q', '-t', tag, ctx], { timeoutMs: 120_000 });
    const built = run(['--rm', tag, 'sh', '-c', 'cat /built; wc -c < /big']);
    assert.deepEqual([built.status, built.stdout.split(/\s+/).filter(Boolean)], [0, ['built', String(3 << 20)]]);

    const since = Math.floor(Date.now() / 1000) - 1;
    const name = `${prefix}follow`;
    const id = run(['-d', '--name', name, 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.3; done']).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    // Follows until the container's end: every line, then exit 0.
    assert.equal(berthOk(['logs', '-f', name], { timeoutMs: 30_000 }), 'line1\nline2\nline3\n');
    const until = Math.floor(Date.now() / 1000) + 1;
    const actions = berthOk(['events', '--since', String(since), '--until', String(until), '--filter', `container=${id}`, '--format', '{{.Action}}'], { timeoutMs: 30_000 }).split('\n');
    for (const a of ['create', 'start', 'die']) assert.ok(actions.includes(a), `event ${a} in ${actions.join(',')}`);

    const sleeper = `${prefix}stats`;
    run(['-d', '--name', sleeper, 'busybox', 'sleep', '300']);
    const stats = berthOk(['stats', '--no-stream', sleeper], { timeoutMs: 30_000 });
    assert.match(stats, /^CONTAINER ID\s+NAME\s+CPU %/);
    assert.match(stats, new RegExp(`\\s${sleeper}\\s`));
    const tarFile = path.join(tmp, 'export.tar');
    berthOk(['export', '-o', tarFile, sleeper]);
    assert.ok(cmd('tar', ['-tf', tarFile]).stdout.split('\n').includes('bin/busybox'));
    berthOk(['rm', '-f', sleeper, name]);
    berthOk(['rmi', tag]);
    assert.match(berthOk(['system', 'df']), /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+\d+/);
  });

  it('output to a slow reader arrives whole (run, logs); a reader gone ends the CLI quietly (141, as docker)', () => {
    const env = { ...daemon!.env, DOCKER_CONFIG: path.join(tmp, 'config') };
    const sh = (script: string): CmdResult => cmd('sh', ['-c', script], { env, timeoutMs: 60_000 });
    const q = (a: string[]): string => a.map((x) => `'${x}'`).join(' ');
    const big = `head -c 2000000 /dev/zero | tr '\\0' x; echo; echo done >&2`;
    // The reader starts late: the pipe fills, and the CLI must not exit with output still queued.
    const ran = sh(`${BERTH} run --rm ${q(daemon!.runFlags)} busybox sh -c ${q([big])} | (sleep 0.5; wc -c)`);
    assert.deepEqual([ran.status, ran.stdout.trim(), ran.stderr.trim()], [0, '2000001', 'done']);
    const name = `${prefix}bigout`;
    berthOk(['run', ...daemon!.runFlags, '--name', name, 'busybox', 'seq', '1', '200000']);
    assert.equal(sh(`${BERTH} logs ${name} | (sleep 0.5; wc -l)`).stdout.trim(), '200000');
    const quiet = cmd('bash', ['-c', `${BERTH} logs ${name} | head -1; echo "status \${PIPESTATUS[0]}"`], { env, timeoutMs: 60_000 });
    assert.equal(quiet.stdout, '1\nstatus 141\n');
    assert.doesNotMatch(quiet.stderr, /EPIPE|at /, 'no stack trace');
    berthOk(['rm', name]);
  });

  it('ps: -a, -q, --format, --filter, the default table', () => {
    const name = `${prefix}ps`;
    berthOk(['create', '--name', name, '-l', 'berth.test=ps', 'busybox', 'true']);
    const table = berthOk(['ps', '-a', '--filter', `name=${name}`]);
    assert.match(table.split('\n')[0], /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
    assert.match(table.split('\n')[1], new RegExp(`^[0-9a-f]{12} +busybox +"true" +.* ago +Created +${name}$`));
    assert.match(berthOk(['ps', '-a', '--filter', `label=berth.test=ps`, '--format', '{{.Names}}|{{.State}}|{{.Labels}}']), new RegExp(`^${name}\\|created\\|(.*,)?berth\\.test=ps(,|$)`));
    const q = berthOk(['ps', '-aq', '--filter', `name=${name}`]);
    assert.match(q, /^[0-9a-f]{12}\n$/);
    assert.equal(berthOk(['ps', '-q', '--filter', `name=${name}`]), '', 'not running: only with -a');
    assert.match(berthOk(['ps', '-a', '--filter', `name=${name}`, '--format', 'table {{.Names}}\t{{.Status}}']), new RegExp(`^NAMES +STATUS\n${name} +Created\n$`));
    const j = JSON.parse(berthOk(['ps', '-a', '--filter', `name=${name}`, '--format', 'json'])) as Record<string, string>;
    assert.equal(j.Names, name);
    berthOk(['rm', name]);
  });

  it('cp both ways: files, directories, renames', () => {
    const name = `${prefix}cp`;
    run(['-d', '--name', name, 'busybox', 'sleep', '300']);
    const src = path.join(tmp, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'f.txt'), 'in a dir\n');
    fs.writeFileSync(path.join(tmp, 'one.txt'), 'one file\n');
    berthOk(['cp', path.join(tmp, 'one.txt'), `${name}:/tmp/`]);
    berthOk(['cp', path.join(tmp, 'one.txt'), `${name}:/tmp/renamed.txt`]);
    berthOk(['cp', src, `${name}:/`]);
    assert.equal(berthOk(['exec', name, 'cat', '/tmp/one.txt', '/tmp/renamed.txt', '/src/sub/f.txt']), 'one file\none file\nin a dir\n');
    berthOk(['cp', `${name}:/tmp/renamed.txt`, path.join(tmp, 'back.txt')]);
    assert.equal(fs.readFileSync(path.join(tmp, 'back.txt'), 'utf8'), 'one file\n');
    berthOk(['cp', `${name}:/src`, path.join(tmp, 'srcback')]);
    assert.equal(fs.readFileSync(path.join(tmp, 'srcback', 'sub', 'f.txt'), 'utf8'), 'in a dir\n');
    fs.mkdirSync(path.join(tmp, 'into'));
    berthOk(['cp', `${name}:/etc/hostname`, path.join(tmp, 'into')]);
    assert.ok(fs.existsSync(path.join(tmp, 'into', 'hostname')));
    const tarOut = berth(['cp', `${name}:/tmp/one.txt`, '-']);
    assert.equal(tarOut.status, 0);
    assert.match(tarOut.stdout, /one\.txt/);
    assert.match(berthOk(['diff', name]), /^A \/tmp\/one\.txt$/m);
    const bad = berth(['cp', `${name}:/no/such/file`, tmp]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^Error response from daemon: .*no\/such\/file/m);
    // "dir/." copies the contents into a directory that is there; -L follows a link and keeps its name.
    fs.mkdirSync(path.join(tmp, 'contents'));
    berthOk(['cp', `${name}:/src/.`, path.join(tmp, 'contents')]);
    assert.equal(fs.readFileSync(path.join(tmp, 'contents', 'sub', 'f.txt'), 'utf8'), 'in a dir\n');
    berthOk(['exec', name, 'ln', '-s', '/tmp/one.txt', '/tmp/link']);
    berthOk(['cp', '-L', `${name}:/tmp/link`, path.join(tmp, 'into')]);
    assert.equal(fs.lstatSync(path.join(tmp, 'into', 'link')).isFile(), true);
    assert.equal(fs.readFileSync(path.join(tmp, 'into', 'link'), 'utf8'), 'one file\n');
    // A name that is not UTF-8 keeps its bytes both ways (Node would read U+FFFD).
    const latin1 = Buffer.concat([Buffer.from(tmp + '/bytes/caf'), Buffer.from([0xe9])]);
    fs.mkdirSync(path.join(tmp, 'bytes'));
    fs.writeFileSync(latin1, 'latin1\n');
    berthOk(['cp', path.join(tmp, 'bytes'), `${name}:/`]);
    assert.match(berthOk(['exec', name, 'sh', '-c', 'cat /bytes/caf*; for f in /bytes/*; do echo "$f"; done | od -An -c']), /^latin1\n[^]*c +a +f +351/);
    berthOk(['cp', `${name}:/bytes`, path.join(tmp, 'bytesback')]);
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'bytesback'), { encoding: 'buffer' }), [Buffer.from([0x63, 0x61, 0x66, 0xe9])]);
    // The docker CLI's refusals, in its words.
    assert.equal(berth(['cp', `${name}:/tmp/one.txt`, path.join(tmp, 'nodir', 'x')]).stderr, `invalid output path: directory ${JSON.stringify(path.join(tmp, 'nodir'))} does not exist\n`);
    assert.equal(berth(['cp', `${name}:/src`, path.join(tmp, 'back.txt')]).stderr, 'cannot copy directory\n');
    assert.equal(berth(['cp', '-', `${name}:/no/such/dir`], { input: '' }).stderr, `destination "${name}:/no/such/dir" must be a directory\n`);
    berthOk(['rm', '-f', name]);
  });

  it('volume lifecycle: create, ls, inspect, use, rm', () => {
    const vol = `${prefix}vol`;
    assert.equal(berthOk(['volume', 'create', '--label', 'k=v', vol]), `${vol}\n`);
    assert.match(berthOk(['volume', 'ls']), new RegExp(`^DRIVER +VOLUME NAME\n(.*\n)*local +${vol}$`, 'm'));
    assert.match(berthOk(['volume', 'ls', '-q']), new RegExp(`^${vol}$`, 'm'));
    assert.equal(berthOk(['volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Labels.k}}', vol]), `${vol} local v\n`);
    assert.equal(run(['--rm', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', 'echo kept > /data/x']).status, 0);
    assert.equal(run(['--rm', '-v', `${vol}:/data`, 'busybox', 'cat', '/data/x']).stdout, 'kept\n');
    assert.equal(berthOk(['volume', 'rm', vol]), `${vol}\n`);
    const again = berth(['volume', 'rm', vol]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^Error response from daemon: .*no such volume/m);
  });

  it('images, tag, history, rmi', () => {
    const tag = `${prefix}img:v1`;
    berthOk(['tag', 'busybox', tag]);
    const list = berthOk(['images']);
    assert.match(list.split('\n')[0], /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
    assert.match(list, new RegExp(`^${prefix}img +v1 +[0-9a-f]{12} +.* ago +\\d`, 'm'));
    assert.match(berthOk(['images', '--format', '{{.Repository}}:{{.Tag}}']), new RegExp(`^${tag}$`, 'm'));
    const ids = berthOk(['images', '-q', 'busybox']);
    assert.match(ids, /^[0-9a-f]{12}\n$/);
    assert.match(berthOk(['history', 'busybox']), /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$/m);
    assert.equal(berthOk(['image', 'inspect', '-f', '{{.Id}}', tag]).slice(7, 19), ids.trim());
    assert.equal(berthOk(['rmi', tag]), `Untagged: ${tag}\n`);
    const gone = berth(['image', 'inspect', tag]);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, new RegExp(`^Error response from daemon: No such image: ${tag}$`, 'm'), "the daemon's words, as the docker CLI prints them for one kind");
    assert.match(berth(['inspect', tag]).stderr, new RegExp(`^Error: No such object: ${tag}$`, 'm'));
  });

  it('save and load round trip', () => {
    const tag = `${prefix}saved:v1`;
    berthOk(['tag', 'busybox', tag]);
    const archive = path.join(tmp, 'saved.tar');
    berthOk(['save', '-o', archive, tag]);
    assert.ok(fs.statSync(archive).size > 100_000);
    berthOk(['rmi', tag]);
    assert.match(berthOk(['load', '-i', archive]), new RegExp(`Loaded image: ${tag}`));
    berthOk(['rmi', tag]);
    // import: a root file system tarball (a file, or stdin), with --change and -m; prints the new ID.
    fs.mkdirSync(path.join(tmp, 'rootfs/etc'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'rootfs/etc/x'), 'imported\n');
    const rootfs = path.join(tmp, 'rootfs.tar');
    cmd('tar', ['-C', path.join(tmp, 'rootfs'), '-cf', rootfs, '.']);
    const imported = `${prefix}imported:v1`;
    assert.match(berthOk(['import', '-m', 'a message', '-c', 'CMD ["/etc/x"]', rootfs, imported]), /^sha256:[0-9a-f]{64}\n$/);
    assert.equal(berthOk(['image', 'inspect', '-f', '{{.Comment}} {{json .Config.Cmd}}', imported]), 'a message ["/etc/x"]\n');
    assert.match(berthOk(['image', 'import', '-'], { input: fs.readFileSync(rootfs, 'latin1') }), /^sha256:[0-9a-f]{64}\n$/);
    assert.deepEqual(berth(['import', `/${prefix}nosuch.tar`]).stderr, `open /${prefix}nosuch.tar: no such file or directory\n`);
    berthOk(['rmi', imported]);
    // A body the daemon refuses before reading it all: its answer, every time (the daemon drops
    // the rest; the request does not ask it to close, which cut the send short with EPIPE).
    const big = path.join(tmp, 'big.bin');
    fs.writeFileSync(big, Buffer.alloc(4 << 20, 'x'));
    for (let i = 0; i < 15; i++) {
      assert.equal(berth(['import', '-c', 'RUN x', big]).stderr, 'Error response from daemon: run is not a valid change command\n', `attempt ${i}`);
    }
    assert.match(berth(['load', '-i', big]).stderr, /^Error response from daemon: .*tar/m, 'a body that is no archive: the answer, not a cut connection');
  });

  const registrySh = path.join(SHARED_DIR, 'testimages', 'registry.sh');
  const registrySkip = !fs.existsSync(registrySh) ? `no ${registrySh}` : !which('docker-registry') && process.getuid?.() !== 0 ? 'needs docker-registry' : false;
  it('login, push and pull with Basic auth (X-Registry-Auth), logout', { skip: registrySkip }, async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const regDir = path.join(tmp, 'registry');
    const regEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    const started = cmd('bash', [registrySh, 'start', regDir, String(port), '--auth'], { env: regEnv, timeoutMs: 120_000 });
    assert.equal(started.status, 0, started.stderr);
    try {
      const repo = `127.0.0.1:${port}/${prefix}pushed`;
      berthOk(['tag', 'busybox', `${repo}:v1`]);
      const denied = berth(['push', `${repo}:v1`]);
      assert.equal(denied.status, 1, 'no credentials yet');
      const login = berth(['login', '-u', 'testuser', '--password-stdin', `127.0.0.1:${port}`], { input: 'testpassword\n' });
      assert.match(login.stdout, /^Login Succeeded$/m);
      assert.match(login.stderr, /^WARNING! Your credentials are stored unencrypted in '.*config\.json'\.$/m);
      // Again without a user: the stored credentials, as the docker CLI tries them.
      const again = berth(['login', `127.0.0.1:${port}`]);
      assert.deepEqual([again.status, again.stdout], [0, 'Login Succeeded\n'], again.stderr);
      assert.match(again.stderr, /^Authenticating with existing credentials\.\.\. \[Username: testuser\]$/m);
      assert.equal(berth(['login', '-u', 'x', '-p', 'y', '--password-stdin', `127.0.0.1:${port}`]).stderr, 'conflicting options: cannot specify both --password and --password-stdin\n');
      assert.equal(berthOk(['push', '-q', `${repo}:v1`]), `${repo}:v1\n`);
      const noTag = berth(['push', `${repo}:nosuch`]);
      assert.match(noTag.stderr, new RegExp(`^tag does not exist: ${repo.replace(/\./g, '\\.')}:nosuch$`, 'm'));
      assert.match(berth(['push', `${repo}-none:v1`]).stderr, /^An image does not exist locally with the tag: /m);
      const pushed = berthOk(['push', `${repo}:v1`]);
      assert.match(pushed, new RegExp(`^The push refers to repository \\[${repo.replace(/\./g, '\\.')}\\]$`, 'm'));
      assert.match(pushed, /^v1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
      berthOk(['rmi', `${repo}:v1`]);
      const pulled = berthOk(['pull', `${repo}:v1`]);
      assert.match(pulled, /^Status: (Downloaded newer image|Image is up to date) for /m);
      assert.match(pulled, new RegExp(`^${repo.replace(/\./g, '\\.')}:v1$`, 'm'));
      assert.match(berthOk(['logout', `127.0.0.1:${port}`]), /^Removing login credentials for /);
      berthOk(['rmi', `${repo}:v1`]);
      const anon = berth(['pull', `${repo}:v1`]);
      assert.equal(anon.status, 1);
      assert.match(anon.stderr, /no basic auth credentials|unauthorized|authentication required/i);
    } finally {
      cmd('bash', [registrySh, 'stop', regDir], { env: regEnv, timeoutMs: 30_000 });
    }
  });

  it('-it on a real pseudo-terminal: typed input, a TTY inside, the exit status', () => {
    const r = ptyRun([BERTH, 'run', '-it', '--rm', ...daemon!.runFlags, 'busybox', 'sh'], shellSteps(7), {
      env: { ...daemon!.env, DOCKER_CONFIG: path.join(tmp, 'config') },
      timeoutS: 60,
    });
    assert.equal(r.status, 7, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
  });

  it('exec -it on a real pseudo-terminal', () => {
    const name = `${prefix}execit`;
    run(['-d', '--name', name, 'busybox', 'sleep', '300']);
    const r = ptyRun([BERTH, 'exec', '-it', name, 'sh'], shellSteps(0), { env: { ...daemon!.env }, timeoutS: 60 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    berthOk(['rm', '-f', name]);
  });

  it("--format as the docker CLI: methods, fields checked, JSON in name order, sizes; rm -f of a missing container", () => {
    const name = `${prefix}fmt`;
    assert.equal(run(['-d', '--name', name, '-l', 'app=web', 'busybox', 'sleep', '300']).status, 0);
    assert.equal(berthOk(['ps', '--filter', `name=${name}`, '--format', '{{.Label "app"}}|{{.Label "nope"}}']), 'web|\n');
    const row = JSON.parse(berthOk(['ps', '--filter', `name=${name}`, '--format', '{{json .}}'])) as Record<string, unknown>;
    assert.deepEqual(Object.keys(row), ['Command', 'CreatedAt', 'ID', 'Image', 'Labels', 'LocalVolumes', 'Mounts', 'Names', 'Networks', 'Platform', 'Ports', 'RunningFor', 'Size', 'State', 'Status']);
    assert.match(String(row.Size), /^\d[\d.]*k?B \(virtual [\d.]+[kM]B\)$/);
    const bad = berth(['ps', '--format', '{{.Nope}}']);
    assert.deepEqual([bad.status, bad.stderr], [1, 'failed to execute template: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext\n']);
    const unparsed = berth(['inspect', '-f', '{{', name]);
    assert.deepEqual([unparsed.status, unparsed.stderr], [64, 'template parsing error: template: :1: unclosed action\n']);
    const rm = berth(['rm', '-f', name, `${prefix}nosuch`]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.match(rm.stderr, /No such container/);
  });

  it('the docker CLI\'s checks and words: tag targets, rmi -f and volume rm -f of missing objects, network IPAM flags, system df -v', () => {
    const badTag = berth(['tag', 'busybox', 'BAD:tag']);
    assert.deepEqual([badTag.status, badTag.stderr], [1, 'Error parsing reference: "BAD:tag" is not a valid repository/tag: invalid reference format: repository name (library/BAD) must be lowercase\n']);
    const rmi = berth(['rmi', '-f', `${prefix}noimage`]);
    assert.equal(rmi.status, 0, rmi.stderr);
    assert.match(rmi.stderr, /No such image/);
    assert.equal(berth(['rmi', `${prefix}noimage`]).status, 1);
    const volRm = berth(['volume', 'rm', '-f', `${prefix}novolume`]);
    assert.deepEqual([volRm.status, volRm.stdout], [0, `${prefix}novolume\n`]);
    const ipam = berth(['network', 'create', '--ip-range', '10.99.0.0/24', `${prefix}nonet`]);
    assert.deepEqual([ipam.status, ipam.stderr.trim()], [1, 'every ip-range or gateway must have a corresponding subnet']);
    assert.match(berth(['network', 'create', '--subnet', '10.99.0.0/24', '--gateway', '10.98.0.1', `${prefix}nonet`]).stderr, /no matching subnet for gateway 10\.98\.0\.1/);
    assert.equal(berth(['run', '--mac-address', 'zz', 'busybox', 'true']).stderr.split('\n')[0], 'berth: zz is not a valid mac address');
    // Keys that do not parse are refused when the exec is made (a 400), not left hanging at its start.
    berthOk(['run', '-d', ...daemon!.runFlags, '--name', `${prefix}keys`, 'busybox', 'sleep', '300']);
    const keys = berth(['exec', '--detach-keys', 'bogus-key', `${prefix}keys`, 'true']);
    assert.deepEqual([keys.status, keys.stderr], [1, 'Error response from daemon: Invalid escape keys (bogus-key) provided\n']);
    berthOk(['rm', '-f', `${prefix}keys`]);
    const untilVolumes = berth(['system', 'prune', '-f', '--volumes', '--filter', 'until=1h']);
    assert.deepEqual([untilVolumes.status, untilVolumes.stderr], [1, 'ERROR: The "until" filter is not supported with "--volumes"\n']);
    const cidfile = path.join(tmp, 'bad-pull.cid');
    const pullOption = berth(['run', '--cidfile', cidfile, '--pull', 'bogus', 'busybox', 'true']);
    assert.deepEqual([pullOption.status, pullOption.stderr.split('\n')[0]], [125, `berth: invalid pull option: 'bogus': must be one of "always", "missing" or "never"`]);
    assert.equal(fs.existsSync(cidfile), false, 'a refused run leaves no cidfile');
    assert.match(berth(['create', '--pull', 'bogus', 'busybox']).stderr, /\n\nRun 'berth create --help' for more information\n$/);
    berthOk(['create', '--name', `${prefix}twice`, 'busybox', 'true']);
    const conflict = berth(['create', '--name', `${prefix}twice`, 'busybox', 'true']);
    assert.equal(conflict.status, 1, conflict.stderr);
    berthOk(['rm', `${prefix}twice`]);
    // images -q: a line per tag, as the docker CLI prints {{.ID}} per row.
    berthOk(['tag', 'busybox', `${prefix}again:1`]);
    const ids = berthOk(['images', '-q', '--filter', 'reference=busybox', '--filter', `reference=${prefix}again`]).trim().split('\n');
    assert.equal(ids.length, 2, ids.join(','));
    assert.equal(ids[0], ids[1]);
    berthOk(['rmi', `${prefix}again:1`]);
    // info in the docker CLI's order and parts.
    const info = berthOk(['info']);
    assert.match(info, /\n Plugins:\n {2}Volume: local\n {2}Network: [a-z ]+\n {2}Log: [a-z -]+\n Swarm: inactive\n/);
    assert.match(info, /\n Init Binary: .+\n containerd version: .+\n runc version: .+\n init version: .+\n/);
    assert.match(info, /\n Debug Mode: (true|false)\n Experimental: false\n(.|\n)* Live Restore Enabled: (true|false)\n\n$/);
    const df = berthOk(['system', 'df', '-v']);
    assert.match(df, /^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/);
    assert.match(df, /\nbusybox +latest +[0-9a-f]{12} /);
    assert.match(df, /\nContainers space usage:\n\nCONTAINER ID +IMAGE +COMMAND +LOCAL VOLUMES +SIZE +CREATED +STATUS +NAMES\n/);
    assert.match(df, /\nLocal Volumes space usage:\n\nVOLUME NAME +LINKS +SIZE\n/);
    assert.match(df, /\nBuild cache usage: 0B\n\nCACHE ID +CACHE TYPE +SIZE +CREATED +LAST USED +USAGE +SHARED\n$/);
  });

  it('--sig-proxy: a signal sent to run, start -a or attach goes to the container (served and in Node); --sig-proxy=false lets it end the CLI', async () => {
    // The container traps INT and TERM and exits with its own status: the CLI's status shows who got the signal.
    const script = 'trap "echo got-int; exit 3" INT; trap "echo got-term; exit 4" TERM; echo ready; while true; do sleep 0.1; done';
    const signalled = (args: string[], signal: NodeJS.Signals, server: string): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(BERTH, args, { env: { ...daemon!.env, BERTH_CLI_SERVER: server }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let sent = false;
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        const onData = (d: Buffer): void => {
          out += d.toString();
          if (!sent && out.includes('ready')) {
            sent = true;
            setTimeout(() => child.kill(signal), 300);
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    for (const server of ['1', '0']) {
      const name = `${prefix}sigproxy${server}`;
      const ran = await signalled(['run', ...daemon!.runFlags, '--name', name, 'busybox', 'sh', '-c', script], 'SIGINT', server);
      assert.deepEqual([ran.code, ran.out.includes('got-int')], [3, true], ran.out);
      const started = await signalled(['start', '-a', name], 'SIGTERM', server);
      assert.deepEqual([started.code, started.out.includes('got-term')], [4, true], started.out);
      berthOk(['rm', name]);
      berthOk(['run', '-d', ...daemon!.runFlags, '--name', name, 'busybox', 'sh', '-c', script]);
      const attached = (async (): Promise<{ code: number | null; out: string }> => {
        // attach prints nothing before the signal: send it once the attach is in place.
        const child = spawn(BERTH, ['attach', name], { env: { ...daemon!.env, BERTH_CLI_SERVER: server }, stdio: 'ignore' });
        await new Promise((r) => setTimeout(r, 1500));
        child.kill('SIGTERM');
        const code = await new Promise<number | null>((r) => child.on('close', r));
        return { code, out: '' };
      })();
      assert.equal((await attached).code, 4);
      // Without the proxy, the signal ends the CLI (130: its own SIGINT) and the container runs on.
      const unproxied = await signalled(['run', ...daemon!.runFlags, '--sig-proxy=false', '--name', `${name}-off`, 'busybox', 'sh', '-c', script], 'SIGINT', server);
      assert.notEqual(unproxied.code, 3, unproxied.out);
      assert.equal(berthOk(['inspect', '-f', '{{.State.Running}}', `${name}-off`]).trim(), 'true');
      berthOk(['rm', '-f', name, `${name}-off`]);
    }
    const badBool = berth(['run', '--rm=maybe', 'busybox', 'true']);
    assert.deepEqual([badBool.status, badBool.stderr.split('\n')[0]], [125, 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax']);
  });

  it('build from a Dockerfile on stdin (the whole context), as the docker CLI', () => {
    const r = berth(['build', '-t', `${prefix}stdin`, '-'], { input: 'FROM busybox\nRUN echo from-stdin > /f\nCMD ["cat", "/f"]\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Sending build context to Docker daemon {2}\d/m);
    assert.match(r.stdout, new RegExp(`^Successfully tagged ${prefix}stdin:latest$`, 'm'));
    assert.equal(berthOk(['run', '--rm', ...daemon!.runFlags, `${prefix}stdin`]), 'from-stdin\n');
    berthOk(['rmi', `${prefix}stdin`]);
  });

  it('errors: docker exit codes and messages', () => {
    // The docker CLI v28's flag errors: the parser's words, the command's use lines (its name
    // for an alias), where to look.
    const badFlag = berth(['run', '--bogus', 'busybox']);
    assert.deepEqual([badFlag.status, badFlag.stderr], [125, "unknown flag: --bogus\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"]);
    assert.equal(berth(['ps', '--bogus']).status, 125);
    assert.equal(berth(['container', 'list', '-z']).stderr, "unknown shorthand flag: 'z' in -z\n\nUsage:  berth container ls [OPTIONS]\n\nRun 'berth container ls --help' for more information\n");
    assert.equal(berth(['cp', '--bogus']).stderr, "unknown flag: --bogus\n\nUsage:  berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH\n\nRun 'berth cp --help' for more information\n");
    assert.match(berth(['run', '--memory', 'abc', 'busybox']).stderr, /^invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'\n\nUsage:  berth run /);
    assert.match(berth(['run', '-m']).stderr, /^flag needs an argument: 'm' in -m\n\nUsage:  berth run /);
    assert.match(berth(['run', '--memory']).stderr, /^flag needs an argument: --memory\n/);
    // An error after the flags were read: no use lines.
    assert.equal(berth(['run', '-p', '99999', 'busybox']).stderr, "berth: invalid containerPort: 99999\n\nRun 'berth run --help' for more information\n");
    // The docker CLI v28's words and codes for a wrong number of arguments and an unknown command.
    const noArg = berth(['logs']);
    assert.deepEqual([noArg.status, noArg.stderr], [1, "berth: 'berth logs' requires 1 argument\n\nUsage:  berth logs [OPTIONS] CONTAINER\n\nRun 'berth logs --help' for more information\n"]);
    assert.equal(berth(['rm']).stderr, "berth: 'berth rm' requires at least 1 argument\n\nUsage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth rm --help' for more information\n");
    assert.match(berth(['tag', 'a']).stderr, /^berth: 'berth tag' requires 2 arguments$/m);
    assert.match(berth(['ps', 'x']).stderr, /^berth: 'berth ps' accepts no arguments$/m);
    assert.match(berth(['port']).stderr, /^berth: 'berth port' requires at least 1 and at most 2 arguments$/m);
    assert.match(berth(['images', 'a', 'b']).stderr, /^berth: 'berth images' requires at most 1 argument$/m);
    const unknown = berth(['nosuchcommand']);
    assert.deepEqual([unknown.status, unknown.stderr], [1, "berth: unknown command: berth nosuchcommand\n\nRun 'berth --help' for more information\n"]);
    assert.match(berth(['image', 'nosuch']).stderr, /^berth: unknown command: berth image nosuch$/m);
    for (const verb of [['logs'], ['stop'], ['rm'], ['start'], ['exec', '-i'], ['top'], ['port']]) {
      const r = berth([...verb, `${prefix}nosuch`, ...(verb[0] === 'exec' ? ['true'] : [])]);
      assert.equal(r.status, 1, `${verb.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^Error response from daemon: No such container: ${prefix}nosuch$`, 'im'), verb.join(' '));
    }
    // The docker CLI's own lines after the daemon's error.
    assert.match(berth(['start', `${prefix}nosuch`]).stderr, new RegExp(`^Error: failed to start containers: ${prefix}nosuch$`, 'm'));
    assert.match(berth(['rename', `${prefix}nosuch`, `${prefix}new`]).stderr, new RegExp(`^Error response from daemon: No such container: ${prefix}nosuch\nError: failed to rename container named ${prefix}nosuch$`, 'm'));
    const noFile = berth(['load', '-i', `/${prefix}nosuch.tar`]);
    assert.deepEqual([noFile.status, noFile.stderr], [1, `open /${prefix}nosuch.tar: no such file or directory\n`]);
    const insp = berth(['inspect', `${prefix}nosuch`]);
    assert.deepEqual([insp.status, insp.stdout], [1, '[]\n']);
    assert.match(insp.stderr, /^Error: No such object: /m);
    const notFound = run(['--rm', 'busybox', `/${prefix}nosuchcmd`]);
    assert.equal(notFound.status, 127, notFound.stderr);
    const noImage = run(['--pull', 'never', `${prefix}noimage:1`]);
    assert.equal(noImage.status, 125);
    assert.match(noImage.stderr, /No such image/i);
    const unreachable = cmd(BERTH, ['-H', `unix://${tmp}/nothing.sock`, 'ps'], {});
    assert.equal(unreachable.status, 1);
    assert.match(unreachable.stderr, /Cannot connect to the Docker daemon at unix:\/\/.*nothing\.sock/);
  });
});

/**
 * The CLI asks at API 1.44 without a ping first: a daemon that serves less must still get every
 * request at its own version. dockerd 20.10 (API 1.41) refuses 1.44 with a 400, and gives no
 * message to a HEAD (cp's stat of the destination).
 */
describe('berth CLI against an older daemon (dockerd 20.10, API 1.41)', { skip: dockerdSkip, timeout: 300_000 }, () => {
  let dockerd: Awaited<ReturnType<typeof startPrivateDockerd>> | undefined;
  let dir = '';
  const old = (args: string[]): string => {
    const r = cmd(BERTH, args, { env: { ...dockerd!.env, BERTH_HOST: '' }, timeoutMs: 60_000 });
    assert.equal(r.status, 0, `berth ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cli-old-'));
    dockerd = await startPrivateDockerd({ prefix: 'berth-cli-old-' });
    old(['load', '-q', '-i', path.join(testImagesDir(), 'docker-archive', 'busybox.tar')]);
  });
  after(async () => {
    await dockerd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('version, run, cp into the container (a HEAD first), ps', () => {
    assert.equal(old(['version', '--format', '{{.Client.ApiVersion}}']), '1.41\n'); // negotiated down
    const name = `berthcli-old-${process.pid}`;
    old(['run', '-d', '--network', 'none', '--name', name, 'busybox', 'sleep', '300']);
    fs.writeFileSync(path.join(dir, 'in.txt'), 'to an old daemon\n');
    old(['cp', path.join(dir, 'in.txt'), `${name}:/tmp/`]);
    assert.equal(old(['exec', name, 'cat', '/tmp/in.txt']), 'to an old daemon\n');
    assert.match(old(['ps', '--format', '{{.Names}}']), new RegExp(`^${name}$`, 'm'));
    old(['rm', '-f', name]);
  });
});
