import { test } from 'node:test';
import assert from 'node:assert/strict';

import { InvalidArgumentError, NotFoundError, UnsupportedError } from '../common/errors.js';
import { hostPlatform, MAX_MANIFEST_BYTES, parseImageConfig, parseManifest, parseTypedManifest, parsePlatformSpecifier, referencedDigests, selectPlatform, SUPPORTED_MANIFEST_TYPES } from './manifest.js';
import { MEDIA_TYPES } from './types.js';
import type { Descriptor, ImageIndex, Platform } from './types.js';

const d = (n: number) => 'sha256:' + n.toString(16).padStart(64, '0');
const desc = (n: number, mediaType: string = MEDIA_TYPES.ociLayerGzip): Descriptor => ({ mediaType, digest: d(n), size: n });

const ociManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: desc(1, MEDIA_TYPES.ociConfig), layers: [desc(2), desc(3)] };
const dockerManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config: desc(1, MEDIA_TYPES.dockerConfig), layers: [desc(2, MEDIA_TYPES.dockerLayerGzip)] };
const ociIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ ...desc(4, MEDIA_TYPES.ociManifest), platform: { os: 'linux', architecture: 'amd64' } }] };

function invalid(field?: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
    assert.equal(err.field, field, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

test('parses OCI and Docker manifests and indexes', () => {
  assert.deepEqual(parseManifest(Buffer.from(JSON.stringify(ociManifest))), { kind: 'manifest', manifest: ociManifest });
  assert.deepEqual(parseManifest(JSON.stringify(dockerManifest), MEDIA_TYPES.dockerManifest), { kind: 'manifest', manifest: dockerManifest });
  assert.deepEqual(parseManifest(JSON.stringify(ociIndex), `${MEDIA_TYPES.ociIndex}; charset=utf-8`), { kind: 'index', index: ociIndex });
  const list = { ...ociIndex, mediaType: MEDIA_TYPES.dockerManifestList };
  assert.equal(parseManifest(JSON.stringify(list)).kind, 'index');
});

test('without a media type, the shape decides (OCI allows omitting it)', () => {
  const { mediaType: _m, ...bareManifest } = ociManifest;
  const { mediaType: _i, ...bareIndex } = ociIndex;
  assert.equal(parseManifest(JSON.stringify(bareManifest)).kind, 'manifest');
  assert.equal(parseManifest(JSON.stringify(bareIndex)).kind, 'index');
  assert.equal(parseManifest(JSON.stringify(bareIndex), MEDIA_TYPES.ociIndex).kind, 'index');
  assert.equal(parseManifest(JSON.stringify(bareIndex), 'application/json').kind, 'index'); // generic type: ignored
  assert.throws(() => parseManifest('{"schemaVersion": 2}'), invalid(undefined, /neither/));
});

test('parseTypedManifest also gives the media type it decided on', () => {
  const { mediaType: _m, ...bareManifest } = ociManifest;
  const { mediaType: _i, ...bareIndex } = ociIndex;
  assert.deepEqual(parseTypedManifest(JSON.stringify(ociManifest)), { kind: 'manifest', manifest: ociManifest, mediaType: MEDIA_TYPES.ociManifest });
  assert.equal(parseTypedManifest(JSON.stringify(dockerManifest), `${MEDIA_TYPES.dockerManifest}; charset=utf-8`).mediaType, MEDIA_TYPES.dockerManifest);
  assert.equal(parseTypedManifest(JSON.stringify(bareManifest), MEDIA_TYPES.dockerManifest).mediaType, MEDIA_TYPES.dockerManifest); // given
  assert.equal(parseTypedManifest(JSON.stringify(bareManifest), 'application/json').mediaType, MEDIA_TYPES.ociManifest); // shape
  assert.equal(parseTypedManifest(JSON.stringify(bareIndex)).mediaType, MEDIA_TYPES.ociIndex);
  assert.deepEqual([...SUPPORTED_MANIFEST_TYPES].sort(), [MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest].sort());
});

test('refuses invalid JSON, unknown and contradicting media types, schema 1', () => {
  assert.throws(() => parseManifest('{"schemaVersion": 2, '), invalid(undefined, /not valid JSON/));
  assert.throws(() => parseManifest(Buffer.from([0xff, 0x00, 0x7b])), invalid(undefined, /not valid JSON/));
  assert.throws(() => parseManifest('[1,2]'), invalid(undefined, /JSON object/));
  assert.throws(() => parseManifest('null'), invalid(undefined, /JSON object/));
  assert.throws(() => parseManifest(JSON.stringify({ ...ociManifest, mediaType: 'application/x-evil' })), invalid(undefined, /unknown manifest media type "application\/x-evil"/));
  assert.throws(() => parseManifest(JSON.stringify(ociManifest), 'application/vnd.example+json'), invalid(undefined, /does not match/));
  assert.throws(() => parseManifest(JSON.stringify({ ...ociManifest, mediaType: undefined }), 'application/vnd.example+json'), invalid(undefined, /unknown manifest media type/));
  assert.throws(() => parseManifest(JSON.stringify(ociManifest), MEDIA_TYPES.ociIndex), invalid(undefined, /does not match/));
  assert.throws(() => parseManifest(JSON.stringify({ ...ociManifest, mediaType: 42 })), invalid('manifest.mediaType'));
  assert.throws(() => parseManifest(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), UnsupportedError);
  assert.throws(() => parseManifest(' '.repeat(MAX_MANIFEST_BYTES + 1)), invalid(undefined, /more than/));
});

test('refuses bad fields, naming them', () => {
  const cases: Array<[unknown, string]> = [
    [{ ...ociManifest, schemaVersion: 3 }, 'manifest.schemaVersion'],
    [{ ...ociManifest, config: undefined }, 'manifest.config'],
    [{ ...ociManifest, config: { ...desc(1), digest: 'sha256:../../x' } }, 'manifest.config.digest'],
    [{ ...ociManifest, layers: {} }, 'manifest.layers'],
    [{ ...ociManifest, layers: [desc(2), { ...desc(3), digest: 'sha256:' + 'A'.repeat(64) }] }, 'manifest.layers[1].digest'],
    [{ ...ociManifest, layers: [{ ...desc(2), size: -1 }] }, 'manifest.layers[0].size'],
    [{ ...ociManifest, layers: [{ ...desc(2), size: 1.5 }] }, 'manifest.layers[0].size'],
    [{ ...ociManifest, layers: [{ ...desc(2), size: '2' }] }, 'manifest.layers[0].size'],
    [{ ...ociManifest, layers: [{ ...desc(2), mediaType: 7 }] }, 'manifest.layers[0].mediaType'],
    [{ ...ociManifest, layers: [{ ...desc(2), urls: 'http://x' }] }, 'manifest.layers[0].urls'],
    [{ ...ociManifest, annotations: { a: 1 } }, 'manifest.annotations.a'],
    [{ ...ociIndex, manifests: null }, 'index.manifests'],
    [{ ...ociIndex, manifests: [{ ...desc(4), platform: { os: 'linux' } }] }, 'index.manifests[0].platform.architecture'],
    [{ ...ociIndex, manifests: ['sha256:' + '0'.repeat(64)] }, 'index.manifests[0]'],
  ];
  for (const [json, field] of cases) assert.throws(() => parseManifest(JSON.stringify(json)), invalid(field), field);
});

test('referencedDigests is lenient and skips bad digests', () => {
  assert.deepEqual(referencedDigests(Buffer.from(JSON.stringify(ociManifest))), [d(1), d(2), d(3)]);
  assert.deepEqual(referencedDigests(Buffer.from(JSON.stringify(ociIndex))), [d(4)]);
  assert.deepEqual(referencedDigests(Buffer.from('{"manifests":[{"digest":"sha256:../../x"}, 3]}')), []);
  assert.deepEqual(referencedDigests(Buffer.from('not json')), []);
  assert.deepEqual(referencedDigests(Buffer.from('"string"')), []);
});

test('parseImageConfig checks what a runtime uses', () => {
  const config = { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: ['sh'], Entrypoint: null, Labels: { a: 'b' } }, rootfs: { type: 'layers', diff_ids: [d(9)] } };
  assert.deepEqual(parseImageConfig(JSON.stringify(config)), config);
  const cases: Array<[unknown, string]> = [
    [{ ...config, os: undefined }, 'config.os'],
    [{ ...config, architecture: 1 }, 'config.architecture'],
    [{ ...config, rootfs: undefined }, 'config.rootfs'],
    [{ ...config, rootfs: { type: 'other', diff_ids: [] } }, 'config.rootfs.type'],
    [{ ...config, rootfs: { type: 'layers', diff_ids: ['sha256:x'] } }, 'config.rootfs.diff_ids[0]'],
    [{ ...config, config: { Env: 'A=1' } }, 'config.config.Env'],
    [{ ...config, config: { Cmd: [1] } }, 'config.config.Cmd[0]'],
    [{ ...config, config: { User: 0 } }, 'config.config.User'],
    [{ ...config, config: { Labels: { a: 1 } } }, 'config.config.Labels.a'],
    [{ ...config, config: [] }, 'config.config'],
    [{ ...config, history: {} }, 'config.history'],
  ];
  for (const [json, field] of cases) assert.throws(() => parseImageConfig(JSON.stringify(json)), invalid(field), field);
  assert.throws(() => parseImageConfig('{'), invalid(undefined, /image config is not valid JSON/));
});

function index(...platforms: Array<Platform | undefined>): ImageIndex {
  return { schemaVersion: 2, manifests: platforms.map((platform, i) => ({ ...desc(i + 1, MEDIA_TYPES.ociManifest), ...(platform ? { platform } : {}) })) };
}
const pick = (idx: ImageIndex, want?: Platform) => idx.manifests.indexOf(selectPlatform(idx, want));

test('selectPlatform picks the entry for this host or the asked platform', () => {
  const multi = index(
    undefined, // an attestation without platform is never chosen
    { os: 'unknown', architecture: 'unknown' },
    { os: 'linux', architecture: 'arm', variant: 'v6' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: '386' },
    { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' },
  );
  assert.equal(pick(multi, { os: 'linux', architecture: 'amd64' }), 5);
  assert.equal(pick(multi, { os: 'linux', architecture: 'x86_64' }), 5);
  assert.equal(pick(multi, { os: 'linux', architecture: 'amd64', variant: 'v3' }), 5); // v3 runs v1
  assert.equal(pick(multi, { os: 'linux', architecture: 'aarch64' }), 4); // arm64 "v8" is arm64
  assert.equal(pick(multi, { os: 'linux', architecture: 'arm' }), 3); // arm means v7
  assert.equal(pick(multi, { os: 'linux', architecture: 'arm', variant: 'v6' }), 2);
  assert.equal(pick(multi, { os: 'linux', architecture: 'i386' }), 6);
  assert.equal(pick(multi, { os: 'windows', architecture: 'amd64' }), 7);
  // The best variant wins over order: v7 before v6 for a v8 CPU in 32-bit mode.
  assert.equal(pick(index({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: '7' }), { os: 'linux', architecture: 'arm', variant: 'v8' }), 1);
  // amd64 v2 image on a v1 CPU: not runnable.
  assert.throws(() => selectPlatform(index({ os: 'linux', architecture: 'amd64', variant: 'v2' }), { os: 'linux', architecture: 'amd64' }), NotFoundError);
  assert.throws(
    () => selectPlatform(index({ os: 'linux', architecture: 'arm', variant: 'v7' }), { os: 'linux', architecture: 'arm', variant: 'v6' }),
    (err: unknown) => err instanceof NotFoundError && /linux\/arm\/v6.*has: linux\/arm\/v7/.test(err.message),
  );
  assert.throws(() => selectPlatform(index(), { os: 'linux', architecture: 'amd64' }), NotFoundError);
});

test('hostPlatform is linux/amd64 on x64, and the default for selectPlatform', () => {
  const host = hostPlatform();
  assert.equal(host.os, 'linux');
  if (process.arch === 'x64') assert.deepEqual(host, { os: 'linux', architecture: 'amd64' });
  assert.equal(pick(index({ os: 'linux', architecture: 'riscv64' }, host)), 1);
});

const SPEC_HOST = { os: 'linux', architecture: 'amd64' };

test('--platform specifiers (containerd platforms.Parse): reads os/arch[/variant], an OS or an architecture alone, with normalized spellings', () => {
  assert.deepEqual(parsePlatformSpecifier('linux/arm64', SPEC_HOST), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatformSpecifier('linux/arm64/v8', SPEC_HOST), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatformSpecifier('linux/aarch64', SPEC_HOST), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatformSpecifier('Linux/x86_64', SPEC_HOST), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatformSpecifier('linux/arm', SPEC_HOST), { os: 'linux', architecture: 'arm' });
  assert.deepEqual(parsePlatformSpecifier('linux/arm/v6', SPEC_HOST), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.deepEqual(parsePlatformSpecifier('linux', SPEC_HOST), SPEC_HOST);
  assert.deepEqual(parsePlatformSpecifier('arm64', SPEC_HOST), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatformSpecifier('windows', SPEC_HOST), { os: 'windows', architecture: 'amd64' });
});
test("--platform specifiers: the rest refused in containerd's words", () => {
  assert.throws(() => parsePlatformSpecifier('bogus', SPEC_HOST), /^InvalidArgumentError: "bogus": unknown operating system or architecture: invalid argument$/);
  assert.throws(() => parsePlatformSpecifier('linux/', SPEC_HOST), /"linux\/": cannot parse platform specifier: invalid argument/);
  assert.throws(() => parsePlatformSpecifier('a/b/c/d', SPEC_HOST), /cannot parse platform specifier/);
  assert.throws(() => parsePlatformSpecifier('linux/*', SPEC_HOST), /wildcards not yet supported/);
});
