import assert from 'node:assert/strict';
import { test } from 'node:test';

import { normalizeDeviceRules } from './convert.js';
import { compileDeviceFilter } from './devices-bpf.js';

/** Runs the subset of eBPF the filter uses on one device request; returns r0 (1 = allow). */
function run(program: Buffer, req: { type: 'c' | 'b'; access: string; major: number; minor: number }): number {
  const access = [...req.access].reduce((m, c) => m | ({ m: 1, r: 2, w: 4 } as Record<string, number>)[c], 0);
  const ctx = [(access << 16) | (req.type === 'b' ? 1 : 2), req.major, req.minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0, steps = 0; steps < 10_000; steps++) {
    const code = program.readUInt8(pc * 8);
    const regs = program.readUInt8(pc * 8 + 1);
    const dst = regs & 0xf, src = regs >> 4;
    const off = program.readInt16LE(pc * 8 + 2);
    const imm = program.readInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x61: r[dst] = ctx[off / 4] >>> 0; assert.equal(src, 1); break;
      case 0x54: r[dst] = (r[dst] & imm) >>> 0; break;
      case 0x74: r[dst] = r[dst] >>> imm; break;
      case 0xbc: r[dst] = r[src] >>> 0; break;
      case 0xb7: r[dst] = imm; break;
      case 0x55: if (r[dst] !== imm >>> 0) pc += off; break;
      case 0x95: return r[0];
      default: throw new Error(`unexpected opcode 0x${code.toString(16)}`);
    }
    assert.ok(pc >= 0 && pc * 8 < program.length, 'jumps stay in the program');
  }
  throw new Error('no exit');
}

const rules = (list: Array<[boolean, 'a' | 'c' | 'b', number | null, number | null, string]>) =>
  normalizeDeviceRules(list.map(([allow, type, major, minor, access]) => ({ allow, type, major, minor, access })));

test('deny-all then allows: only what a later rule allows passes', () => {
  const program = compileDeviceFilter(rules([[false, 'a', null, null, 'rwm'], [true, 'c', 1, 3, 'rwm'], [true, 'c', 1, 9, 'r'], [true, 'c', null, null, 'm']]));
  assert.equal(run(program, { type: 'c', access: 'rw', major: 1, minor: 3 }), 1, '/dev/null read-write');
  assert.equal(run(program, { type: 'c', access: 'r', major: 1, minor: 9 }), 1, '/dev/urandom read');
  assert.equal(run(program, { type: 'c', access: 'w', major: 1, minor: 9 }), 0, '/dev/urandom write is not allowed');
  assert.equal(run(program, { type: 'c', access: 'rw', major: 8, minor: 0 }), 0, 'other char devices denied');
  assert.equal(run(program, { type: 'c', access: 'm', major: 8, minor: 0 }), 1, 'mknod of any char device');
  assert.equal(run(program, { type: 'b', access: 'm', major: 8, minor: 0 }), 0, 'no block mknod');
});

test('nothing follows a rule that matches everything (the verifier refuses unreachable code)', () => {
  const program = compileDeviceFilter(rules([[true, 'c', 1, 3, 'rwm'], [false, 'a', null, null, 'rwm']]));
  assert.equal(program.length, (6 + 2) * 8, 'prologue, then the deny-all verdict only');
  assert.equal(run(program, { type: 'c', access: 'r', major: 1, minor: 3 }), 0);
});

test('the last matching rule wins, as in cgroup v1', () => {
  const program = compileDeviceFilter(rules([[true, 'a', null, null, 'rwm'], [false, 'c', 1, 3, 'w']]));
  assert.equal(run(program, { type: 'c', access: 'w', major: 1, minor: 3 }), 0);
  assert.equal(run(program, { type: 'c', access: 'r', major: 1, minor: 3 }), 1);
  assert.equal(run(program, { type: 'b', access: 'rw', major: 7, minor: 0 }), 1);
  assert.equal(run(compileDeviceFilter([]), { type: 'c', access: 'r', major: 1, minor: 3 }), 0, 'no rules: deny');
});
