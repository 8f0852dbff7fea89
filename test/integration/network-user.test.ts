/**
 * Issue 5 through the real docker CLI against berthd: user-defined networks (create, ls,
 * inspect, rm, prune, connect, disconnect), names through the embedded DNS server, --ip,
 * --network-alias, --internal, published ports through kernel NAT surviving a kill -9 of the
 * daemon, and the errors Docker gives. Traffic goes only to addresses this test made: its
 * bridges, its containers, a namespace of its own playing "the outside" (10.220.x.0/24), and
 * a fake upstream DNS server on a loopback address.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';


import { freePort, httpGet, httpGetWithRetry } from '../helpers/http.js';
import { startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { cmd, dockerdSkip, poll } from '../helpers/engines.js';

const TAG = process.pid % 200;
const BRIDGE = `bt${process.pid % 100000}`;
const DEFAULT_CIDR = `10.216.${TAG}.1/24`;
const NET_A = `10.217.${TAG}.0/24`;
const NET_INTERNAL = `10.218.${TAG}.0/24`;
/** "The outside": a namespace of the test's own behind a veth pair. */
const OUTSIDE_NS = `bout${process.pid % 100000}`;
const OUTSIDE_HOST_IP = `10.220.${TAG}.1`;
const OUTSIDE_IP = `10.220.${TAG}.2`;
const OUTSIDE_VETH = `vo${process.pid % 100000}`;
/** A fake upstream resolver on a loopback address: what the embedded DNS forwards to. */
const UPSTREAM = `127.0.${TAG}.53`;

/**
 * A minimal DNS server answering every A question with 192.0.2.77 (data only; nothing is sent
 * there). A process of its own: the test's event loop is blocked while the docker CLI runs.
 */
