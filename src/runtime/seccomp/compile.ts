/**
 * Seccomp compiler: OCI `linux.seccomp` -> classic BPF program (an array of `struct sock_filter`)
 * for `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`. Pure TypeScript; the result matches what
 * runc produces with libseccomp plus its -ENOSYS patch (libcontainer/seccomp/patchbpf).
 *
 * Program layout:
 *
 *   ld arch; jeq AUDIT_ARCH_* -> section (native first) ...; ret KILL_THREAD   <- bad architecture
 *   section: ld nr; [x86_64: jset X32_SYSCALL_BIT -> x32 tree | x86_64 tree]; binary search tree
 *
 * Each section splits the syscall-number space into intervals with one outcome each (the
 * default action, a rule's action, a block of argument checks, or -ENOSYS past the highest
 * known number) and finds the interval with a balanced tree of `jge`. Adjacent syscalls with the
 * same unconditional action share an interval, so Docker's default profile stays small (under
 * 400 instructions for x86_64 + x86 + x32). The program is assembled backwards so that every
 * jump target is known when the jump is written; a target farther than a `jt`/`jf` byte can
 * reach (255) gets a `ja` trampoline or its own copy of the `ret` right after the jump.
 *
 * Semantics (libseccomp/runc, where they define them):
 * - Architectures: the native one (x86_64, or aarch64) is always included. A syscall from an
 *   architecture not in the filter gets KILL_THREAD, libseccomp's default bad-architecture action,
 *   which runc keeps. On x86_64, x32 syscalls (nr with bit 30) are their own architecture; the
 *   number -1 (what a tracer writes to skip a syscall) gets the default action, as in libseccomp
 *   (with x32 in the filter, -1 is an x32 number above every named one, so the -ENOSYS rule below
 *   applies, as in runc).
 *   SCMP_ARCH_* names of other architectures (ARM, MIPS, PPC, S390, RISCV64, ...) are accepted
 *   but have no syscall tables here, so their syscalls get the bad-architecture action.
 * - Syscall names unknown on an architecture are skipped for that architecture.
 * - Rules whose action equals the default action are dropped (runc does; libseccomp refuses them).
 *   For one syscall, the first unconditional rule wins over every conditional rule (libseccomp
 *   keeps the most general rule); otherwise conditional rules are tried in spec order and the
 *   first whose conditions all hold decides. libseccomp merges overlapping conditional rules with
 *   different actions into a tree whose result can differ; profiles do not rely on that.
 * - Conditions of a rule are ANDed. If two conditions name the same argument, runc turns each
 *   condition into a rule of its own (so they are ORed); so do we.
 * - Arguments are compared as unsigned 64-bit values, both halves, on x86_64 and aarch64. x86
 *   and x32 are 32-bit to libseccomp, which compares only the low halves; so do we.
 *   SCMP_CMP_MASKED_EQ: (arg & value) == (valueTwo & value).
 *   JSON numbers cannot hold 2^64-1: it parses as 2^64, which we read as 2^64-1. A bigint is
 *   accepted too, for callers that parse JSON losslessly.
 * - -ENOSYS: unless the default action is ALLOW, LOG or TRACE (or already returns ENOSYS), a
 *   syscall numbered above the highest number any profile name has on that architecture (x32
 *   counted separately) returns -ENOSYS, so that libc falls back from syscalls newer than the
 *   profile (e.g. clone3 -> clone) instead of failing with EPERM. Like runc's patch, holes below
 *   that number are not detected.
 * - SCMP_ACT_TRACE without errnoRet uses EPERM as the tracer message, like runc.
 *   SCMP_ACT_NOTIFY is not supported yet (UnsupportedError).
 */

import { InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import type { Seccomp, SeccompArg, SeccompSyscall } from '../spec/config.js';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  SYSCALLS_AARCH64,
  SYSCALLS_X32,
  SYSCALLS_X86,
  SYSCALLS_X86_64,
  X32_SYSCALL_BIT,
} from './syscalls.js';

