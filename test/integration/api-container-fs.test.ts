/**
 * The container file system and resource endpoints with the real docker CLI against a private
 * berthd: docker cp both ways (files, directories, volumes, running and stopped containers),
 * hostile containers whose symlinks point at host paths (nothing outside the container is read
 * or written), hostile archives, export, diff, stats, update and system df.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { makeTar } from '../../src/storage/tar.testutil.js';
import { savedTopLayer, startBerthd, type PrivateBerthd } from '../helpers/berthd.js';
import { DOCKER, poll } from '../helpers/engines.js';

const isRoot = process.getuid?.() === 0;

describe('container file system endpoints (docker cp, export, diff, stats, update, df)', { skip: !isRoot || !DOCKER ? 'needs root and the docker CLI' : false, timeout: 600_000 }, () => {
  let d: PrivateBerthd;
  let host: string;
  /** A host directory a hostile container aims at: it must never change. */
  let canary: string;
  const secret = 'HOST SECRET';

  before(async () => {
    d = await startBerthd({ prefix: 'berth-apifs-' });
    d.loadImages('busybox');
    host = fs.mkdtempSync('/tmp/berth-apifs-host-');
    canary = fs.mkdtempSync('/tmp/berth-apifs-canary-');
    fs.writeFileSync(path.join(canary, 'secret'), secret);
  });

  after(async () => {
    await d?.stop();
    if (host) fs.rmSync(host, { recursive: true, force: true });
    if (canary) fs.rmSync(canary, { recursive: true, force: true });
  });

  const assertCanaryUntouched = (): void => {
    assert.deepEqual(fs.readdirSync(canary), ['secret']);
    assert.equal(fs.readFileSync(path.join(canary, 'secret'), 'utf8'), secret);
    assert.equal(fs.statSync(path.join(canary, 'secret')).nlink, 1);
  };

  /** docker cp - <ctr:dir> with a tar built byte by byte. */
  const cpTarIn = (dest: string, tar: Buffer) => {
    const r = spawnSync(DOCKER!, ['cp', '-', dest], { env: d.env, input: tar, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status ?? 128, stderr: r.stderr };
  };

  const runDetached = (name: string, ...args: string[]): string => d.dockerOk(['run', '-d', '--name', name, ...args]).trim();

  it('copies files and directories into and out of a running container', () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    runDetached('cp-run', 'busybox', 'sleep', '1000');
    fs.writeFileSync(path.join(host, 'in.txt'), 'hello from the host\n');
    fs.mkdirSync(path.join(host, 'tree/sub'), { recursive: true });
    fs.writeFileSync(path.join(host, 'tree/sub/deep.txt'), 'deep\n');
    fs.symlinkSync('sub/deep.txt', path.join(host, 'tree/link'));
    d.dockerOk(['cp', path.join(host, 'in.txt'), 'cp-run:/tmp/']);
    d.dockerOk(['cp', path.join(host, 'tree'), 'cp-run:/tmp/tree']);

    const out = path.join(host, 'out');
    fs.mkdirSync(out);
    d.dockerOk(['cp', 'cp-run:/tmp/in.txt', path.join(out, 'back.txt')]);
    assert.equal(fs.readFileSync(path.join(out, 'back.txt'), 'utf8'), 'hello from the host\n');
    d.dockerOk(['cp', 'cp-run:/tmp/tree', path.join(out, 'tree')]);
    assert.equal(fs.readFileSync(path.join(out, 'tree/sub/deep.txt'), 'utf8'), 'deep\n');
    assert.equal(fs.readlinkSync(path.join(out, 'tree/link')), 'sub/deep.txt');
    // dockerd's events for the copies: extract-to-dir into the container, archive-path out of it.
    const copyEvents = d.dockerOk(['events', '--since', since, '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=cp-run', '--format', '{{.Action}}']).split('\n');
    assert.deepEqual([copyEvents.filter((a) => a === 'extract-to-dir').length, copyEvents.filter((a) => a === 'archive-path').length], [2, 2]);
    // A file of the image, and /etc/hostname (a bind mount of the daemon's).
    d.dockerOk(['cp', 'cp-run:/etc/passwd', path.join(out, 'passwd')]);
    assert.match(fs.readFileSync(path.join(out, 'passwd'), 'utf8'), /^root:/);
    // Owners as numbers only, as dockerd 23+ writes them (FileInfoHeaderNoLookups): not the
    // host's names for them (uid 5 is "games" on Debian hosts).
    d.dockerOk(['exec', 'cp-run', 'sh', '-c', 'echo x > /tmp/owned; chown 5:6 /tmp/owned']);
    const listing = spawnSync('sh', ['-c', `${DOCKER} cp cp-run:/etc/passwd - | tar -tv; ${DOCKER} cp cp-run:/tmp/owned - | tar -tv`], { env: d.env, encoding: 'utf8' });
    assert.match(listing.stdout, /^-rw-r--r-- 0\/0 /m, listing.stderr);
    assert.match(listing.stdout, /^-rw-r--r-- 5\/6 /m, listing.stderr);
    // IDs beyond the tar header's fields (PAX records): out, in again, into a committed layer.
    d.dockerOk(['exec', 'cp-run', 'sh', '-c', 'echo y > /tmp/big; chown 3000000:3000001 /tmp/big']);
    const big = spawnSync('sh', ['-c', `${DOCKER} cp cp-run:/tmp/big - | tar --numeric-owner -tv; ${DOCKER} export cp-run | tar --numeric-owner -tv tmp/big`], { env: d.env, encoding: 'utf8' });
    assert.equal(big.stdout.match(/^-rw-r--r-- 3000000\/3000001 .* (tmp\/)?big$/gm)?.length, 2, big.stdout + big.stderr);
    const roundTrip = spawnSync('sh', ['-c', `${DOCKER} cp cp-run:/tmp/big - | ${DOCKER} cp - cp-run:/ && ${DOCKER} exec cp-run stat -c %u:%g /big`], { env: d.env, encoding: 'utf8' });
    assert.equal(roundTrip.stdout.trim(), '3000000:3000001', roundTrip.stderr);
    d.dockerOk(['commit', 'cp-run', 'cp-big-ids']);
    assert.equal(d.dockerOk(['run', '--rm', 'cp-big-ids', 'stat', '-c', '%u:%g', '/tmp/big', '/big']).trim(), '3000000:3000001\n3000000:3000001');
    d.dockerOk(['rmi', 'cp-big-ids']);
    // A name that is not UTF-8 keeps its bytes (export and cp wrote a tar without it, commit and
    // diff failed on the U+FFFD name Node had read instead): out, in again, through a commit.
    d.dockerOk(['exec', 'cp-run', 'sh', '-c', 'mkdir /latin1; echo v > "/latin1/$(printf "caf\\351")"; ln -s "$(printf "caf\\351")" /latin1/link']);
    const latin1 = spawnSync('sh', ['-c', `${DOCKER} cp cp-run:/latin1 - | tar -tv; ${DOCKER} export cp-run | tar -tv latin1`], { env: d.env, encoding: 'utf8' });
    assert.equal(latin1.stdout.match(/ latin1\/caf\\351$/gm)?.length, 2, latin1.stdout + latin1.stderr);
    assert.equal(latin1.stdout.match(/ latin1\/link -> caf\\351$/gm)?.length, 2, latin1.stdout);
    const bytesIn = spawnSync('sh', ['-c', `${DOCKER} cp cp-run:/latin1 - | ${DOCKER} cp - cp-run:/tmp && ${DOCKER} exec cp-run sh -c 'cat /tmp/latin1/caf*; for f in /tmp/latin1/*; do echo "$f"; done | od -An -c'`], { env: d.env, encoding: 'utf8' });
    assert.match(bytesIn.stdout, /^v\n/, bytesIn.stderr);
    assert.match(bytesIn.stdout, /c +a +f +351/, bytesIn.stdout);
    assert.match(d.dockerOk(['diff', 'cp-run']), /^A \/latin1\/caf/m);
    d.dockerOk(['commit', 'cp-run', 'cp-latin1']);
    assert.match(d.dockerOk(['run', '--rm', 'cp-latin1', 'sh', '-c', 'cat /latin1/caf*; for f in /latin1/*; do echo "$f"; done | od -An -c']), /^v\n[^]*c +a +f +351/);
    d.dockerOk(['rmi', 'cp-latin1']);
    d.dockerOk(['exec', 'cp-run', 'rm', '-r', '/latin1']);
    d.dockerOk(['cp', 'cp-run:/etc/hostname', path.join(out, 'hostname')]);
    assert.equal(fs.readFileSync(path.join(out, 'hostname'), 'utf8').trim().length, 12);

    const missing = d.docker(['cp', 'cp-run:/no/such/file', out]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /Could not find the file \/no\/such\/file in container cp-run/);
    const notDir = d.docker(['cp', path.join(host, 'tree'), 'cp-run:/etc/passwd/x']);
    assert.notEqual(notDir.status, 0);
    const intoFile = d.docker(['cp', path.join(host, 'in.txt'), 'cp-run:/etc/passwd/x']);
    assert.match(intoFile.stderr, /daemon: extraction point is not a directory/, "dockerd's words");
    // "file/" is a directory that is not there (dockerd: "not a directory"): the file is kept.
    const slash = d.docker(['cp', path.join(host, 'in.txt'), 'cp-run:/etc/hostname/']);
    assert.notEqual(slash.status, 0);
    assert.match(slash.stderr, /no such directory/);
    assert.equal(d.dockerOk(['exec', 'cp-run', 'cat', '/etc/hostname']).trim().length, 12, 'hostname untouched');
    const slashOut = d.docker(['cp', 'cp-run:/etc/passwd/', out]);
    assert.match(slashOut.stderr, /daemon: lstat \/etc\/passwd\/: not a directory/, "dockerd's words, nothing before them");
  });

  it('copies into and out of a volume mounted in the container', () => {
    runDetached('cp-vol', '-v', 'apifs-vol:/data', 'busybox', 'sleep', '1000');
    d.dockerOk(['cp', path.join(host, 'in.txt'), 'cp-vol:/data/in-volume.txt']);
    const mountpoint = d.dockerOk(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'apifs-vol']).trim();
    assert.equal(fs.readFileSync(path.join(mountpoint, 'in-volume.txt'), 'utf8'), 'hello from the host\n');
    fs.writeFileSync(path.join(mountpoint, 'from-volume.txt'), 'volume data\n');
    const out = path.join(host, 'vol-out.txt');
    d.dockerOk(['cp', 'cp-vol:/data/from-volume.txt', out]);
    assert.equal(fs.readFileSync(out, 'utf8'), 'volume data\n');
  });

  it('copies into and out of a stopped container (its snapshot mounted for the time of the copy)', () => {
    d.dockerOk(['create', '--name', 'cp-stopped', 'busybox', 'cat', '/tmp/in.txt']);
    d.dockerOk(['cp', path.join(host, 'in.txt'), 'cp-stopped:/tmp/in.txt']);
    const out = path.join(host, 'stopped-out.txt');
    d.dockerOk(['cp', 'cp-stopped:/tmp/in.txt', out]);
    assert.equal(fs.readFileSync(out, 'utf8'), 'hello from the host\n');
    d.dockerOk(['start', '-a', 'cp-stopped']);
    assert.equal(d.dockerOk(['logs', 'cp-stopped']), 'hello from the host\n');
    // Exited now: still readable; nothing stays mounted.
    d.dockerOk(['cp', 'cp-stopped:/tmp/in.txt', path.join(host, 'stopped-out2.txt')]);
    const id = d.dockerOk(['inspect', '-f', '{{.Id}}', 'cp-stopped']).trim();
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(id.slice(0, 24) + '/rootfs'), 'the rootfs is unmounted after the copy');
  });

  for (const running of [true, false]) {
    it(`a hostile ${running ? 'running' : 'stopped'} container cannot make docker cp touch the host`, async () => {
      const name = `hostile-${running ? 'run' : 'stop'}`;
      const setup = [
        `mkdir -p ${canary}`,
        `echo container-owned > ${canary}/secret`,
        `ln -s ${canary} /abs-link`,
        `ln -s ../../../../../../../../..${canary} /rel-link`,
        'ln -s / /root-link',
        `ln -s ${canary}/secret /file-link`,
        'mkdir -p /tmp/drop',
        'touch /ready',
        running ? 'sleep 1000' : 'true',
      ].join(' && ');
      d.dockerOk(['run', '-d', '--name', name, 'busybox', 'sh', '-c', setup]);
      if (running) assert.ok(await poll(() => d.docker(['cp', `${name}:/ready`, path.join(host, `${name}-ready`)]).status === 0, 20_000, 100), 'container set up');
      else assert.ok(await poll(() => d.dockerOk(['inspect', '-f', '{{.State.Status}}', name]).trim() === 'exited', 20_000, 100));

      const out = path.join(host, `${name}-out`);
      fs.mkdirSync(out);
      // Reading through each link gives the container's file, never the host's.
      for (const src of ['/abs-link/secret', '/rel-link/secret', `/root-link${canary}/secret`]) {
        const file = path.join(out, 'read');
        d.dockerOk(['cp', `${name}:${src}`, file]);
        assert.equal(fs.readFileSync(file, 'utf8'), 'container-owned\n', src);
        fs.rmSync(file);
      }
      // -L follows the link in the container's scope.
      d.dockerOk(['cp', '-L', `${name}:/file-link`, path.join(out, 'followed')]);
      assert.equal(fs.readFileSync(path.join(out, 'followed'), 'utf8'), 'container-owned\n');
      // Without -L the link itself comes out.
      d.dockerOk(['cp', `${name}:/file-link`, path.join(out, 'link-itself')]);
      assert.equal(fs.readlinkSync(path.join(out, 'link-itself')), `${canary}/secret`);

      // Writing through the links lands in the container.
      for (const dest of ['/abs-link/', '/rel-link/', `/root-link${canary}/`]) d.dockerOk(['cp', path.join(host, 'in.txt'), `${name}:${dest}`]);
      d.dockerOk(['cp', path.join(host, 'in.txt'), `${name}:/file-link`]);
      assertCanaryUntouched();

      // Hostile archives: "..", absolute names, a symlink then a write through it, hardlinks out.
      const escapes = cpTarIn(`${name}:/tmp/drop`, makeTar([{ name: `../../../../../../..${canary}/pwned`, data: 'x' }]));
      assert.notEqual(escapes.status, 0, 'a ".." entry is refused');
      assert.equal(cpTarIn(`${name}:/tmp/drop`, makeTar([{ name: `${canary}/abs-pwned`, data: 'x' }])).status, 0);
      assert.equal(cpTarIn(`${name}:/tmp/drop`, makeTar([{ name: 'via', type: 'symlink', linkname: canary }, { name: 'via/through-link', data: 'x' }])).status, 0);
      assert.equal(cpTarIn(`${name}:/tmp/drop`, makeTar([{ name: 'up', type: 'symlink', linkname: '../../../../../../../..' }, { name: `up${canary}/through-up`, data: 'x' }])).status, 0);
      const hard = cpTarIn(`${name}:/tmp/drop`, makeTar([{ name: 'hard', type: 'link', linkname: `../../../../../../..${canary}/secret` }]));
      assert.notEqual(hard.status, 0, 'a hardlink out of the destination is refused');
      // A hardlink through a symlink that climbs to "/" links the container's file, not the host's.
      assert.equal(cpTarIn(`${name}:/tmp/drop`, makeTar([{ name: 'hard2', type: 'link', linkname: `up${canary}/secret` }])).status, 0);
      assertCanaryUntouched();
      // What the writes did, seen from the container: all inside it.
      const tree = path.join(out, 'tree');
      d.dockerOk(['cp', `${name}:${canary}`, tree]);
      const names = fs.readdirSync(tree).sort();
      for (const n of ['in.txt', 'secret', 'through-link', 'through-up']) assert.ok(names.includes(n), `${n} in the container's ${canary}: ${names.join(' ')}`);
      assert.ok(fs.existsSync(path.join(out, 'tree')));
      // (not the whole of /tmp/drop: the CLI itself refuses to write its climbing symlink "up")
      d.dockerOk(['cp', `${name}:/tmp/drop${canary}/abs-pwned`, path.join(out, 'abs-pwned')]);
      assert.equal(fs.readFileSync(path.join(out, 'abs-pwned'), 'utf8'), 'x', 'an absolute entry name lands beneath the destination');
      d.dockerOk(['cp', `${name}:/tmp/drop/hard2`, path.join(out, 'hard2')]);
      // (the container's secret, which the copy to /file-link above replaced)
      assert.equal(fs.readFileSync(path.join(out, 'hard2'), 'utf8'), 'hello from the host\n');
      assertCanaryUntouched();
      d.dockerOk(['rm', '-f', name]);
    });
  }

  it('exports the root file system and lists changes (docker export, docker diff)', async () => {
    d.dockerOk(['run', '--name', 'diffme', 'busybox', 'sh', '-c', 'echo new > /tmp/added && echo more >> /etc/passwd && rm /etc/group']);
    const diff = d.dockerOk(['diff', 'diffme']).trim().split('\n');
    assert.ok(diff.includes('A /tmp/added'), diff.join('\n'));
    assert.ok(diff.includes('C /etc/passwd'), diff.join('\n'));
    assert.ok(diff.includes('D /etc/group'), diff.join('\n'));
    assert.ok(diff.includes('C /etc'), diff.join('\n'));
    // The mount points of /etc/hostname and friends are not changes (Docker keeps them in its init layer).
    for (const f of ['hostname', 'hosts', 'resolv.conf']) assert.ok(!diff.includes(`A /etc/${f}`), diff.join('\n'));
    // GraphDriver.Data names the layers as overlay2's do: the change is in UpperDir, the image in LowerDir.
    const graph = JSON.parse(d.dockerOk(['inspect', '-f', '{{json .GraphDriver}}', 'diffme'])) as { Name: string; Data: { UpperDir: string; WorkDir: string; LowerDir: string; MergedDir: string } };
    assert.equal(graph.Name, 'overlay2');
    assert.equal(fs.readFileSync(path.join(graph.Data.UpperDir, 'tmp/added'), 'utf8'), 'new\n');
    assert.ok(fs.existsSync(path.join(graph.Data.LowerDir.split(':').pop()!, 'bin/busybox')), graph.Data.LowerDir);
    assert.ok(fs.existsSync(graph.Data.WorkDir));
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.Runtime}}', 'diffme']).trim(), 'berth-oci');
    d.dockerOk(['run', '--name', 'nodiff', 'busybox', 'true']);
    assert.equal(d.dockerOk(['diff', 'nodiff']).trim(), '', 'a container that changed nothing has no diff');
    d.dockerOk(['commit', 'diffme', 'diffme:committed']);
    const layer = path.join(host, 'diffme-layer.tar');
    fs.writeFileSync(layer, savedTopLayer(d, 'diffme:committed', host));
    const committed = spawnSync('tar', ['tf', layer], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    assert.ok(committed.includes('etc/passwd') && committed.includes('tmp/added'), committed.join(' '));
    assert.ok(!committed.some((e) => /^etc\/(hostname|hosts|resolv\.conf)$/.test(e)), `no mount points in the committed layer: ${committed.join(' ')}`);
    d.dockerOk(['rm', 'nodiff']);
    d.dockerOk(['rmi', 'diffme:committed']);

    const file = path.join(host, 'export.tar');
    d.dockerOk(['export', '-o', file, 'diffme']);
    const list = spawnSync('tar', ['tf', file], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    const entries = list.stdout.split('\n');
    for (const e of ['bin/sh', 'tmp/added', 'etc/passwd']) assert.ok(entries.includes(e), `${e} in the export`);
    assert.ok(!entries.includes('etc/group'));
    const passwd = spawnSync('tar', ['xOf', file, 'etc/passwd'], { encoding: 'utf8' });
    assert.match(passwd.stdout, /more\n$/);
    const exported = d.dockerOk(['events', '--since', '1h', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=diffme', '--filter', 'event=export', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    assert.equal(exported, 'export diffme\n', "dockerd's event");
  });

  it('docker stats --no-stream shows CPU %, memory and PIDs; docker update changes the limits', async () => {
    const id = runDetached('stats', 'busybox', 'sh', '-c', 'sleep 1000 & sleep 1000 & wait');
    assert.ok(await poll(() => d.docker(['top', 'stats']).stdout.trim().split('\n').length === 4, 10_000, 100), 'three processes');
    const line = d.dockerOk(['stats', '--no-stream', '--format', '{{.ID}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}|{{.MemPerc}}', 'stats']).trim();
    const [shortId, cpu, mem, pids] = line.split('|');
    assert.equal(shortId, id.slice(0, 12));
    assert.match(cpu!, /^\d+\.\d\d%$/);
    assert.ok(parseFloat(cpu!) < 100, line);
    assert.match(mem!, /^[\d.]+(B|KiB|MiB) \/ [\d.]+(MiB|GiB)$/, line);
    assert.equal(pids, '3', line);

    // As dockerd: a memory limit on a container made without one needs a swap limit with it.
    const noSwap = d.docker(['update', '--memory', '64m', 'stats']);
    assert.notEqual(noSwap.status, 0);
    assert.match(noSwap.stderr, new RegExp(`Cannot update container ${id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time`));
    d.dockerOk(['update', '--memory', '64m', '--memory-swap', '128m', '--pids-limit', '50', 'stats']);
    const memoryFile = `/sys/fs/cgroup/memory${d.cgroupParent}/${id}/memory.limit_in_bytes`;
    const v2File = `/sys/fs/cgroup${d.cgroupParent}/${id}/memory.max`;
    const limit = fs.existsSync(memoryFile) ? fs.readFileSync(memoryFile, 'utf8').trim() : fs.readFileSync(v2File, 'utf8').trim();
    assert.equal(limit, String(64 * 1024 * 1024));
    const after = d.dockerOk(['stats', '--no-stream', '--format', '{{.MemUsage}}', 'stats']).trim();
    assert.match(after, /\/ 64MiB$/);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}', 'stats']).trim(), `${64 * 1024 * 1024} ${128 * 1024 * 1024} 50`);
    const since = Math.floor(Date.now() / 1000) - 1;
    d.dockerOk(['update', '--restart', 'unless-stopped', 'stats']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', 'stats']).trim(), 'unless-stopped');
    // An update without --restart leaves the policy (the CLI sends an empty one with it).
    d.dockerOk(['update', '--pids-limit', '60', 'stats']);
    assert.equal(d.dockerOk(['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.PidsLimit}}', 'stats']).trim(), 'unless-stopped 60');
    const updates = d.dockerOk(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'event=update', '--format', '{{.Actor.Attributes.name}}']);
    assert.match(updates, /^(stats\n)+$/, "update events, as dockerd's (this one and maybe the one just before)");
    const bad = d.docker(['update', '--memory', '1k', 'stats']);
    assert.notEqual(bad.status, 0);

    // A stopped container: zeros, as Docker.
    d.dockerOk(['rm', '-f', 'stats']);
    d.dockerOk(['create', '--name', 'stats-stopped', 'busybox', 'true']);
    const zero = d.dockerOk(['stats', '--no-stream', '--format', '{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}', 'stats-stopped']).trim();
    assert.equal(zero, '0.00%|0B / 0B|0');
  });

  it('docker system df reports writable layer and volume sizes', () => {
    runDetached('df', '-v', 'apifs-df:/data', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1024 count=2048 && dd if=/dev/zero of=/data/v bs=1024 count=1024 && touch /done && sleep 1000');
    const wait = Date.now() + 20_000;
    while (Date.now() < wait && d.docker(['cp', 'df:/done', path.join(host, 'df-done')]).status !== 0) spawnSync('sleep', ['0.1']);
    const json = JSON.parse(d.dockerOk(['system', 'df', '-v', '--format', '{{json .}}'])) as {
      Containers: Array<{ Names: string; Size: string }>;
      Volumes: Array<{ Name: string; Size: string }>;
      Images: unknown[];
    };
    const c = json.Containers.find((x) => x.Names === 'df');
    assert.ok(c, JSON.stringify(json.Containers));
    assert.match(c.Size, /^2\.\d+MB/, c.Size);
    const v = json.Volumes.find((x) => x.Name === 'apifs-df');
    assert.ok(v, JSON.stringify(json.Volumes));
    assert.match(v.Size, /^1\.\d+MB/, v.Size);
    const summary = d.dockerOk(['system', 'df']);
    assert.match(summary, /Images\s+\d+\s+\d+\s+[\d.]+[kMG]?B/);
  });
});