function fakeUpstream(): ChildProcess {
  const script = `
    const dgram = require('node:dgram');
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      let end = 12;
      while (msg[end] !== 0 && end < msg.length) end += msg[end] + 1;
      const question = msg.subarray(12, end + 5);
      const header = Buffer.from([msg[0], msg[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
      const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77]);
      socket.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
    });
    socket.bind(53, '${UPSTREAM}', () => process.stdout.write('ready\\n'));`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** iptables-save lines mentioning Berth's chains. */
function berthRules(): string[] {
  return cmd('iptables-save', []).stdout.split('\n').filter((l) => l.includes('BERTH') && !l.startsWith(':') && !l.startsWith('#'));
}

describe('user-defined networks through the docker CLI', { skip: dockerdSkip }, () => {
  let d: PrivateBerthd;
  let upstream: ChildProcess | undefined;
  let outsideServer: ChildProcess | undefined;
  let www: string | undefined;
  const forwardBefore = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

  before(async () => {
    // The outside: a namespace with a web server, reachable from the host through a veth.
    cmd('ip', ['netns', 'add', OUTSIDE_NS]);
    cmd('ip', ['link', 'add', OUTSIDE_VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUTSIDE_NS]);
    cmd('ip', ['addr', 'add', `${OUTSIDE_HOST_IP}/24`, 'dev', OUTSIDE_VETH]);
    cmd('ip', ['link', 'set', OUTSIDE_VETH, 'up']);
    cmd('ip', ['netns', 'exec', OUTSIDE_NS, 'sh', '-c', `ip addr add ${OUTSIDE_IP}/24 dev eth0 && ip link set eth0 up && ip link set lo up`]);
    www = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-outside-'));
    fs.writeFileSync(path.join(www, 'index.html'), 'outside\n');
    outsideServer = spawn('ip', ['netns', 'exec', OUTSIDE_NS, 'busybox', 'httpd', '-f', '-p', `${OUTSIDE_IP}:8080`, '-h', www], { stdio: 'ignore' });
    upstream = fakeUpstream();
    await new Promise((resolve) => upstream!.stdout!.once('data', resolve));
    d = await startBerthd({ prefix: 'berthd-netuser-', bridge: { name: BRIDGE, cidr: DEFAULT_CIDR }, resolvConf: `nameserver ${UPSTREAM}\nsearch example.test\n` });
    d.loadImages('busybox', 'web');
  });

  after(async () => {
    await d?.stop();
    upstream?.kill('SIGKILL');
    outsideServer?.kill('SIGKILL');
    if (www) fs.rmSync(www, { recursive: true, force: true });
    cmd('ip', ['netns', 'del', OUTSIDE_NS]);
    cmd('ip', ['link', 'del', OUTSIDE_VETH]);
    fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', forwardBefore);
    assert.deepEqual(berthRules().filter((l) => l.includes(BRIDGE)), [], 'no rule for the test bridge is left');
  });

  it('creates, lists, inspects and removes networks, with Docker errors for bad requests', () => {
    const id = d.dockerOk(['network', 'create', '--subnet', NET_A, '--label', 'team=a', 'neta']).trim();
    assert.match(id, /^[a-f0-9]{64}$/);
    const names = d.dockerOk(['network', 'ls', '--format', '{{.Name}}']).split('\n').filter(Boolean).sort();
    assert.deepEqual(names, ['bridge', 'host', 'neta', 'none']);
    const inspected = JSON.parse(d.dockerOk(['network', 'inspect', 'neta']))[0] as { Id: string; Driver: string; IPAM: { Options: unknown; Config: Array<{ Subnet: string; Gateway: string }> }; Labels: Record<string, string> };
    assert.equal(inspected.Id, id);
    assert.equal(inspected.Driver, 'bridge');
    assert.deepEqual(inspected.IPAM.Config, [{ Subnet: NET_A }], 'a gateway picked in a given subnet is not shown, as dockerd');
    assert.equal(inspected.Labels.team, 'a');
    assert.deepEqual(inspected.IPAM.Options, {}, "the docker CLI's empty IPAM options, shown back as dockerd does");
    assert.equal(d.dockerOk(['network', 'ls', '-q', '--filter', 'label=team=a']).trim(), id.slice(0, 12));

    const dup = d.docker(['network', 'create', 'neta']);
    assert.notEqual(dup.status, 0);
    assert.match(dup.stderr, /already exists/);
    const overlap = d.docker(['network', 'create', '--subnet', NET_A.replace(/\.0\/24$/, '.128/25'), 'clash']);
    assert.notEqual(overlap.status, 0);
    assert.match(overlap.stderr, /overlaps/);
    const predefined = d.docker(['network', 'rm', 'bridge']);
    assert.notEqual(predefined.status, 0);
    assert.match(predefined.stderr, /pre-defined network/);
    const unknown = d.docker(['run', '--rm', '--network', 'nosuchnet', 'busybox', 'true']);
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /network nosuchnet not found/);
    assert.equal(d.dockerOk(['ps', '-aq']).trim(), '', 'no half-created container');
    // Drivers berthd has not, answered as dockerd: host and null have their one network, overlay needs a swarm.
    assert.match(d.docker(['network', 'create', '-d', 'host', 'h2']).stderr, /only one instance of "host" network is allowed/);
    assert.match(d.docker(['network', 'create', '-d', 'null', 'n2']).stderr, /only one instance of "null" network is allowed/);
    assert.match(d.docker(['network', 'create', '-d', 'overlay', 'o2']).stderr, /This node is not a swarm manager/);
    assert.match(d.docker(['network', 'create', '-d', 'bogus', 'b2']).stderr, /plugin "bogus" not found/);

    // A network without a subnet gets one of the default pools.
    d.dockerOk(['network', 'create', '--ipam-opt', 'kept=yes', 'auto']);
    const auto = JSON.parse(d.dockerOk(['network', 'inspect', 'auto']))[0] as { IPAM: { Options: unknown; Config: Array<{ Subnet: string }> } };
    assert.deepEqual(auto.IPAM.Options, { kept: 'yes' });
    assert.match(auto.IPAM.Config[0]!.Subnet, /^(172\.(1[89]|2\d|3[01])\.0\.0\/16|192\.168\.\d+\.0\/20)$/);
    d.dockerOk(['network', 'rm', 'auto']);
    // prune: until, label, label!; what is filtered out stays.
    // (Only this part's networks carry prunetest: the later tests' networks must stay.)
    d.dockerOk(['network', 'create', '--label', 'prunetest', '--label', 'keep=1', 'pn-kept']);
    d.dockerOk(['network', 'create', '--label', 'prunetest', 'pn-gone']);
    assert.doesNotMatch(d.dockerOk(['network', 'prune', '-f', '--filter', 'label=prunetest', '--filter', 'until=1h']), /pn-/);
    const pruned = d.dockerOk(['network', 'prune', '-f', '--filter', 'label=prunetest', '--filter', 'label!=keep=1']);
    assert.match(pruned, /pn-gone/);
    assert.doesNotMatch(pruned, /pn-kept/);
    d.dockerOk(['network', 'rm', 'pn-kept']);
    // --ip-range and --aux-address: where addresses come from, and what is never handed out.
    d.dockerOk(['network', 'create', '--subnet', `10.218.${TAG}.0/24`, '--ip-range', `10.218.${TAG}.128/25`, '--aux-address', `host1=10.218.${TAG}.128`, 'ranged']);
    const ranged = d.dockerOk(['run', '--rm', '--network', 'ranged', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0']);
    assert.match(ranged, new RegExp(`inet 10\\.218\\.${TAG}\\.129/24`), 'the first of the range, but the auxiliary address');
    assert.deepEqual(JSON.parse(d.dockerOk(['network', 'inspect', '-f', '{{json .IPAM.Config}}', 'ranged']))[0], { Subnet: `10.218.${TAG}.0/24`, IPRange: `10.218.${TAG}.128/25`, AuxiliaryAddresses: { host1: `10.218.${TAG}.128` } });
    d.dockerOk(['network', 'rm', 'ranged']);
    assert.equal(d.docker(['network', 'inspect', 'auto']).status, 1);
  });

  it('lets containers on one network reach each other by name and alias; --ip; connect and disconnect', async () => {
    const staticIp = NET_A.replace(/0\/24$/, '50');
    const web = d.dockerOk(['run', '-d', '--name', 'site', '--network', 'neta', '--network-alias', 'www', '--ip', staticIp, 'web']).trim();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.neta.IPAddress}}', web]).trim(), staticIp);
    // API 1.44 and before, as dockerd: the short ID follows the given aliases (DNSNames has all names).
    assert.equal(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks.neta.Aliases}}', web]).trim(), JSON.stringify(['www', web.slice(0, 12)]));
    const members = JSON.parse(d.dockerOk(['network', 'inspect', '-f', '{{json .Containers}}', 'neta'])) as Record<string, { Name: string; IPv4Address: string }>;
    assert.deepEqual(Object.values(members).map((m) => [m.Name, m.IPv4Address]), [['site', `${staticIp}/24`]]);
    const taken = d.docker(['run', '--rm', '--network', 'neta', '--ip', staticIp, 'busybox', 'true']);
    assert.notEqual(taken.status, 0);
    assert.match(taken.stderr, /already in use/);

    const out = d.dockerOk(['run', '--rm', '--network', 'neta', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; for i in $(seq 50); do timeout 1 wget -q -O - http://site/ && break; sleep 0.1; done; for n in site www SITE.; do timeout 3 wget -q -O - http://$n/ >/dev/null && echo "reached $n"; done; nslookup elsewhere.test || true']);
    assert.match(out, /^nameserver 127\.0\.0\.11$/m, "Docker's resolver address");
    assert.match(out, /reached site/);
    assert.match(out, /reached www/);
    assert.match(out, /reached SITE\./);
    assert.match(out, /192\.0\.2\.77/, 'other names go to the host resolver (here the test fake upstream)');

    // The default bridge has no names, as Docker's.
    const onBridge = d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', 'timeout 2 wget -q -O - http://site/ >/dev/null && echo reached || echo unreachable']);
    assert.match(onBridge, /unreachable/);

    // connect: a second interface at once; disconnect: gone.
    const client = d.dockerOk(['run', '-d', 'busybox', 'sleep', '300']).trim();
    d.dockerOk(['network', 'connect', '--alias', 'cli', 'neta', client]);
    const ifaces = d.dockerOk(['exec', client, 'ls', '/sys/class/net']).split(/\s+/).filter(Boolean).sort();
    assert.deepEqual(ifaces, ['eth0', 'eth1', 'lo']);
    assert.match(d.dockerOk(['exec', client, 'sh', '-c', 'timeout 3 wget -q -O - http://www/ >/dev/null && echo reached']), /reached/);
    const both = JSON.parse(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks}}', client])) as Record<string, { IPAddress: string }>;
    assert.deepEqual(Object.keys(both).sort(), ['bridge', 'neta']);
    const inUse = d.docker(['network', 'rm', 'neta']);
    assert.notEqual(inUse.status, 0);
    assert.match(inUse.stderr, /active endpoints/);
    assert.match(d.docker(['network', 'connect', 'neta', client]).stderr, /endpoint with name \w+ already exists in network neta/, 'running: refused');
    d.dockerOk(['network', 'disconnect', 'neta', client]);
    assert.deepEqual(d.dockerOk(['exec', client, 'ls', '/sys/class/net']).split(/\s+/).filter(Boolean).sort(), ['eth0', 'lo']);
    // dockerd's two wordings: a running container's endpoint, a stopped one's config.
    assert.match(d.docker(['network', 'disconnect', 'neta', client]).stderr, new RegExp(`container ${client} is not connected to network neta$`, 'm'));
    assert.match(d.docker(['network', 'disconnect', '-f', 'nosuchnet', client]).stderr, new RegExp(`container ${client} is not connected to the network nosuchnet$`, 'm'));
    // dockerd's answers for the special networks.
    assert.match(d.docker(['network', 'connect', 'none', client]).stderr, /container cannot be connected to multiple networks with one of the networks in private \(none\) mode/);
    assert.match(d.docker(['network', 'connect', 'host', client]).stderr, /container cannot be disconnected from host network or connected to host network/);
    // A stopped container connected: on both networks when it starts.
    const later = d.dockerOk(['create', 'busybox', 'sleep', '300']).trim();
    d.dockerOk(['network', 'connect', 'neta', later]);
    // Not running: connecting again replaces the config, as dockerd.
    d.dockerOk(['network', 'connect', '--alias', 'again', 'neta', later]);
    assert.equal(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks.neta.Aliases}}', later]).trim(), `["again","${later.slice(0, 12)}"]`, "dockerd's connect adds the short ID");
    // And a created container leaves a network removed since by its name.
    d.dockerOk(['network', 'create', '--subnet', `10.213.${TAG}.0/24`, 'short-lived']);
    const created = d.dockerOk(['create', '--network', 'short-lived', 'busybox', 'true']).trim();
    // Created on it: no short ID among the aliases until it has run; then it stays, as dockerd's.
    const aliases = (): string => d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks}}', created]).trim();
    assert.match(aliases(), /"Aliases":null/);
    d.dockerOk(['start', created]);
    assert.ok(await poll(() => d.dockerOk(['inspect', '-f', '{{.State.Status}}', created]).trim() === 'exited', 5000));
    assert.match(aliases(), new RegExp(`"Aliases":\\["${created.slice(0, 12)}"\\]`));
    d.dockerOk(['network', 'rm', 'short-lived']);
    d.dockerOk(['network', 'disconnect', 'short-lived', created]);
    assert.equal(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks}}', created]).trim(), '{}');
    d.dockerOk(['rm', created]);
    d.dockerOk(['start', later]);
    assert.deepEqual(d.dockerOk(['exec', later, 'ls', '/sys/class/net']).split(/\s+/).filter(Boolean).sort(), ['eth0', 'eth1', 'lo']);
    assert.match(d.dockerOk(['exec', later, 'sh', '-c', 'timeout 3 wget -q -O - http://site/ >/dev/null && echo reached']), /reached/);
    d.dockerOk(['rm', '-f', client, web, later]);
  });

  it("answers as dockerd: network-mode conflicts, configuration-only networks, swarm scopes, filters, a created container moved off none", () => {
    const fails = (args: string[], pattern: RegExp): void => {
      const r = d.docker(args);
      assert.notEqual(r.status, 0, `docker ${args.join(' ')} should fail: ${r.stdout}`);
      assert.match(r.stderr, pattern, args.join(' '));
    };
    const donor = d.dockerOk(['run', '-d', 'busybox', 'sleep', '300']).trim();
    const mode = ['--network', `container:${donor}`];
    // moby's validateNetContainerMode, in its order and words.
    for (const [extra, message] of [
      [['--hostname', 'x'], 'conflicting options: hostname and the network mode'],
      [['--dns', '192.0.2.1'], 'conflicting options: dns and the network mode'],
      [['--add-host', 'a:192.0.2.1'], 'conflicting options: custom host-to-IP mapping and the network mode'],
      [['--mac-address', '02:42:ac:11:00:99'], 'conflicting options: mac-address and the network mode'],
      [['-p', '8080:80'], 'conflicting options: port publishing and the container type network mode'],
      [['-P'], 'conflicting options: port publishing and the container type network mode'],
      [['--expose', '80'], 'conflicting options: port exposing and the container type network mode'],
      [['--link', `${donor}:x`], "conflicting options: container type network can't be used with links"],
    ] as const) {
      fails(['create', ...mode, ...extra, 'busybox', 'true'], new RegExp(`Error response from daemon: ${message.replace(/[()]/g, '\\$&')}`));
    }
    fails(['create', '--network', 'container:', 'busybox', 'true'], /Invalid network mode: invalid container format container:<name\|id>/);
    fails(['create', '--network', 'host', '--mac-address', '02:42:ac:11:00:99', 'busybox', 'true'], /conflicting options: mac-address and the network mode/);
    fails(['create', '--uts', 'host', '--hostname', 'x', 'busybox', 'true'], /conflicting options: hostname and the UTS mode/);
    // The image's exposed ports are no conflict (web exposes 80), and host networking takes a hostname of its own.
    const joined = d.dockerOk(['create', ...mode, 'web']).trim();
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'host', '--hostname', 'own-name', 'busybox', 'hostname']).trim(), 'own-name');
    assert.equal(d.dockerOk(['run', '--rm', '--network', 'host', 'busybox', 'hostname']).trim(), os.hostname());
    // On another's network: dockerd keeps that container by ID, and its hostname is taken at the start.
    d.dockerOk(['run', '-d', '--name', 'donor-named', '--hostname', 'donor-host', 'busybox', 'sleep', '300']);
    const donorId = d.dockerOk(['inspect', '-f', '{{.Id}}', 'donor-named']).trim();
    const follower = d.dockerOk(['create', '--network', 'container:donor-named', 'busybox', 'hostname']).trim();
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.NetworkMode}} {{.Config.Hostname}}', follower]).trim(), `container:${donorId} ${follower.slice(0, 12)}`);
    assert.equal(d.dockerOk(['start', '-a', follower]).trim(), 'donor-host');
    assert.equal(d.dockerOk(['inspect', '-f', '{{.Config.Hostname}}', follower]).trim(), 'donor-host');
    d.dockerOk(['rm', '-f', follower, 'donor-named']);
    // Sharing a namespace rules out joining networks.
    fails(['network', 'connect', 'neta', joined], /container sharing network namespace with another container or host cannot be connected to any other network/);
    const onHost = d.dockerOk(['create', '--network', 'host', 'busybox', 'true']).trim();
    fails(['network', 'connect', 'neta', onHost], /container sharing network namespace with another container or host cannot be connected to any other network/);

    // Configuration-only networks and the networks made from them.
    d.dockerOk(['network', 'create', '--config-only', '--subnet', `10.214.${TAG}.0/24`, '--label', 'from=config', '-o', 'com.docker.network.driver.mtu=1400', 'conf']);
    fails(['network', 'create', '--config-only', '--internal', 'conf2'], /Network operator fields like \[ ingress \| internal \| attachable \| scope \] are not supported/);
    fails(['network', 'create', '--config-from', 'conf', '--subnet', `10.215.${TAG}.0/24`, 'cf2'], /user specified configurations are not supported if the network depends on a configuration network/);
    fails(['network', 'create', '--config-from', 'conf', '-o', 'a=b', 'cf3'], /network driver options are not supported if the network depends on a configuration network/);
    fails(['network', 'create', '--config-from', 'nosuchconf', 'cf4'], /configuration network "nosuchconf" does not exist/);
    d.dockerOk(['network', 'create', '--config-from', 'conf', 'fromconf']);
    assert.equal(d.dockerOk(['network', 'inspect', '-f', '{{.Driver}} {{.ConfigOnly}} {{json .IPAM.Config}}', 'conf']).trim(), `null true [{"Subnet":"10.214.${TAG}.0/24"}]`);
    assert.equal(
      d.dockerOk(['network', 'inspect', '-f', '{{.Driver}} {{.ConfigOnly}} {{json .ConfigFrom}} {{json .IPAM.Config}} {{json .Labels}}', 'fromconf']).trim(),
      `bridge false {"Network":"conf"} [{"Subnet":"10.214.${TAG}.0/24"}] {"from":"config"}`,
    );
    assert.match(d.dockerOk(['run', '--rm', '--network', 'fromconf', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; cat /sys/class/net/eth0/mtu']), new RegExp(`inet 10\\.214\\.${TAG}\\.2/24[^]*\\n1400\\n$`));
    fails(['run', '--rm', '--network', 'conf', 'busybox', 'true'], /cannot create endpoint on configuration-only network/);
    fails(['network', 'connect', 'conf', donor], /cannot create endpoint on configuration-only network/);
    assert.match(d.dockerOk(['network', 'ls', '--filter', 'driver=null', '--format', '{{.Name}}']), /^conf$/m);
    fails(['network', 'rm', 'conf'], /error while removing network: configuration network "conf" is in use/);
    d.dockerOk(['network', 'rm', 'fromconf', 'conf']);

    // An address on a network whose subnet berthd picked: dockerd's refusal (the subnet is not the user's).
    d.dockerOk(['network', 'create', 'autosub']);
    const autoSubnet = d.dockerOk(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'autosub']).trim();
    fails(['create', '--network', 'autosub', '--ip', autoSubnet.replace(/0\/\d+$/, '10'), 'busybox', 'true'], /user specified IP address is supported only when connecting to networks with user configured subnets/);
    d.dockerOk(['network', 'rm', 'autosub']);
    fails(['network', 'create', '--ingress', 'ing'], /Ingress network can only be global scope network/);

    // An endpoint's own interface sysctls (the docker CLI's --network driver-opt), on that interface only.
    const sysctlOpt = 'com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1';
    assert.equal(d.dockerOk(['run', '--rm', '--network', `name=neta,driver-opt=${sysctlOpt}`, 'busybox', 'sh', '-c', 'cat /proc/sys/net/ipv4/conf/eth0/log_martians /proc/sys/net/ipv4/conf/lo/log_martians']), '1\n0\n');
    fails(['run', '--rm', '--network', 'name=neta,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.eth0.log_martians=1', 'busybox', 'true'], /unrecognised network interface sysctl 'net\.ipv4\.conf\.eth0\.log_martians=1'; represent 'net\.X\.Y\.ethN\.Z=V' as 'net\.X\.Y\.IFNAME\.Z=V'/);

    // Swarm scopes, and a filter value nothing has.
    fails(['network', 'create', '--scope', 'swarm', 'sw'], /cannot create a swarm scoped network when swarm is not active/);
    fails(['network', 'create', '--scope', 'global', 'gl'], /This node is not a swarm manager/);
    fails(['network', 'ls', '--filter', 'type=bogus'], /invalid filter: 'type'='bogus'/);

    // A created container in "none" leaves it and joins a network, as with dockerd.
    const moved = d.dockerOk(['create', '--network', 'none', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0']).trim();
    fails(['network', 'connect', 'neta', moved], /container cannot be connected to multiple networks with one of the networks in private \(none\) mode/);
    d.dockerOk(['network', 'disconnect', 'none', moved]);
    assert.equal(d.dockerOk(['inspect', '-f', '{{json .NetworkSettings.Networks}}', moved]).trim(), '{}');
    d.dockerOk(['network', 'connect', 'neta', moved]);
    assert.match(d.dockerOk(['start', '-a', moved]), new RegExp(`inet ${NET_A.replace(/0\/24$/, '').replace(/\./g, '\\.')}\\d+/24`));
    d.dockerOk(['rm', '-f', donor, joined, onHost, moved]);
  });

  it("answers names at Docker's 127.0.0.11 (after a connect too), and keeps neighbours off a container's loopback", () => {
    d.dockerOk(['network', 'create', '--subnet', `10.214.${TAG}.0/24`, 'dnsnet']);
    const named: string[] = [];
    try {
      const server = d.dockerOk(['run', '-d', '--name', 'named-srv', '--network', 'dnsnet', 'busybox', 'sh', '-c', 'nc -l -p 7777 -e echo reached-loopback-service; sleep 300']).trim();
      named.push(server);
      const serverIp = d.dockerOk(['inspect', '-f', '{{(index .NetworkSettings.Networks "dnsnet").IPAddress}}', server]).trim();
      const lookup = d.dockerOk(['run', '--rm', '--network', 'dnsnet', 'busybox', 'sh', '-c', 'grep nameserver /etc/resolv.conf; nslookup named-srv. 127.0.0.11']);
      assert.match(lookup, /^nameserver 127\.0\.0\.11$/m);
      assert.match(lookup, new RegExp(`Address: ${serverIp.replace(/\./g, '\\.')}$`, 'm'));
      // A container on the default bridge only (no embedded server), then connected: 127.0.0.11 from then on.
      const later = d.dockerOk(['run', '-d', 'busybox', 'sleep', '300']).trim();
      named.push(later);
      assert.doesNotMatch(d.dockerOk(['exec', later, 'cat', '/etc/resolv.conf']), /127\.0\.0\.11/);
      d.dockerOk(['network', 'connect', 'dnsnet', later]);
      assert.match(d.dockerOk(['exec', later, 'sh', '-c', 'grep nameserver /etc/resolv.conf; nslookup named-srv.']), new RegExp(`nameserver 127\\.0\\.0\\.11[^]*Address: ${serverIp.replace(/\./g, '\\.')}`));

      // On two networks: names of either resolve, as with Docker's resolver (the query comes
      // from the first network's address; the name lives on the second only).
      d.dockerOk(['network', 'create', '--subnet', `10.212.${TAG}.0/24`, 'dnsnet2']);
      named.push(d.dockerOk(['run', '-d', '--name', 'only-on-2', '--network', 'dnsnet2', 'busybox', 'sleep', '300']).trim());
      const onlyOn2 = d.dockerOk(['inspect', '-f', '{{(index .NetworkSettings.Networks "dnsnet2").IPAddress}}', 'only-on-2']).trim();
      assert.match(d.dockerOk(['run', '--rm', '--network', 'dnsnet', '--network', 'dnsnet2', 'busybox', 'nslookup', 'only-on-2.']), new RegExp(`Address: ${onlyOn2.replace(/\./g, '\\.')}$`, 'm'));

      // The redirect needs route_localnet in the container's namespace, which would let a
      // neighbour send to its loopback; a rule drops that. A neighbour that routes 127.0.0.99
      // to the server (listening on all addresses) must not get through; with the rule gone it
      // would (the control: the attack itself works).
      const attack = (): string =>
        d.dockerOk([
          'run', '--rm', '--network', 'dnsnet', '--cap-add', 'NET_ADMIN', '--sysctl', 'net.ipv4.conf.all.route_localnet=1', 'busybox', 'sh', '-c',
          `ip route add 127.0.0.99/32 via ${serverIp} dev eth0 table local && (timeout 3 nc 127.0.0.99 7777 || true)`,
        ]).trim();
      assert.equal(attack(), '', 'dropped');
      const pid = d.dockerOk(['inspect', '-f', '{{.State.Pid}}', server]).trim();
      assert.equal(cmd('nsenter', ['-t', pid, '-n', 'nft', 'flush', 'chain', 'ip', 'berth_dns', 'input']).status, 0);
      assert.equal(attack(), 'reached-loopback-service', 'without the rule the same packets reach it');
    } finally {
      d.docker(['rm', '-f', ...named]);
      d.docker(['network', 'rm', 'dnsnet', 'dnsnet2']);
    }
  });

  it('keeps --internal networks inside their bridge, and lets other networks out through NAT', async () => {
    d.dockerOk(['network', 'create', '--internal', '--subnet', NET_INTERNAL, 'inner']);
    const probe = `timeout 3 wget -q -O - http://${OUTSIDE_IP}:8080/ && echo reached-outside || echo blocked`;
    assert.match(d.dockerOk(['run', '--rm', '--network', 'neta', 'busybox', 'sh', '-c', probe]), /outside\nreached-outside/);
    assert.match(d.dockerOk(['run', '--rm', 'busybox', 'sh', '-c', probe]), /reached-outside/, 'from the default bridge too');
    const inner = d.dockerOk(['run', '--rm', '--network', 'inner', 'busybox', 'sh', '-c', `ip route; ${probe}; nslookup elsewhere.test || echo no-forwarding`]);
    assert.match(inner, /blocked/);
    assert.doesNotMatch(inner, /default via/);
    assert.doesNotMatch(inner, /192\.0\.2\.77/, 'internal networks do not forward DNS queries');
    // Inside the internal network, containers still reach each other.
    const a = d.dockerOk(['run', '-d', '--name', 'inner-web', '--network', 'inner', 'web']).trim();
    assert.match(d.dockerOk(['run', '--rm', '--network', 'inner', 'busybox', 'sh', '-c', 'timeout 3 wget -q -O - http://inner-web/ >/dev/null && echo reached']), /reached/);
    d.dockerOk(['rm', '-f', a]);
    d.dockerOk(['network', 'rm', 'inner']);
  });

  it('publishes ports through kernel NAT that keep working while the daemon is dead, and reconciles the rules after', async () => {
    const port = await freePort();
    const web = d.dockerOk(['run', '-d', '--network', 'neta', '-p', `127.0.0.1:${port}:80`, 'web']).trim();
    const ip = d.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.neta.IPAddress}}', web]).trim();
    assert.equal((await httpGetWithRetry(`http://127.0.0.1:${port}/`))?.status, 200);
    assert.equal(d.dockerOk(['port', web]).trim(), `80/tcp -> 127.0.0.1:${port}`);
    const rulesBefore = berthRules().sort();
    assert.ok(rulesBefore.some((l) => l.includes(`--dport ${port}`) && l.includes(ip)), `a DNAT rule for the port:\n${rulesBefore.join('\n')}`);

    await d.kill9();
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`))?.status, 200, 'served while the daemon is dead');
    await d.start();
    assert.deepEqual(berthRules().sort(), rulesBefore, 'the same rules after the restart: none stale, none twice');
    assert.equal((await httpGetWithRetry(`http://127.0.0.1:${port}/`))?.status, 200);
    // Names still resolve: the restarted daemon's DNS server answers again.
    assert.match(d.dockerOk(['run', '--rm', '--network', 'neta', 'busybox', 'nslookup', `${web.slice(0, 12)}.neta`]), new RegExp(`Address: ${ip.replace(/\./g, '\\.')}`));
    // The address stays reserved: a new container gets another one.
    const other = d.dockerOk(['run', '-d', '--network', 'neta', 'busybox', 'sleep', '100']).trim();
    assert.notEqual(d.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.neta.IPAddress}}', other]).trim(), ip);
    const taken = d.docker(['run', '-d', '-p', `127.0.0.1:${port}:80`, 'web']);
    assert.notEqual(taken.status, 0);
    assert.match(taken.stderr, /port is already allocated/);
    d.dockerOk(['rm', '-f', web, other]);
    assert.ok(await poll(() => !berthRules().some((l) => l.includes(`--dport ${port}`)), 5000), 'the port rules go with the container');
    assert.equal(await httpGet(`http://127.0.0.1:${port}/`).then(() => 'open', () => 'closed'), 'closed');
    d.dockerOk(['network', 'rm', 'neta']);
  });
});
