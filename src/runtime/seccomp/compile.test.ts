import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { Seccomp, SeccompSyscall } from '../spec/config.js';
import { BPF_MAXINSNS, decodeFilter, runSeccompFilter } from './bpf-interpreter.js';
import {
  compileSeccomp,
  SECCOMP_FILTER_FLAG_LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_TSYNC,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD,
  SECCOMP_RET_LOG,
  SECCOMP_RET_TRACE,
  SECCOMP_RET_TRAP,
} from './compile.js';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_ARM,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  SYSCALLS_AARCH64,
  SYSCALLS_X32,
  SYSCALLS_X86,
  SYSCALLS_X86_64,
  X32_SYSCALL_BIT,
} from './syscalls.js';

type Abi = 'x86_64' | 'x32' | 'x86' | 'aarch64';
const ABI_ARCH: Record<Abi, number> = {
  x86_64: AUDIT_ARCH_X86_64,
  x32: AUDIT_ARCH_X86_64,
  x86: AUDIT_ARCH_I386,
  aarch64: AUDIT_ARCH_AARCH64,
};
const ABI_TABLE: Record<Abi, ReadonlyMap<string, number>> = {
  x86_64: SYSCALLS_X86_64,
  x32: SYSCALLS_X32,
  x86: SYSCALLS_X86,
  aarch64: SYSCALLS_AARCH64,
};

const errno = (value: number) => (SECCOMP_RET_ERRNO | value) >>> 0;
const EPERM = errno(1);
const ENOSYS = errno(38);

function nr(abi: Abi, name: string): number {
  const number = ABI_TABLE[abi].get(name);
  assert.notEqual(number, undefined, `${name} on ${abi}`);
  return number!;
}

/** Runs a syscall by name (or number) through the compiled program. */
function call(
  program: { filter: Buffer },
  syscall: string | number,
  options: { abi?: Abi; arch?: number; args?: Array<bigint | number> } = {},
): number {
  const abi = options.abi ?? 'x86_64';
  return runSeccompFilter(program.filter, {
    nr: typeof syscall === 'number' ? syscall : nr(abi, syscall),
    arch: options.arch ?? ABI_ARCH[abi],
    args: options.args,
  });
}

/** testdata/ stays in the source tree; tests run from dist/ (or elsewhere) too. */
function fixturePath(name: string): URL {
  const candidates = [
    new URL(`./testdata/${name}`, import.meta.url),
    new URL(`../../../../src/runtime/seccomp/testdata/${name}`, import.meta.url),
    new URL(`src/runtime/seccomp/testdata/${name}`, `file://${process.cwd()}/`),
  ];
  return candidates.find((candidate) => existsSync(candidate)) ?? candidates[0];
}

const instructionCount = (program: { filter: Buffer }) => program.filter.length / 8;

