/**
 * The berth CLI server (src/cli/server.ts) and its native client (bin/berth ->
 * native/build/berth): commands run in the server with the caller's environment, directory,
 * input, terminal, output and exit status, and print what the same command prints in Node;
 * the others (local files: build, cp, save, load...; a client of another identity) run in
 * Node. Needs root and the test images.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PACKAGE_ROOT } from '../../src/common/paths.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cmd, ptyRun, type CmdResult } from '../helpers/engines.js';
import { testImagesDir } from '../helpers/images.js';
import { rawRequest } from '../helpers/command-server.js';
import { isRoot, waitFor } from '../helpers/runtime.js';

const BERTH = path.join(PACKAGE_ROOT, 'bin', 'berth');
const serverDir = `/run/berth-cli-t-${process.pid}`;
let daemon: PrivateBerthd | undefined;
let tmp = '';

/** The environment of a berth client of this test's daemon and server (extra entries added). */
function clientEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...daemon!.env, BERTH_CLI_SERVER_DIR: serverDir, BERTH_CLI_SERVER_IDLE_MS: '30000', DOCKER_CONFIG: path.join(tmp, 'config'), ...extra };
  delete env.BERTH_HOST;
  return env;
}

function berth(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): CmdResult {
  return cmd(BERTH, args, { env: clientEnv(opts.env), input: opts.input, timeoutMs: 60_000, cwd: opts.cwd });
}

/** Runs with -D, which the server answers with a line saying it ran the command. */
function served(args: string[], opts: Parameters<typeof berth>[1] = {}): CmdResult & { served: boolean } {
  const r = berth(['-D', ...args], opts);
  const marker = /^berth: run by the berth CLI server, pid \d+\n/m;
  return { ...r, stderr: r.stderr.replace(marker, ''), served: marker.test(r.stderr) };
}

