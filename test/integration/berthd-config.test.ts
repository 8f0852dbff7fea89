/**
 * berthd's configuration file: the containers' defaults it gives (DNS, ulimits, /dev/shm size,
 * IPC mode) reach containers that set none of their own; a key no daemon knows stops berthd
 * with dockerd's message, before it touches anything. The pid file keeps a second daemon out,
 * but not a dead one's zombie.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BERTHD, startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { dockerdSkip, poll, stopPid } from '../helpers/engines.js';
import { socketRequest } from '../helpers/http.js';

describe('berthd configuration file', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({
      prefix: 'berthd-config-',
      config: {
        dns: ['10.231.0.53'],
        'dns-search': ['example.test'],
        'dns-opts': ['ndots:3'],
        'default-ulimits': { nofile: { Name: 'nofile', Soft: 1111, Hard: 2222 } },
        'default-shm-size': '16M',
        'default-ipc-mode': 'shareable',
        'live-restore': true,
        'insecure-registries': ['reg.example.test:5000', '10.231.0.0/16'],
        'log-driver': 'local',
      },
    });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  it("gives containers the daemon's DNS, ulimits, /dev/shm size and IPC mode unless they set their own", () => {
    const out = d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1']);
    assert.match(out, /^nameserver 10\.231\.0\.53$/m);
    assert.match(out, /^search example\.test$/m);
    assert.match(out, /^options ndots:3$/m);
    assert.match(out, /^1111\n2222\n/m);
    assert.match(out, /^shm\s+16384\s/m);
    const own = d.dockerOk(['run', '--rm', '--dns', '10.231.0.54', '--ulimit', 'nofile=500:600', '--shm-size', '8m', '--ipc', 'private', 'busybox', 'sh', '-c', 'grep nameserver /etc/resolv.conf; ulimit -n; df -k /dev/shm | tail -1']);
    assert.match(own, /^nameserver 10\.231\.0\.54$/m);
    assert.doesNotMatch(own, /10\.231\.0\.53/);
    assert.match(own, /^500$/m);
    assert.match(own, /^shm\s+8192\s/m);
    const id = d.dockerOk(['create', 'busybox', 'true']).trim();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.IpcMode}}', id]).trim(), 'shareable');
    d.dockerOk(['rm', id]);
    assert.match(fs.readFileSync(path.join(d.dir, 'berthd.log'), 'utf8'), /accepted without effect here: live-restore/);
  });

  it('info shows the insecure registries and the log driver as dockerd does', async () => {
    const info = JSON.parse(d.dockerOk(['info', '--format', '{{json .}}'])) as { LoggingDriver: string; RegistryConfig: { InsecureRegistryCIDRs: string[]; IndexConfigs: Record<string, { Secure: boolean; Official: boolean }> } };
    assert.equal(info.LoggingDriver, 'local');
    assert.deepEqual(info.RegistryConfig.InsecureRegistryCIDRs, ['10.231.0.0/16', '127.0.0.0/8']);
    // dockerd's deprecated fields, empty, as API 1.44 still has them.
    const raw = (JSON.parse((await socketRequest(d.socket, 'GET', '/v1.44/info')).body) as { RegistryConfig: Record<string, unknown> }).RegistryConfig;
    assert.deepEqual([raw.AllowNondistributableArtifactsCIDRs, raw.AllowNondistributableArtifactsHostnames], [[], []]);
    assert.deepEqual(info.RegistryConfig.IndexConfigs['reg.example.test:5000'], { Name: 'reg.example.test:5000', Mirrors: [], Secure: false, Official: false });
    assert.equal(info.RegistryConfig.IndexConfigs['docker.io']?.Official, true);
    // The docker CLI lists them under "Insecure Registries", as for dockerd.
    const text = d.dockerOk(['info']);
    assert.match(text, /Insecure Registries:\s+reg\.example\.test:5000\s+10\.231\.0\.0\/16\s+127\.0\.0\.0\/8/);
  });

  it('SIGHUP reloads the config file (labels, insecure registries), says so in a daemon reload event, and keeps a running configuration when the new one is bad', async () => {
    const file = path.join(d.dir, 'daemon.json');
    const before = fs.readFileSync(file, 'utf8');
    const pid = d.pid()!;
    const since = Math.floor(Date.now() / 1000) - 1;
    try {
      const running = d.dockerOk(['run', '-d', 'busybox', 'sleep', '100']).trim();
      fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(before), labels: ['tier=reloaded'], 'insecure-registries': ['reg2.example.test:5000'] }));
      process.kill(pid, 'SIGHUP');
      const labels = (): string => d.dockerOk(['info', '--format', '{{json .Labels}}']).trim();
      assert.ok(await poll(() => labels() === '["tier=reloaded"]', 5000), `labels after the reload: ${labels()}`);
      assert.match(d.dockerOk(['info']), /Insecure Registries:\s+reg2\.example\.test:5000\s+127\.0\.0\.0\/8/);
      assert.equal(d.pid(), pid, 'the same daemon');
      assert.equal(d.dockerOk(['inspect', '-f', '{{.State.Running}}', running]).trim(), 'true', 'containers keep running');
      const events = d.dockerOk(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=daemon', '--format', '{{.Action}} {{index .Actor.Attributes "labels"}}']);
      assert.match(events, /^reload \["tier=reloaded"\]$/m);
      // A config file that does not check out: logged, the running configuration stays.
      fs.writeFileSync(file, '{"labels": ');
      process.kill(pid, 'SIGHUP');
      assert.ok(await poll(() => /SIGHUP: error reloading the configuration, the running one stays/.test(fs.readFileSync(path.join(d.dir, 'berthd.log'), 'utf8')), 5000));
      assert.equal(labels(), '["tier=reloaded"]');
      assert.ok(fs.existsSync(`/proc/${pid}`), 'still running');
      d.dockerOk(['rm', '-f', running]);
    } finally {
      fs.writeFileSync(file, before);
      process.kill(pid, 'SIGHUP');
    }
  });

  it('SIGUSR1 writes a diagnostic report (as dockerd dumps its stacks) and opens no inspector port', async () => {
    const pid = d.pid()!;
    process.kill(pid, 'SIGUSR1');
    const reported = (): string | undefined => /SIGUSR1: diagnostic report written to (\S+)/.exec(fs.readFileSync(path.join(d.dir, 'berthd.log'), 'utf8'))?.[1];
    assert.ok(await poll(() => reported() !== undefined, 5000), 'the report is logged');
    const report = reported()!;
    assert.equal(path.dirname(report), path.join(d.dir, 'exec'));
    assert.equal(fs.statSync(report).mode & 0o777, 0o600, 'it holds the environment');
    assert.ok((JSON.parse(fs.readFileSync(report, 'utf8')) as { javascriptStack?: unknown }).javascriptStack);
    fs.rmSync(report);
    const listening = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(listening, new RegExp(`pid=${pid},`), `berthd listens on no TCP port: ${listening}`);
    assert.equal(d.pid(), pid);
    assert.equal(d.dockerOk(['version', '--format', '{{.Server.Os}}']).trim(), 'linux');
  });

  it("stops at a key no daemon knows, with dockerd's message", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthd-badconfig-'));
    try {
      fs.writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify({ 'data-roott': '/nowhere', debug: true }));
      const r = spawnSync(BERTHD, ['--config-file', path.join(dir, 'daemon.json'), '-H', `unix://${dir}/berth.sock`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid')], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /the following directives don't match any configuration option: data-roott/);
      assert.ok(!fs.existsSync(path.join(dir, 'data')) && !fs.existsSync(path.join(dir, 'berth.sock')), 'nothing made');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("berthd's open-files limit", { skip: dockerdSkip }, () => {
  // Started with a soft limit below its hard one (a login shell's 1024, say): the daemon, which
  // holds a descriptor or more per running container, raises its own to the hard one, as dockerd
  // (Go) does; its containers and execs get the limit it was started with, as a dockerd built with
  // Go 1.21 or later gives its children. Both limits below this machine's hard one: root here
  // cannot raise a hard limit.
  const soft = 1000;
  const hard = 4000;
  let d: PrivateBerthd;
  before(async () => {
    d = await startBerthd({ prefix: 'berthd-nofile-', nofile: { soft, hard } });
    d.loadImages('busybox');
  });
  after(async () => {
    await d?.stop();
  });

  it('raises its own soft limit to the hard one and gives containers and execs the one it was started with', () => {
    const limits = fs.readFileSync(`/proc/${d.pid()}/limits`, 'utf8');
    assert.match(limits, new RegExp(`^Max open files\\s+${hard}\\s+${hard}\\s`, 'm'), limits);
    assert.equal(d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', 'ulimit -Sn; ulimit -Hn']), `${soft}\n${hard}\n`);
    const id = d.dockerOk(['run', '-d', 'busybox', 'sleep', '60']).trim();
    try {
      assert.equal(d.dockerOk(['exec', id, 'sh', '-c', 'ulimit -Sn; ulimit -Hn']), `${soft}\n${hard}\n`);
      // --ulimit still decides for the container that sets it.
      assert.equal(d.dockerOk(['run', '--rm', '--ulimit', 'nofile=300:600', 'busybox', 'sh', '-c', 'ulimit -Sn; ulimit -Hn']), '300\n600\n');
    } finally {
      d.dockerOk(['rm', '-f', id]);
    }
  });
});

describe("berthd's pid file", { skip: dockerdSkip }, () => {
  const procState = (pid: number): string | undefined => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    } catch {
      return undefined;
    }
  };
  const daemonArgs = (dir: string): string[] => ['-H', `unix://${dir}/berth.sock`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid'), '--config-file', path.join(dir, 'daemon.json'), '--bridge', 'none', '--no-exec-root-tmpfs'];

  it('refuses to start while the pid file names a live process, and starts when it names a zombie', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthd-pidfile-'));
    fs.writeFileSync(path.join(dir, 'daemon.json'), '{}');
    // sh starts `sleep 0`, then becomes `sleep 30`, which never waits: its finished child stays a
    // zombie, as a berthd killed with SIGKILL does until its parent reaps it.
    const parent = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let daemon: ReturnType<typeof spawn> | undefined;
    try {
      const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim()))));
      assert.ok(await poll(() => procState(zombie) === 'Z', 5000), `pid ${zombie} became a zombie`);

      fs.writeFileSync(path.join(dir, 'pid'), String(parent.pid));
      const refused = spawnSync(BERTHD, daemonArgs(dir), { encoding: 'utf8', timeout: 30_000 });
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`pid file .* names a running process \\(${parent.pid}\\)`));

      fs.writeFileSync(path.join(dir, 'pid'), String(zombie));
      daemon = spawn(BERTHD, daemonArgs(dir), { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => daemon!.once('exit', (code) => resolve(code)));
      const started = await Promise.race([poll(() => fs.existsSync(path.join(dir, 'berth.sock')), 30_000).then((ok) => (ok ? 'started' : 'no socket after 30 s')), exited.then((code) => `exited with ${code}`)]);
      assert.equal(started, 'started');
      assert.equal(fs.readFileSync(path.join(dir, 'pid'), 'utf8'), String(daemon.pid));
    } finally {
      if (daemon?.pid) await stopPid(daemon.pid, 10_000);
      parent.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("berthd's security defaults, default-bridge settings and address pools (dockerd's --no-new-privileges, --seccomp-profile, --icc, --ip, --label, --default-address-pool)", { skip: dockerdSkip }, () => {
  const TAG = 40 + (process.pid % 150);
  const BRIDGE = `bcfg${TAG}`;
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthd-seccomp-'));
  const profile = path.join(profileDir, 'no-mkdir.json');
  let d: PrivateBerthd;
  before(async () => {
    fs.writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
    d = await startBerthd({
      prefix: 'berthd-secdef-',
      bridge: { name: BRIDGE, cidr: `10.219.${TAG}.1/24` },
      config: { labels: ['team=blue'], 'no-new-privileges': true },
      extraArgs: ['--icc=false', '--ip', '127.0.0.1', '--seccomp-profile', profile, '--default-address-pool', `base=10.211.${TAG}.0/24,size=26`, '--default-network-opt', 'bridge=com.docker.network.driver.mtu=1400'],
    });
    d.loadImages('busybox', 'web');
  });
  after(async () => {
    await d?.stop();
    fs.rmSync(profileDir, { recursive: true, force: true });
  });

  it("info names them as dockerd does; the default bridge's options show them", () => {
    const info = JSON.parse(d.dockerOk(['info', '--format', '{{json .}}'])) as { Labels: string[]; SecurityOptions: string[] };
    assert.deepEqual(info.Labels, ['team=blue']);
    assert.ok(info.SecurityOptions.includes(`name=seccomp,profile=${profile}`), info.SecurityOptions.join(' '));
    assert.ok(info.SecurityOptions.includes('name=no-new-privileges'), info.SecurityOptions.join(' '));
    const options = JSON.parse(d.dockerOk(['network', 'inspect', 'bridge', '--format', '{{json .Options}}'])) as Record<string, string>;
    assert.equal(options['com.docker.network.bridge.enable_icc'], 'false');
    assert.equal(options['com.docker.network.bridge.enable_ip_masquerade'], 'true');
    assert.equal(options['com.docker.network.bridge.host_binding_ipv4'], '127.0.0.1');
    assert.equal(options['com.docker.network.driver.mtu'], '1500');
  });

  it('no_new_privs and the profile for containers that ask nothing else; their own security options win', () => {
    assert.match(d.dockerOk(['run', '--rm', '--network', 'none', 'busybox', 'grep', 'NoNewPrivs', '/proc/self/status']), /NoNewPrivs:\s+1/);
    assert.match(d.dockerOk(['run', '--rm', '--network', 'none', '--security-opt', 'no-new-privileges=false', 'busybox', 'grep', 'NoNewPrivs', '/proc/self/status']), /NoNewPrivs:\s+0/);
    const blocked = d.docker(['run', '--rm', '--network', 'none', 'busybox', 'mkdir', '/made']);
    assert.notEqual(blocked.status, 0);
    assert.match(blocked.stderr + blocked.stdout, /Operation not permitted/);
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'none', '--security-opt', 'seccomp=builtin', 'busybox', 'sh', '-c', 'mkdir /made && echo made']).trim(), 'made');
  });

  it('--icc=false: containers on the default bridge reach the gateway and the way out, not each other; the same for a network with enable_icc=false', () => {
    const target = d.dockerOk(['run', '-d', 'busybox', 'sleep', '300']).trim();
    const ip = d.dockerOk(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', target]).trim();
    const probe = (network: string[], to: string): string =>
      d.dockerOk(['run', '--rm', ...network, 'busybox', 'sh', '-c', `ping -c1 -W2 ${to} >/dev/null 2>&1 && echo reached || echo blocked`]).trim();
    assert.equal(probe([], `10.219.${TAG}.1`), 'reached', 'the gateway');
    assert.equal(probe([], ip), 'blocked', 'another container');
    // A user network with the option, and one without (the control: the same probe reaches).
    d.dockerOk(['network', 'create', '--subnet', `10.216.${TAG}.0/24`, '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc']);
    d.dockerOk(['network', 'create', '--subnet', `10.215.${TAG}.0/24`, 'withicc']);
    try {
      for (const [net, expected] of [['noicc', 'blocked'], ['withicc', 'reached']] as const) {
        const peer = d.dockerOk(['run', '-d', '--network', net, 'busybox', 'sleep', '300']).trim();
        const peerIp = d.dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, peer]).trim();
        assert.equal(probe(['--network', net], peerIp), expected, net);
        d.dockerOk(['rm', '-f', peer]);
      }
      assert.match(d.docker(['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=maybe', 'badicc']).stderr, /enable_icc: invalid value "maybe": expected a boolean/);
    } finally {
      d.docker(['network', 'rm', 'noicc', 'withicc']);
      d.docker(['rm', '-f', target]);
    }
  });

  it('--ip 127.0.0.1: a port published without an address is published on it', () => {
    const web = d.dockerOk(['run', '-d', '-p', '80', 'web']).trim();
    try {
      const bound = d.dockerOk(['port', web, '80']).trim();
      assert.match(bound, /^127\.0\.0\.1:\d+$/);
      assert.equal(d.dockerOk(['inspect', '-f', '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostIp}}', web]).trim(), '127.0.0.1');
      // One that names an address keeps it.
      const own = d.dockerOk(['run', '-d', '-p', '0.0.0.0::80', 'web']).trim();
      assert.match(d.dockerOk(['port', own, '80']).trim(), /^0\.0\.0\.0:\d+$/);
      d.dockerOk(['rm', '-f', own]);
    } finally {
      d.docker(['rm', '-f', web]);
    }
  });

  it('--default-address-pool: networks made without a subnet get the pool\'s, in order, until it is used up', () => {
    const made: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        d.dockerOk(['network', 'create', `pooled${i}`]);
        made.push(`pooled${i}`);
      }
      const subnets = made.map((n) => d.dockerOk(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', n]).trim());
      assert.deepEqual(subnets, [0, 64, 128, 192].map((host) => `10.211.${TAG}.${host}/26`));
      assert.match(d.docker(['network', 'create', 'pooled4']).stderr, /all predefined address pools have been fully subnetted/);
    } finally {
      if (made.length) d.docker(['network', 'rm', ...made]);
    }
  });

  it("--default-network-opt: new networks get the daemon's driver options unless they set their own", () => {
    d.dockerOk(['network', 'create', '--subnet', `10.210.${TAG}.0/24`, 'defopts']);
    d.dockerOk(['network', 'create', '--subnet', `10.209.${TAG}.0/24`, '-o', 'com.docker.network.driver.mtu=1300', 'ownopts']);
    try {
      assert.equal(d.dockerOk(['network', 'inspect', '-f', '{{json .Options}}', 'defopts']).trim(), '{"com.docker.network.driver.mtu":"1400"}');
      assert.equal(d.dockerOk(['run', '--rm', '--network', 'defopts', 'busybox', 'cat', '/sys/class/net/eth0/mtu']).trim(), '1400');
      assert.equal(d.dockerOk(['run', '--rm', '--network', 'ownopts', 'busybox', 'cat', '/sys/class/net/eth0/mtu']).trim(), '1300');
    } finally {
      d.docker(['network', 'rm', 'defopts', 'ownopts']);
    }
  });

  it('a seccomp profile that cannot be read or parsed stops berthd at start, naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthd-badprofile-'));
    try {
      fs.writeFileSync(path.join(dir, 'bad.json'), '{"defaultAction": 7}');
      fs.writeFileSync(path.join(dir, 'daemon.json'), '{}');
      for (const [file, pattern] of [
        [path.join(dir, 'missing.json'), /--seccomp-profile .*missing\.json: ENOENT/],
        [path.join(dir, 'bad.json'), /^.*seccomp-profile\.defaultAction: /m],
      ] as const) {
        const r = spawnSync(BERTHD, ['--seccomp-profile', file, '-H', `unix://${dir}/berth.sock`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'pid'), '--bridge', 'none', '--no-exec-root-tmpfs', '--config-file', path.join(dir, 'daemon.json')], { encoding: 'utf8', timeout: 30_000 });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, pattern);
        assert.ok(!fs.existsSync(path.join(dir, 'berth.sock')), 'no socket');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