describe('compileSeccomp: actions', () => {
  it('applies the default action to unlisted syscalls and the rule action to listed ones', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read', 'write', 'close'], action: 'SCMP_ACT_ALLOW' }],
    });
    assert.equal(call(program, 'read'), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'write'), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'open'), EPERM); // 2: between write and close
    assert.equal(call(program, 0), SECCOMP_RET_ALLOW); // read is 0 on x86_64
  });

  it('encodes every action and errno', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 13,
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 5 },
        { names: ['open'], action: 'SCMP_ACT_ERRNO' },
        { names: ['close'], action: 'SCMP_ACT_KILL' },
        { names: ['stat'], action: 'SCMP_ACT_KILL_THREAD' },
        { names: ['fstat'], action: 'SCMP_ACT_KILL_PROCESS' },
        { names: ['lstat'], action: 'SCMP_ACT_TRAP' },
        { names: ['poll'], action: 'SCMP_ACT_TRACE' },
        { names: ['lseek'], action: 'SCMP_ACT_TRACE', errnoRet: 42 },
        { names: ['mmap'], action: 'SCMP_ACT_LOG' },
        { names: ['munmap'], action: 'SCMP_ACT_ERRNO', errnoRet: 0 },
      ],
    });
    assert.equal(call(program, 'read'), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'write'), errno(5));
    assert.equal(call(program, 'open'), EPERM);
    assert.equal(call(program, 'close'), SECCOMP_RET_KILL_THREAD);
    assert.equal(call(program, 'stat'), SECCOMP_RET_KILL_THREAD);
    assert.equal(call(program, 'fstat'), SECCOMP_RET_KILL_PROCESS);
    assert.equal(call(program, 'lstat'), SECCOMP_RET_TRAP);
    assert.equal(call(program, 'poll'), (SECCOMP_RET_TRACE | 1) >>> 0);
    assert.equal(call(program, 'lseek'), (SECCOMP_RET_TRACE | 42) >>> 0);
    assert.equal(call(program, 'mmap'), SECCOMP_RET_LOG);
    assert.equal(call(program, 'munmap'), errno(0));
    assert.equal(call(program, 'mprotect'), errno(13)); // defaultErrnoRet
  });

  it('rejects unknown actions naming the field, and SCMP_ACT_NOTIFY as unsupported', () => {
    const syscalls: SeccompSyscall[] = [
      { names: ['read'], action: 'SCMP_ACT_ALLOW' },
      { names: ['write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['open'], action: 'SCMP_ACT_ALLOW' },
      { names: ['close'], action: 'SCMP_ACT_BOGUS' },
    ];
    assert.throws(
      () => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls }),
      (error: unknown) =>
        error instanceof InvalidArgumentError && error.field === 'linux.seccomp.syscalls[3].action',
    );
    assert.throws(
      () => compileSeccomp({ defaultAction: 'ALLOW' }),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === 'linux.seccomp.defaultAction',
    );
    assert.throws(
      () => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }),
      UnsupportedError,
    );
    assert.throws(
      () =>
        compileSeccomp({
          defaultAction: 'SCMP_ACT_ERRNO',
          syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 70000 }],
        }),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === 'linux.seccomp.syscalls[0].errnoRet',
    );
  });

  it('rejects bad conditions, architectures and flags naming the field', () => {
    const withArgs = (args: unknown): Seccomp => ({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['write'], action: 'SCMP_ACT_ALLOW', args: args as SeccompSyscall['args'] },
      ],
    });
    const field = (expected: string) => (error: unknown) =>
      error instanceof InvalidArgumentError && error.field === expected;
    assert.throws(
      () => compileSeccomp(withArgs([{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 1, op: 'EQ' }])),
      field('linux.seccomp.syscalls[1].args[1].op'),
    );
    assert.throws(
      () => compileSeccomp(withArgs([{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }])),
      field('linux.seccomp.syscalls[1].args[0].index'),
    );
    assert.throws(
      () => compileSeccomp(withArgs([{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }])),
      field('linux.seccomp.syscalls[1].args[0].value'),
    );
    assert.throws(
      () => compileSeccomp(withArgs([{ index: 0, value: 1, valueTwo: 1.5, op: 'SCMP_CMP_MASKED_EQ' }])),
      field('linux.seccomp.syscalls[1].args[0].valueTwo'),
    );
    assert.throws(
      () => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'x86'] }),
      field('linux.seccomp.architectures[1]'),
    );
    assert.throws(
      () => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'constructor'] }),
      field('linux.seccomp.flags[1]'),
    );
    assert.throws(
      () => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [''], action: 'SCMP_ACT_KILL' }] }),
      field('linux.seccomp.syscalls[0].names'),
    );
  });

  it('ORs the filter flags', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      flags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    });
    assert.equal(
      program.flags,
      SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    );
    assert.equal(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }).flags, 0);
  });
});

