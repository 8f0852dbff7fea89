import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { fromHumanSize } from '../../common/units.js';
import { DEFAULT_LOG_CONFIG, detailsPrefix, logAttributes, logTag, resolveLogConfig, rotation, type LogSubject } from './logconfig.js';

const subject: LogSubject = { id: 'a'.repeat(64), name: '/web', imageId: `sha256:${'b'.repeat(64)}`, imageName: 'busybox:latest', labels: { team: 'berth', tier: 'db', other: 'x' }, env: ['PATH=/bin', 'STAGE=prod', 'EMPTY='] };

describe('log config (dockerd mergeAndVerifyLogConfig and json-file)', () => {
  it("no driver named: the daemon's, with its options where the container leaves them out", () => {
    assert.deepEqual(resolveLogConfig(undefined), DEFAULT_LOG_CONFIG);
    assert.deepEqual(resolveLogConfig({ Type: '', Config: { 'max-size': '1k' } }), { Type: 'json-file', Config: { 'max-size': '1k', 'max-file': '5' } });
    assert.deepEqual(resolveLogConfig({ Type: 'json-file', Config: {} }), DEFAULT_LOG_CONFIG);
    // Another driver than the daemon's: only its own options.
    assert.deepEqual(resolveLogConfig({ Type: 'local' }), { Type: 'local', Config: {} });
    assert.deepEqual(resolveLogConfig({ Type: 'none' }), { Type: 'none', Config: {} });
    assert.deepEqual(resolveLogConfig({}, { Type: 'none', Config: {} }), { Type: 'none', Config: {} });
  });

  it('refuses unknown drivers and options, bad sizes and counts, with dockerd messages', () => {
    assert.throws(() => resolveLogConfig({ Type: 'nope' }), (e: Error) => e instanceof InvalidArgumentError && /^error looking up logging plugin nope: plugin "nope" not found$/.test(e.message));
    assert.throws(() => resolveLogConfig({ Type: 'syslog' }), (e: Error) => e instanceof UnsupportedError && /syslog log driver is not supported/.test(e.message));
    assert.throws(() => resolveLogConfig({ Config: { colour: 'red' } }), /unknown log opt 'colour' for json-file log driver/);
    assert.throws(() => resolveLogConfig({ Type: 'local', Config: { tag: 'x' } }), /unknown log opt 'tag' for local log driver/);
    assert.throws(() => resolveLogConfig({ Type: 'none', Config: { 'max-size': '1k' } }), /unknown log opt 'max-size' for none log driver/);
    assert.throws(() => resolveLogConfig({ Config: { 'max-size': '0' } }), / failed to initialize logging driver: max-size must be a positive number$/);
    assert.throws(() => resolveLogConfig({ Config: { 'max-size': 'big' } }), /failed to initialize logging driver: invalid size: 'big'$/);
    assert.throws(() => resolveLogConfig({ Config: { 'max-file': '0' } }), / failed to initialize logging driver: max-file cannot be less than 1$/);
    assert.throws(() => resolveLogConfig({ Config: { 'max-file': 'two' } }), / failed to initialize logging driver: strconv.Atoi: parsing "two": invalid syntax$/);
    assert.throws(() => resolveLogConfig({ Type: 'json-file', Config: { compress: 'true' } }, { Type: 'json-file', Config: {} }), /compress cannot be true when max-file is less than 2/);
    assert.throws(() => resolveLogConfig({ Config: { compress: 'true' } }), (e: Error) => e instanceof UnsupportedError);
    assert.throws(() => resolveLogConfig({ Config: { compress: 'maybe' } }), / failed to initialize logging driver: strconv.ParseBool: parsing "maybe": invalid syntax$/);
    assert.throws(() => resolveLogConfig({ Config: { 'max-file': 3 as never } }), /Config\["max-file"\]: must be a string/);
    assert.throws(() => resolveLogConfig([] as never), /HostConfig.LogConfig: must be an object/);
    resolveLogConfig({ Config: { compress: 'false' } });
  });

  it('rotation: decimal sizes as go-units reads them, one file unless told (json-file)', () => {
    assert.equal(fromHumanSize('1k'), 1000);
    assert.equal(fromHumanSize('10m'), 10_000_000);
    assert.equal(fromHumanSize('1.5 GB'), 1_500_000_000);
    assert.equal(fromHumanSize('2KiB'), 2000);
    assert.equal(fromHumanSize('12'), 12);
    assert.equal(fromHumanSize('-1'), undefined);
    assert.deepEqual(rotation(DEFAULT_LOG_CONFIG), { maxSize: 20_000_000, maxFiles: 5 });
    assert.deepEqual(rotation({ Type: 'json-file', Config: {} }), { maxFiles: 1 });
    // The local driver is bounded unless told otherwise: 20 MiB and 5 files, each where left out.
    assert.deepEqual(rotation({ Type: 'local', Config: {} }), { maxSize: 20 * 1024 * 1024, maxFiles: 5 });
    assert.deepEqual(rotation({ Type: 'local', Config: { 'max-size': '1k' } }), { maxSize: 1000, maxFiles: 5 });
    assert.deepEqual(rotation({ Type: 'local', Config: { 'max-file': '2' } }), { maxSize: 20 * 1024 * 1024, maxFiles: 2 });
    assert.equal(rotation({ Type: 'none', Config: {} }), false);
  });

  it('attributes: the labels and env named or matched, the tag when asked; none for other drivers', () => {
    const cfg = (config: Record<string, string>) => ({ Type: 'json-file' as const, Config: config });
    assert.equal(logAttributes(cfg({}), subject), undefined);
    assert.deepEqual(logAttributes(cfg({ labels: 'team,missing', env: 'STAGE,EMPTY' }), subject), { team: 'berth', STAGE: 'prod', EMPTY: '' });
    assert.deepEqual(logAttributes(cfg({ 'labels-regex': '^t', 'env-regex': 'AT' }), subject), { team: 'berth', tier: 'db', PATH: '/bin' });
    assert.deepEqual(logAttributes(cfg({ tag: '' }), subject), { tag: 'aaaaaaaaaaaa' });
    assert.equal(logAttributes({ Type: 'local', Config: {} }, subject), undefined);
    assert.throws(() => logAttributes(cfg({ 'env-regex': '(' }), subject), /env-regex/);
    assert.throws(() => logAttributes(cfg({ labels: 'big' }), { ...subject, labels: { big: 'x'.repeat(5000) } }), /more than 4095 bytes/);
  });

  it("tags: dockerd's template fields", () => {
    assert.equal(logTag('{{.Name}}/{{.ID}} {{ .ImageName }} {{.ImageID}} {{.DaemonName}}', subject), 'web/aaaaaaaaaaaa busybox:latest bbbbbbbbbbbb docker');
    assert.equal(logTag('{{.FullID}}', subject), 'a'.repeat(64));
    assert.throws(() => logTag('{{.Hostname}}', subject), /only \{\{\.ID\}\}/);
    assert.throws(() => logTag('{{range .X}}', subject), InvalidArgumentError);
  });

  it('details: the attributes sorted and query-escaped, then a space', () => {
    assert.equal(detailsPrefix(undefined), ' ');
    assert.equal(detailsPrefix({ tag: 'a b', env: 'x=y&z', '!': "(')" }), "!=%28%27%29,env=x%3Dy%26z,tag=a+b ");
  });
});
