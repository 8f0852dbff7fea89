import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parsePsOutput } from './top.js';

describe('docker top: ps output (moby parsePSOutput)', () => {
  const ps = [
    'UID          PID    PPID  C STIME TTY          TIME CMD',
    'root           1       0  0 08:00 ?        00:00:01 /sbin/init splash',
    'root        4242    4200  0 09:00 ?        00:00:00 sh -c sleep 100',
    'root        4250    4242  0 09:00 ?        00:00:00 sleep 100',
    '',
  ].join('\n');
  it("keeps the container's processes, the command with its spaces in the last column", () => {
    assert.deepEqual(parsePsOutput(ps, [4242, 4250]), {
      Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
      Processes: [
        ['root', '4242', '4200', '0', '09:00', '?', '00:00:00', 'sh -c sleep 100'],
        ['root', '4250', '4242', '0', '09:00', '?', '00:00:00', 'sleep 100'],
      ],
    });
  });
  it('thread rows ("-" as PID) go with the process above them', () => {
    const threads = ['USER PID TID CMD', 'root 4242 - sh', 'root - 4242 -', 'root 1 - init', 'root - 1 -'].join('\n');
    assert.deepEqual(parsePsOutput(threads, [4242]).Processes, [['root', '4242', '-', 'sh'], ['root', '-', '4242', '-']]);
  });
  it('refuses an output without a PID column', () => {
    assert.throws(() => parsePsOutput('USER CMD\nroot sh\n', [1]), /Couldn't find PID field/);
  });
});