describe('compileSeccomp: argument conditions', () => {
  const MAX = (1n << 64n) - 1n;
  const interesting = [
    0n, 1n, 5n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn, 0x100000000n, 0x100000001n,
    0x1fffffffen, 0x123456789abcdefn, 0x8000000000000000n, MAX - 1n, MAX,
  ];
  const reference: Record<string, (arg: bigint, value: bigint, valueTwo: bigint) => boolean> = {
    SCMP_CMP_EQ: (arg, value) => arg === value,
    SCMP_CMP_NE: (arg, value) => arg !== value,
    SCMP_CMP_LT: (arg, value) => arg < value,
    SCMP_CMP_LE: (arg, value) => arg <= value,
    SCMP_CMP_GT: (arg, value) => arg > value,
    SCMP_CMP_GE: (arg, value) => arg >= value,
    SCMP_CMP_MASKED_EQ: (arg, mask, datum) => (arg & mask) === (datum & mask),
  };

  it('compares all 64 bits, unsigned, with every operator', () => {
    for (const [op, holds] of Object.entries(reference)) {
      for (const value of interesting) {
        const valueTwo = 0x100000005n;
        const program = compileSeccomp({
          defaultAction: 'SCMP_ACT_ERRNO',
          syscalls: [
            // bigint values are accepted for callers that parse JSON losslessly.
            { names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: value as never, valueTwo: valueTwo as never, op }] },
          ],
        });
        for (const arg of interesting) {
          const expected = holds(arg, value, valueTwo) ? SECCOMP_RET_ALLOW : EPERM;
          assert.equal(call(program, 'ioctl', { args: [0, 0, arg] }), expected, `${arg} ${op} ${value}`);
        }
      }
    }
  });

  it('reads 2^64-1 written as a JSON number (which parses as 2^64) as 2^64-1', () => {
    const profile = JSON.parse(
      '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW",' +
        '"args":[{"index":0,"value":18446744073709551615,"op":"SCMP_CMP_EQ"}]}]}',
    ) as Seccomp;
    const program = compileSeccomp(profile);
    assert.equal(call(program, 'personality', { args: [MAX] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'personality', { args: [0xffffffff] }), EPERM);
  });

  it('handles MASKED_EQ the way Docker uses it for clone namespaces', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }] }],
    });
    const CLONE_NEWUSER = 0x10000000;
    const threadFlags = 0x3d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    assert.equal(call(program, 'clone', { args: [threadFlags] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'clone', { args: [threadFlags | CLONE_NEWUSER] }), EPERM);
    assert.equal(call(program, 'clone', { args: [0x1_0000_0000n | BigInt(threadFlags)] }), SECCOMP_RET_ALLOW);
  });

  it('ANDs the conditions of a rule and ORs the rules of a syscall', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['mmap'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
            { index: 2, value: 4, op: 'SCMP_CMP_MASKED_EQ', valueTwo: 0 },
          ],
        },
        { names: ['mmap'], action: 'SCMP_ACT_ERRNO', errnoRet: 12, args: [{ index: 1, value: 4096, op: 'SCMP_CMP_GT' }] },
        { names: ['mmap'], action: 'SCMP_ACT_TRAP', args: [{ index: 5, value: 7, op: 'SCMP_CMP_EQ' }] },
      ],
    });
    assert.equal(call(program, 'mmap', { args: [0, 4096, 3] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'mmap', { args: [0, 8192, 3] }), SECCOMP_RET_ALLOW); // first rule wins
    assert.equal(call(program, 'mmap', { args: [0, 8192, 7] }), errno(12));
    assert.equal(call(program, 'mmap', { args: [1, 4096, 3, 0, 0, 7] }), SECCOMP_RET_TRAP);
    assert.equal(call(program, 'mmap', { args: [1, 4096, 3] }), EPERM);
  });

  it('ORs conditions on the same argument, as runc does', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['personality'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    });
    assert.equal(call(program, 'personality', { args: [0] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'personality', { args: [8] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'personality', { args: [1] }), EPERM);
  });

  it('lets an unconditional rule win over conditional ones and drops rules equal to the default', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 3, op: 'SCMP_CMP_EQ' }] },
        { names: ['read'], action: 'SCMP_ACT_TRAP', args: [{ index: 0, value: 4, op: 'SCMP_CMP_EQ' }] },
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['read'], action: 'SCMP_ACT_LOG' },
      ],
    });
    for (const fd of [3, 4, 5]) assert.equal(call(program, 'read', { args: [fd] }), SECCOMP_RET_ALLOW);
  });

  it('compares only the low 32 bits on x86 and x32, like libseccomp', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0x1_0000_5401, op: 'SCMP_CMP_EQ' }] }],
    });
    assert.equal(call(program, 'ioctl', { abi: 'x86', args: [0, 0x5401] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'ioctl', { abi: 'x32', args: [0, 0x5401] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'ioctl', { abi: 'x86_64', args: [0, 0x5401] }), EPERM);
    assert.equal(call(program, 'ioctl', { abi: 'x86_64', args: [0, 0x1_0000_5401] }), SECCOMP_RET_ALLOW);
  });
});