function serverPids(): number[] {
  const r = spawnSync('pgrep', ['-f', `berth-cli-serve ${serverDir}/`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

/** How many sockets the server process has open (at rest: its listening socket). */
function serverSockets(pid: number): number {
  const isSocket = (fd: string): boolean => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed between the listing and the look
    }
  };
  return fs.readdirSync(`/proc/${pid}/fd`).filter(isSocket).length;
}

describe('berth CLI server', { skip: !isRoot && 'needs root' }, () => {
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cli-server-'));
    daemon = await startBerthd({ prefix: 'berth-cli-server-' });
    assert.equal(berth(['load', '-i', path.join(testImagesDir(), 'docker-archive', 'busybox.tar')]).status, 0);
    await waitFor(() => served(['version']).served, 15_000, 'a command run by the berth CLI server');
  });
  after(async () => {
    spawnSync('pkill', ['-f', `berth-cli-serve ${serverDir}/`]);
    fs.rmSync(serverDir, { recursive: true, force: true });
    await daemon?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('keeps one server, its socket in a directory only its user can enter', () => {
    assert.equal(fs.statSync(serverDir).mode & 0o777, 0o700);
    assert.equal(serverPids().length, 1);
    assert.equal(fs.readlinkSync(`/proc/${serverPids()[0]}/cwd`), '/');
  });

  it('opens no inspector at SIGUSR1 (Node would listen on 127.0.0.1:9229) and goes on serving', async () => {
    const [pid] = serverPids();
    process.kill(pid!, 'SIGUSR1');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const listening = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(listening, new RegExp(`pid=${pid},`), listening);
    assert.deepEqual(serverPids(), [pid]);
  });

  it('prints what the command prints in Node, with the same exit status', () => {
    const logged = `srv-logs-${process.pid}`;
    assert.equal(berth(['run', '--name', logged, '--network', 'none', 'busybox', 'sh', '-c', 'echo one; echo two >&2; echo three']).status, 0);
    const cases = [
      ['logs', logged],
      ['logs', '-n', '1', '-t', logged],
      ['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'],
      ['ps', '-a', '--format', '{{.Image}}'],
      ['images', '--format', '{{.Repository}}:{{.Tag}}'],
      ['inspect', 'no-such-object'],
      ['run', '--no-such-flag', 'busybox'],
      ['version', '--format', '{{.Client.Version}} {{.Server.ApiVersion}}'],
      ['volume', 'ls', '-q'],
      ['history', '--format', '{{.CreatedBy}}', 'busybox'],
      ['system', 'df', '--format', '{{.Type}} {{.TotalCount}}'],
      ['network', 'prune', '-f'],
    ];
    for (const args of cases) {
      const r = served(args);
      const node = berth(args, { env: { BERTH_CLI_SERVER: '0' } });
      assert.ok(r.served, `served: ${args.join(' ')}`);
      assert.deepEqual([r.status, r.stdout, r.stderr], [node.status, node.stdout, node.stderr], args.join(' '));
    }
    const logs = served(['logs', logged]);
    assert.deepEqual([logs.stdout, logs.stderr], ['one\nthree\n', 'two\n']);
    berth(['rm', '-f', logged]);
  });

  it("uses the caller's environment and working directory", () => {
    fs.writeFileSync(path.join(tmp, 'vars.env'), 'FROM_FILE=file\n');
    const r = served(['run', '--rm', '--network', 'none', '-e', 'FROM_ENV', '--env-file', 'vars.env', 'busybox', 'sh', '-c', 'echo $FROM_ENV $FROM_FILE'], {
      env: { FROM_ENV: 'env' },
      cwd: tmp,
    });
    assert.ok(r.served);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'env file\n');
  });

  it("relays the caller's input: run -i and exec -i with piped input, byte for byte, and a prune's question", () => {
    const r = served(['run', '--rm', '-i', '--network', 'none', 'busybox', 'cat'], { input: 'typed\n' });
    assert.ok(r.served);
    assert.deepEqual([r.status, r.stdout], [0, 'typed\n']);
    // 6 MB: more than the server buffers before it asks the client to pause.
    const big = Buffer.alloc(6 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const digest = createHash('md5').update(big).digest('hex');
    const sum = served(['run', '--rm', '-i', '--network', 'none', 'busybox', 'md5sum'], { input: big });
    assert.ok(sum.served);
    assert.equal(sum.stdout.split(' ')[0], digest);
    const name = `srv-exec-${process.pid}`;
    assert.equal(berth(['run', '-d', '--name', name, '--network', 'none', 'busybox', 'sleep', '60']).status, 0);
    try {
      const ex = served(['exec', '-i', name, 'sh', '-c', 'cat; exit 5'], { input: 'to exec\n' });
      assert.ok(ex.served);
      assert.deepEqual([ex.status, ex.stdout], [5, 'to exec\n']);
    } finally {
      berth(['rm', '-f', name]);
    }
    for (const answer of ['n\n', '']) {
      const prune = served(['volume', 'prune'], { input: answer });
      const node = berth(['volume', 'prune'], { input: answer, env: { BERTH_CLI_SERVER: '0' } });
      assert.ok(prune.served);
      assert.deepEqual([prune.status, prune.stdout, prune.stderr], [node.status, node.stdout, node.stderr]);
      assert.match(prune.stdout, /Are you sure you want to continue\? \[y\/N\] $/);
    }
  });

  it('runs -it on a real terminal: its size and a resize, raw mode restored after, the exit status; attach and its detach keys', () => {
    const env = clientEnv();
    const marker = /berth: run by the berth CLI server, pid \d+/;
    for (const where of ['served', 'node']) {
      const r = ptyRun(
        [BERTH, '-D', 'run', '--rm', '-it', '--network', 'none', 'busybox', 'sh'],
        [
          { expect: '# ' },
          // $((6*7)) shows that the typed line reached the shell; stty shows the terminal's size inside.
          { send: 'echo typed-$((6*7)); stty size\r' },
          { expect: 'typed-42\\s+33 101' },
          { resize: [40, 120] },
          { send: 'sleep 0.5; stty size\r' },
          { expect: '40 120' },
          { send: 'exit 3\r' },
        ],
        { env: clientEnv(where === 'node' ? { BERTH_CLI_SERVER: '0' } : {}), timeoutS: 30, size: [33, 101], reportModes: true },
      );
      assert.equal(r.status, 3, `${where}: ${r.stdout}\n${r.stderr}`);
      assert.equal(marker.test(r.stdout), where === 'served', `${where}: ${r.stdout}`);
      assert.match(r.stderr, /modes at the end: icanon=1 echo=1/, `${where}: the terminal is cooked again`);
    }
    const name = `srv-attach-${process.pid}`;
    assert.equal(berth(['run', '-dit', '--name', name, '--network', 'none', 'busybox', 'sh']).status, 0);
    try {
      const r = ptyRun([BERTH, '-D', 'attach', name], [{ send: 'echo att-$((3*3))\r' }, { expect: 'att-9' }, { send: '\u0010\u0011' }], { env, timeoutS: 30, reportModes: true });
      assert.match(r.stdout, marker);
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stdout, /read escape sequence/);
      assert.match(r.stderr, /modes at the end: icanon=1 echo=1/);
      assert.equal(berth(['inspect', '--format', '{{.State.Running}}', name]).stdout, 'true\n', 'detached, not stopped');
    } finally {
      berth(['rm', '-f', name]);
    }
  });

  it("ends a command's connections to the daemon when its client goes away", async () => {
    const [pid] = serverPids();
    const sockets = (): number => serverSockets(pid);
    // At rest it has its listening socket only (the connections of the tests before may still be closing).
    const idle = 1;
    await waitFor(() => sockets() === idle, 5000, 'the server at rest');
    const env = clientEnv();
    const name = `srv-gone-${process.pid}`;
    const client = spawn(BERTH, ['run', '--rm', '--name', name, '--network', 'none', 'busybox', 'sleep', '60'], { env, stdio: 'ignore' });
    try {
      // Its client, the attach and the wait.
      await waitFor(() => sockets() >= idle + 3, 10_000, 'the served run attached');
      // SIGKILL: run passes SIGINT on to the container (--sig-proxy), whose sleep ignores it.
      client.kill('SIGKILL');
      await waitFor(() => sockets() === idle, 5000, "the server's connections for it closed");
    } finally {
      client.kill('SIGKILL');
      berth(['rm', '-f', name]);
    }
  });

  it('ends logs -f on Ctrl-C with status 0, as in Node, and gives the command up', async () => {
    const [pid] = serverPids();
    const name = `srv-follow-${process.pid}`;
    assert.equal(berth(['run', '-d', '--name', name, '--network', 'none', 'busybox', 'sh', '-c', 'echo ready; sleep 60']).status, 0);
    const env = clientEnv();
    /** Follows the logs until the first line, then interrupts; resolves with the exit status. */
    const followThenInterrupt = async (extraEnv: NodeJS.ProcessEnv, program: string): Promise<number | null> => {
      const client = spawn(BERTH, ['logs', '-f', name], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      client.stdout.on('data', (d) => (out += d));
      const closed = new Promise<number | null>((resolve) => client.on('close', (code) => resolve(code)));
      await waitFor(() => out === 'ready\n', 10_000, 'the followed output');
      assert.ok(fs.readlinkSync(`/proc/${client.pid}/exe`).endsWith(program), `${program} runs it`);
      client.kill('SIGINT');
      return closed;
    };
    try {
      assert.equal(await followThenInterrupt({ BERTH_CLI_SERVER: '0' }, 'node'), 0);
      assert.equal(await followThenInterrupt({}, 'native/build/berth'), 0);
      await waitFor(() => serverSockets(pid) === 1, 5000, "the server's connections for it closed");
    } finally {
      berth(['rm', '-f', name]);
    }
  });

  it('refuses a client of another identity (it runs the command itself)', async () => {
    const sock = path.join(serverDir, fs.readdirSync(serverDir).find((f) => f.endsWith('.sock'))!);
    const reply = await rawRequest(sock, ['/', 'mnt:1 pid:1 user:1 cgroup:1 net:1 root:1:1 uid:0 gid:0 groups:0', '0', '0 0 0', '0 0 0', '0', 'ps']);
    assert.equal(reply, 'fallback identity\n');
  });
});
