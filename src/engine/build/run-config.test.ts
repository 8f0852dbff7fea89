import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { applyChanges, exposedPorts, type RunConfig } from './run-config.js';

/** The error applyChanges throws, as dockerd words it (checked against dockerd 20.10's answers). */
function refusal(config: RunConfig, changes: string[]): string {
  try {
    applyChanges(config, changes);
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    return err.message;
  }
  assert.fail(`accepted: ${JSON.stringify(changes)}`);
}

describe('commit and import --change (moby BuildFromConfig)', () => {
  it('applies shell and exec forms, ENV legacy form, ONBUILD triggers', () => {
    assert.deepEqual(applyChanges({}, ['USER nobody', 'VOLUME /data /logs', 'ENTRYPOINT echo hi']), {
      Entrypoint: ['/bin/sh', '-c', 'echo hi'],
      Cmd: null, // an ENTRYPOINT clears the Cmd unless a CMD came first
      User: 'nobody',
      Volumes: { '/data': {}, '/logs': {} },
    });
    assert.deepEqual(applyChanges({ Cmd: ['x'] }, ['CMD ["a"]', 'ENTRYPOINT ["e"]']), { Cmd: ['a'], Entrypoint: ['e'] });
    assert.deepEqual(applyChanges({ Env: ['A=0'] }, ['ENV A 1 2']).Env, ['A=1 2']);
    assert.deepEqual(applyChanges({ OnBuild: ['RUN a'] }, ['ONBUILD RUN echo hi']).OnBuild, ['RUN a', 'RUN echo hi']);
    assert.deepEqual(applyChanges({ Shell: ['/bin/bash', '-c'] }, ['CMD a']).Cmd, ['/bin/bash', '-c', 'a'], 'shell form through the SHELL');
    assert.deepEqual(applyChanges({}, ['cmd ["a"]']).Cmd, ['a'], 'keywords in any case');
    assert.deepEqual(applyChanges({}, ['CMD']).Cmd, ['/bin/sh', '-c'], 'CMD alone is the shell, as dockerd records it');
    assert.deepEqual(applyChanges({}, ['ENTRYPOINT']).Entrypoint, [], 'an empty entrypoint, which clears the container\'s in a commit');
    assert.deepEqual(applyChanges({}, ['ENTRYPOINT []']).Entrypoint, []);
  });

  it('takes HEALTHCHECK and STOPSIGNAL', () => {
    assert.deepEqual(applyChanges({}, ['HEALTHCHECK --interval=5s CMD ["true"]']).Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9 });
    assert.deepEqual(applyChanges({}, ['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
    assert.equal(applyChanges({}, ['STOPSIGNAL SIGINT']).StopSignal, 'SIGINT');
    assert.equal(refusal({}, ['STOPSIGNAL FOO']), 'Invalid signal: FOO');
  });

  it('reads the changes as one Dockerfile: a change may hold several lines, comments are skipped', () => {
    const config = applyChanges({ Env: ['PATH=/bin'] }, ['CMD a\nENV b=1', '# a comment']);
    assert.deepEqual(config.Cmd, ['/bin/sh', '-c', 'a']);
    assert.deepEqual(config.Env, ['PATH=/bin', 'b=1']);
    assert.equal(refusal({}, ['']), 'file with no instructions');
    assert.equal(refusal({}, ['# comment']), 'file with no instructions');
  });

  it("substitutes variables from the config's Env, and resolves WORKDIR against the current one", () => {
    const config = applyChanges({ Env: ['BASE=/opt'], WorkingDir: '/srv' }, ['ENV HOME_DIR=$BASE/home', 'LABEL where=${BASE}', 'WORKDIR a b']);
    assert.deepEqual(config.Env, ['BASE=/opt', 'HOME_DIR=/opt/home']);
    assert.deepEqual(config.Labels, { where: '/opt' });
    assert.equal(config.WorkingDir, '/srv/a b');
    assert.equal(applyChanges({}, ['WORKDIR rel']).WorkingDir, '/rel');
  });

  it('refuses what dockerd refuses, in its words', () => {
    for (const k of ['FROM x', 'RUN x', 'ADD a b', 'COPY a b', 'SHELL ["/bin/bash"]', 'ARG a', 'MAINTAINER me']) {
      assert.equal(refusal({}, [k]), `${k.split(' ')[0]!.toLowerCase()} is not a valid change command`);
    }
    assert.equal(refusal({}, ['ENV']), 'ENV requires at least one argument');
    assert.equal(refusal({}, ['ENV a']), 'ENV must have two arguments');
    assert.equal(refusal({}, ['EXPOSE']), 'EXPOSE requires at least one argument');
    assert.equal(refusal({}, ['EXPOSE 99999']), 'Invalid containerPort: 99999');
    assert.equal(refusal({}, ['LABEL']), 'LABEL requires at least one argument');
    assert.equal(refusal({}, ['USER']), 'USER requires exactly one argument');
    assert.equal(refusal({}, ['WORKDIR']), 'WORKDIR requires exactly one argument');
    assert.equal(refusal({}, ['VOLUME']), 'VOLUME requires at least one argument');
    assert.equal(refusal({}, ['ONBUILD']), 'ONBUILD requires at least one argument');
    assert.equal(refusal({}, ['ONBUILD FROM x']), "FROM isn't allowed as an ONBUILD trigger");
    assert.equal(refusal({}, ['ONBUILD ONBUILD RUN x']), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  });

  it('leaves the given config alone', () => {
    const config = { Env: ['A=1'] };
    applyChanges(config, ['ENV A=2']);
    assert.deepEqual(config, { Env: ['A=1'] });
  });
});

describe('EXPOSE port specs', () => {
  it('expands ranges and checks ports and protocols', () => {
    assert.deepEqual(exposedPorts('8000-8002/udp'), ['8000/udp', '8001/udp', '8002/udp']);
    assert.throws(() => exposedPorts('x'), /Invalid containerPort: x/);
  });
});
