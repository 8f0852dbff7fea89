/**
 * berthd driven by the real docker CLI (v28; the 20.10 client where noted): the container
 * lifecycle of issue 4's first acceptance point. A private berthd per file (test/helpers/berthd.ts),
 * images loaded from the test images' docker-archive tarballs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { socketRequest } from '../helpers/http.js';
import { DOCKER, dockerdSkip, poll, ptyRun, sleep, shellSteps, which } from '../helpers/engines.js';

const skip = dockerdSkip;
const DOCKER_20 = which('/usr/bin/docker');

describe('berthd with the docker CLI', { skip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-life-' });
    d.loadImages('busybox', 'multilayer');
  });
  after(async () => {
    await d?.stop();
  });

  it('run --rm prints the output, exits 0 and leaves no container, mount or runtime state', () => {
    const r = d.docker(['run', '--rm', 'busybox', 'echo', 'hi']);
    assert.equal(r.status, 0, r.stderr + d.logTail());
    assert.equal(r.stdout, 'hi\n');
    assert.equal(d.dockerOk(['ps', '-aq']), '');
    assert.deepEqual(d.mountsLeft(), []);
    assert.deepEqual(fs.readdirSync(path.join(d.dir, 'exec', 'runtime')), []);
  });

  it('a start prepared at create: its start uses it; rm, cp or a rename before the start undo it and leave nothing behind', async () => {
    const runtimeDir = (id: string): string => path.join(d.dir, 'exec', 'runtime', id);
    const shimPidFile = (id: string): string => path.join(d.dir, 'exec', 'c', id.slice(0, 24), 'shim', 'shim.pid');
    const prepared = async (id: string): Promise<number> => {
      assert.ok(await poll(() => fs.existsSync(shimPidFile(id)) && fs.existsSync(runtimeDir(id)), 5000, 10), `no start prepared for ${id}\n${d.logTail()}`);
      return Number(fs.readFileSync(shimPidFile(id), 'utf8'));
    };
    const nothingLeft = (id: string): void => {
      assert.deepEqual(d.mountsLeft(), []);
      assert.equal(fs.existsSync(runtimeDir(id)), false, 'no runtime record');
      assert.equal(fs.existsSync(path.join('/sys/fs/cgroup/pids', d.cgroupParent, id)), false, 'no cgroup');
      const shims = spawnSync('pgrep', ['-f', `berth-shim ${path.dirname(shimPidFile(id))}`], { encoding: 'utf8' }).stdout.trim();
      assert.equal(shims, '', 'no shim');
    };

    // Used: the shim started at create is the one that runs the container.
    let id = d.dockerOk(['create', '--network', 'none', 'busybox', 'sleep', '30']).trim();
    const shimPid = await prepared(id);
    d.dockerOk(['start', id]);
    assert.equal(Number(fs.readFileSync(shimPidFile(id), 'utf8')), shimPid, 'the prepared shim runs it');
    assert.equal(Number(d.dockerOk(['inspect', '-f', '{{.State.Pid}}', id]).trim()) > 0, true);
    d.dockerOk(['rm', '-f', id]);
    nothingLeft(id);

    // Removed before any start: all of it undone.
    id = d.dockerOk(['create', '--network', 'none', 'busybox', 'true']).trim();
    const unused = await prepared(id);
    d.dockerOk(['rm', id]);
    await poll(() => !fs.existsSync(`/proc/${unused}`), 3000);
    nothingLeft(id);

    // docker cp into it first (the rootfs is mounted for the copy alone), then a start that sees
    // the file; with --rm, the prepared mount was volatile, and overlayfs mounts such a layer
    // again only once told that it was cleanly unmounted.
    id = d.dockerOk(['create', '--rm', '--network', 'none', 'busybox', 'cat', '/copied']).trim();
    await prepared(id);
    const file = path.join(d.dir, 'copied');
    fs.writeFileSync(file, 'copied in\n');
    d.dockerOk(['cp', file, `${id}:/copied`]);
    assert.equal(d.dockerOk(['start', '-a', id]), 'copied in\n');
    assert.ok(await poll(() => d.dockerOk(['ps', '-aq']).trim() === '', 5000), 'removed after its exit');

    // Renamed between create and start: prepared for the old name, started afresh.
    id = d.dockerOk(['create', '--name', 'prep-old', '--network', 'none', 'busybox', 'sleep', '30']).trim();
    const old = await prepared(id);
    d.dockerOk(['rename', 'prep-old', 'prep-new']);
    d.dockerOk(['start', 'prep-new']);
    assert.notEqual(Number(fs.readFileSync(shimPidFile(id), 'utf8')), old, 'a new shim');
    assert.equal(d.dockerOk(['exec', 'prep-new', 'hostname']), `${id.slice(0, 12)}\n`);
    d.dockerOk(['rm', '-f', 'prep-new']);
    nothingLeft(id);

    // A container with a volume is not prepared (its volume is mounted and announced at start).
    id = d.dockerOk(['create', '--network', 'none', '-v', '/data', 'busybox', 'true']).trim();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fs.existsSync(runtimeDir(id)), false);
    d.dockerOk(['rm', '-v', id]);
  });

  it("an exited container's runtime record and cgroups go a moment after its exit; a start at once waits for them and runs", async () => {
    const runtimeDir = (id: string): string => path.join(d.dir, 'exec', 'runtime', id);
    const cgroup = (id: string): string => path.join('/sys/fs/cgroup/pids', d.cgroupParent, id);
    const id = d.dockerOk(['create', '--network', 'none', 'busybox', 'sh', '-c', 'echo run']).trim();
    const api = (method: string, url: string) => socketRequest(d.socket, method, `/v1.44/containers/${id}${url}`);
    for (let i = 0; i < 3; i++) {
      // A start right after the wait's answer: the release begun at the exit is hurried, not raced.
      const waited = api('POST', '/wait?condition=next-exit');
      assert.equal((await api('POST', '/start')).status, 204, d.logTail());
      assert.equal(JSON.parse((await waited).body).StatusCode, 0);
    }
    assert.equal(d.dockerOk(['logs', id]), 'run\nrun\nrun\n');
    assert.ok(await poll(() => !fs.existsSync(runtimeDir(id)) && !fs.existsSync(cgroup(id)), 3000), 'runtime record and cgroup gone after the exit');
    d.dockerOk(['rm', id]);
  });

  it('the writable layer of a --rm container is volatile (never synced: it goes at the exit), a kept one is not', () => {
    const rootSuperOptions = (args: string[]): string => {
      const mountinfo = d.dockerOk(['run', ...args, 'busybox', 'cat', '/proc/self/mountinfo']);
      const root = mountinfo.split('\n').find((l) => l.split(' ')[4] === '/');
      assert.ok(root, mountinfo);
      return root.split(' - ')[1]!;
    };
    assert.match(rootSuperOptions(['--rm']), /^overlay .*,(fsync=)?volatile(,|$)/); // fsync=volatile on Linux >= 6.6
    const kept = rootSuperOptions(['--name', 'kept-layer']);
    assert.match(kept, /^overlay /);
    assert.doesNotMatch(kept, /volatile/);
    d.dockerOk(['rm', 'kept-layer']);
  });

  it('run passes the exit code, stdout and stderr apart', () => {
    const r = d.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.status, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('a --network none container has its loopback up, as with dockerd', () => {
    const lo = d.dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ip -o -4 addr show dev lo; ip -o link show dev lo']);
    assert.match(lo, /inet 127\.0\.0\.1\/8/);
    assert.match(lo, /<LOOPBACK,UP,LOWER_UP>/);
    // Something listening on 127.0.0.1 is reachable there.
    const served = d.dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo hello | nc -l -p 8080 127.0.0.1 & sleep 0.3; nc 127.0.0.1 8080 </dev/null']);
    assert.equal(served, 'hello\n');
  });

  it('logs -t: a line written in pieces has one timestamp, as dockerd gives it', async () => {
    d.dockerOk(['run', '-d', '--name', 'pieces', 'busybox', 'sh', '-c', 'printf partial; sleep 0.5; echo done; echo next; sleep 100']);
    try {
      assert.ok(await poll(() => d.dockerOk(['logs', 'pieces']).includes('next'), 10_000));
      const stamped = d.dockerOk(['logs', '-t', 'pieces']).replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TS');
      assert.equal(stamped, 'TS partialdone\nTS next\n');
    } finally {
      d.docker(['rm', '-f', 'pieces']);
    }
  });

  it('the 20.10 client runs too', { skip: !DOCKER_20 || DOCKER_20 === '/usr/local/bin/docker' ? 'no docker 20.10 client' : false }, () => {
    const run = spawnSync(DOCKER_20!, ['run', '--rm', 'busybox', 'echo', 'from-20.10'], { env: d.env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'from-20.10\n');
    const ps = spawnSync(DOCKER_20!, ['ps', '-a'], { env: d.env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(ps.status, 0, ps.stderr);
  });

  it('run -d, ps, logs, logs -f, top, inspect, stop, start, restart, kill, rm -f', async () => {
    const id = d.dockerOk(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']).trim();
    assert.match(id, /^[a-f0-9]{64}$/);
    assert.match(d.dockerOk(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']), new RegExp(`^${id.slice(0, 12)} ticker Up `, 'm'));
    assert.ok(await poll(() => d.dockerOk(['logs', 'ticker']).includes('tick 2'), 5000));
    assert.equal(d.dockerOk(['logs', '--tail', '1', 'ticker']).split('\n').filter(Boolean).length, 1);
    const top = d.dockerOk(['top', 'ticker']);
    assert.match(top, /sh -c trap/);
    assert.match(top, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/m, "ps -ef's columns, as dockerd");
    assert.match(d.dockerOk(['top', 'ticker', '-o', 'pid,comm']), /^PID\s+COMMAND\n\d+\s+sh$/m, "the client's ps arguments");
    // ps's complaint in dockerd's words: its first line, not its usage text.
    assert.equal(d.docker(['top', 'ticker', 'bogus-arg']).stderr.trim(), 'Error response from daemon: ps: error: unsupported option (BSD syntax)');
    assert.equal(d.docker(['top', 'ticker', '-o', 'comm']).stderr.trim(), "Error response from daemon: Couldn't find PID field in ps output");
    // dockerd logs a "top" event for each top.
    const topEvents = d.dockerOk(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=ticker', '--filter', 'event=top', '--format', '{{.Action}}']);
    assert.ok(topEvents.split('\n').filter((a) => a === 'top').length >= 2, topEvents);
    assert.equal(d.docker(['ps', '--filter', 'exited=x']).stderr.trim(), 'Error response from daemon: strconv.Atoi: parsing "x": invalid syntax');
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Running}} {{.Name}} {{.Config.Image}}', 'ticker']).trim(), 'true /ticker busybox');
    const pid = Number(d.dockerOk(['inspect', '-f', '{{.State.Pid}}', 'ticker']));
    assert.ok(fs.existsSync(`/proc/${pid}`), 'the reported pid is the container process');

    // logs -f follows, and ends when the container stops (the trap prints "bye" and exits 0).
    const follow = spawn(DOCKER!, ['logs', '-f', '--tail', '0', 'ticker'], { env: d.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let followed = '';
    follow.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    const followEnded = new Promise<number | null>((resolve) => follow.on('exit', resolve));
    assert.ok(await poll(() => /tick \d+\n.*tick/s.test(followed), 5000), 'logs -f shows new lines');
    const t0 = Date.now();
    d.dockerOk(['stop', '-t', '5', 'ticker']);
    assert.ok(Date.now() - t0 < 4000, 'a container handling SIGTERM stops at once');
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'ticker']).trim(), 'exited 0');
    assert.match(d.dockerOk(['logs', '--tail', '1', 'ticker']), /bye/);
    assert.equal(await followEnded, 0, 'logs -f returns when the container stops');
    assert.match(followed, /bye\n$/);
    // Unmounted once the exit is handled, which goes on a moment after stop returns (as dockerd's Cleanup).
    assert.ok(await poll(() => d.mountsLeft().length === 0, 2000), `the rootfs is unmounted after the exit: ${d.mountsLeft().join(' ')}`);

    d.dockerOk(['start', 'ticker']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Running}}', 'ticker']).trim(), 'true');
    const pid1 = d.dockerOk(['inspect', '-f', '{{.State.Pid}}', 'ticker']).trim();
    d.dockerOk(['restart', '-t', '1', 'ticker']);
    const pid2 = d.dockerOk(['inspect', '-f', '{{.State.Pid}}', 'ticker']).trim();
    assert.notEqual(pid1, pid2);
    d.dockerOk(['kill', 'ticker']);
    assert.ok(await poll(() => d.dockerOk(['inspect', '-f', '{{.State.Status}}', 'ticker']).trim() === 'exited', 5000));
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.ExitCode}}', 'ticker']).trim(), '137');
    d.dockerOk(['start', 'ticker']);
    d.dockerOk(['rm', '-f', 'ticker']);
    assert.equal(d.docker(['inspect', 'ticker']).status, 1);
    assert.deepEqual(d.mountsLeft(), []);
  });

  it('stop sends SIGKILL after the timeout to a PID 1 that ignores SIGTERM', () => {
    d.dockerOk(['run', '-d', '--name', 'stubborn', 'busybox', 'sleep', '1000']);
    const t0 = Date.now();
    d.dockerOk(['stop', '-t', '1', 'stubborn']);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 5000, `took ${took} ms`);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.ExitCode}}', 'stubborn']).trim(), '137');
    d.dockerOk(['rm', 'stubborn']);
  });

  it('wait prints the exit code; rm refuses a running container without -f', () => {
    d.dockerOk(['run', '-d', '--name', 'waiter', 'busybox', 'sh', '-c', 'sleep 0.3; exit 7']);
    const rm = d.docker(['rm', 'waiter']);
    assert.notEqual(rm.status, 0);
    assert.match(rm.stderr, /cannot remove a running container/i);
    assert.equal(d.dockerOk(['wait', 'waiter']).trim(), '7');
    d.dockerOk(['rm', 'waiter']);
  });

  it('pause and unpause freeze the container', () => {
    d.dockerOk(['run', '-d', '--name', 'frozen', 'busybox', 'sleep', '1000']);
    d.dockerOk(['pause', 'frozen']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}}', 'frozen']).trim(), 'paused');
    const exec = d.docker(['exec', 'frozen', 'true']);
    assert.match(exec.stderr, /Container frozen is paused, unpause the container before exec/, 'named as given, as dockerd');
    assert.match(d.docker(['rm', 'frozen']).stderr, /You cannot remove a paused container [0-9a-f]{64}\. Unpause and then stop/);
    d.dockerOk(['unpause', 'frozen']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}}', 'frozen']).trim(), 'running');
    d.dockerOk(['rm', '-f', 'frozen']);
  });

  it('kill of a paused container: SIGKILL or its stop signal end it (it is resumed, as dockerd), another signal waits for the unpause', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const state = (name: string): string => d.dockerOk(['inspect', '-f', '{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}', name]).trim();
    d.dockerOk(['run', '-d', '--name', 'frozen-kill', 'busybox', 'sleep', '1000']);
    d.dockerOk(['pause', 'frozen-kill']);
    d.dockerOk(['kill', 'frozen-kill']);
    assert.ok(await poll(() => state('frozen-kill') === 'exited false 137', 5000), state('frozen-kill'));
    // A shell that exits 3 on USR1, its stop signal; HUP (sent while paused) it traps and notes.
    // Pending signals arrive lowest number first: HUP (1) before USR1 (10).
    const script = "trap 'echo got-hup' HUP; trap 'exit 3' USR1; echo ready; while :; do sleep 0.1; done";
    d.dockerOk(['run', '-d', '--name', 'frozen-sig', '--stop-signal', 'USR1', 'busybox', 'sh', '-c', script]);
    assert.ok(await poll(() => d.dockerOk(['logs', 'frozen-sig']).includes('ready'), 5000));
    d.dockerOk(['pause', 'frozen-sig']);
    d.dockerOk(['kill', '-s', 'HUP', 'frozen-sig']);
    await sleep(300);
    assert.equal(state('frozen-sig'), 'paused true 0', 'not the stop signal: it stays paused');
    assert.doesNotMatch(d.dockerOk(['logs', 'frozen-sig']), /got-hup/);
    d.dockerOk(['kill', '-s', 'USR1', 'frozen-sig']);
    assert.ok(await poll(() => state('frozen-sig') === 'exited false 3', 5000), state('frozen-sig'));
    assert.match(d.dockerOk(['logs', 'frozen-sig']), /got-hup/, 'the pending HUP was delivered at the resume');
    const until = Math.floor(Date.now() / 1000) + 1;
    const actions = d.dockerOk(['events', '--since', String(since), '--until', String(until), '--filter', 'container=frozen-sig', '--format', '{{.Action}}']).split('\n').filter(Boolean);
    assert.deepEqual(actions.slice(-5), ['pause', 'kill', 'kill', 'unpause', 'die'], "dockerd's order");
    d.dockerOk(['rm', 'frozen-kill', 'frozen-sig']);
  });

  it('merges the image config with the request: env, workdir, user, entrypoint, hostname', async () => {
    const out = d.dockerOk(['run', '--rm', '-e', 'FOO=bar', '-w', '/tmp', '-u', '65534:65534', '-h', 'box', 'busybox', 'sh', '-c', 'echo $FOO $(pwd) $(id -u):$(id -g) $(hostname) $HOME']);
    assert.equal(out.trim(), 'bar /tmp 65534:65534 box /nonexistent', 'HOME from the passwd entry, as Docker');
    assert.equal(d.dockerOk(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'a', 'b']).trim(), 'a b');
    assert.equal(d.dockerOk(['run', '--rm', '-u', 'nobody', 'busybox', 'id', '-un']).trim(), 'nobody');
    assert.equal(d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', 'echo $HOME $HOSTNAME | wc -w']).trim(), '2');
    // /.dockerenv, as in a Docker container (from the image's init layer): not a change of its own.
    assert.equal(d.docker(['run', '--rm', 'busybox', 'test', '-f', '/.dockerenv']).status, 0);
    const id = d.dockerOk(['run', '-d', 'busybox', 'sleep', '100']).trim();
    try {
      assert.equal(d.dockerOk(['diff', id]).trim(), '');
      // dockerd's nil lists: no changes and no update warnings are null (docker-py hands them on).
      assert.equal((await socketRequest(d.socket, 'GET', `/containers/${id}/changes`)).body.trim(), 'null');
      const update = await socketRequest(d.socket, 'POST', `/containers/${id}/update`, { 'Content-Type': 'application/json' }, '{"CpuShares":512}');
      assert.deepEqual(JSON.parse(update.body), { Warnings: null });
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
  });

  it("inspect as dockerd's: what it records at create (/dev/shm's size, cgroup namespace mode, the CLI's unset numbers and no volumes as null), NetworkSettings, an image's layers, a plain volume", async () => {
    const getJson = async (p: string): Promise<unknown> => JSON.parse((await socketRequest(d.socket, 'GET', p)).body);
    // As dockerd 20.10 shows a plain `docker run -d busybox` made by the same docker CLI (v28 sends
    // MemorySwappiness -1, PidsLimit 0 and Volumes {}, and none of the defaults).
    const id = d.dockerOk(['create', 'busybox', 'true']).trim();
    try {
      const [c] = JSON.parse(d.dockerOk(['inspect', id])) as Array<{ HostConfig: Record<string, unknown>; Config: Record<string, unknown> }>;
      const cgroupV2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
      assert.deepEqual([c.HostConfig.ShmSize, c.HostConfig.CgroupnsMode, c.HostConfig.MemorySwappiness, c.HostConfig.PidsLimit, c.Config.Volumes], [64 * 1024 * 1024, cgroupV2 ? 'private' : 'host', null, null, null]);
      const set = d.dockerOk(['create', '--shm-size', '1m', '--memory-swappiness', '10', '--pids-limit', '5', '--cgroupns', 'private', '-v', '/data', 'busybox', 'true']).trim();
      assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.ShmSize}} {{.HostConfig.CgroupnsMode}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.PidsLimit}} {{json .Config.Volumes}}', set]).trim(), `${1 << 20} private 10 5 {"/data":{}}`);
      d.dockerOk(['rm', '-v', set]);
      // Made through the API with nothing but an image and a command (docker-py's way): every
      // HostConfig field dockerd 20.10 answers is there at its zero value; docker-py's null
      // Healthcheck fields are dropped, as dockerd's omitempty does.
      const bare = JSON.parse((await socketRequest(d.socket, 'POST', '/containers/create', { 'Content-Type': 'application/json' }, JSON.stringify({ Image: 'busybox', Cmd: ['true'], Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9, Timeout: null, StartPeriod: null, Retries: 2 } }))).body) as { Id: string };
      const bareInspect = (await getJson(`/v1.41/containers/${bare.Id}/json`)) as { HostConfig: Record<string, unknown>; Config: { Healthcheck: unknown } };
      const dockerd2010HostConfig = ['AutoRemove', 'Binds', 'BlkioDeviceReadBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteBps', 'BlkioDeviceWriteIOps', 'BlkioWeight', 'BlkioWeightDevice', 'CapAdd', 'CapDrop', 'Cgroup', 'CgroupParent', 'CgroupnsMode', 'ConsoleSize', 'ContainerIDFile', 'CpuCount', 'CpuPercent', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'CpuShares', 'CpusetCpus', 'CpusetMems', 'DeviceCgroupRules', 'DeviceRequests', 'Devices', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'IOMaximumBandwidth', 'IOMaximumIOps', 'IpcMode', 'Isolation', 'Links', 'LogConfig', 'MaskedPaths', 'Memory', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'NanoCpus', 'NetworkMode', 'OomKillDisable', 'OomScoreAdj', 'PidMode', 'PidsLimit', 'PortBindings', 'Privileged', 'PublishAllPorts', 'ReadonlyPaths', 'ReadonlyRootfs', 'RestartPolicy', 'SecurityOpt', 'ShmSize', 'UTSMode', 'Ulimits', 'UsernsMode', 'VolumeDriver', 'VolumesFrom'];
      assert.deepEqual(dockerd2010HostConfig.filter((k) => !(k in bareInspect.HostConfig)), []);
      assert.deepEqual([bareInspect.HostConfig.Privileged, bareInspect.HostConfig.CapAdd, bareInspect.HostConfig.Memory], [false, null, 0]);
      assert.deepEqual(bareInspect.Config.Healthcheck, { Test: ['CMD', 'true'], Interval: 1e9, Retries: 2 });
      d.dockerOk(['rm', bare.Id]);
      // NetworkSettings has every field dockerd gives up to API 1.51; SandboxKey names the
      // running container's network namespace (nsenter --net=... uses it).
      const up = d.dockerOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '100']).trim();
      const [r] = JSON.parse(d.dockerOk(['inspect', up])) as Array<{ NetworkSettings: Record<string, unknown> }>;
      const inside = d.dockerOk(['exec', up, 'readlink', '/proc/self/ns/net']).trim();
      // Its /etc files are on the exec root (a tmpfs: each start writes them), bound into it.
      const hostsPath = d.dockerOk(['inspect', '-f', '{{.HostsPath}}', up]).trim();
      assert.ok(hostsPath.startsWith(path.join(d.dir, 'exec') + '/'), hostsPath);
      assert.equal(fs.readFileSync(hostsPath, 'utf8'), d.dockerOk(['exec', up, 'cat', '/etc/hosts']));
      assert.equal(fs.readlinkSync(String(r.NetworkSettings.SandboxKey)), inside, 'SandboxKey is the container\'s network namespace');
      // On the "none" network, as dockerd lists it: its ID once run, an endpoint while it runs.
      const noneId = d.dockerOk(['network', 'inspect', '-f', '{{.Id}}', 'none']).trim();
      const onNone = (ref: string): { NetworkID: string; EndpointID: string; IPAddress: string } => JSON.parse(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks}}', ref])).none;
      assert.deepEqual({ ...onNone(up), EndpointID: onNone(up).EndpointID.length }, { ...onNone(up), NetworkID: noneId, IPAddress: '', EndpointID: 64 });
      const created = d.dockerOk(['create', '--network', 'none', 'busybox', 'true']).trim();
      assert.deepEqual([onNone(created).NetworkID, onNone(created).EndpointID], ['', ''], 'a created container: not yet');
      assert.equal(d.dockerOk(['inspect', '-f', '{{.HostsPath}}|{{.HostnamePath}}|{{.ResolvConfPath}}', created]).trim(), '||', 'no /etc files before the first start, as dockerd');
      d.dockerOk(['rm', created]);
      d.dockerOk(['stop', '-t', '0', up]);
      assert.deepEqual([onNone(up).NetworkID, onNone(up).EndpointID], [noneId, ''], 'an exited one: the network kept, the endpoint gone');
      d.dockerOk(['rm', '-f', up]);
      const fields = ['Bridge', 'SandboxID', 'HairpinMode', 'LinkLocalIPv6Address', 'LinkLocalIPv6PrefixLen', 'Ports', 'SandboxKey', 'SecondaryIPAddresses', 'SecondaryIPv6Addresses', 'EndpointID', 'Gateway', 'GlobalIPv6Address', 'GlobalIPv6PrefixLen', 'IPAddress', 'IPPrefixLen', 'IPv6Gateway', 'MacAddress', 'Networks'];
      assert.deepEqual(fields.filter((f) => !(f in r.NetworkSettings)), []);
      assert.match(String(r.NetworkSettings.SandboxKey), /^\/proc\/\d+\/ns\/net$/);
      assert.match(String(r.NetworkSettings.SandboxID), /^[0-9a-f]{64}$/, 'a running container has a sandbox ID, as with dockerd');
      // An image's layers as overlay2 shows them: UpperDir the top one, LowerDir the rest.
      const [img] = JSON.parse(d.dockerOk(['image', 'inspect', 'multilayer'])) as Array<{ GraphDriver: { Data: { UpperDir: string; LowerDir?: string } }; RootFS: { Layers: string[] } }>;
      const lowers = img.GraphDriver.Data.LowerDir?.split(':') ?? [];
      assert.equal(1 + lowers.length, img.RootFS.Layers.length);
      for (const dir of [img.GraphDriver.Data.UpperDir, ...lowers]) assert.ok(fs.statSync(dir).isDirectory(), dir);
      const [bb] = JSON.parse(d.dockerOk(['image', 'inspect', 'busybox'])) as Array<{ GraphDriver: { Data: { UpperDir: string; LowerDir?: string; MergedDir: string; WorkDir: string } } }>;
      assert.ok(fs.existsSync(path.join(bb.GraphDriver.Data.UpperDir, 'bin/busybox')) && bb.GraphDriver.Data.LowerDir === undefined);
      // overlay2's four names, as dockerd gives them for an image (merged and work beside the layer's files).
      assert.deepEqual(Object.keys(bb.GraphDriver.Data).sort(), ['MergedDir', 'UpperDir', 'WorkDir']);
      assert.equal(path.dirname(bb.GraphDriver.Data.MergedDir), path.dirname(bb.GraphDriver.Data.UpperDir));
      // A volume without labels or options: null for both, as dockerd; CreatedAt to the second.
      d.dockerOk(['volume', 'create', 'plainvol']);
      const [vol] = JSON.parse(d.dockerOk(['volume', 'inspect', 'plainvol'])) as Array<Record<string, unknown>>;
      d.dockerOk(['volume', 'rm', 'plainvol']);
      assert.deepEqual([vol.Labels, vol.Options], [null, null]);
      assert.match(String(vol.CreatedAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // An image with a tag and no digest (loaded): RepoDigests null before API 1.43, [] after.
      const listed = async (version: string) => ((await getJson(`/v${version}/images/json`)) as Array<{ RepoTags: string[] | null; RepoDigests: string[] | null }>).find((i) => i.RepoTags?.includes('busybox:latest'));
      assert.deepEqual((await listed('1.41'))?.RepoDigests, null);
      assert.deepEqual((await listed('1.44'))?.RepoDigests, []);
    } finally {
      d.dockerOk(['rm', id]);
    }
  });

  it('multi-layer images show their merged tree with whiteouts applied', () => {
    const out = d.dockerOk(['run', '--rm', 'multilayer', 'sh', '-c', 'ls /data | sort | tr "\\n" " "']);
    assert.ok(out.length > 0);
  });

  it('--read-only, --tmpfs, --memory and --pids-limit reach the container', () => {
    const ro = d.docker(['run', '--rm', '--read-only', '--tmpfs', '/scratch', 'busybox', 'sh', '-c', 'touch /x 2>/dev/null && echo wrote-root; touch /scratch/y && echo wrote-tmpfs']);
    assert.equal(ro.stdout, 'wrote-tmpfs\n', ro.stderr);
    const id = d.dockerOk(['run', '-d', '-m', '64m', '--pids-limit', '50', 'busybox', 'sleep', '100']).trim();
    const limit = fs.readFileSync(`/sys/fs/cgroup/memory${d.cgroupParent}/${id}/memory.limit_in_bytes`, 'utf8').trim();
    assert.equal(limit, String(64 * 1024 * 1024));
    assert.equal(fs.readFileSync(`/sys/fs/cgroup/pids${d.cgroupParent}/${id}/pids.max`, 'utf8').trim(), '50');
    d.dockerOk(['rm', '-f', id]);
    assert.ok(!fs.existsSync(`/sys/fs/cgroup/memory${d.cgroupParent}/${id}`), 'the cgroup goes with the container');
  });

  it('volumes: named data outlives the container, -v removes only anonymous ones', () => {
    d.dockerOk(['volume', 'create', 'keep']);
    assert.match(d.dockerOk(['volume', 'ls', '--format', '{{.Name}}']), /^keep$/m);
    d.dockerOk(['run', '--rm', '-v', 'keep:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/file']);
    assert.equal(d.dockerOk(['run', '--rm', '-v', 'keep:/data:ro', 'busybox', 'cat', '/data/file']), 'persisted\n');
    const mountpoint = d.dockerOk(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'keep']).trim();
    assert.equal(fs.readFileSync(path.join(mountpoint, 'file'), 'utf8'), 'persisted\n');
    const id = d.dockerOk(['create', '-v', 'keep:/named', '-v', '/anon', 'busybox', 'true']).trim();
    const anon = JSON.parse(d.dockerOk(['inspect', '-f', '{{json .Mounts}}', id])).find((m: { Destination: string }) => m.Destination === '/anon').Name as string;
    assert.match(anon, /^[a-f0-9]{64}$/);
    const inUse = d.docker(['volume', 'rm', 'keep']);
    assert.notEqual(inUse.status, 0, 'a volume in use is not removed');
    d.dockerOk(['rm', '-v', id]);
    const names = d.dockerOk(['volume', 'ls', '-q']).split('\n');
    assert.ok(names.includes('keep') && !names.includes(anon));
    d.dockerOk(['volume', 'rm', 'keep']);
    assert.equal(d.docker(['volume', 'inspect', 'keep']).status, 1);
    // A volume over /etc: the image's /etc copied in, and /etc/hostname, hosts and resolv.conf
    // mounted on top of it, not hidden beneath it (mounts go parents first, as moby sorts them).
    const etc = d.dockerOk(['run', '--rm', '--hostname', 'etcvol', '-v', 'etcvol:/etc', 'busybox', 'sh', '-c', 'cat /etc/hostname; ls /etc | tr "\\n" " "']);
    assert.equal(etc, 'etcvol\ngroup hostname hosts mtab passwd resolv.conf ', "as dockerd's: the image's /etc and its init layer's");
    d.dockerOk(['volume', 'rm', 'etcvol']);
  });

  it("the image's content goes into an empty volume at create, as dockerd (before the container ever starts); not with nocopy, not into one with data", () => {
    const list = (volume: string): string => d.dockerOk(['run', '--rm', '-v', `${volume}:/x`, 'busybox', 'sh', '-c', 'ls /x | tr "\\n" " "']);
    const first = d.dockerOk(['create', '-v', 'atcreate:/etc', 'busybox', 'true']).trim();
    assert.equal(list('atcreate'), 'group hostname hosts mtab passwd resolv.conf ');
    // Another container's create over a volume with data: nothing copied.
    const second = d.dockerOk(['create', '-v', 'atcreate:/bin', 'busybox', 'true']).trim();
    assert.doesNotMatch(list('atcreate'), /busybox/);
    const nocopy = d.dockerOk(['create', '-v', 'nocopied:/etc:nocopy', 'busybox', 'true']).trim();
    assert.equal(list('nocopied'), '');
    // An anonymous one (from -v or the image's VOLUME), seen through --volumes-from.
    const anon = d.dockerOk(['create', '-v', '/etc', 'busybox', 'true']).trim();
    const source = d.dockerOk(['inspect', '-f', '{{range .Mounts}}{{.Source}}{{end}}', anon]).trim();
    assert.match(fs.readFileSync(path.join(source, 'passwd'), 'utf8'), /^root:/);
    d.dockerOk(['rm', '-v', first, second, nocopy, anon]);
    d.dockerOk(['volume', 'rm', 'atcreate', 'nocopied']);
  });

  it('bind propagation: a slave bind needs a shared host mount, as dockerd says, and then sees mounts made later', async () => {
    const dir = fs.mkdtempSync(path.join(d.dir, 'prop-'));
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status, 0);
    try {
      assert.equal(spawnSync('mount', ['--make-private', dir]).status, 0);
      const spec = `type=bind,src=${dir},dst=/m,bind-propagation=rslave`;
      const refused = d.docker(['run', '--rm', '--mount', spec, 'busybox', 'true']);
      assert.equal(refused.status, 125);
      assert.match(refused.stderr, new RegExp(`path ${dir} is mounted on ${dir} but it is not a shared or slave mount`));
      assert.equal(spawnSync('mount', ['--make-shared', dir]).status, 0);
      const id = d.dockerOk(['run', '-d', '--mount', spec, 'busybox', 'sleep', '100']).trim();
      const late = path.join(dir, 'late');
      fs.mkdirSync(late);
      assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', late]).status, 0);
      fs.writeFileSync(path.join(late, 'f'), 'seen\n');
      assert.equal(d.dockerOk(['exec', id, 'cat', '/m/late/f']), 'seen\n', 'a mount made on the host after the start reached the container');
      d.dockerOk(['rm', '-f', id]);
    } finally {
      spawnSync('umount', ['-l', path.join(dir, 'late')]);
      spawnSync('umount', ['-l', dir]);
    }
  });

  it('bind mounts, read-only binds', () => {
    const host = fs.mkdtempSync(path.join(d.dir, 'bind-'));
    fs.writeFileSync(path.join(host, 'in'), 'from host\n');
    assert.equal(d.dockerOk(['run', '--rm', '-v', `${host}:/h`, 'busybox', 'sh', '-c', 'cat /h/in; echo back > /h/out']), 'from host\n');
    assert.equal(fs.readFileSync(path.join(host, 'out'), 'utf8'), 'back\n');
    const ro = d.docker(['run', '--rm', '-v', `${host}:/h:ro`, 'busybox', 'touch', '/h/x']);
    assert.notEqual(ro.status, 0);
    // A bind holding the daemon's roots (as `-v /:/host` does): rslave, as dockerd gives it (it
    // then falls back to private where, as here, the host's mount is private); other modes refused.
    const holder = d.dockerOk(['run', '-d', '-v', `${d.dir}:/d:ro`, 'busybox', 'sleep', '100']).trim();
    try {
      assert.equal(d.dockerOk(['inspect', '-f', '{{range .Mounts}}{{.Propagation}}{{end}}', holder]).trim(), 'rslave');
      assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Running}}', holder]).trim(), 'true');
    } finally {
      d.dockerOk(['rm', '-f', holder]);
    }
    const refused = d.docker(['create', '-v', `${path.join(d.dir, 'data')}:/d:rprivate`, 'busybox']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root/);
  });

  it('--mount options: tmpfs size and mode, recursively read-only binds (API 1.44; top-only at 1.43 or when asked), non-recursive binds, volume-nocopy and labels', () => {
    const tmpfs = d.dockerOk(['run', '--rm', '--mount', 'type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=0700', 'busybox', 'sh', '-c', 'stat -c %a /t; df -k /t | tail -1']);
    const [mode, df] = tmpfs.trim().split('\n');
    assert.equal(mode, '700');
    assert.equal(df!.split(/\s+/)[1], '1024', `a 1 MiB tmpfs: ${df}`);

    // A bind whose source has a mount beneath it: read-only all the way down from API 1.44.
    const host = fs.mkdtempSync(path.join(d.dir, 'rro-'));
    fs.mkdirSync(path.join(host, 'sub'));
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'rro-sub', path.join(host, 'sub')]).status, 0);
    try {
      const write = (args: string[], env: NodeJS.ProcessEnv = {}): number | null => spawnSync(DOCKER!, ['run', '--rm', ...args, 'busybox', 'touch', '/h/sub/x'], { env: { ...d.env, ...env } }).status;
      assert.notEqual(write(['-v', `${host}:/h:ro`]), 0, 'the mount beneath a read-only bind is read-only too');
      assert.notEqual(write(['--mount', `type=bind,src=${host},dst=/h,readonly`]), 0);
      assert.equal(write(['--mount', `type=bind,src=${host},dst=/h,readonly,bind-recursive=writable`]), 0, 'bind-recursive=writable keeps the mounts beneath writable');
      assert.equal(write(['-v', `${host}:/h:ro`], { DOCKER_API_VERSION: '1.43' }), 0, 'API 1.43: only the top is read-only, as dockerd did then');
      assert.equal(d.dockerOk(['run', '--rm', '--mount', `type=bind,src=${host},dst=/h,bind-nonrecursive`, 'busybox', 'sh', '-c', 'grep -c " /h/sub " /proc/self/mountinfo || true']).trim(), '0', 'a non-recursive bind leaves the mount beneath out');
    } finally {
      spawnSync('umount', [path.join(host, 'sub')]);
    }

    // volume-nocopy: the image's /etc is not copied into the empty volume; without it, it is.
    // What it holds is the mount points of /etc/hostname, hosts and resolv.conf, mounted on top
    // of it (as dockerd 20.10 leaves them too).
    d.dockerOk(['run', '--rm', '--mount', 'type=volume,src=nocopy,dst=/etc,volume-nocopy', 'busybox', 'true']);
    assert.equal(d.dockerOk(['run', '--rm', '-v', 'nocopy:/v', 'busybox', 'ls', '-A', '/v']), 'hostname\nhosts\nresolv.conf\n');
    d.dockerOk(['run', '--rm', '--mount', 'type=volume,src=copied,dst=/etc,volume-label=team=berth', 'busybox', 'true']);
    assert.match(d.dockerOk(['run', '--rm', '-v', 'copied:/v', 'busybox', 'ls', '/v']), /^passwd$/m);
    assert.equal(d.dockerOk(['volume', 'inspect', '-f', '{{.Labels.team}}', 'copied']).trim(), 'berth');
    d.dockerOk(['volume', 'rm', 'nocopy', 'copied']);

    const bad = d.docker(['run', '--rm', '--mount', 'type=tmpfs,dst=/t,src=x', 'busybox', 'true']);
    assert.notEqual(bad.status, 0);
  });

  it('log drivers and options: max-size/max-file rotate, none keeps nothing to read, labels/env/tag as attributes for --details, bad ones refused', () => {
    const id = d.dockerOk(['run', '-d', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c', 'for i in $(seq 1 200); do echo line-$i; done']).trim();
    d.dockerOk(['wait', id]);
    const lines = d.dockerOk(['logs', id]).trim().split('\n');
    assert.ok(lines.length > 5 && lines.length < 60, `a 1 kB log kept twice holds a few dozen lines, not ${lines.length}`);
    assert.equal(lines.at(-1), 'line-200');
    const logPath = d.dockerOk(['inspect', '-f', '{{.LogPath}}', id]).trim();
    assert.ok(fs.existsSync(`${logPath}.1`) && !fs.existsSync(`${logPath}.2`), 'one rotated file beside the log');
    assert.deepEqual(JSON.parse(d.dockerOk(['inspect', '-f', '{{json .HostConfig.LogConfig}}', id])), { Type: 'json-file', Config: { 'max-size': '1k', 'max-file': '2' } });
    d.dockerOk(['rm', id]);

    // local: five files unless told, as dockerd's local driver (it kept one growing file).
    const local = d.dockerOk(['run', '-d', '--log-driver', 'local', '--log-opt', 'max-size=1k', 'busybox', 'sh', '-c', 'for i in $(seq 1 400); do echo line-$i; done']).trim();
    d.dockerOk(['wait', local]);
    const localPath = d.dockerOk(['inspect', '-f', '{{.LogPath}}', local]).trim();
    assert.ok(fs.existsSync(`${localPath}.4`) && !fs.existsSync(`${localPath}.5`), 'four rotated files beside the log');
    assert.equal(d.dockerOk(['logs', '--tail', '1', local]).trim(), 'line-400');
    d.dockerOk(['rm', local]);

    // none: the output still reaches an attached client, but no log is kept.
    assert.equal(d.dockerOk(['run', '--name', 'nolog', '--log-driver', 'none', 'busybox', 'echo', 'attached']), 'attached\n');
    const read = d.docker(['logs', 'nolog']);
    assert.notEqual(read.status, 0);
    assert.match(read.stderr, /configured logging driver does not support reading/);
    d.dockerOk(['rm', 'nolog']);

    const tagged = d.dockerOk(['run', '-d', '--name', 'tagged', '--label', 'team=berth', '-e', 'STAGE=prod', '--log-opt', 'labels=team', '--log-opt', 'env=STAGE', '--log-opt', 'tag={{.Name}}', 'busybox', 'echo', 'hello']).trim();
    d.dockerOk(['wait', tagged]);
    assert.equal(d.dockerOk(['logs', '--details', 'tagged']), 'STAGE=prod,tag=tagged,team=berth hello\n');
    assert.equal(d.dockerOk(['logs', 'tagged']), 'hello\n');
    d.dockerOk(['rm', 'tagged']);

    assert.match(d.docker(['run', '--rm', '--log-opt', 'colour=red', 'busybox', 'true']).stderr, /unknown log opt 'colour' for json-file log driver/);
    assert.match(d.docker(['run', '--rm', '--log-driver', 'syslog', 'busybox', 'true']).stderr, /syslog log driver is not supported/);
    assert.match(d.docker(['create', '--log-opt', 'max-size=0', 'busybox', 'true']).stderr, /Error response from daemon: failed to initialize logging driver: max-size must be a positive number/);
  });

  it("--pid, --ipc and --uts: the host's namespaces, another container's, none", () => {
    const hostIpc = fs.readlinkSync('/proc/self/ns/ipc');
    assert.ok(Number(d.dockerOk(['run', '--rm', '--pid', 'host', 'busybox', 'sh', '-c', 'ps -o pid | wc -l'])) > 10, "the host's processes");
    assert.equal(d.dockerOk(['run', '--rm', '--uts', 'host', 'busybox', 'hostname']).trim(), os.hostname());
    assert.match(d.docker(['run', '--rm', '--uts', 'host', '-h', 'x', 'busybox', 'true']).stderr, /conflicting options: hostname and the UTS mode/);
    assert.match(d.docker(['run', '--rm', '--network', 'host', '-p', '8080:80', 'busybox', 'true']).stderr, /WARNING: Published ports are discarded when using host network mode/);
    assert.equal(d.dockerOk(['run', '--rm', '--ipc', 'host', 'busybox', 'readlink', '/proc/self/ns/ipc']).trim(), hostIpc);
    assert.equal(d.docker(['run', '--rm', '--ipc', 'none', 'busybox', 'test', '-e', '/dev/shm']).status, 1, 'none: no /dev/shm');

    const donor = d.dockerOk(['run', '-d', '--ipc', 'shareable', '--shm-size', '8m', 'busybox', 'sh', '-c', 'echo shared > /dev/shm/x; exec sleep 1000']).trim();
    const plain = d.dockerOk(['run', '-d', 'busybox', 'sleep', '1000']).trim();
    try {
      const donorIpc = d.dockerOk(['exec', donor, 'readlink', '/proc/self/ns/ipc']).trim();
      const out = d.dockerOk(['run', '--rm', '--ipc', `container:${donor}`, '--pid', `container:${donor}`, 'busybox', 'sh', '-c', 'readlink /proc/self/ns/ipc; cat /dev/shm/x; df -k /dev/shm | tail -1; tr "\\0" " " < /proc/1/cmdline; echo']);
      const [ipc, shared, df, pid1] = out.trim().split('\n');
      assert.equal(ipc, donorIpc);
      assert.equal(shared, 'shared', "the donor's /dev/shm");
      assert.equal(df!.split(/\s+/)[1], '8192');
      assert.equal(pid1!.trim(), 'sleep 1000', "the donor's PID namespace: its PID 1");
      assert.match(d.docker(['run', '--rm', '--ipc', `container:${plain}`, 'busybox', 'true']).stderr, /non-shareable IPC/);
      assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.IpcMode}}', plain]).trim(), 'private');
      // Kept by the donor's ID, as dockerd keeps them.
      const byName = d.dockerOk(['create', '--ipc', `container:${donor.slice(0, 12)}`, '--pid', `container:${donor.slice(0, 12)}`, 'busybox', 'true']).trim();
      assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.IpcMode}} {{.HostConfig.PidMode}}', byName]).trim(), `container:${donor} container:${donor}`);
      d.dockerOk(['rm', byName]);
    } finally {
      d.dockerOk(['rm', '-f', donor, plain]);
    }
    assert.deepEqual(d.mountsLeft(), [], "the donor's /dev/shm is unmounted with it");
    // A donor that does not exist: refused at create, in dockerd's words, and not as a missing image.
    for (const flag of ['--pid', '--ipc']) {
      const r = d.docker(['run', '--rm', flag, 'container:nosuch', 'busybox', 'true']);
      assert.match(r.stderr, /No such container: nosuch/);
      assert.doesNotMatch(r.stderr, /Unable to find image/);
    }
  });

  it('devices (--device, --privileged) and the memory, cpuset and blkio resources', async () => {
    assert.match(d.dockerOk(['run', '--rm', '--device', '/dev/null:/dev/mynull:rw', 'busybox', 'ls', '-l', '/dev/mynull']), /^crw.* 1,\s+3 .*\/dev\/mynull$/m);
    const hostNodes = fs.readdirSync('/dev', { withFileTypes: true }).filter((e) => e.isCharacterDevice() || e.isBlockDevice()).length;
    const inPrivileged = Number(d.dockerOk(['run', '--rm', '--privileged', 'busybox', 'sh', '-c', 'find /dev -maxdepth 1 \\( -type c -o -type b \\) | wc -l']));
    assert.ok(inPrivileged >= hostNodes - 2, `a privileged container has the host's device nodes (${inPrivileged} of ${hostNodes})`);

    const memory = d.dockerOk(['run', '--rm', '--memory', '64m', '--memory-reservation', '32m', '--oom-kill-disable', '--memory-swappiness', '10', '--cpuset-mems', '0', 'busybox', 'sh', '-c', 'cd /sys/fs/cgroup; cat memory/memory.soft_limit_in_bytes memory/memory.swappiness cpuset/cpuset.mems; head -1 memory/memory.oom_control']);
    assert.deepEqual(memory.trim().split('\n'), [String(32 << 20), '10', '0', 'oom_kill_disable 1']);

    // The OOM killer: State.OOMKilled and an "oom" event, as dockerd reports them, whichever
    // process it killed (here a child; the shell then exits 3); not for a plain kill -9.
    const since = Math.floor(Date.now() / 1000) - 1;
    const oom = d.docker(['run', '--name', 'oom-child', '-m', '8m', '--memory-swap', '8m', 'busybox', 'sh', '-c', 'sh -c \'x=a; while true; do x=$x$x; done\'; exit 3']);
    assert.equal(oom.status, 3, oom.stderr);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}}', 'oom-child']).trim(), 'true 3');
    const oomEvents = d.dockerOk(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=oom-child', '--format', '{{.Action}}']);
    assert.deepEqual(oomEvents.trim().split('\n').filter((a) => a === 'oom' || a === 'die'), ['oom', 'die']);
    d.dockerOk(['run', '-d', '--name', 'killed-9', '-m', '8m', 'busybox', 'sleep', '100']);
    d.dockerOk(['kill', 'killed-9']);
    assert.equal(d.dockerOk(['wait', 'killed-9']).trim(), '137');
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.OOMKilled}}', 'killed-9']).trim(), 'false');
    d.dockerOk(['rm', 'oom-child', 'killed-9']);

    const disk = fs.readdirSync('/sys/block').find((b) => !/^(loop|ram|zram|dm-|md|sr)/.test(b) && fs.existsSync(`/dev/${b}`));
    if (disk) {
      const [major, minor] = fs.readFileSync(`/sys/block/${disk}/dev`, 'utf8').trim().split(':');
      const limits = d.dockerOk(['run', '--rm', '--device-read-bps', `/dev/${disk}:1mb`, '--device-write-iops', `/dev/${disk}:100`, 'busybox', 'sh', '-c', 'cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device']);
      assert.deepEqual(limits.trim().split('\n'), [`${major}:${minor} 1048576`, `${major}:${minor} 100`]);
    }
    const missing = d.docker(['run', '--rm', '--device-read-bps', '/dev/nosuchdisk:1mb', 'busybox', 'true']);
    assert.match(missing.stderr, /Error response from daemon: stat \/dev\/nosuchdisk: no such file or directory/, "dockerd's words");
    assert.equal(missing.status, 127, 'as the docker CLI answers them');
    assert.match(d.docker(['run', '--rm', '--device-read-bps', '/dev/null:1mb', 'busybox', 'true']).stderr, /\/dev\/null is not a block device/);
    if (!fs.existsSync('/sys/fs/cgroup/blkio/blkio.weight')) assert.match(d.docker(['run', '--rm', '--blkio-weight', '300', 'busybox', 'true']).stderr, /WARNING: Your kernel does not support Block I\/O weight/);
    // No kmem limits here (info: KernelMemory false): discarded with dockerd's warning, 0 in inspect
    // (older clients send it; docker v28 no longer does).
    const kmem = await socketRequest(d.socket, 'POST', '/v1.41/containers/create', { 'Content-Type': 'application/json' }, JSON.stringify({ Image: 'busybox', HostConfig: { KernelMemory: 10 << 20 } }));
    const kmemCreated = JSON.parse(kmem.body) as { Id: string; Warnings: string[] };
    assert.deepEqual(kmemCreated.Warnings, ['Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.KernelMemory}}', kmemCreated.Id]).trim(), '0');
    // docker update discards them too, with dockerd's warnings (which the docker CLI prints on stdout).
    const updated = await socketRequest(d.socket, 'POST', `/v1.41/containers/${kmemCreated.Id}/update`, { 'Content-Type': 'application/json' }, JSON.stringify({ KernelMemory: 10 << 20, BlkioWeight: 300 }));
    const updateWarnings = (JSON.parse(updated.body) as { Warnings: string[] }).Warnings;
    assert.ok(updateWarnings.includes('Specifying a kernel memory limit is deprecated and will be removed in a future release.'), updated.body);
    if (!fs.existsSync('/sys/fs/cgroup/blkio/blkio.weight')) {
      assert.ok(updateWarnings.includes('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.'), updated.body);
      assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.BlkioWeight}}', kmemCreated.Id]).trim(), '0');
    }
    d.dockerOk(['rm', kmemCreated.Id]);

    assert.match(d.dockerOk(['run', '--rm', '--device-cgroup-rule', 'c 10:229 rmw', 'busybox', 'cat', '/sys/fs/cgroup/devices/devices.list']), /^c 10:229 rwm$/m);
    const parent = `berth-test-parent-${process.pid}`;
    try {
      assert.match(d.dockerOk(['run', '--rm', '--cgroup-parent', parent, 'busybox', 'cat', '/proc/self/cgroup']), new RegExp(`^\\d+:pids:/${parent}/[0-9a-f]{64}$`, 'm'));
    } finally {
      // berthd leaves parent cgroups in place, as dockerd does: this test's are its own to remove,
      // once the container's own are gone (an --rm container's go just after its removal is answered).
      const left = (): string[] => fs.readdirSync('/sys/fs/cgroup').map((root) => path.join('/sys/fs/cgroup', root, parent)).filter((dir) => fs.existsSync(dir));
      await poll(() => {
        for (const dir of left()) {
          try {
            fs.rmdirSync(dir);
          } catch {
            /* still holds the container's */
          }
        }
        return left().length === 0;
      }, 5000);
      assert.deepEqual(left(), [], 'the test\'s parent cgroups removed');
    }
    assert.match(d.docker(['run', '--rm', '--storage-opt', 'size=1G', 'busybox', 'true']).stderr, /--storage-opt is supported only for overlay over xfs/);
    assert.match(d.docker(['run', '--rm', '--gpus', 'all', 'busybox', 'true']).stderr, /could not select device driver/);
    const created = d.dockerOk(['create', 'busybox', 'true']).trim();
    assert.ok(JSON.parse(d.dockerOk(['inspect', '-f', '{{json .HostConfig.MaskedPaths}}', created])).includes('/proc/kcore'), "dockerd's masked paths in inspect");
    d.dockerOk(['rm', created]);
  });

  it('volume mount and unmount events at a container\'s start and exit', () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    d.dockerOk(['run', '--rm', '-v', 'evvol:/v:ro', 'busybox', 'true']);
    const events = d
      .dockerOk(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=volume', '--filter', 'volume=evvol', '--format', '{{.Action}}:{{index .Actor.Attributes "destination"}}:{{index .Actor.Attributes "read/write"}}'])
      .trim()
      .split('\n');
    assert.deepEqual(events, ['create::', 'mount:/v:false', 'unmount::']);
    d.dockerOk(['volume', 'rm', 'evvol']);
  });

  it('a container in none or host mode joins and leaves that network, with events in dockerd\'s order', () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const ids = ['none', 'host'].map((mode) => d.dockerOk(['run', '-d', '--network', mode, 'busybox', 'true']).trim());
    for (const id of ids) d.dockerOk(['wait', id]);
    const until = Math.floor(Date.now() / 1000) + 1;
    for (const [i, mode] of ['none', 'host'].entries()) {
      const id = ids[i]!;
      const all = d
        .dockerOk(['events', '--since', String(since), '--until', String(until), '--format', '{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "container"}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "type"}}'])
        .split('\n')
        .filter((l) => l.includes(id))
        .map((l) => l.split(' ').slice(0, 2).join(' '));
      assert.deepEqual(all, ['container create', 'network connect', 'container start', 'container die', 'network disconnect'], mode);
      const networkId = d.dockerOk(['network', 'inspect', '-f', '{{.Id}}', mode]).trim();
      const connect = d.dockerOk(['events', '--since', String(since), '--until', String(until), '--filter', 'type=network', '--filter', 'event=connect', '--format', '{{.Actor.ID}} {{index .Actor.Attributes "container"}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "type"}}']);
      assert.ok(connect.split('\n').includes(`${networkId} ${id} ${mode} ${mode === 'none' ? 'null' : 'host'}`), connect);
    }
    d.dockerOk(['rm', ...ids]);
  });

  it("--volumes-from: another container's volumes, read-write or read-only", () => {
    const donor = d.dockerOk(['run', '-d', '-v', '/data', '-v', 'vfnamed:/named', 'busybox', 'sh', '-c', 'echo a > /data/x; echo b > /named/y; exec sleep 1000']).trim();
    try {
      assert.ok(d.dockerOk(['exec', donor, 'cat', '/data/x']) === 'a\n');
      assert.equal(d.dockerOk(['run', '--rm', '--volumes-from', donor, 'busybox', 'sh', '-c', 'cat /data/x /named/y; echo c > /data/z']), 'a\nb\n');
      assert.equal(d.dockerOk(['exec', donor, 'cat', '/data/z']), 'c\n', 'the same volume');
      assert.notEqual(d.docker(['run', '--rm', '--volumes-from', `${donor}:ro`, 'busybox', 'touch', '/data/w']).status, 0, ':ro');
    } finally {
      d.dockerOk(['rm', '-f', '-v', donor]);
    }
    d.dockerOk(['volume', 'rm', 'vfnamed']);
    // A donor that does not exist: refused as a bad request, the image not looked for in a registry.
    const missing = d.docker(['run', '--rm', '--volumes-from', 'no-such-donor', 'busybox', 'true']);
    assert.equal(missing.status, 125);
    assert.match(missing.stderr, /No such container: no-such-donor/);
    assert.doesNotMatch(missing.stderr, /Unable to find image/);
  });

  it('local volume driver options: a tmpfs volume and a bind of a host directory, mounted while containers use them; removing the volume leaves the directory', async () => {
    const data = (name: string): string => d.dockerOk(['volume', 'inspect', '-f', '{{.Mountpoint}}', name]).trim();
    const mounted = (dir: string): boolean => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);

    d.dockerOk(['volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=2m,mode=0770', 'scratch']);
    assert.deepEqual(JSON.parse(d.dockerOk(['volume', 'inspect', '-f', '{{json .Options}}', 'scratch'])), { type: 'tmpfs', device: 'tmpfs', o: 'size=2m,mode=0770' });
    const out = d.dockerOk(['run', '--rm', '-v', 'scratch:/s', 'busybox', 'sh', '-c', 'stat -c %a /s; df -k /s | tail -1; echo x > /s/f']);
    const [mode, df] = out.trim().split('\n');
    assert.equal(mode, '770');
    assert.equal(df!.split(/\s+/)[1], '2048');
    assert.ok(!mounted(data('scratch')), 'unmounted once no container uses it');
    assert.equal(d.dockerOk(['run', '--rm', '-v', 'scratch:/s', 'busybox', 'ls', '/s']), '', "a tmpfs volume's data lasts while it is in use, as with dockerd");

    const host = fs.mkdtempSync(path.join(d.dir, 'volbind-'));
    fs.writeFileSync(path.join(host, 'kept'), 'host file\n');
    d.dockerOk(['volume', 'create', '--opt', 'type=none', '--opt', `device=${host}`, '--opt', 'o=bind', 'hostdir']);
    const holder = d.dockerOk(['run', '-d', '-v', 'hostdir:/h', 'busybox', 'sleep', '1000']).trim();
    try {
      assert.equal(d.dockerOk(['run', '--rm', '-v', 'hostdir:/h', 'busybox', 'sh', '-c', 'cat /h/kept; echo from container > /h/new']), 'host file\n');
      assert.equal(fs.readFileSync(path.join(host, 'new'), 'utf8'), 'from container\n');
      assert.ok(mounted(data('hostdir')), 'still mounted: the detached container holds it');
    } finally {
      d.dockerOk(['rm', '-f', holder]);
    }
    assert.ok(await poll(() => !mounted(data('hostdir')), 5000), 'unmounted after the last container');
    d.dockerOk(['volume', 'rm', 'hostdir']);
    assert.deepEqual(fs.readdirSync(host).sort(), ['kept', 'new'], "removing the volume leaves the bound directory's files");

    assert.match(d.docker(['volume', 'create', '--opt', 'color=red', 'badopt']).stderr, /invalid option: "color"/);
    // The body's types as VolumeCreateBody declares them (dockerd's json.Unmarshal refuses the rest).
    for (const [body, message] of [
      [{ Name: 1 }, /^Name: must be a string$/],
      [{ Name: 'typed', Labels: { a: 1 } }, /^Labels\["a"\]: must be a string$/],
      [{ Name: 'typed', DriverOpts: ['type=tmpfs'] }, /^DriverOpts: must be an object$/],
    ] as const) {
      const r = await socketRequest(d.socket, 'POST', '/v1.44/volumes/create', { 'Content-Type': 'application/json' }, JSON.stringify(body));
      assert.equal(r.status, 400, r.body);
      assert.match((JSON.parse(r.body) as { message: string }).message, message);
    }
    assert.equal(d.docker(['volume', 'inspect', 'typed']).status, 1, 'nothing made');
    assert.match(d.docker(['volume', 'create', '--opt', 'type=tmpfs', 'badopt']).stderr, /missing required option: "device"/);
    d.dockerOk(['volume', 'create', '--opt', 'type=none', '--opt', `device=${path.join(host, 'missing')}`, '--opt', 'o=bind', 'nodevice']);
    const failed = d.docker(['run', '--rm', '-v', 'nodevice:/n', 'busybox', 'true']);
    // dockerd's words, which the docker CLI answers with 127.
    assert.equal(failed.status, 127, failed.stderr);
    assert.match(failed.stderr, new RegExp(`Error response from daemon: error while mounting volume '[^']+': failed to mount local volume: mount ${path.join(host, 'missing')}:.*, flags: 0x1000: no such file or directory`));
    assert.doesNotMatch(failed.stderr, /OCI runtime/, "the daemon's failure, not the runtime's");
    // So is a missing device of another type (mount(8) would say "special device ... does not exist").
    d.dockerOk(['volume', 'create', '--opt', 'type=ext4', '--opt', 'device=/dev/berth-no-such-device', 'nodev2']);
    const failed2 = d.docker(['run', '--rm', '-v', 'nodev2:/n', 'busybox', 'true']);
    assert.equal(failed2.status, 127, failed2.stderr);
    assert.match(failed2.stderr, /failed to mount local volume: mount \/dev\/berth-no-such-device:[^,]*_data: no such file or directory/);
    d.dockerOk(['volume', 'rm', 'nodevice', 'nodev2', 'scratch']);
    // --mount's volume-opt makes such a volume too.
    assert.equal(d.dockerOk(['run', '--rm', '--mount', 'type=volume,src=viamount,dst=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs', 'busybox', 'sh', '-c', "grep -c ' /m ' /proc/self/mounts"]).trim(), '1');
    assert.equal(d.dockerOk(['volume', 'inspect', '-f', '{{.Options.type}}', 'viamount']).trim(), 'tmpfs');
    d.dockerOk(['volume', 'rm', 'viamount']);
  });

  it('restart policy on-failure:2 restarts twice, then stops', async () => {
    d.dockerOk(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1']);
    assert.ok(await poll(() => d.dockerOk(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky']).trim() === '2 exited', 10_000), d.dockerOk(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky']));
    d.dockerOk(['rm', 'flaky']);
  });

  it('create with a platform: the local image must be of it, else a 404 (on which the docker CLI pulls)', async () => {
    const create = (platform: string) =>
      socketRequest(d.socket, 'POST', `/v1.44/containers/create?platform=${encodeURIComponent(platform)}`, { 'Content-Type': 'application/json' }, JSON.stringify({ Image: 'busybox', Cmd: ['true'] }));
    const other = await create('linux/arm64');
    assert.equal(other.status, 404, other.body);
    assert.match(JSON.parse(other.body).message, /^image with reference busybox was found but does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64$/);
    const same = await create('linux/amd64');
    assert.equal(same.status, 201, same.body);
    d.dockerOk(['rm', JSON.parse(same.body).Id]);
    // containerd's platforms.Parse, as dockerd reads the parameter: an OS alone is this host's architecture.
    const osOnly = await create('linux');
    assert.equal(osOnly.status, 201, osOnly.body);
    d.dockerOk(['rm', JSON.parse(osOnly.body).Id]);
    const bogus = await create('bogus');
    assert.equal(bogus.status, 400);
    assert.match(JSON.parse(bogus.body).message, /"bogus": unknown operating system or architecture: invalid argument/);
  });

  it('exec into a container waiting to be restarted: refused in dockerd\'s words', async () => {
    d.dockerOk(['run', '-d', '--name', 'crashloop', '--restart', 'always', 'busybox', 'sh', '-c', 'exit 1']);
    let message = '';
    assert.ok(
      await poll(() => {
        if (d.dockerOk(['inspect', '-f', '{{.State.Status}}', 'crashloop']).trim() !== 'restarting') return false;
        message = d.docker(['exec', 'crashloop', 'true']).stderr;
        return /is restarting/.test(message);
      }, 10_000),
      message,
    );
    assert.match(message, /Container [0-9a-f]{64} is restarting, wait until the container is running/);
    d.dockerOk(['rm', '-f', 'crashloop']);
  });

  it('rename, ps filters and formats, -q', () => {
    d.dockerOk(['create', '--name', 'before', '--label', 'team=a', 'busybox', 'true']);
    d.dockerOk(['rename', 'before', 'after']);
    d.dockerOk(['create', '--name', 'taken', 'busybox', 'true']);
    assert.match(d.docker(['rename', 'after', 'taken']).stderr, /Error when allocating new name: Conflict\. The container name "\/taken" is already in use/);
    assert.match(d.docker(['rename', 'after', 'bad name']).stderr, /Error when allocating new name: Invalid container name \(\/bad name\)/);
    d.dockerOk(['rm', 'taken']);
    const same = d.docker(['rename', 'after', 'after']);
    assert.notEqual(same.status, 0, 'dockerd refuses a rename to the current name');
    assert.match(same.stderr, /Renaming a container with the same name as its current name/);
    assert.equal(d.dockerOk(['ps', '-a', '--filter', 'label=team=a', '--format', '{{.Names}} {{.State}}']).trim(), 'after created');
    assert.equal(d.dockerOk(['ps', '-aq', '--filter', 'name=after']).trim().length, 12);
    assert.equal(d.dockerOk(['ps', '-q', '--filter', 'name=after']).trim(), '');
    assert.match(d.docker(['ps', '-a', '--filter', 'status=bogus']).stderr, /Invalid filter 'status=bogus'/, 'a state dockerd does not know');
    // before/since (creation order), publish/expose (port, range, protocol), health.
    d.dockerOk(['create', '--name', 'f2', '--expose', '9000', '-p', '127.0.0.1::80', 'busybox', 'true']);
    d.dockerOk(['create', '--name', 'f3', '--health-cmd', 'true', 'busybox', 'true']);
    const names = (filter: string): string => d.dockerOk(['ps', '-a', '--filter', filter, '--format', '{{.Names}}']).trim().split('\n').filter((n) => ['after', 'f2', 'f3'].includes(n)).sort().join(' ');
    assert.equal(names('before=f3'), 'after f2');
    assert.equal(names('since=after'), 'f2 f3');
    assert.equal(names('expose=8990-9010/tcp'), 'f2');
    assert.equal(names('expose=9000/udp'), '');
    assert.equal(names('publish=80'), 'f2');
    assert.equal(names('health=none'), 'after f2 f3', 'none of them runs: no health status yet');
    assert.match(d.docker(['ps', '--filter', 'health=great']).stderr, /Unrecognised filter value for health: great/);
    // network: the networks inspect shows, "none" and "host" included.
    d.dockerOk(['create', '--name', 'f4', '--network', 'host', 'busybox', 'true']);
    d.dockerOk(['create', '--name', 'f5', '--network', 'none', 'busybox', 'true']);
    const onNetwork = (n: string): string => d.dockerOk(['ps', '-a', '--filter', `network=${n}`, '--format', '{{.Names}}']).trim();
    assert.deepEqual([onNetwork('host'), onNetwork('none')], ['f4', 'f5']);
    assert.match(d.docker(['ps', '--filter', 'exited=abc']).stderr, /strconv.Atoi: parsing "abc": invalid syntax/);
    // is-task: no container is a swarm task here.
    assert.equal(d.dockerOk(['ps', '-aq', '--filter', 'is-task=true']), '');
    assert.equal(d.dockerOk(['ps', '-aq', '--filter', 'is-task=false', '--filter', 'name=f5']).trim().length, 12);
    assert.match(d.docker(['ps', '--filter', 'is-task=maybe']).stderr, /Invalid filter 'is-task=\[maybe\]'/);
    // Linux's one isolation, as dockerd lists it.
    assert.equal(d.dockerOk(['ps', '-aq', '--filter', 'isolation=default', '--filter', 'name=f5']).trim().length, 12);
    assert.equal(d.dockerOk(['ps', '-aq', '--filter', 'isolation=hyperv']), '');
    // name: a regular expression; one that does not compile matches nothing (it was a 500).
    assert.equal(d.dockerOk(['ps', '-a', '--filter', 'name=^f[45]$', '--format', '{{.Names}}']).split('\n').filter(Boolean).sort().join(' '), 'f4 f5');
    assert.equal(d.dockerOk(['ps', '-aq', '--filter', 'name=(']), '');
    d.dockerOk(['rm', 'after', 'f2', 'f3', 'f4', 'f5']);
  });

  it('events stream what happened, with the container\'s labels as attributes (a label filter finds them, as docker compose asks)', () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    d.dockerOk(['run', '--rm', '--name', 'evented', '-l', 'com.docker.compose.project=evproj', 'busybox', 'true']);
    const until = Math.floor(Date.now() / 1000) + 1;
    const out = d.dockerOk(['events', '--since', String(since), '--until', String(until), '--filter', 'container=evented', '--format', '{{.Action}}']);
    assert.deepEqual(out.split('\n').filter(Boolean), ['create', 'attach', 'start', 'die', 'destroy']);
    const labelled = d.dockerOk(['events', '--since', String(since), '--until', String(until), '--filter', 'label=com.docker.compose.project=evproj', '--format', '{{.Action}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "com.docker.compose.project"}}']);
    assert.deepEqual(labelled.split('\n').filter(Boolean), ['create evented evproj', 'attach evented evproj', 'start evented evproj', 'die evented evproj', 'destroy evented evproj']);
    // A stop's, a restart's and a forced remove's, in dockerd's order: the signals it sent as kill
    // events (TERM, then KILL after the timeout), die, then stop.
    const t1 = Math.floor(Date.now() / 1000) - 1;
    d.dockerOk(['run', '-d', '--name', 'stopped-ev', 'busybox', 'sleep', '100']);
    d.dockerOk(['restart', '-t', '1', 'stopped-ev']);
    d.dockerOk(['stop', '-t', '1', 'stopped-ev']);
    d.dockerOk(['start', 'stopped-ev']);
    d.dockerOk(['rm', '-f', 'stopped-ev']);
    d.dockerOk(['commit', d.dockerOk(['create', '--name', 'committed-ev', 'busybox']).trim(), 'committed-ev:v1']);
    d.dockerOk(['rm', 'committed-ev']);
    d.dockerOk(['rmi', 'committed-ev:v1']);
    const t2 = Math.floor(Date.now() / 1000) + 1;
    const stopEvents = d.dockerOk(['events', '--since', String(t1), '--until', String(t2), '--filter', 'container=stopped-ev', '--format', '{{.Action}}{{with .Actor.Attributes.signal}} {{.}}{{end}}']);
    assert.deepEqual(stopEvents.split('\n').filter(Boolean), ['create', 'start', 'kill 15', 'kill 9', 'die', 'stop', 'start', 'restart', 'kill 15', 'kill 9', 'die', 'stop', 'start', 'kill 9', 'die', 'destroy']);
    const commitEvents = d.dockerOk(['events', '--since', String(t1), '--until', String(t2), '--filter', 'event=commit', '--filter', 'event=tag', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}']);
    // An exec's events name its command as dockerd's do: the program, a space, the arguments.
    const execd = d.dockerOk(['run', '-d', 'busybox', 'sleep', '100']).trim();
    d.dockerOk(['exec', execd, 'true']);
    d.dockerOk(['exec', execd, 'sh', '-c', 'exit 0']);
    const execEvents = d.dockerOk(['events', '--since', String(t1), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', `container=${execd}`, '--filter', 'event=exec_create', '--format', '[{{.Action}}]']);
    assert.deepEqual(execEvents.split('\n').filter(Boolean), ['[exec_create: true ]', '[exec_create: sh -c exit 0]']);
    d.dockerOk(['rm', '-f', execd]);
    assert.deepEqual(commitEvents.split('\n').filter(Boolean), ['image tag committed-ev:v1', 'container commit committed-ev'], "dockerd's: the new name's tag, then the commit");

    // A filter key dockerd's events do not know filters nothing out (it used to end the stream empty).
    const unknownKey = d.dockerOk(['events', '--since', String(since), '--until', String(until), '--filter', 'bogus=1', '--filter', 'container=evented', '--format', '{{.Action}}']);
    assert.deepEqual(unknownKey.split('\n').filter(Boolean), ['create', 'attach', 'start', 'die', 'destroy']);
    // --since 0: every event kept, the image loads of before() too.
    const all = d.dockerOk(['events', '--since', '0', '--until', String(until), '--format', '{{.Type}} {{.Action}}']).split('\n').filter(Boolean);
    assert.ok(all.includes('image load'), all.join(','));
    assert.deepEqual(all.slice(-5), ['container create', 'container attach', 'container start', 'container die', 'container destroy']);
    const backwards = d.docker(['events', '--since', String(until), '--until', String(since)]);
    assert.notEqual(backwards.status, 0);
    assert.match(backwards.stderr, new RegExp(`\`since\` time \\(${until}\\) cannot be after \`until\` time \\(${since}\\)`));
  });

  it('errors as docker gives them: unknown container, unknown image, name conflict, bad flags', async () => {
    const missing = d.docker(['inspect', 'no-such-container']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /No such (container|object): no-such-container/);
    const stop = d.docker(['stop', 'no-such-container']);
    assert.equal(stop.status, 1);
    assert.match(stop.stderr, /No such container: no-such-container/);
    // API requests dockerd refuses: a start with a HostConfig body (gone in 1.24), signal 0 (before
    // the container's state is looked at), a dangling filter that is not a boolean.
    const created = d.dockerOk(['create', 'busybox', 'true']).trim();
    const json = { 'Content-Type': 'application/json' };
    const withBody = await socketRequest(d.socket, 'POST', `/v1.41/containers/${created}/start`, json, '{"Binds":["/tmp:/x"]}');
    assert.deepEqual([withBody.status, JSON.parse(withBody.body).message], [400, 'starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24']);
    // info's ExecutionDriver, for clients older than 1.25 only, as dockerd.
    assert.equal(JSON.parse((await socketRequest(d.socket, 'GET', '/v1.24/info')).body).ExecutionDriver, '<not supported>');
    assert.equal(JSON.parse((await socketRequest(d.socket, 'GET', '/v1.25/info')).body).ExecutionDriver, undefined);
    assert.equal((await socketRequest(d.socket, 'POST', `/v1.41/containers/${created}/start`, json, '{}')).status, 204, 'an empty object is no HostConfig');
    const signal0 = await socketRequest(d.socket, 'POST', `/containers/${created}/kill?signal=0`);
    assert.deepEqual([signal0.status, JSON.parse(signal0.body).message], [400, 'Invalid signal: 0']);
    const dangling = await socketRequest(d.socket, 'GET', `/volumes?filters=${encodeURIComponent('{"dangling":["maybe"]}')}`);
    assert.deepEqual([dangling.status, JSON.parse(dangling.body).message], [400, "Invalid filter 'dangling=[maybe]'"]);
    // Fields of the wrong JSON type: a 400 naming the field (these were TypeErrors and 500s).
    const post = async (p: string, body: object): Promise<[number, string]> => {
      const r = await socketRequest(d.socket, 'POST', p, json, JSON.stringify(body));
      return [r.status, r.status < 300 ? r.body : (JSON.parse(r.body) as { message: string }).message];
    };
    assert.deepEqual(await post('/containers/create', { Image: 'busybox', Entrypoint: { a: null } }), [400, 'Entrypoint: must be a list of strings']);
    assert.deepEqual(await post('/containers/create', { Image: 'busybox', HostConfig: { ExtraHosts: -1 } }), [400, 'HostConfig.ExtraHosts: must be a list of strings']);
    assert.deepEqual(await post('/networks/create', { Name: 'typed', Internal: 'yes' }), [400, 'Internal: must be a boolean'], 'not taken as true');
    assert.deepEqual(await post('/networks/create', { Name: 'typed', IPAM: { Config: [{ Subnet: '10.252.0.0/24', Gateway: [1] }] } }), [400, 'IPAM.Config.Gateway: must be a string']);
    assert.deepEqual(await post(`/commit?container=${created}&repo=typed`, { Cmd: [[1]] }), [400, 'Cmd[0]: must be a string']);
    const running = d.dockerOk(['run', '-d', 'busybox', 'sleep', '100']).trim();
    assert.deepEqual(await post(`/containers/${running}/exec`, { Cmd: ['true'], WorkingDir: { a: 1 } }), [400, 'WorkingDir: must be a string']);
    const exec = JSON.parse((await post(`/containers/${running}/exec`, { Cmd: ['true'] }))[1]) as { Id: string };
    assert.deepEqual(await post(`/exec/${exec.Id}/start`, { Detach: true, Tty: [null] }), [400, 'Tty: must be a boolean']);
    d.dockerOk(['rm', '-f', created, running]);
    const image = d.docker(['run', '--rm', '--pull', 'never', 'no-such-image']);
    assert.equal(image.status, 125);
    assert.match(image.stderr, /No such image/i);
    // Refused at create, in dockerd's words, with no container left: an address or an alias
    // without a user-defined network, CPUs the host does not have.
    const before = d.dockerOk(['ps', '-aq']);
    for (const [flags, words] of [
      [['--network', 'none', '--ip', '10.0.0.1'], /user specified IP address is supported on user defined networks only/],
      [['--cpuset-cpus', '999'], /Requested CPUs are not available - requested 999, available: /],
    ] as const) {
      const r = d.docker(['run', '--rm', ...flags, 'busybox', 'true']);
      assert.equal(r.status, 125, flags.join(' '));
      assert.match(r.stderr, words);
    }
    assert.equal(d.dockerOk(['ps', '-aq']), before);
    // (The docker CLI refuses an alias there itself; other clients hear it from us.)
    const alias = await socketRequest(d.socket, 'POST', '/v1.44/containers/create', { 'Content-Type': 'application/json' }, JSON.stringify({ Image: 'busybox', HostConfig: { NetworkMode: 'host' }, NetworkingConfig: { EndpointsConfig: { host: { Aliases: ['x'] } } } }));
    assert.equal(alias.status, 400);
    assert.match(alias.body, /network-scoped alias is supported only for containers in user defined networks/);
    assert.equal(d.dockerOk(['ps', '-aq']), before);
    d.dockerOk(['create', '--name', 'taken', 'busybox', 'true']);
    const conflict = d.docker(['run', '--name', 'taken', 'busybox', 'true']);
    assert.equal(conflict.status, 125);
    assert.match(conflict.stderr, /Conflict\. The container name "\/taken" is already in use/);
    d.dockerOk(['rm', 'taken']);
    const exe = d.docker(['run', '--rm', 'busybox', '/no/such/program']);
    assert.equal(exe.status, 127, exe.stderr);
    assert.equal(d.docker(['run', '--rm', 'busybox', 'nosuchcmd']).status, 127);
    assert.equal(d.docker(['run', '--rm', 'busybox', '/etc/passwd']).status, 126);
    // A working directory that is a file, and no command at all: dockerd's own words.
    const fileCwd = d.docker(['run', '--rm', '-w', '/etc/passwd', 'busybox', 'true']);
    assert.deepEqual([fileCwd.status, fileCwd.stderr.split('\n')[0]], [125, 'docker: Error response from daemon: Cannot mkdir: /etc/passwd is not a directory']);
    assert.match(d.docker(['run', '--rm', '--entrypoint', '', 'busybox']).stderr, /^docker: Error response from daemon: No command specified$/m);
    // The container's config at fault: a 400 (dockerd's startInvalidConfigError), and its exit code.
    const missingProgram = JSON.parse((await socketRequest(d.socket, 'POST', '/v1.41/containers/create', { 'Content-Type': 'application/json' }, JSON.stringify({ Image: 'busybox', Cmd: ['nosuchcmd'] }))).body) as { Id: string };
    const failedStart = await socketRequest(d.socket, 'POST', `/v1.41/containers/${missingProgram.Id}/start`);
    assert.equal(failedStart.status, 400, failedStart.body);
    assert.match(failedStart.body, /executable file not found in \$PATH/);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.ExitCode}}', missingProgram.Id]).trim(), '127');
    d.dockerOk(['rm', missingProgram.Id]);
    // A directory as the program: refused at create in runc's words (126), not at exec inside.
    const dir = d.docker(['run', '--rm', 'busybox', '/etc']);
    assert.equal(dir.status, 126, dir.stderr);
    assert.match(dir.stderr, /exec: "\/etc": permission denied/);
    // A missing working directory is made (as dockerd with runc does), also on a read-only root.
    assert.equal(d.dockerOk(['run', '--rm', '-w', '/does/not/exist', 'busybox', 'pwd']), '/does/not/exist\n');
    assert.equal(d.dockerOk(['run', '--rm', '--read-only', '-w', '/made/here', 'busybox', 'sh', '-c', 'pwd; ls -ld . | cut -c1-10']), '/made/here\ndrwxr-xr-x\n');
    const badName = d.docker(['create', '--name', 'bad/name', 'busybox']);
    assert.notEqual(badName.status, 0);
    assert.match(badName.stderr, /Error response from daemon: Invalid container name \(bad\/name\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed/);
    const runtime = d.docker(['run', '--rm', '--runtime', 'nosuch', 'busybox', 'true']);
    assert.equal(runtime.status, 125);
    assert.match(runtime.stderr, /Unknown runtime specified nosuch/);
    d.dockerOk(['run', '--rm', '--runtime', 'berth-oci', 'busybox', 'true']);
    // dockerd's default runtime by its name (compose files and clients say "runc"): berth-oci runs it.
    assert.equal(d.dockerOk(['run', '--rm', '--runtime', 'runc', 'busybox', 'echo', 'ran']).trim(), 'ran');
    // More CPUs than the daemon may use: refused at create in dockerd's words.
    const cpus = d.docker(['run', '--rm', '--cpus', '999', 'busybox', 'true']);
    assert.equal(cpus.status, 125, cpus.stderr);
    assert.match(cpus.stderr, new RegExp(`Range of CPUs is from 0\\.01 to ${os.availableParallelism()}\\.00, as there are only ${os.availableParallelism()} CPUs available`));
    const noImage = d.docker(['rmi', 'no-such-image']);
    assert.match(noImage.stderr, /No such image: no-such-image:latest$/m, 'the default tag named, as dockerd does');
    d.dockerOk(['volume', 'create', 'held']);
    d.dockerOk(['create', '--name', 'holder', '-v', 'held:/data', 'busybox']);
    const held = d.docker(['volume', 'rm', 'held']);
    const holder = d.dockerOk(['inspect', '-f', '{{.Id}}', 'holder']).trim();
    assert.match(held.stderr, new RegExp(`remove held: volume is in use - \\[${holder}\\]`));
    d.dockerOk(['rm', '-v', 'holder']);
    d.dockerOk(['volume', 'rm', 'held']);
    assert.match(d.docker(['volume', 'inspect', 'held']).stderr, /get held: no such volume/);
    assert.equal(d.dockerOk(['ps', '-aq']), '', '--rm removes a container whose start failed');
  });

  it('run -i passes stdin, run -it and exec -it work through a real terminal', () => {
    const piped = d.docker(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'cat; echo done'], 60_000, 'from stdin\n');
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stdout, 'from stdin\ndone\n');
    // Piped input is data: the detach keys (ctrl-p ctrl-q) in it are not watched for without a
    // TTY, as dockerd does (this input was cut at its first ctrl-p ctrl-q, and the run hung).
    const data = Array.from({ length: 4000 }, (_, i) => `line ${i} \x10\x11 ctrl-p ctrl-q\n`).join('');
    const md5 = createHash('md5').update(data).digest('hex');
    const binary = d.docker(['run', '-i', '--rm', 'busybox', 'md5sum'], 60_000, data);
    assert.equal(binary.stdout.split(' ')[0], md5, binary.stderr);
    const it = ptyRun([DOCKER!, 'run', '-it', '--rm', 'busybox', 'sh'], shellSteps(3), { env: d.env });
    assert.equal(it.status, 3, it.stdout + it.stderr);
    assert.match(it.stdout, /\/dev\/pts\/0/);
    const id = d.dockerOk(['run', '-d', 'busybox', 'sleep', '1000']).trim();
    const ex = ptyRun([DOCKER!, 'exec', '-it', id, 'sh'], shellSteps(4), { env: d.env });
    assert.equal(ex.status, 4, ex.stdout + ex.stderr);
    // The terminal's size reaches the container (the CLI sends resize after start; it sends
    // nothing for a 0x0 terminal, which is what a new pty has, so give ours a size first).
    const size = ptyRun(['sh', '-c', `stty rows 31 cols 101; exec ${DOCKER} exec -it ${id} sh -c 'sleep 0.5; stty size'`], [{ expect: '31 101' }], { env: d.env });
    assert.match(size.stdout, /31 101/, size.stdout + size.stderr);
    d.dockerOk(['rm', '-f', id]);
  });

  it('detaching with ctrl-p ctrl-q from run -it and attach leaves the container running (the docker CLI detaches on its own and drops the connection)', () => {
    // run detaches without a word (exit 0); attach and exec say "read escape sequence" (exit 1).
    const detach = (argv: string[], marker: string): ReturnType<typeof ptyRun> =>
      ptyRun([DOCKER!, ...argv], [...(argv[0] === 'attach' ? [] : [{ expect: '# ' }]), { send: `echo ${marker}-$((2*3))\r` }, { expect: `${marker}-6` }, { send: '\x10\x11' }, ...(argv[0] === 'run' ? [] : [{ expect: 'read escape sequence' }])], { env: d.env, timeoutS: 20 });
    const status = (): string => d.dockerOk(['inspect', '-f', '{{.State.Status}}', 'detachable']).trim();
    const run = detach(['run', '-it', '--name', 'detachable', 'busybox', 'sh'], 'typed');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(status(), 'running', 'the shell did not get an end of input');
    const attach = detach(['attach', 'detachable'], 'again');
    assert.equal(attach.status, 1, attach.stdout + attach.stderr);
    assert.equal(status(), 'running');
    // exec -it: the same for an exec's terminal.
    const exec = detach(['exec', '-it', 'detachable', 'sh'], 'exec');
    assert.equal(exec.status, 1, exec.stdout + exec.stderr);
    const top = d.dockerOk(['top', 'detachable', '-eo', 'pid,args']);
    assert.equal(top.split('\n').filter((l) => /\ssh\s*$/.test(l)).length, 2, `the exec's shell runs on: ${top}`);
    const last = ptyRun([DOCKER!, 'attach', 'detachable'], [{ send: 'exit 7\r' }], { env: d.env, timeoutS: 20 });
    assert.equal(last.status, 7, last.stdout + last.stderr);
    d.dockerOk(['rm', '-f', 'detachable']);
  });

  it('exec inspect (API): the process\'s pid and exit code once it has run, as dockerd keeps them', async () => {
    const id = d.dockerOk(['run', '-d', 'busybox', 'sleep', '1000']).trim();
    try {
      const call = async (method: string, p: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> => {
        const r = await socketRequest(d.socket, method, p, { 'Content-Type': 'application/json' }, body ? JSON.stringify(body) : undefined);
        return { status: r.status, json: r.body ? (JSON.parse(r.body) as Record<string, unknown>) : {} };
      };
      const created = await call('POST', `/v1.41/containers/${id}/exec`, { Cmd: ['sh', '-c', 'exit 3'], AttachStdout: true });
      const execId = String(created.json.Id);
      assert.equal((await call('GET', `/v1.41/exec/${execId}/json`)).json.Pid, 0, 'no pid before the start');
      await call('POST', `/v1.41/exec/${execId}/start`, { Detach: false });
      let done = (await call('GET', `/v1.41/exec/${execId}/json`)).json;
      for (let i = 0; i < 100 && done.Running !== false; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        done = (await call('GET', `/v1.41/exec/${execId}/json`)).json;
      }
      assert.equal(done.ExitCode, 3);
      assert.ok(typeof done.Pid === 'number' && done.Pid > 0, `Pid kept after the exit: ${String(done.Pid)}`);
      // ExecProcessConfig's user is omitempty.
      assert.deepEqual(done.ProcessConfig, { tty: false, entrypoint: 'sh', arguments: ['-c', 'exit 3'], privileged: false });
      const asNobody = await call('POST', `/v1.41/containers/${id}/exec`, { Cmd: ['true'], User: 'nobody' });
      assert.equal(((await call('GET', `/v1.41/exec/${String(asNobody.json.Id)}/json`)).json.ProcessConfig as { user?: string }).user, 'nobody');
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
  });

  it('create (API) as dockerd reads it: a string where moby takes a StrSlice is a one-item list; bad PortBindings refused at create', async () => {
    const create = (body: object) => socketRequest(d.socket, 'POST', '/v1.41/containers/create', { 'Content-Type': 'application/json' }, JSON.stringify(body));
    const made = await create({ Image: 'busybox', Entrypoint: 'echo', Cmd: 'one arg', HostConfig: { CapDrop: 'NET_RAW' } });
    assert.equal(made.status, 201, made.body);
    const id = String((JSON.parse(made.body) as { Id: string }).Id);
    try {
      assert.equal(d.dockerOk(['inspect', '-f', '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .HostConfig.CapDrop}}', id]).trim(), '["echo"] ["one arg"] ["NET_RAW"]');
      d.dockerOk(['start', id]);
      assert.equal(d.dockerOk(['wait', id]).trim(), '0');
      assert.equal(d.dockerOk(['logs', id]), 'one arg\n');
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
    const badPort = await create({ Image: 'busybox', HostConfig: { PortBindings: { '80/tcp': [{ HostPort: 'x' }] } } });
    assert.equal(badPort.status, 400);
    assert.match(badPort.body, /invalid port specification: \\"x\\"/);
    const badKey = await create({ Image: 'busybox', HostConfig: { PortBindings: { '99999/tcp': [{ HostPort: '80' }] } } });
    assert.equal(badKey.status, 400);
  });

  it('exec: exit codes, stdin, user/workdir/env, detached, and errors', () => {
    const id = d.dockerOk(['run', '-d', '-e', 'FROM_RUN=1', 'busybox', 'sleep', '1000']).trim();
    const r = d.docker(['exec', id, 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    assert.equal(r.status, 5);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(d.docker(['exec', '-i', id, 'cat'], 30_000, 'piped\n').stdout, 'piped\n');
    assert.equal(d.docker(['exec', '-i', id, 'wc', '-c'], 30_000, 'a\x10\x11b\n'.repeat(1000)).stdout.trim(), '5000');
    // Input that ends at once (stdin from /dev/null): its end reaches the process, even when it
    // came before the process started (docker run -i attaches before the start).
    assert.equal(d.docker(['exec', '-i', id, 'sh', '-c', 'cat; echo end'], 20_000, '').stdout, 'end\n');
    assert.equal(d.docker(['run', '-i', '--rm', '--sig-proxy=false', 'busybox', 'sh', '-c', 'cat; echo end'], 20_000, '').stdout, 'end\n');
    // The user as runc sets it: the primary group among the supplementary ones.
    assert.equal(d.dockerOk(['exec', '-u', '1:1', id, 'id']), 'uid=1(daemon) gid=1(daemon) groups=1(daemon)\n');
    // An unknown user: as dockerd, the exec runs into it (exit 126, the message as its output).
    const nouser = d.docker(['exec', '-u', 'nosuch', id, 'id']);
    assert.deepEqual([nouser.status, nouser.stdout.trim()], [126, 'unable to find user nosuch: no matching entries in passwd file']);
    // The container's /etc/passwd is read as the container sees it, small and regular only: a
    // symlink to /dev/zero or a fifo must not hang or exhaust the daemon.
    d.dockerOk(['exec', id, 'cp', '/etc/passwd', '/etc/passwd.orig']);
    for (const hostile of ['ln -s /dev/zero /etc/passwd', 'mkfifo /etc/passwd']) {
      d.dockerOk(['exec', id, 'sh', '-c', `rm -f /etc/passwd && ${hostile}`]);
      const r = d.docker(['exec', '-u', 'foo', id, 'id'], 20_000);
      assert.deepEqual([r.status, r.stdout.trim()], [126, 'unable to find user foo: no matching entries in passwd file'], hostile);
    }
    d.dockerOk(['exec', id, 'sh', '-c', 'rm -f /etc/passwd && mv /etc/passwd.orig /etc/passwd']);
    // At a start, the user is looked up in the container's files as it sees them: an image whose
    // /etc is a symlink to "/etc" (a loop inside; the host's /etc if followed from the host) does
    // not hand it a user that only the host has.
    const hostOnly = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[0]).find((u) => u && !['root', 'daemon', 'bin', 'sys', 'sync', 'nobody', 'operator', 'www-data', 'mail', 'ftp'].includes(u));
    if (hostOnly) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-etc-loop-'));
      try {
        fs.mkdirSync(path.join(dir, 'root'));
        fs.symlinkSync('/etc', path.join(dir, 'root', 'etc'));
        assert.equal(spawnSync('tar', ['-C', path.join(dir, 'root'), '-cf', path.join(dir, 'img.tar'), 'etc']).status, 0);
        d.dockerOk(['import', path.join(dir, 'img.tar'), 'berth-test-etc-loop:1']);
        // Found on the host, the user would get as far as the missing program; not found, no further.
        const r = d.docker(['run', '--rm', '-u', hostOnly, 'berth-test-etc-loop:1', '/x']);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, new RegExp(`unable to find user ${hostOnly}`), `the host's user ${hostOnly} must not be found`);
        d.dockerOk(['rmi', 'berth-test-etc-loop:1']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    assert.equal(d.dockerOk(['exec', '-u', 'nobody', '-w', '/tmp', '-e', 'X=1', id, 'sh', '-c', 'echo $(id -un) $(pwd) $X $FROM_RUN']).trim(), 'nobody /tmp 1 1');
    // HOME is the exec's user's, as runc sets it (dockerd: /nonexistent for busybox's nobody), unless given.
    assert.equal(d.dockerOk(['exec', '-u', '65534', id, 'sh', '-c', 'echo $HOME']).trim(), '/nonexistent');
    assert.equal(d.dockerOk(['exec', '-u', '65534', '-e', 'HOME=/given', id, 'sh', '-c', 'echo $HOME']).trim(), '/given');
    assert.equal(d.dockerOk(['exec', id, 'sh', '-c', 'echo $HOME']).trim(), '/root');
    // ExecIDs: the execs not finished, as dockerd lists them (null when none).
    assert.equal(d.dockerOk(['inspect', '-f', '{{json .ExecIDs}}', id]).trim(), 'null');
    d.dockerOk(['exec', '-d', id, 'sh', '-c', 'echo detached > /tmp/d']);
    d.dockerOk(['exec', '-d', id, 'sleep', '3']);
    assert.match(d.dockerOk(['inspect', '-f', '{{json .ExecIDs}}', id]).trim(), /^\["[0-9a-f]{64}"\]$/);
    assert.ok(d.docker(['exec', id, 'cat', '/tmp/d']).stdout === 'detached\n' || d.docker(['exec', id, 'sh', '-c', 'sleep 0.5; cat /tmp/d']).stdout === 'detached\n');
    // dockerd's answer: exit 126, the runtime's message as output.
    const missing = d.docker(['exec', id, 'nosuchcmd']);
    assert.equal(missing.status, 126);
    assert.match(missing.stdout, /OCI runtime exec failed: .*exec: "nosuchcmd": executable file not found in \$PATH/);
    // A working directory that is not there fails the exec with the runtime's reason, every
    // time: the removal of the exec's directory raced its shim, and answered ENOTEMPTY instead
    // (1 time in ~15 against a long-running daemon, on a container's first exec: a new container each time).
    for (let i = 0; i < 10; i++) {
      const fresh = d.dockerOk(['run', '-d', 'busybox', 'sleep', '100']).trim();
      const noDir = d.docker(['exec', '-w', '/no/such/dir', fresh, 'pwd']);
      d.dockerOk(['rm', '-f', fresh]);
      assert.equal(noDir.status, 126, noDir.stderr);
      assert.match(noDir.stdout, /chdir to cwd \("\/no\/such\/dir"\) set in config\.json failed: no such file or directory/, `run ${i} (runc's words): ${noDir.stdout}`);
    }
    // The container's PID 1 is untouched by all this.
    assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Status}}', id]).trim(), 'running');
    d.dockerOk(['stop', '-t', '0', id]);
    const stopped = d.docker(['exec', id, 'true']);
    assert.notEqual(stopped.status, 0);
    assert.match(stopped.stderr, /is not running/);
    d.dockerOk(['rm', id]);
  });

  it('--init runs a minimal init as PID 1 that reaps and forwards signals', () => {
    const out = d.dockerOk(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$']);
    assert.match(out, /^\/sbin\/docker-init -- sh -c/m);
    assert.notEqual(out.trim().split('\n').pop(), '1', 'the shell is not PID 1');
    const id = d.dockerOk(['run', '-d', '--init', 'busybox', 'sleep', '1000']).trim();
    const t0 = Date.now();
    d.dockerOk(['stop', '-t', '10', id]);
    assert.ok(Date.now() - t0 < 5000, 'SIGTERM reached sleep through the init (no 10 s wait)');
    d.dockerOk(['rm', id]);
  });

  it("network modes: none (only lo), host (the host's), container:<id> (another container's)", () => {
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']).trim(), 'lo');
    const hostIfaces = fs.readdirSync('/sys/class/net').sort();
    const portStart = fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8');
    const inHost = d.dockerOk(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'ls /sys/class/net; echo; hostname']);
    const [ifaces, hostname] = inHost.split('\n\n');
    assert.deepEqual(ifaces!.trim().split('\n').sort(), hostIfaces);
    assert.equal(hostname!.trim(), os.hostname());
    assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'), portStart, "the host's network sysctls are untouched");
    const a = d.dockerOk(['run', '-d', '--name', 'netowner', 'busybox', 'sleep', '1000']).trim();
    const nsA = d.dockerOk(['exec', a, 'readlink', '/proc/self/ns/net']).trim();
    const inB = d.dockerOk(['run', '--rm', '--network', 'container:netowner', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/net; hostname']).trim().split('\n');
    assert.equal(inB[0], nsA, 'the same network namespace');
    assert.equal(inB[1], a.slice(0, 12), "the other container's hostname");
    d.dockerOk(['rm', '-f', a]);
    const unknown = d.docker(['run', '--rm', '--network', 'nosuchnet', 'busybox', 'true']);
    assert.equal(unknown.status, 125);
    assert.match(unknown.stderr, /network nosuchnet not found/);
  });

  it('health checks: starting, healthy, unhealthy after the retries, in inspect, ps and events', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const id = d.dockerOk(['run', '-d', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '200ms', '--health-retries', '2', 'busybox', 'sh', '-c', 'sleep 1; touch /tmp/ok; sleep 1000']).trim();
    const status = (): string => d.dockerOk(['inspect', '-f', '{{.State.Health.Status}}', id]).trim();
    assert.ok(await poll(() => status() === 'healthy', 15_000), `became ${status()}`);
    assert.match(d.dockerOk(['ps', '--filter', `id=${id}`, '--format', '{{.Status}}']), /\(healthy\)/);
    d.dockerOk(['exec', id, 'rm', '/tmp/ok']);
    assert.ok(await poll(() => status() === 'unhealthy', 15_000), `became ${status()}`);
    const health = JSON.parse(d.dockerOk(['inspect', '-f', '{{json .State.Health}}', id])) as { FailingStreak: number; Log: Array<{ ExitCode: number }> };
    assert.ok(health.FailingStreak >= 2);
    assert.equal(health.Log.at(-1)!.ExitCode, 1);
    d.dockerOk(['rm', '-f', id]);
    const events = d.dockerOk(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', `container=${id}`, '--format', '{{.Action}}']);
    assert.match(events, /health_status: healthy/);
    assert.match(events, /health_status: unhealthy/);

    // API 1.44's start interval: probes come every 200 ms during the start period, not every minute.
    const quick = d.dockerOk(['run', '-d', '--health-cmd', 'true', '--health-interval', '60s', '--health-start-period', '30s', '--health-start-interval', '200ms', 'busybox', 'sleep', '1000']).trim();
    try {
      assert.ok(await poll(() => d.dockerOk(['inspect', '-f', '{{.State.Health.Status}}', quick]).trim() === 'healthy', 10_000), 'healthy within the start period');
    } finally {
      d.dockerOk(['rm', '-f', quick]);
    }

    // Every probe's output, both streams, read to its end after the exit (a probe lost it now
    // and then); more than 4096 bytes cut there, with "..." as moby's limitedBuffer.
    const talky = d.dockerOk(['run', '-d', '--health-cmd', 'echo err >&2; sleep 0.1; echo out; head -c 5000 /dev/zero | tr "\\0" a; exit 1', '--health-interval', '200ms', 'busybox', 'sleep', '1000']).trim();
    try {
      assert.ok(await poll(() => (JSON.parse(d.dockerOk(['inspect', '-f', '{{json .State.Health.Log}}', talky])) as unknown[]).length >= 5, 10_000), 'five probes');
      const log = JSON.parse(d.dockerOk(['inspect', '-f', '{{json .State.Health.Log}}', talky])) as Array<{ ExitCode: number; Output: string }>;
      for (const entry of log) {
        assert.equal(entry.ExitCode, 1);
        assert.equal(entry.Output.length, 4099, 'the first 4096 bytes and "..."');
        assert.ok(entry.Output.endsWith('aaa...') && entry.Output.includes('out\n') && entry.Output.includes('err\n'), JSON.stringify(entry.Output.slice(0, 20)));
      }
    } finally {
      d.dockerOk(['rm', '-f', talky]);
    }

    // A probe past its timeout: exit -1 and dockerd's words, the timeout as Go prints a duration.
    const slow = d.dockerOk(['run', '-d', '--health-cmd', 'sleep 5', '--health-interval', '200ms', '--health-timeout', '300ms', '--health-retries', '1', 'busybox', 'sleep', '1000']).trim();
    try {
      assert.ok(await poll(() => d.dockerOk(['inspect', '-f', '{{.State.Health.Status}}', slow]).trim() === 'unhealthy', 10_000), 'unhealthy after a timeout');
      const log = JSON.parse(d.dockerOk(['inspect', '-f', '{{json .State.Health.Log}}', slow])) as Array<{ ExitCode: number; Output: string }>;
      assert.deepEqual({ ExitCode: log[0]!.ExitCode, Output: log[0]!.Output }, { ExitCode: -1, Output: 'Health check exceeded timeout (300ms)' });
    } finally {
      d.dockerOk(['rm', '-f', slow]);
    }
  });

  it("writes maps with their keys sorted, as Go's encoding/json does (labels, ports, volumes, options)", () => {
    const id = d.dockerOk(['create', '--label', 'zeta=1', '--label', 'alpha=2', '--expose', '9000', '--expose', '80', '-v', '/zz', '-v', '/aa', '-p', '127.0.0.1:9001:9000', '-p', '127.0.0.1:8081:80', 'busybox']).trim();
    try {
      const keys = (format: string): string => d.dockerOk(['inspect', '-f', `|{{json ${format}}}`, id]).trim();
      for (const [field, given] of [['.Config.Labels', ['zeta', 'alpha']], ['.Config.ExposedPorts', ['9000/tcp', '80/tcp']], ['.Config.Volumes', ['/zz', '/aa']], ['.HostConfig.PortBindings', ['9000/tcp', '80/tcp']]] as const) {
        const found = Object.keys(JSON.parse(keys(field).split('|')[1]!) as Record<string, unknown>);
        assert.ok(given.every((k) => found.includes(k)), `${field}: ${found}`);
        assert.deepEqual(found, [...found].sort(), field);
      }
    } finally {
      d.dockerOk(['rm', id]);
    }
    d.dockerOk(['volume', 'create', '--label', 'z=1', '--label', 'a=2', 'sorted-vol']);
    assert.deepEqual(Object.keys(JSON.parse(d.dockerOk(['volume', 'inspect', '-f', '{{json .Labels}}', 'sorted-vol'])) as object), ['a', 'z']);
    d.dockerOk(['volume', 'rm', 'sorted-vol']);
  });

  it('container and volume prune take until, label and label! (what is filtered out stays)', () => {
    const kept = d.dockerOk(['create', '--label', 'keep=1', 'busybox', 'true']).trim();
    const gone = d.dockerOk(['create', 'busybox', 'true']).trim();
    assert.match(d.dockerOk(['container', 'prune', '-f', '--filter', 'until=1h']), /Total reclaimed space/);
    assert.ok(d.docker(['inspect', gone]).status === 0, 'until=1h: the new ones stay');
    const out = d.dockerOk(['container', 'prune', '-f', '--filter', 'label!=keep=1']);
    assert.match(out, new RegExp(gone));
    assert.doesNotMatch(out, new RegExp(kept));
    assert.equal(d.docker(['inspect', gone]).status, 1);
    assert.equal(d.docker(['inspect', kept]).status, 0, 'label!: the labelled one stays');
    d.dockerOk(['rm', kept]);
    assert.match(d.docker(['container', 'prune', '-f', '--filter', 'dangling=true']).stderr, /Invalid filter 'dangling'/);

    d.dockerOk(['volume', 'create', '--label', 'keep=1', 'pv-kept']);
    d.dockerOk(['volume', 'create', 'pv-gone']);
    d.dockerOk(['volume', 'prune', '-af', '--filter', 'label!=keep']);
    assert.deepEqual(d.dockerOk(['volume', 'ls', '-q']).split('\n').filter((v) => v.startsWith('pv-')), ['pv-kept']);
    d.dockerOk(['volume', 'rm', 'pv-kept']);
    assert.match(d.docker(['volume', 'ls', '--filter', 'colour=red']).stderr, /Invalid filter 'colour'/);
  });

  it('volume prune: anonymous volumes only since API 1.42, every unused one before (as dockerd)', async () => {
    d.dockerOk(['volume', 'create', 'pv-named']);
    const anonymous = d.dockerOk(['volume', 'create']).trim(); // an anonymous volume's name: 64 hex digits
    const prune = async (version: string): Promise<string[]> => (JSON.parse((await socketRequest(d.socket, 'POST', `/${version}/volumes/prune`)).body) as { VolumesDeleted: string[] }).VolumesDeleted;
    assert.deepEqual(await prune('v1.44'), [anonymous]);
    assert.ok((await prune('v1.41')).includes('pv-named'));
    assert.equal(d.docker(['volume', 'inspect', 'pv-named']).status, 1);
  });

  it('a client polling over one kept-alive connection (stats, logs, wait) leaves nothing behind on it', async () => {
    const id = d.dockerOk(['run', '-d', 'busybox', 'sh', '-c', 'echo polled; sleep 60']).trim();
    const exited = d.dockerOk(['create', 'busybox', 'true']).trim();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const get = (method: string, p: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ socketPath: d.socket, method, path: p, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('socket', (s) => sockets.add(s));
        req.on('error', reject).end();
      });
    try {
      for (let i = 0; i < 15; i++) {
        assert.equal(await get('GET', `/containers/${id}/stats?stream=false&one-shot=true`), 200);
        assert.equal(await get('GET', `/containers/${id}/logs?stdout=1`), 200);
        assert.equal(await get('POST', `/containers/${exited}/wait`), 200); // exited: answered at once
      }
    } finally {
      agent.destroy();
    }
    assert.equal(sockets.size, 1, 'one connection served them all');
    // Each request used to leave a 'close' listener on the connection: Node warns at the 11th.
    assert.doesNotMatch(fs.readFileSync(path.join(d.dir, 'berthd.log'), 'utf8'), /MaxListenersExceededWarning/);
    d.dockerOk(['rm', '-f', id, exited]);
  });

  it('system df and info answer', async () => {
    assert.match(d.dockerOk(['system', 'df']), /Images/);
    assert.match(d.dockerOk(['info', '--format', '{{.Driver}} {{.OSType}}']), /overlay2 linux/);
    // Every field dockerd 20.10 answers in /info is there (clients decode them by name); asked at
    // 1.41 without the docker CLI, whose v28 types no longer carry some of them.
    const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
      http
        .get({ socketPath: d.socket, path: '/v1.41/info' }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
        })
        .on('error', reject);
    });
    const dockerd2010 = ['BridgeNfIp6tables', 'BridgeNfIptables', 'CPUSet', 'CPUShares', 'CgroupDriver', 'CgroupVersion', 'ContainerdCommit', 'Containers', 'ContainersPaused', 'ContainersRunning', 'ContainersStopped', 'CpuCfsPeriod', 'CpuCfsQuota', 'Debug', 'DefaultRuntime', 'DockerRootDir', 'Driver', 'DriverStatus', 'ExperimentalBuild', 'GenericResources', 'HttpProxy', 'HttpsProxy', 'ID', 'IPv4Forwarding', 'Images', 'IndexServerAddress', 'InitBinary', 'InitCommit', 'Isolation', 'KernelMemory', 'KernelMemoryTCP', 'KernelVersion', 'Labels', 'LiveRestoreEnabled', 'LoggingDriver', 'MemTotal', 'MemoryLimit', 'NCPU', 'NEventsListener', 'NFd', 'NGoroutines', 'Name', 'NoProxy', 'OSType', 'OSVersion', 'OomKillDisable', 'OperatingSystem', 'PidsLimit', 'Plugins', 'RegistryConfig', 'RuncCommit', 'Runtimes', 'SecurityOptions', 'ServerVersion', 'SwapLimit', 'Swarm', 'SystemTime', 'Warnings'];
    assert.deepEqual(dockerd2010.filter((k) => !(k in info)), []);
    // Drivers by name (the none network's is "null"), the data root's file system, loopback registries insecure.
    assert.deepEqual(info.Plugins, { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file', 'local'] });
    assert.deepEqual((info.DriverStatus as string[][])[0], ['Backing Filesystem', 'extfs']);
    assert.deepEqual((info.RegistryConfig as { InsecureRegistryCIDRs: string[] }).InsecureRegistryCIDRs, ['127.0.0.0/8']);
    assert.equal(info.SwapLimit, fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/cgroup.controllers'), 'swap limits where the kernel accounts swap');
    assert.ok(Number(info.NFd) > 0);
    assert.equal(info.Warnings, null);
    // version: the build's time in dockerd's two spellings, the runtime and init as components.
    const version = JSON.parse(d.dockerOk(['version', '--format', '{{json .Server}}'])) as { BuildTime?: string; Components: Array<{ Name: string; Details: { BuildTime?: string } }> };
    assert.match(String(version.BuildTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00$/);
    assert.match(String(version.Components[0]!.Details.BuildTime), /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    assert.deepEqual(version.Components.map((c) => c.Name), ['Engine', 'berth', 'berth-oci', 'berth-init']);
    // -v: per image the bytes shared with other images and the containers using it.
    const id = d.dockerOk(['create', 'busybox', 'true']).trim();
    const images = d.dockerOk(['system', 'df', '-v']).split('Containers space usage')[0]!;
    d.dockerOk(['rm', id]);
    assert.doesNotMatch(images, /N\/A/);
    assert.match(images, /^busybox\s+latest\s.*\s1$/m, 'one container uses busybox');
    // At 1.41 the fields dockerd 20.10 answers there: BuilderSize, each image's VirtualSize.
    const df41 = JSON.parse((await socketRequest(d.socket, 'GET', '/v1.41/system/df')).body) as { BuilderSize?: number; Images: Array<{ VirtualSize?: number; Size: number }> };
    assert.equal(df41.BuilderSize, 0);
    assert.equal((df41 as { BuildCache?: unknown }).BuildCache, null, "Go's nil slice");
    assert.ok(df41.Images.length > 0 && df41.Images.every((i) => i.VirtualSize === i.Size));
    const df44 = JSON.parse((await socketRequest(d.socket, 'GET', '/v1.44/system/df')).body) as Record<string, unknown>;
    assert.ok(!('BuilderSize' in df44));
  });

  it('ps -s and inspect -s: the writable layer and the whole root file system', async () => {
    const id = d.dockerOk(['run', '-d', 'busybox', 'sh', '-c', 'head -c 300000 /dev/zero > /big; exec sleep 100']).trim();
    try {
      assert.ok(await poll(() => d.docker(['exec', id, 'test', '-s', '/big']).status === 0, 5000));
      const [rw, rootfs] = d.dockerOk(['inspect', '-s', '-f', '{{.SizeRw}} {{.SizeRootFs}}', id]).trim().split(' ').map(Number);
      assert.equal(rw, 300_000, 'SizeRw: the bytes of the files written, as dockerd counts them');
      assert.ok(rootfs! > rw! + 1_000_000, `SizeRootFs ${rootfs} holds the image's ~2 MB too`);
      assert.match(d.dockerOk(['ps', '-s', '--filter', `id=${id}`, '--format', '{{.Size}}']), /^\d+(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)$/m);
      assert.equal(d.dockerOk(['inspect', '-f', '{{.SizeRw}}', id]).trim(), '<nil>', 'only with -s');
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
    // The list's sizes are omitempty: a container that wrote nothing has no SizeRw (inspect -s keeps its 0).
    const clean = d.dockerOk(['create', 'busybox', 'true']).trim();
    const [listed] = JSON.parse((await socketRequest(d.socket, 'GET', `/v1.41/containers/json?all=1&size=1&filters=${encodeURIComponent(JSON.stringify({ id: [clean] }))}`)).body) as Array<Record<string, unknown>>;
    assert.ok(!('SizeRw' in listed!) && typeof listed!.SizeRootFs === 'number', JSON.stringify(listed));
    assert.equal(d.dockerOk(['inspect', '-s', '-f', '{{.SizeRw}}', clean]).trim(), '0');
    d.dockerOk(['rm', clean]);
  });
});
