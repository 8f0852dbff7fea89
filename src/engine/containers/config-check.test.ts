import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { checkConfigTypes } from './config-check.js';

describe('container config types', () => {
  it('takes what dockerd decodes, nulls included', () => {
    checkConfigTypes({ Image: 'busybox', Cmd: ['true'], Entrypoint: null, Env: [], Labels: { a: 'b' }, ExposedPorts: { '80/tcp': {} }, Volumes: null, Tty: false, StopTimeout: 3, Healthcheck: { Test: ['NONE'] } });
    checkConfigTypes(undefined);
    checkConfigTypes(null);
  });

  it('refuses a wrong type, naming the field (what used to be a TypeError and a 500)', () => {
    const refused: Array<[unknown, RegExp]> = [
      [{ Entrypoint: { a: null } }, /^Entrypoint: must be a list of strings$/],
      [{ Cmd: [[1]] }, /^Cmd\[0\]: must be a string$/],
      [{ Env: [null] }, /^Env\[0\]: must be a string$/],
      [{ Env: { a: 1 } }, /^Env: must be a list of strings$/],
      [{ WorkingDir: { a: 1 } }, /^WorkingDir: must be a string$/],
      [{ Tty: 'yes' }, /^Tty: must be a boolean$/],
      [{ Labels: { a: 1 } }, /^Labels\["a"\]: must be a string$/],
      [{ ExposedPorts: ['80'] }, /^ExposedPorts: must be an object$/],
      [{ Volumes: { '/v': 1 } }, /^Volumes\["\/v"\]: must be an object$/],
      [{ StopTimeout: 'soon' }, /^StopTimeout: must be an integer$/],
      ['text', /^body: must be an object$/],
    ];
    for (const [config, message] of refused) assert.throws(() => checkConfigTypes(config), (e: Error) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(config));
    assert.throws(() => checkConfigTypes({ Cmd: true }, 'config.'), /config\.Cmd: must be a list of strings$/);
  });
});