export interface SeccompProgram {
  /** `struct sock_filter[]`, little-endian: u16 code, u8 jt, u8 jf, u32 k. */
  filter: Buffer;
  /** OR of SECCOMP_FILTER_FLAG_* for seccomp(2). */
  flags: number;
}

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;

export const SECCOMP_FILTER_FLAG_TSYNC = 1;
export const SECCOMP_FILTER_FLAG_LOG = 2;
export const SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4;
export const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32;

const BPF_MAXINSNS = 4096;
const EPERM = 1;
const ENOSYS = 38;
const MAX_UINT64 = (1n << 64n) - 1n;

const FILTER_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC,
  SECCOMP_FILTER_FLAG_LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
};

// ---------------------------------------------------------------------------------------------
// Architectures

type Abi = 'x86_64' | 'x32' | 'x86' | 'aarch64';

interface AbiInfo {
  auditArch: number;
  syscalls: ReadonlyMap<string, number>;
  /** libseccomp's argument size: 32-bit ABIs compare only the low half of an argument. */
  argumentBits: 32 | 64;
}

const ABIS: Record<Abi, AbiInfo> = {
  x86_64: { auditArch: AUDIT_ARCH_X86_64, syscalls: SYSCALLS_X86_64, argumentBits: 64 },
  x32: { auditArch: AUDIT_ARCH_X86_64, syscalls: SYSCALLS_X32, argumentBits: 32 },
  x86: { auditArch: AUDIT_ARCH_I386, syscalls: SYSCALLS_X86, argumentBits: 32 },
  aarch64: { auditArch: AUDIT_ARCH_AARCH64, syscalls: SYSCALLS_AARCH64, argumentBits: 64 },
};

const SCMP_ARCHES: Record<string, Abi | undefined> = {
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_AARCH64: 'aarch64',
  // Valid, but no syscall tables here: their syscalls get the bad-architecture action.
  SCMP_ARCH_ARM: undefined,
  SCMP_ARCH_MIPS: undefined,
  SCMP_ARCH_MIPS64: undefined,
  SCMP_ARCH_MIPS64N32: undefined,
  SCMP_ARCH_MIPSEL: undefined,
  SCMP_ARCH_MIPSEL64: undefined,
  SCMP_ARCH_MIPSEL64N32: undefined,
  SCMP_ARCH_PPC: undefined,
  SCMP_ARCH_PPC64: undefined,
  SCMP_ARCH_PPC64LE: undefined,
  SCMP_ARCH_S390: undefined,
  SCMP_ARCH_S390X: undefined,
  SCMP_ARCH_PARISC: undefined,
  SCMP_ARCH_PARISC64: undefined,
  SCMP_ARCH_RISCV64: undefined,
  SCMP_ARCH_LOONGARCH64: undefined,
  SCMP_ARCH_M68K: undefined,
  SCMP_ARCH_SH: undefined,
  SCMP_ARCH_SHEB: undefined,
};

function nativeAbi(nativeArch: string | undefined): Abi {
  const name = nativeArch ?? (process.arch === 'arm64' ? 'aarch64' : 'x86_64');
  if (['x86_64', 'amd64', 'x64'].includes(name)) return 'x86_64';
  if (['aarch64', 'arm64'].includes(name)) return 'aarch64';
  throw new UnsupportedError(`seccomp: native architecture ${name} is not supported`);
}

// ---------------------------------------------------------------------------------------------
// Profile normalisation

type CompareOp = 'NE' | 'LT' | 'LE' | 'EQ' | 'GE' | 'GT' | 'MASKED_EQ';

interface Condition {
  index: number;
  op: CompareOp;
  value: bigint;
  /** Only for MASKED_EQ: the datum compared with `arg & value`. */
  valueTwo: bigint;
}

interface Rule {
  names: string[];
  /** SECCOMP_RET_* value. */
  returns: number;
  /** Alternatives (ORed), each a list of conditions (ANDed); `[[]]` for an unconditional rule. */
  alternatives: Condition[][];
}