describe('compileSeccomp: architectures', () => {
  const profile = (architectures?: string[]): Seccomp => ({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures,
    syscalls: [{ names: ['read', 'write', 'arch_prctl', 'not_a_syscall'], action: 'SCMP_ACT_ALLOW' }],
  });

  it('always includes the native architecture and kills syscalls from others', () => {
    const program = compileSeccomp(profile());
    assert.equal(call(program, 'read'), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'read', { abi: 'x86' }), SECCOMP_RET_KILL_THREAD);
    assert.equal(call(program, 'read', { abi: 'x32' }), SECCOMP_RET_KILL_THREAD);
    assert.equal(call(program, 0, { arch: AUDIT_ARCH_ARM }), SECCOMP_RET_KILL_THREAD);
    assert.equal(call(program, 'read', { abi: 'aarch64' }), SECCOMP_RET_KILL_THREAD);
    // nr -1 (a tracer skipping the syscall) is not an x32 syscall: it gets the default action.
    assert.equal(call(program, 0xffffffff), EPERM);
  });

  it('handles i386 and x32 with their own numbers', () => {
    const program = compileSeccomp(profile(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM']));
    assert.equal(call(program, 'read', { abi: 'x86' }), SECCOMP_RET_ALLOW);
    assert.equal(nr('x86', 'read'), 3);
    assert.equal(call(program, 'close', { abi: 'x86' }), EPERM); // 6 on i386
    assert.equal(call(program, 'write', { abi: 'x32' }), SECCOMP_RET_ALLOW);
    assert.equal(nr('x32', 'write'), (X32_SYSCALL_BIT | 1) >>> 0);
    assert.equal(call(program, 'arch_prctl', { abi: 'x32' }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'open', { abi: 'x32' }), EPERM);
    // x32 read is x86_64's read with bit 30: the x86_64 rule must not leak into x32 or back.
    assert.equal(call(program, (X32_SYSCALL_BIT | nr('x86_64', 'open')) >>> 0), EPERM);
    // ARM is accepted but has no tables here, so its syscalls get the bad-architecture action.
    assert.equal(call(program, 3, { arch: AUDIT_ARCH_ARM }), SECCOMP_RET_KILL_THREAD);
  });

  it('skips names unknown on an architecture', () => {
    assert.equal(SYSCALLS_X86.has('arch_prctl') || SYSCALLS_AARCH64.has('arch_prctl'), true);
    assert.equal(SYSCALLS_AARCH64.has('open'), false);
    const program = compileSeccomp(
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: ['SCMP_ARCH_AARCH64'],
        syscalls: [
          { names: ['open', 'openat', 'no_such_call'], action: 'SCMP_ACT_ALLOW' },
          { names: ['not_a_syscall_anywhere'], action: 'SCMP_ACT_KILL' },
        ],
      },
      { nativeArch: 'aarch64' },
    );
    assert.equal(call(program, 'openat', { abi: 'aarch64' }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'fcntl', { abi: 'aarch64' }), EPERM);
    assert.equal(call(program, 'read'), SECCOMP_RET_KILL_THREAD); // x86_64 is not native here
  });

  it('rejects native architectures it has no tables for', () => {
    assert.throws(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }, { nativeArch: 'riscv64' }), UnsupportedError);
  });
});

