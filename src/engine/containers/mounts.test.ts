import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { bindPropagation, ociMounts, resolveMounts, tmpfsData, withAutoSlaveFallback, type VolumeProvider } from './mounts.js';
import { parseMountinfo } from '../../common/mountinfo.js';
import { publicMountPoint, type ContainerHostConfig, type MountPoint } from './record.js';

/** Volumes as names under /vol; records what each ensure() was asked to create. */
function fakeVolumes(existing: string[] = ['/src']): VolumeProvider & { created: Array<{ name: string | undefined; create?: object }> } {
  const created: Array<{ name: string | undefined; create?: object }> = [];
  let anonymous = 0;
  return {
    created,
    ensure: async (name, create) => {
      created.push({ name, create });
      const n = name ?? `anon${anonymous++}`;
      return { name: n, mountpoint: `/vol/${n}/_data` };
    },
    exists: (p) => existing.includes(p),
  };
}

const resolve = (host: ContainerHostConfig, opts?: { readOnlyNonRecursive?: boolean; daemonRoots?: string[] }, volumes = fakeVolumes()): Promise<MountPoint[]> => resolveMounts(host, undefined, undefined, volumes, opts);

describe('tmpfsData (moby ConvertTmpfsOptions)', () => {
  it('ro, the mode in octal, the size with the largest unit that divides it, exec flags', () => {
    assert.equal(tmpfsData(undefined, false, 'f'), '');
    assert.equal(tmpfsData({ SizeBytes: 1048576, Mode: 0o1770 }, true, 'f'), 'ro,mode=1770,size=1m');
    assert.equal(tmpfsData({ SizeBytes: 3 * 2 ** 30 }, false, 'f'), 'size=3g');
    assert.equal(tmpfsData({ SizeBytes: 5 * 1024 }, false, 'f'), 'size=5k');
    assert.equal(tmpfsData({ SizeBytes: 1000 }, false, 'f'), 'size=1000');
    assert.equal(tmpfsData({ Options: [['exec']] }, false, 'f'), 'exec');
  });
  it('refuses what is not a size, a mode or an exec flag, naming the field', () => {
    assert.throws(() => tmpfsData({ SizeBytes: -1 }, false, 'M'), (e: Error) => e instanceof InvalidArgumentError && /M\.SizeBytes/.test(e.message));
    assert.throws(() => tmpfsData({ Mode: 0o17777 }, false, 'M'), /M\.Mode/);
    assert.throws(() => tmpfsData({ Options: [['uid', '0']] }, false, 'M'), /M\.Options: invalid option: uid/);
    assert.throws(() => tmpfsData({ Options: [['exec', 'x', 'y']] }, false, 'M'), /invalid option array length/);
    assert.throws(() => tmpfsData([] as never, false, 'M'), /M: must be an object/);
  });
});