function actionReturn(action: unknown, errnoRet: unknown, field: string, errnoField: string): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SECCOMP_RET_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SECCOMP_RET_KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SECCOMP_RET_TRAP;
    case 'SCMP_ACT_ERRNO':
      return (SECCOMP_RET_ERRNO | errnoValue(errnoRet, errnoField)) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (SECCOMP_RET_TRACE | errnoValue(errnoRet, errnoField)) >>> 0;
    case 'SCMP_ACT_ALLOW':
      return SECCOMP_RET_ALLOW;
    case 'SCMP_ACT_LOG':
      return SECCOMP_RET_LOG;
    case 'SCMP_ACT_NOTIFY':
      throw new UnsupportedError(`${field}: SCMP_ACT_NOTIFY is not supported yet`);
    default:
      throw new InvalidArgumentError(`unknown seccomp action ${JSON.stringify(action)}`, field);
  }
}

/** SECCOMP_RET_DATA is 16 bits; an absent errnoRet means EPERM, as in runc. */
function errnoValue(errnoRet: unknown, field: string): number {
  if (errnoRet === undefined || errnoRet === null) return EPERM;
  if (typeof errnoRet !== 'number' || !Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > 0xffff) {
    throw new InvalidArgumentError(`must be an integer from 0 to 65535, got ${JSON.stringify(errnoRet)}`, field);
  }
  return errnoRet;
}

const OPS: Record<string, CompareOp> = {
  SCMP_CMP_NE: 'NE',
  SCMP_CMP_LT: 'LT',
  SCMP_CMP_LE: 'LE',
  SCMP_CMP_EQ: 'EQ',
  SCMP_CMP_GE: 'GE',
  SCMP_CMP_GT: 'GT',
  SCMP_CMP_MASKED_EQ: 'MASKED_EQ',
};

function uint64(value: unknown, field: string): bigint {
  if (typeof value === 'bigint') {
    if (value >= 0n && value <= MAX_UINT64) return value;
  } else if (typeof value === 'number' && Number.isInteger(value) && value >= 0) {
    if (value === 2 ** 64) return MAX_UINT64; // 2^64-1 written in JSON, rounded up by the parser
    if (value < 2 ** 64) return BigInt(value);
  }
  throw new InvalidArgumentError(`must be an integer from 0 to 2^64-1, got ${String(value)}`, field);
}

function parseCondition(arg: SeccompArg, field: string): Condition {
  if (arg === null || typeof arg !== 'object') throw new InvalidArgumentError('must be an object', field);
  if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
    throw new InvalidArgumentError(`must be an integer from 0 to 5, got ${JSON.stringify(arg.index)}`, `${field}.index`);
  }
  const op = Object.hasOwn(OPS, arg.op) ? OPS[arg.op] : undefined;
  if (op === undefined) {
    throw new InvalidArgumentError(`unknown seccomp comparison ${JSON.stringify(arg.op)}`, `${field}.op`);
  }
  return {
    index: arg.index,
    op,
    value: uint64(arg.value, `${field}.value`),
    valueTwo: op === 'MASKED_EQ' && arg.valueTwo !== undefined ? uint64(arg.valueTwo, `${field}.valueTwo`) : 0n,
  };
}