describe('compileSeccomp: -ENOSYS for syscalls newer than the profile', () => {
  it('returns ENOSYS above the highest named syscall of each architecture', () => {
    const program = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['read', 'openat2'], action: 'SCMP_ACT_ALLOW' },
        { names: ['mount'], action: 'SCMP_ACT_ERRNO' }, // same as the default: still counts
      ],
    });
    const openat2 = nr('x86_64', 'openat2'); // 437
    assert.equal(call(program, openat2), SECCOMP_RET_ALLOW);
    assert.equal(call(program, openat2 - 1), EPERM);
    assert.equal(call(program, openat2 + 1), ENOSYS);
    assert.equal(call(program, 'mseal'), ENOSYS);
    assert.equal(call(program, 100000), ENOSYS);
    assert.equal(call(program, 'mseal', { abi: 'x86' }), ENOSYS);
    assert.equal(call(program, 'read', { abi: 'x86' }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'execve', { abi: 'x32' }), ENOSYS); // x32 execve is 520, above openat2
    assert.equal(call(program, 'mount', { abi: 'x32' }), EPERM);
  });

  it('is left out when the default action allows, logs or traces', () => {
    for (const defaultAction of ['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']) {
      const program = compileSeccomp({ defaultAction, syscalls: [{ names: ['mount'], action: 'SCMP_ACT_KILL' }] });
      assert.equal(call(program, 'mount'), SECCOMP_RET_KILL_THREAD);
      assert.notEqual(call(program, 'mseal'), ENOSYS);
    }
  });
});

/** A straightforward model of the documented semantics, to check programs with long jumps. */
function expectedResult(profile: Seccomp, abi: Abi, number: number, args: bigint[]): number {
  const ret = (action: string, errnoRet?: number) =>
    ({
      SCMP_ACT_ALLOW: SECCOMP_RET_ALLOW,
      SCMP_ACT_ERRNO: errno(errnoRet ?? 1),
      SCMP_ACT_TRAP: SECCOMP_RET_TRAP,
      SCMP_ACT_KILL: SECCOMP_RET_KILL_THREAD,
      SCMP_ACT_LOG: SECCOMP_RET_LOG,
    })[action]!;
  const defaultReturn = ret(profile.defaultAction, profile.defaultErrnoRet);
  const table = ABI_TABLE[abi];
  const names = new Set([...table].filter(([, n]) => n === number).map(([name]) => name));
  const rules = (profile.syscalls ?? []).filter(
    (rule) => rule.names.some((name) => names.has(name)) && ret(rule.action, rule.errnoRet) !== defaultReturn,
  );
  const unconditional = rules.find((rule) => !rule.args?.length);
  if (unconditional) return ret(unconditional.action, unconditional.errnoRet);
  const width = abi === 'x86' || abi === 'x32' ? 0xffffffffn : (1n << 64n) - 1n;
  for (const rule of rules) {
    const holds = rule.args!.every(({ index, value, op }) => {
      const arg = args[index] & width;
      const datum = BigInt(value) & width;
      return op === 'SCMP_CMP_EQ' ? arg === datum : op === 'SCMP_CMP_GT' ? arg > datum : arg <= datum;
    });
    if (holds) return ret(rule.action, rule.errnoRet);
  }
  const highest = Math.max(
    ...(profile.syscalls ?? []).flatMap((rule) => rule.names.map((name) => table.get(name) ?? -1)),
  );
  if (number > highest && highest >= 0 && defaultReturn !== SECCOMP_RET_ALLOW) return ENOSYS;
  return defaultReturn;
}

