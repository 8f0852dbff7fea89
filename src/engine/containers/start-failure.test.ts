import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startFailure } from './start-failure.js';

test("a failed start as dockerd reads it: exit code, the config's fault (400) or not, the mount hint", () => {
  assert.deepEqual(startFailure('exec: "nosuchcmd": executable file not found in $PATH'), { exitCode: 127, invalidConfig: true, message: 'exec: "nosuchcmd": executable file not found in $PATH' });
  assert.deepEqual(startFailure('exec: "/no/such": stat /no/such: no such file or directory'), { exitCode: 127, invalidConfig: true, message: 'exec: "/no/such": stat /no/such: no such file or directory' });
  assert.deepEqual(startFailure('exec: "/etc": permission denied'), { exitCode: 126, invalidConfig: true, message: 'exec: "/etc": permission denied' });
  const mount = startFailure('mount /x to /etc/hostname: not a directory');
  assert.equal(mount.exitCode, 127);
  assert.ok(mount.invalidConfig);
  assert.match(mount.message, /not a directory: Are you trying to mount a directory onto a file \(or vice-versa\)\? Check if the specified host path exists and is the expected type$/);
  assert.deepEqual(startFailure('chdir to cwd ("/etc/passwd") set in config.json failed: not a directory'), { exitCode: 128, invalidConfig: true, message: 'Cannot mkdir: /etc/passwd is not a directory', daemonsOwn: true });
  assert.deepEqual(startFailure('cgroup: cannot write memory.limit_in_bytes: EBUSY'), { exitCode: 128, invalidConfig: false, message: 'cgroup: cannot write memory.limit_in_bytes: EBUSY' });
});