function parseRules(seccomp: Seccomp): Rule[] {
  const syscalls: unknown = seccomp.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw new InvalidArgumentError('must be an array', 'linux.seccomp.syscalls');
  return syscalls.map((syscall: SeccompSyscall, ruleIndex): Rule => {
    const field = `linux.seccomp.syscalls[${ruleIndex}]`;
    if (syscall === null || typeof syscall !== 'object') throw new InvalidArgumentError('must be an object', field);
    const { names, args } = syscall;
    if (!Array.isArray(names) || names.some((name) => typeof name !== 'string' || name === '')) {
      throw new InvalidArgumentError('must be an array of syscall names', `${field}.names`);
    }
    if (args !== undefined && args !== null && !Array.isArray(args)) {
      throw new InvalidArgumentError('must be an array', `${field}.args`);
    }
    const returns = actionReturn(syscall.action, syscall.errnoRet, `${field}.action`, `${field}.errnoRet`);
    const conditions: Condition[] = (args ?? []).map((arg, argIndex) =>
      parseCondition(arg, `${field}.args[${argIndex}]`),
    );
    // runc: conditions on a repeated argument index are each made a rule of their own.
    const indexes = conditions.map((condition) => condition.index);
    const repeatsAnIndex = new Set(indexes).size !== indexes.length;
    const alternatives = repeatsAnIndex ? conditions.map((condition) => [condition]) : [conditions];
    return { names, returns, alternatives };
  });
}

function parseFlags(flags: unknown): number {
  if (flags === undefined || flags === null) return 0;
  if (!Array.isArray(flags)) throw new InvalidArgumentError('must be an array', 'linux.seccomp.flags');
  let result = 0;
  flags.forEach((flag, index) => {
    const bit = typeof flag === 'string' && Object.hasOwn(FILTER_FLAGS, flag) ? FILTER_FLAGS[flag] : undefined;
    if (bit === undefined) {
      throw new InvalidArgumentError(`unknown seccomp flag ${JSON.stringify(flag)}`, `linux.seccomp.flags[${index}]`);
    }
    result |= bit;
  });
  return result;
}

function parseAbis(architectures: unknown, native: Abi): Set<Abi> {
  const abis = new Set<Abi>([native]);
  if (architectures === undefined || architectures === null) return abis;
  if (!Array.isArray(architectures)) throw new InvalidArgumentError('must be an array', 'linux.seccomp.architectures');
  architectures.forEach((name, index) => {
    if (typeof name !== 'string' || !Object.hasOwn(SCMP_ARCHES, name)) {
      throw new InvalidArgumentError(
        `unknown seccomp architecture ${JSON.stringify(name)}`,
        `linux.seccomp.architectures[${index}]`,
      );
    }
    const abi = SCMP_ARCHES[name];
    if (abi !== undefined) abis.add(abi);
  });
  return abis;
}

// ---------------------------------------------------------------------------------------------
// Backward assembler

const BPF_LD_W_ABS = 0x20;
const BPF_ALU_AND_K = 0x54;
const BPF_JMP_JA = 0x05;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGT_K = 0x25;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const SECCOMP_DATA_NR = 0;
const SECCOMP_DATA_ARCH = 4;
const seccompDataArgLow = (index: number) => 16 + 8 * index; // little-endian
const seccompDataArgHigh = (index: number) => 16 + 8 * index + 4;

const MAX_CONDITIONAL_JUMP = 255;

/** Where a jump goes: an emitted instruction, or "return this value" (a `ret` placed as needed). */
type Target = { label: number } | { returns: number };

interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/**
 * Builds the program from its last instruction to its first. A label is an instruction's index
 * counted from the end, which never changes as instructions are added in front.
 */
class BackwardAssembler {
  private readonly reversed: Instruction[] = [];
  /** The label of the `ret` of each value nearest to the front, i.e. the most reachable one. */
  private readonly nearestReturn = new Map<number, number>();

  get length(): number {
    return this.reversed.length;
  }

  /** Emits a non-jump instruction, which falls through to the previously emitted one. */
  emit(code: number, k: number): number {
    this.reversed.push({ code, jt: 0, jf: 0, k: k >>> 0 });
    return this.reversed.length - 1;
  }

  emitReturn(value: number): number {
    const label = this.emit(BPF_RET_K, value);
    this.nearestReturn.set(value >>> 0, label);
    return label;
  }

  /** A label for the target, emitting a `ret` (or a `ja`) in front if that is needed. */
  place(target: Target): number {
    if ('label' in target) {
      if (target.label === this.length - 1) return target.label;
      return this.emit(BPF_JMP_JA, this.length - 1 - target.label);
    }
    const nearest = this.nearestReturn.get(target.returns >>> 0);
    if (nearest !== undefined && nearest === this.length - 1) return nearest;
    return this.emitReturn(target.returns);
  }

