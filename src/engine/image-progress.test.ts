import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { humanSize, progressBar, PullProgress, pullStatus, pushMessages } from './image-progress.js';

describe('image progress messages', () => {
  it('formats sizes as docker units.HumanSize', () => {
    assert.equal(humanSize(527), '527B');
    assert.equal(humanSize(2_097_152), '2.097MB');
    assert.equal(humanSize(1000), '1kB');
  });
  it('draws dockerd bars', () => {
    assert.equal(progressBar(0, 100), `[>${' '.repeat(50)}]       0B/100B`);
    assert.equal(progressBar(50, 100), `[${'='.repeat(25)}>${' '.repeat(25)}]      50B/100B`);
    assert.equal(progressBar(100, 100), `[${'='.repeat(50)}>]     100B/100B`);
  });
  it('maps a pull as dockerd words it', () => {
    const p = new PullProgress('library/busybox', 'latest');
    const out = [
      { id: 'latest', status: 'Resolving' },
      { id: 'aaaaaaaaaaaa', status: 'Waiting' },
      { id: 'bbbbbbbbbbbb', status: 'Already exists' },
      { id: 'aaaaaaaaaaaa', status: 'Downloading', current: 10, total: 20 },
      { id: 'aaaaaaaaaaaa', status: 'Verifying Checksum' },
      { id: 'aaaaaaaaaaaa', status: 'Download complete' },
      { id: 'bbbbbbbbbbbb', status: 'Pull complete' },
      { id: 'aaaaaaaaaaaa', status: 'Extracting', current: 20, total: 20 },
      { id: 'aaaaaaaaaaaa', status: 'Pull complete' },
      { id: 'latest', status: 'Digest: sha256:' + '1'.repeat(64) },
      { id: 'latest', status: 'Status: Downloaded newer image for docker.io/library/busybox:latest' },
    ].flatMap((e) => p.map(e));
    assert.deepEqual(
      out.map((m) => [m.id, m.status]),
      [
        ['latest', 'Pulling from library/busybox'],
        ['aaaaaaaaaaaa', 'Pulling fs layer'],
        ['bbbbbbbbbbbb', 'Already exists'],
        ['aaaaaaaaaaaa', 'Downloading'],
        ['aaaaaaaaaaaa', 'Verifying Checksum'],
        ['aaaaaaaaaaaa', 'Download complete'],
        ['aaaaaaaaaaaa', 'Extracting'],
        ['aaaaaaaaaaaa', 'Pull complete'],
        [undefined, 'Digest: sha256:' + '1'.repeat(64)],
      ],
    );
    assert.deepEqual(out[3]!.progressDetail, { current: 10, total: 20 });
    assert.match(out[3]!.progress!, /^\[=+>\s+\]\s+10B\/20B$/);
    assert.deepEqual(out[1]!.progressDetail, {});
    assert.equal(p.started, true);
  });
  it('says nothing before the manifest is known', () => {
    const p = new PullProgress('x', 'latest');
    assert.deepEqual(p.map({ id: 'latest', status: 'Resolving' }), []);
    assert.equal(p.started, false);
    // Once the registry answered with the manifest, as dockerd: before an index's platform is chosen.
    assert.deepEqual(p.map({ id: 'latest', status: 'Resolved' }), [{ status: 'Pulling from x', id: 'latest' }]);
    assert.deepEqual(p.map({ id: 'aaaaaaaaaaaa', status: 'Waiting' }), [{ status: 'Pulling fs layer', progressDetail: {}, id: 'aaaaaaaaaaaa' }]);
  });
  it('ends a pull with dockerd\'s status line', () => {
    assert.deepEqual(pullStatus('busybox:latest', false), { status: 'Status: Downloaded newer image for busybox:latest' });
    assert.deepEqual(pullStatus('busybox:latest', true), { status: 'Status: Image is up to date for busybox:latest' });
  });
  it('maps push events', () => {
    assert.deepEqual(pushMessages({ id: 'abc', status: 'Preparing' }), [{ status: 'Preparing', progressDetail: {}, id: 'abc' }]);
    assert.deepEqual(pushMessages({ id: 'abc', status: 'Pushing', current: 1, total: 2 })[0]!.progressDetail, { current: 1, total: 2 });
    const digest = 'sha256:' + 'a'.repeat(64);
    assert.deepEqual(pushMessages({ id: 'latest', status: `latest: digest: ${digest} size: 527` }), [{ status: `latest: digest: ${digest} size: 527` }]);
  });
});