describe('resolveMounts and ociMounts', () => {
  it('a tmpfs with TmpfsOptions gets its size and mode after dockerd defaults', async () => {
    const points = await resolve({ Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 2 ** 20, Mode: 0o700 } }] });
    assert.deepEqual(publicMountPoint(points[0]!), { Type: 'tmpfs', Source: '', Destination: '/t', Mode: '', RW: true, Propagation: '' });
    assert.deepEqual(ociMounts(points), [{ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'mode=700', 'size=1m'] }]);
    const ro = await resolve({ Mounts: [{ Type: 'tmpfs', Target: '/t', ReadOnly: true, TmpfsOptions: { Options: [['exec']] } }] });
    assert.deepEqual(ociMounts(ro)[0]!.options, ['nosuid', 'nodev', 'rprivate', 'ro', 'exec']);
  });

  it('read-only binds and volumes are recursively read-only from API 1.44, top-only before or when asked', async () => {
    const host: ContainerHostConfig = { Binds: ['/src:/a:ro', 'named:/b:ro'], Mounts: [{ Type: 'bind', Source: '/src', Target: '/c', ReadOnly: true }, { Type: 'bind', Source: '/src', Target: '/d', ReadOnly: true, BindOptions: { ReadOnlyNonRecursive: true } }] };
    const now = ociMounts(await resolve(host));
    assert.deepEqual(
      now.map((m) => [m.destination, m.options]),
      [
        ['/a', ['rbind', 'rro', 'rprivate']],
        ['/b', ['rbind', 'rro']],
        ['/c', ['rbind', 'rro', 'rprivate']],
        ['/d', ['rbind', 'ro', 'rprivate']],
      ],
    );
    const old = ociMounts(await resolve(host, { readOnlyNonRecursive: true }));
    assert.ok(old.every((m) => m.options!.includes('ro') && !m.options!.includes('rro')));
    // A record made before RecursiveReadOnly existed keeps its plain ro.
    assert.deepEqual(ociMounts([{ Type: 'bind', Source: '/src', Destination: '/x', Mode: 'ro', RW: false, Propagation: 'rprivate' }])[0]!.options, ['rbind', 'ro', 'rprivate']);
  });

  it('BindOptions: propagation, non-recursive, a source made at start; conflicts and bad values refused', async () => {
    const [point] = await resolve({ Mounts: [{ Type: 'bind', Source: '/missing', Target: '/m', BindOptions: { Propagation: 'rslave', NonRecursive: true, CreateMountpoint: true } }] });
    assert.deepEqual(ociMounts([point!])[0], { destination: '/m', type: 'bind', source: '/missing', options: ['bind', 'rw', 'rslave'] });
    assert.equal(point!.CreateMountpoint, true);
    assert.deepEqual(Object.keys(publicMountPoint(point!)).sort(), ['Destination', 'Mode', 'Propagation', 'RW', 'Source', 'Type']);
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Source: '/missing', Target: '/m' }] }), /^InvalidArgumentError: invalid mount config for type "bind": bind source path does not exist: \/missing/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Source: '/src', Target: '/m', BindOptions: { Propagation: 'sideways' } }] }), /invalid propagation mode: sideways/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Source: '/src', Target: '/m', ReadOnly: true, BindOptions: { ReadOnlyNonRecursive: true, ReadOnlyForceRecursive: true } }] }), /mount options conflict/);
    // Before 1.44 the two fields did not exist: ignored, as dockerd does.
    await resolve({ Mounts: [{ Type: 'bind', Source: '/src', Target: '/m', ReadOnly: true, BindOptions: { ReadOnlyNonRecursive: true, ReadOnlyForceRecursive: true } }] }, { readOnlyNonRecursive: true });
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Source: 'rel', Target: '/m' }] }), /: invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute$/);
    // Binds' modes as moby's ValidateMountMode: known ones, at most one of each kind.
    await assert.rejects(resolve({ Binds: ['/src:/m:ro,rw'] }), /^InvalidArgumentError: invalid mode: ro,rw$/);
    await assert.rejects(resolve({ Binds: ['/src:/m:shared,rslave'] }), /invalid mode: shared,rslave$/);
    await assert.rejects(resolve({ Binds: ['/src:/m:bogus'] }), /invalid mode: bogus$/);
    assert.equal((await resolve({ Binds: ['/src:/m:ro,z,rshared,cached'] }))[0]!.RW, false, 'one of each kind is fine');
    // A propagation mode is a bind's option, nocopy a volume's (moby's ParseMountRaw).
    await assert.rejects(resolve({ Binds: ['vol:/m:shared'] }), /^InvalidArgumentError: invalid volume specification: 'vol:\/m:shared': invalid mount config for type "volume": field BindOptions must not be specified$/);
    await assert.rejects(resolve({ Binds: ['/src:/m:nocopy'] }), /invalid volume specification: '\/src:\/m:nocopy': invalid mount config for type "bind": field VolumeOptions must not be specified$/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Target: '/m' }] }), /field Source must not be empty/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Source: '/src', Target: '/m', VolumeOptions: { NoCopy: true } }] }), /field VolumeOptions must not be specified/);
  });

  it('VolumeOptions: labels and driver options for a volume made here, nocopy; anonymous read-only and subpaths refused', async () => {
    const volumes = fakeVolumes();
    const points = await resolve({ Binds: ['v1:/a:nocopy'], Mounts: [{ Type: 'volume', Source: 'v2', Target: '/b', VolumeOptions: { NoCopy: true, Labels: { team: 'x' }, DriverConfig: { Name: 'local', Options: { type: 'tmpfs' } } } }, { Type: 'volume', Target: '/c' }] }, {}, volumes);
    assert.deepEqual(
      points.map((p) => [p.Name, p.NoCopy ?? false]),
      [
        ['v1', true],
        ['v2', true],
        ['anon0', false],
      ],
    );
    assert.deepEqual(volumes.created[1], { name: 'v2', create: { labels: { team: 'x' }, driver: 'local', options: { type: 'tmpfs' } } });
    await assert.rejects(resolve({ Mounts: [{ Type: 'volume', Target: '/c', ReadOnly: true }] }), /must not set ReadOnly mode when using anonymous volumes/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'volume', Source: 'v', Target: '/c', VolumeOptions: { Subpath: 'sub' } }] }), (e: Error) => e instanceof UnsupportedError && /Subpath/.test(e.message));
    await assert.rejects(resolve({ Mounts: [{ Type: 'volume', Source: 'v', Target: '/c', VolumeOptions: { Labels: { a: 1 as never } } }] }), /VolumeOptions\.Labels: "a": must be a string/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'volume', Source: 'v', Target: '/c', BindOptions: {} }] }), /field BindOptions must not be specified/);
  });

  it("VolumesFrom: another container's mount points, read-only when asked, replaced by a bind at the same place", async () => {
    const donor: MountPoint[] = [
      { Type: 'volume', Name: 'anon', Source: '/vol/anon/_data', Destination: '/data', Driver: 'local', Mode: '', RW: true, Propagation: '' },
      { Type: 'bind', Source: '/src', Destination: '/h', Mode: 'ro', RW: false, Propagation: 'rprivate', RecursiveReadOnly: true },
    ];
    const volumes = { ...fakeVolumes(), mountsOf: (ref: string) => (ref === 'donor' ? donor : assert.fail(`no ${ref}`)) };
    const same = await resolveMounts({ VolumesFrom: ['donor'] }, undefined, undefined, volumes);
    assert.deepEqual(same.map((p) => [p.Destination, p.RW, p.NoCopy]), [['/data', true, true], ['/h', false, true]]);
    const ro = await resolveMounts({ VolumesFrom: ['donor:ro'] }, undefined, undefined, volumes);
    assert.deepEqual(ociMounts(ro).map((m) => m.options), [['rbind', 'rro'], ['rbind', 'rro', 'rprivate']]);
    const replaced = await resolveMounts({ VolumesFrom: ['donor'], Binds: ['/src:/data'] }, { '/data': {} }, undefined, volumes);
    assert.deepEqual(replaced.map((p) => [p.Destination, p.Type, p.Source]), [['/h', 'bind', '/src'], ['/data', 'bind', '/src']]);
    await assert.rejects(resolveMounts({ VolumesFrom: ['donor:rshared'] }, undefined, undefined, volumes), /^InvalidArgumentError: invalid mode: rshared$/);
    await assert.rejects(resolveMounts({ VolumesFrom: [''] }, undefined, undefined, volumes), /cannot be an empty string/);
  });

  it('targets, types and shapes are checked, naming the field', async () => {
    await assert.rejects(resolve({ Mounts: [{ Type: 'tmpfs' }] }), /^InvalidArgumentError: invalid mount config for type "tmpfs": field Target must not be empty/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'tmpfs', Target: '/' }] }), /: invalid mount config for type "tmpfs": invalid specification: destination can't be '\/'$/);
    // A bind's destination, as dockerd words it: the whole specification, then the mount's type.
    await assert.rejects(resolve({ Binds: ['vol:relative'] }), /^InvalidArgumentError: invalid volume specification: 'vol:relative': invalid mount config for type "volume": invalid mount path: 'relative' mount path must be absolute$/);
    await assert.rejects(resolve({ Binds: ['/:/'] }), /^InvalidArgumentError: invalid volume specification: '\/:\/': invalid mount config for type "bind": invalid specification: destination can't be '\/'$/);
    // Config.Volumes (`-v relative`, and `-v a:/x` whose one-character name the CLI does not
    // take for a volume's) and image VOLUMEs that are relative: from the root, as dockerd runs them.
    const relative = await resolveMounts({}, { 'in-image': {} }, { relative: {}, 'a:/x': {} }, fakeVolumes());
    assert.deepEqual(relative.map((p) => [p.Type, p.Destination]), [['volume', '/in-image'], ['volume', '/relative'], ['volume', '/a:/x']]);
    await assert.rejects(resolve({ Mounts: [{ Type: 'tmpfs', Target: '/t', Source: 'x' }] }), /field Source must not be specified/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'npipe', Target: '/t' }] }), /^InvalidArgumentError: invalid mount config for type "npipe": mount type unknown$/);
    await assert.rejects(resolve({ Mounts: {} as never }), /HostConfig\.Mounts: must be an array/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'tmpfs', Target: '/t' }, { Type: 'tmpfs', Target: '/t/' }] }), /Duplicate mount point: \/t/);
  });
});