  /** Emits `if (A <op> k) goto onTrue else goto onFalse`, adding trampolines for long jumps. */
  jump(code: number, k: number, onTrue: Target, onFalse: Target): number {
    // Up to two trampolines may go between this jump and its targets; plan for that.
    const reachable = (label: number) => this.length + 2 - 1 - label <= MAX_CONDITIONAL_JUMP;
    const resolve = (target: Target): number => {
      if ('label' in target) {
        return reachable(target.label) ? target.label : this.emit(BPF_JMP_JA, this.length - 1 - target.label);
      }
      const nearest = this.nearestReturn.get(target.returns >>> 0);
      return nearest !== undefined && reachable(nearest) ? nearest : this.emitReturn(target.returns);
    };
    const falseLabel = resolve(onFalse);
    const trueLabel = resolve(onTrue);
    const position = this.length;
    this.reversed.push({ code, jt: position - 1 - trueLabel, jf: position - 1 - falseLabel, k: k >>> 0 });
    return position;
  }

  assemble(): Buffer {
    const program = Buffer.alloc(this.reversed.length * 8);
    [...this.reversed].reverse().forEach(({ code, jt, jf, k }, index) => {
      program.writeUInt16LE(code, index * 8);
      program.writeUInt8(jt, index * 8 + 2);
      program.writeUInt8(jf, index * 8 + 3);
      program.writeUInt32LE(k, index * 8 + 4);
    });
    return program;
  }
}

// ---------------------------------------------------------------------------------------------
// Code generation

const low32 = (value: bigint) => Number(value & 0xffffffffn);
const high32 = (value: bigint) => Number((value >> 32n) & 0xffffffffn);

/** Emits the check of one condition; returns the label of its first instruction. */
function emitCondition(
  asm: BackwardAssembler,
  condition: Condition,
  argumentBits: 32 | 64,
  onTrue: Target,
  onFalse: Target,
): number {
  const { index, op, value, valueTwo } = condition;
  // Reduce to EQ, GT, GE, MASKED_EQ by swapping the targets.
  if (op === 'NE') return emitCondition(asm, { ...condition, op: 'EQ' }, argumentBits, onFalse, onTrue);
  if (op === 'LT') return emitCondition(asm, { ...condition, op: 'GE' }, argumentBits, onFalse, onTrue);
  if (op === 'LE') return emitCondition(asm, { ...condition, op: 'GT' }, argumentBits, onFalse, onTrue);

  // Program order per half: ld; [and mask]; compare(s). Emitted backwards, so the compare first.
  const compareHalf = (half: 'low' | 'high', onHalfTrue: Target, onHalfEqual: Target, onHalfFalse: Target) => {
    const pick = half === 'low' ? low32 : high32;
    if (op === 'MASKED_EQ') {
      asm.jump(BPF_JMP_JEQ_K, pick(valueTwo & value), onHalfEqual, onHalfFalse);
      asm.emit(BPF_ALU_AND_K, pick(value));
    } else if (op === 'EQ') {
      asm.jump(BPF_JMP_JEQ_K, pick(value), onHalfEqual, onHalfFalse);
    } else if (half === 'low') {
      asm.jump(op === 'GT' ? BPF_JMP_JGT_K : BPF_JMP_JGE_K, pick(value), onHalfTrue, onHalfFalse);
    } else {
      // High half of GT/GE: greater decides, equal goes on to the low half.
      const equal = asm.jump(BPF_JMP_JEQ_K, pick(value), onHalfEqual, onHalfFalse);
      asm.jump(BPF_JMP_JGT_K, pick(value), onHalfTrue, { label: equal });
    }
    return asm.emit(BPF_LD_W_ABS, half === 'low' ? seccompDataArgLow(index) : seccompDataArgHigh(index));
  };

  const lowEntry = compareHalf('low', onTrue, onTrue, onFalse);
  if (argumentBits === 32) return lowEntry;
  if (op === 'MASKED_EQ' && high32(value) === 0) return lowEntry; // high half masked away
  return compareHalf('high', onTrue, { label: lowEntry }, onFalse);
}

