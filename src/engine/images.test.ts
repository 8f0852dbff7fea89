import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { RegistryError } from '../images/registry/client.js';
import { dockerReference, formatReference } from '../images/reference.js';
import { commitConfig, isLoopbackRegistry, isSingleReference, pullReference, targetName, translatePullError } from './images.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('image service helpers', () => {
  it('builds the pull reference from fromImage and tag', () => {
    assert.equal(formatReference(pullReference('busybox', 'latest')), 'docker.io/library/busybox:latest');
    assert.equal(formatReference(pullReference('busybox', null)), 'docker.io/library/busybox', 'no tag anywhere: every tag (the API contract)');
    assert.equal(formatReference(pullReference('127.0.0.1:5000/x:1', '')), '127.0.0.1:5000/x:1');
    assert.equal(formatReference(pullReference('127.0.0.1:5000/x:1', '2')), '127.0.0.1:5000/x:2');
    assert.equal(formatReference(pullReference('127.0.0.1:5000/x', D)), `127.0.0.1:5000/x@${D}`);
    assert.throws(() => pullReference('UPPER', null), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'fromImage');
    assert.throws(() => pullReference('busybox', 'bad tag!'), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'tag');
  });
  it('names new images from repo and tag', () => {
    assert.equal(targetName('x', undefined), 'docker.io/library/x:latest');
    assert.equal(targetName('h:5000/x:1', undefined), 'h:5000/x:1');
    assert.equal(targetName('h:5000/x:1', '2'), 'h:5000/x:2');
    assert.throws(() => targetName('x@' + D, undefined), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'repo');
    assert.throws(() => targetName('x', 'bad tag'), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'tag');
  });
  it('treats loopback registries as insecure, as dockerd', () => {
    assert.ok(isLoopbackRegistry('127.0.0.1:5000'));
    assert.ok(isLoopbackRegistry('localhost:5000'));
    assert.ok(isLoopbackRegistry('127.1.2.3'));
    assert.ok(!isLoopbackRegistry('docker.io'));
    assert.ok(!isLoopbackRegistry('10.0.0.1:5000'));
  });
  it('knows single references', () => {
    assert.ok(isSingleReference({ names: ['docker.io/library/a:1'] }));
    assert.ok(isSingleReference({ names: ['docker.io/library/a:1'], repoDigests: [`docker.io/library/a@${D}`] }));
    assert.ok(!isSingleReference({ names: ['docker.io/library/a:1', 'docker.io/library/a:2'] }));
    assert.ok(!isSingleReference({ names: ['docker.io/library/a:1'], repoDigests: [`docker.io/library/b@${D}`] }));
    assert.ok(!isSingleReference({ names: [] }));
  });
  it('words registry errors as dockerd', () => {
    const ref = dockerReference('127.0.0.1:5000/nope:latest');
    const unknown = translatePullError(new RegistryError('NOT_FOUND', 'x', 404, [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }]), ref);
    assert.ok(unknown instanceof NotFoundError);
    assert.equal((unknown as Error).message, 'manifest for 127.0.0.1:5000/nope:latest not found: manifest unknown: manifest unknown');
    const name = translatePullError(new RegistryError('NOT_FOUND', 'x', 404, [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }]), ref);
    assert.equal((name as Error).message, 'repository 127.0.0.1:5000/nope not found: name unknown: repository name not known to registry');
    const denied = translatePullError(new RegistryError('INVALID_ARGUMENT', 'x', 403, [{ code: 'DENIED', message: 'no' }]), dockerReference('busybox'));
    assert.equal((denied as Error).message, "pull access denied for busybox, repository does not exist or may require 'docker login': denied: no");
  });
  it("commits as dockerd: the container's config (or the body's) with the changes, gaps filled from the container's", () => {
    const container = { Image: 'busybox', Env: ['PATH=/bin', 'A=2'], Cmd: ['touch', '/x'], Entrypoint: ['sh', '-c'], Labels: { b: '2' }, Hostname: 'abc', WorkingDir: '/w', HostConfig: { Privileged: true } };
    // No body (the docker CLI's): the container's config, the changes on it in place.
    const plain = commitConfig(container, null, ['ENV A=3 C=4', 'LABEL c=3']);
    assert.deepEqual(plain.Env, ['PATH=/bin', 'A=3', 'C=4']);
    assert.deepEqual([plain.Cmd, plain.Entrypoint, plain.Labels, plain.WorkingDir, (plain as Record<string, unknown>).Hostname], [['touch', '/x'], ['sh', '-c'], { b: '2', c: '3' }, '/w', 'abc']);
    assert.equal((plain as Record<string, unknown>).HostConfig, undefined);
    // A body (docker-py's conf): its fields and the changes first, the container's after.
    const withBody = commitConfig(container, { Labels: { a: '1' } }, ['ENV Z=1']);
    assert.deepEqual(withBody.Env, ['Z=1', 'PATH=/bin', 'A=2']);
    assert.deepEqual(withBody.Labels, { b: '2', a: '1' });
    assert.deepEqual(commitConfig(container, { Cmd: ['y'] }, []).Cmd, ['y']);
    // ENTRYPOINT [] clears the entrypoint (and the container's Cmd stays), as moby's merge since 23.0.
    const cleared = commitConfig(container, null, ['ENTRYPOINT []']);
    assert.deepEqual([cleared.Entrypoint, cleared.Cmd], [[], ['touch', '/x']]);
  });
});