describe('compileSeccomp: large programs', () => {
  it('matches a model on a random profile that needs long jumps', () => {
    let seed = 12345;
    const random = (limit: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % limit;
    };
    const names = [...SYSCALLS_X86_64.keys()];
    const actions = ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG'];
    const ops = ['SCMP_CMP_EQ', 'SCMP_CMP_GT', 'SCMP_CMP_LE'];
    const syscalls: SeccompSyscall[] = [];
    for (let i = 0; i < 400; i++) {
      const rule: SeccompSyscall = { names: [names[random(names.length)]], action: actions[random(actions.length)] };
      if (rule.action === 'SCMP_ACT_ERRNO') rule.errnoRet = 1 + random(100);
      if (random(3) === 0) {
        const first = random(3);
        rule.args = [
          { index: first, value: random(4) * 0x80000000, op: ops[random(3)] },
          { index: first + 1 + random(2), value: random(5), op: ops[random(3)] },
        ];
      }
      syscalls.push(rule);
    }
    const profile: Seccomp = {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls,
    };
    const program = compileSeccomp(profile);
    const instructions = decodeFilter(program.filter);
    assert.ok(instructions.length <= BPF_MAXINSNS);
    assert.ok(instructions.length > 600, `only ${instructions.length} instructions: jumps may all be short`);
    assert.ok(instructions.some((insn) => insn.code === 0x05), 'expected at least one ja trampoline');

    const argValues = [0n, 1n, 3n, 0x80000000n, 0x100000000n, 0x180000000n];
    for (const abi of ['x86_64', 'x86', 'x32'] as const) {
      const numbers = new Set([...ABI_TABLE[abi].values()]);
      for (const number of numbers) {
        for (let trial = 0; trial < 4; trial++) {
          const args = Array.from({ length: 6 }, () => argValues[random(argValues.length)]);
          assert.equal(
            call(program, number, { abi, args }),
            expectedResult(profile, abi, number, args),
            `${abi} syscall ${number} args ${args.join(',')}`,
          );
        }
      }
    }
  });
});