/** What a syscall number leads to within one architecture's section. */
type Outcome = { returns: number } | { rules: { conditions: Condition[]; returns: number }[] };

interface Interval {
  start: number;
  outcome: Outcome;
}

function emitOutcome(asm: BackwardAssembler, outcome: Outcome, defaultReturn: number, argumentBits: 32 | 64): Target {
  if ('returns' in outcome) return outcome;
  // The first rule whose conditions all hold decides; if none does, the default action.
  let next: Target = { returns: defaultReturn };
  for (const rule of [...outcome.rules].reverse()) {
    let entry: Target = { returns: rule.returns };
    for (const condition of [...rule.conditions].reverse()) {
      entry = { label: emitCondition(asm, condition, argumentBits, entry, next) };
    }
    next = entry;
  }
  return next;
}

/** Binary search over interval starts with `jge`; the accumulator holds the syscall number. */
function emitIntervalTree(
  asm: BackwardAssembler,
  intervals: Interval[],
  defaultReturn: number,
  argumentBits: 32 | 64,
): Target {
  const emitRange = (first: number, last: number): Target => {
    if (first === last) return emitOutcome(asm, intervals[first].outcome, defaultReturn, argumentBits);
    const middle = (first + last + 1) >> 1;
    const upper = emitRange(middle, last);
    const lower = emitRange(first, middle - 1);
    return { label: asm.jump(BPF_JMP_JGE_K, intervals[middle].start, upper, lower) };
  };
  return emitRange(0, intervals.length - 1);
}

interface CompileContext {
  rules: Rule[];
  defaultReturn: number;
  enosys: boolean;
}

/** Splits the syscall numbers of one ABI into intervals of equal outcome. */
function buildIntervals(abi: Abi, { rules, defaultReturn, enosys }: CompileContext): Interval[] {
  const { syscalls } = ABIS[abi];
  const outcomes = new Map<number, { unconditional?: number; rules: { conditions: Condition[]; returns: number }[] }>();
  let highestNamed: number | undefined;
  for (const rule of rules) {
    for (const name of rule.names) {
      const nr = syscalls.get(name);
      if (nr === undefined) continue; // not a syscall on this architecture
      highestNamed = Math.max(highestNamed ?? nr, nr);
      if (rule.returns === defaultReturn) continue; // redundant, as runc drops it
      let outcome = outcomes.get(nr);
      if (outcome === undefined) outcomes.set(nr, (outcome = { rules: [] }));
      for (const conditions of rule.alternatives) {
        if (conditions.length === 0) outcome.unconditional ??= rule.returns;
        else outcome.rules.push({ conditions, returns: rule.returns });
      }
    }
  }

  const defaultOutcome: Outcome = { returns: defaultReturn };
  const enosysFrom = enosys && highestNamed !== undefined ? highestNamed + 1 : undefined;
  const intervals: Interval[] = [];
  const add = (start: number, outcome: Outcome) => {
    const previous = intervals.at(-1);
    if (previous && 'returns' in previous.outcome && 'returns' in outcome && previous.outcome.returns === outcome.returns) {
      return; // extends the previous interval
    }
    intervals.push({ start, outcome });
  };
  const numbers = [...outcomes.keys()].sort((a, b) => a - b);
  if (numbers.length === 0 || numbers[0] > 0) add(0, defaultOutcome);
  numbers.forEach((nr, index) => {
    const { unconditional, rules: conditional } = outcomes.get(nr)!;
    add(nr, unconditional !== undefined ? { returns: unconditional } : { rules: conditional });
    const nextStart = numbers[index + 1] ?? enosysFrom ?? 2 ** 32;
    if (nr + 1 < nextStart) add(nr + 1, defaultOutcome);
  });
  if (enosysFrom !== undefined) add(enosysFrom, { returns: (SECCOMP_RET_ERRNO | ENOSYS) >>> 0 });
  return intervals;
}