describe('bindPropagation', () => {
  // / private, /srv shared, /srv/sub a slave of it.
  const mountinfo = (): ReturnType<typeof parseMountinfo> =>
    parseMountinfo(
      [
        '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
        '40 27 0:50 / /srv rw,relatime shared:7 - tmpfs tmpfs rw',
        '41 40 0:51 / /srv/sub rw,relatime master:7 - tmpfs tmpfs rw',
      ].join('\n'),
    );
  const bind = (Source: string, Propagation: string): MountPoint => ({ Type: 'bind', Source, Destination: '/m', Mode: '', RW: true, Propagation });
  const same = (p: string): string => p;

  it('leaves private binds alone without reading mountinfo', () => {
    assert.equal(bindPropagation([bind('/data', 'rprivate')], undefined, same, () => assert.fail('read mountinfo')), undefined);
  });

  it("refuses shared or slave binds from a mount that is neither, in dockerd's words", () => {
    assert.throws(() => bindPropagation([bind('/data', 'rslave')], undefined, same, mountinfo), /^InvalidArgumentError: path \/data is mounted on \/ but it is not a shared or slave mount$/);
    assert.throws(() => bindPropagation([bind('/data', 'shared')], undefined, same, mountinfo), /path \/data is mounted on \/ but it is not a shared mount/);
    assert.throws(() => bindPropagation([bind('/srv/sub/x', 'rshared')], undefined, same, mountinfo), /mounted on \/srv\/sub but it is not a shared mount/, 'a slave is not shared');
  });

  it("binds of or above a daemon root get rslave from the daemon (moby's validateBindDaemonRoot); other propagations are refused there", async () => {
    const roots = { daemonRoots: ['/var/lib/berth', '/run/berth'] };
    const volumes = fakeVolumes(['/', '/var/lib/berth/volumes', '/srv']);
    const [whole, inside, other] = await resolve({ Binds: ['/:/host:ro', '/var/lib/berth/volumes:/v', '/srv:/s'] }, roots, volumes);
    assert.deepEqual([whole!.Propagation, whole!.AutoSlave, inside!.Propagation, inside!.AutoSlave, other!.Propagation, other!.AutoSlave], ['rslave', true, 'rslave', true, 'rprivate', undefined]);
    assert.equal(publicMountPoint(whole!).Propagation, 'rslave', 'inspect shows it, as dockerd');
    assert.ok(!('AutoSlave' in publicMountPoint(whole!)));
    const [asked] = await resolve({ Mounts: [{ Type: 'bind', Source: '/', Target: '/h', BindOptions: { Propagation: 'rshared' } }] }, roots, volumes);
    assert.deepEqual([asked!.Propagation, asked!.AutoSlave], ['rshared', undefined]);
    await assert.rejects(resolve({ Binds: ['/var/lib/berth/volumes:/v:rprivate'] }, roots, volumes), /must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root, daemon root: "\/var\/lib\/berth", bind mount source: "\/var\/lib\/berth\/volumes", propagation: "rprivate"/);
    await assert.rejects(resolve({ Mounts: [{ Type: 'bind', Source: '/', Target: '/h', BindOptions: { Propagation: 'private' } }] }, roots, volumes), (err: unknown) => err instanceof InvalidArgumentError && /HostConfig\.Mounts\[0\]\.BindOptions\.Propagation/.test(err.message));
    // At start: a slave where the source's mount allows it (the root made a slave), else private as moby falls back.
    const auto = (Source: string): MountPoint => ({ ...bind(Source, 'rslave'), AutoSlave: true });
    const onPrivate = withAutoSlaveFallback([auto('/data')], undefined, same, mountinfo);
    assert.deepEqual([onPrivate.points[0]!.Propagation, onPrivate.root], ['rprivate', undefined]);
    const onShared = withAutoSlaveFallback([auto('/srv/a')], undefined, same, mountinfo);
    assert.deepEqual([onShared.points[0]!.Propagation, onShared.root], ['rslave', 'rslave']);
    assert.equal(bindPropagation(onPrivate.points, undefined, same, mountinfo), undefined, 'no error for the fallback');
    const plain = [bind('/data', 'rprivate')];
    assert.equal(withAutoSlaveFallback(plain, undefined, same, () => assert.fail('read mountinfo')).points, plain);
  });

  it('raises the root propagation as dockerd does', () => {
    assert.equal(bindPropagation([bind('/srv/a', 'rshared')], undefined, same, mountinfo), 'shared');
    assert.equal(bindPropagation([bind('/srv/sub/x', 'rslave')], undefined, same, mountinfo), 'rslave');
    assert.equal(bindPropagation([bind('/srv/a', 'rslave')], 'rshared', same, mountinfo), undefined, 'already enough');
    assert.equal(bindPropagation([bind('/link', 'rslave')], undefined, () => '/srv/a', mountinfo), 'rslave', 'the source with its symlinks resolved');
  });
});