describe("compileSeccomp: Docker's default profile", () => {
  interface DockerRule extends SeccompSyscall {
    includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
    excludes?: { caps?: string[]; arches?: string[] };
  }
  interface DockerProfile {
    defaultAction: string;
    defaultErrnoRet?: number;
    archMap: { architecture: string; subArchitectures: string[] }[];
    syscalls: DockerRule[];
  }
  const DOCKER_DEFAULT_CAPS = [
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
    'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
  ];

  /** What moby does to its profile before handing it to the runtime (profiles/seccomp). */
  function flatten(goArch: string, scmpArch: string, caps = DOCKER_DEFAULT_CAPS): Seccomp {
    const docker = JSON.parse(readFileSync(fixturePath('docker-default.json'), 'utf8')) as DockerProfile;
    const subArches = docker.archMap.find((entry) => entry.architecture === scmpArch)?.subArchitectures ?? [];
    const syscalls = docker.syscalls
      .filter(({ includes = {}, excludes = {} }) => {
        if (includes.arches && !includes.arches.includes(goArch)) return false;
        if (includes.caps && !includes.caps.every((cap) => caps.includes(cap))) return false;
        if (excludes.arches?.includes(goArch)) return false;
        if (excludes.caps?.some((cap) => caps.includes(cap))) return false;
        return true;
      })
      .map(({ names, action, errnoRet, args }) => ({ names, action, errnoRet, args }));
    return {
      defaultAction: docker.defaultAction,
      defaultErrnoRet: docker.defaultErrnoRet,
      architectures: [scmpArch, ...subArches],
      syscalls,
    };
  }

  it('fits in BPF_MAXINSNS and behaves like Docker on x86_64', () => {
    const profile = flatten('amd64', 'SCMP_ARCH_X86_64');
    assert.ok(profile.syscalls!.reduce((count, rule) => count + rule.names.length, 0) > 350);
    const program = compileSeccomp(profile);
    assert.ok(instructionCount(program) <= BPF_MAXINSNS, `${instructionCount(program)} instructions`);

    for (const name of ['read', 'write', 'exit_group', 'openat', 'execve', 'futex', 'rt_sigreturn']) {
      assert.equal(call(program, name), SECCOMP_RET_ALLOW, name);
      assert.equal(call(program, name, { abi: 'x32' }), SECCOMP_RET_ALLOW, `x32 ${name}`);
    }
    for (const name of ['read', 'write', 'exit_group', 'socketcall']) {
      assert.equal(call(program, name, { abi: 'x86' }), SECCOMP_RET_ALLOW, `i386 ${name}`);
    }
    for (const name of ['mount', 'umount2', 'unshare', 'bpf', 'kexec_load', 'init_module', 'reboot', 'swapon', 'open_by_handle_at']) {
      assert.equal(call(program, name), EPERM, name);
    }
    assert.equal(call(program, 'clone3'), ENOSYS);
    assert.equal(call(program, 'mount', { abi: 'x86' }), EPERM);
    assert.equal(call(program, 100000), ENOSYS);

    const CLONE_NEWNS = 0x20000;
    assert.equal(call(program, 'clone', { args: [0x1200011] }), SECCOMP_RET_ALLOW); // fork()
    assert.equal(call(program, 'clone', { args: [0x1200011 | CLONE_NEWNS] }), EPERM);
    assert.equal(call(program, 'personality', { args: [0xffffffff] }), SECCOMP_RET_ALLOW);
    assert.equal(call(program, 'personality', { args: [1] }), EPERM);
    assert.equal(call(program, 'socket', { args: [2] }), SECCOMP_RET_ALLOW); // AF_INET
    assert.equal(call(program, 'socket', { args: [40] }), EPERM); // AF_VSOCK
  });

  it('allows clone3 with CAP_SYS_ADMIN and fits for aarch64', () => {
    const admin = compileSeccomp(flatten('amd64', 'SCMP_ARCH_X86_64', [...DOCKER_DEFAULT_CAPS, 'CAP_SYS_ADMIN']));
    assert.equal(call(admin, 'clone3'), SECCOMP_RET_ALLOW);
    assert.equal(call(admin, 'mount'), SECCOMP_RET_ALLOW);

    const arm = compileSeccomp(flatten('arm64', 'SCMP_ARCH_AARCH64'), { nativeArch: 'aarch64' });
    assert.ok(instructionCount(arm) <= BPF_MAXINSNS);
    assert.equal(call(arm, 'openat', { abi: 'aarch64' }), SECCOMP_RET_ALLOW);
    assert.equal(call(arm, 'mount', { abi: 'aarch64' }), EPERM);
    assert.equal(call(arm, 'clone3', { abi: 'aarch64' }), ENOSYS);
  });
});

describe('bpf interpreter', () => {
  it('rejects programs the kernel would reject', () => {
    const program = (...instructions: [number, number, number, number][]) => {
      const buffer = Buffer.alloc(instructions.length * 8);
      instructions.forEach(([code, jt, jf, k], index) => {
        buffer.writeUInt16LE(code, index * 8);
        buffer.writeUInt8(jt, index * 8 + 2);
        buffer.writeUInt8(jf, index * 8 + 3);
        buffer.writeUInt32LE(k, index * 8 + 4);
      });
      return buffer;
    };
    const data = { nr: 0, arch: AUDIT_ARCH_X86_64 };
    assert.throws(() => runSeccompFilter(program([0x15, 5, 0, 0], [0x06, 0, 0, 0]), data), /out of range/);
    assert.throws(() => runSeccompFilter(program([0x20, 0, 0, 2], [0x06, 0, 0, 0]), data), /bad load/);
    assert.throws(() => runSeccompFilter(program([0x20, 0, 0, 0]), data), /does not end with a return/);
    assert.equal(runSeccompFilter(program([0x20, 0, 0, 4], [0x06, 0, 0, SECCOMP_RET_ALLOW]), data), SECCOMP_RET_ALLOW);
  });
});