/** Emits one AUDIT_ARCH section; returns the label of its first instruction. */
function emitSection(asm: BackwardAssembler, auditArch: number, abis: Set<Abi>, context: CompileContext): number {
  const badArch: Target = { returns: SECCOMP_RET_KILL_THREAD };
  const treeFor = (abi: Abi): Target =>
    emitIntervalTree(asm, buildIntervals(abi, context), context.defaultReturn, ABIS[abi].argumentBits);

  let entry: Target;
  if (auditArch === AUDIT_ARCH_X86_64) {
    const x86_64 = abis.has('x86_64') ? treeFor('x86_64') : badArch;
    const x32 = abis.has('x32')
      ? treeFor('x32')
      : { label: asm.jump(BPF_JMP_JEQ_K, 0xffffffff, { returns: context.defaultReturn }, badArch) };
    entry = { label: asm.jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, x32, x86_64) };
  } else {
    entry = treeFor(auditArch === AUDIT_ARCH_I386 ? 'x86' : 'aarch64');
  }
  asm.place(entry);
  return asm.emit(BPF_LD_W_ABS, SECCOMP_DATA_NR);
}

/**
 * Compiles `linux.seccomp`. `opts.nativeArch` ('x86_64' or 'aarch64'; default: the host's) is the
 * architecture always included in the filter. Throws InvalidArgumentError naming the bad field,
 * or UnsupportedError for SCMP_ACT_NOTIFY and native architectures without syscall tables.
 */
export function compileSeccomp(seccomp: Seccomp, opts: { nativeArch?: string } = {}): SeccompProgram {
  if (seccomp === null || typeof seccomp !== 'object') {
    throw new InvalidArgumentError('must be an object', 'linux.seccomp');
  }
  const native = nativeAbi(opts.nativeArch);
  const defaultReturn = actionReturn(
    seccomp.defaultAction,
    seccomp.defaultErrnoRet,
    'linux.seccomp.defaultAction',
    'linux.seccomp.defaultErrnoRet',
  );
  const abis = parseAbis(seccomp.architectures, native);
  const flags = parseFlags(seccomp.flags);
  const rules = parseRules(seccomp);

  const defaultAction = defaultReturn & 0xffff0000;
  const permissiveDefault = [SECCOMP_RET_ALLOW, SECCOMP_RET_LOG, SECCOMP_RET_TRACE].includes(defaultAction);
  const enosys = !permissiveDefault && defaultReturn !== ((SECCOMP_RET_ERRNO | ENOSYS) >>> 0);
  const context: CompileContext = { rules, defaultReturn, enosys };

  // One section per AUDIT_ARCH value, native first (x86_64 and x32 share one).
  const auditArches = [...new Set([native, ...abis].map((abi) => ABIS[abi].auditArch))];

  const asm = new BackwardAssembler();
  const sectionLabels = new Map<number, number>();
  for (const auditArch of [...auditArches].reverse()) {
    sectionLabels.set(auditArch, emitSection(asm, auditArch, abis, context));
  }
  let dispatch: Target = { returns: SECCOMP_RET_KILL_THREAD }; // libseccomp's bad-architecture action
  for (const auditArch of [...auditArches].reverse()) {
    dispatch = { label: asm.jump(BPF_JMP_JEQ_K, auditArch, { label: sectionLabels.get(auditArch)! }, dispatch) };
  }
  asm.place(dispatch);
  asm.emit(BPF_LD_W_ABS, SECCOMP_DATA_ARCH);

  if (asm.length > BPF_MAXINSNS) {
    throw new InvalidArgumentError(
      `the profile compiles to ${asm.length} BPF instructions, more than the kernel's limit of ${BPF_MAXINSNS}`,
      'linux.seccomp',
    );
  }
  return { filter: asm.assemble(), flags };
}
