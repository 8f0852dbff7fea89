/**
 * A tiny classic-BPF interpreter over `struct seccomp_data`, for testing compiled filters without
 * loading them. It implements the instructions the kernel's seccomp checker accepts that use only
 * the accumulator and constants (loads of seccomp_data words, ALU with K, jumps with K, return K),
 * and it rejects what the kernel would reject: out-of-range jumps, misaligned or out-of-bounds
 * loads, a program that does not end in a return, or more than 4096 instructions.
 */

export const SOCK_FILTER_SIZE = 8;
export const BPF_MAXINSNS = 4096;
const SECCOMP_DATA_SIZE = 64;

export interface SeccompData {
  nr: number;
  arch: number;
  instructionPointer?: bigint;
  /** Up to six 64-bit arguments; numbers must be safe integers. */
  args?: ReadonlyArray<bigint | number>;
}

export interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export function decodeFilter(filter: Buffer): Instruction[] {
  if (filter.length % SOCK_FILTER_SIZE !== 0) throw new Error(`filter length ${filter.length} is not a multiple of 8`);
  const instructions: Instruction[] = [];
  for (let offset = 0; offset < filter.length; offset += SOCK_FILTER_SIZE) {
    instructions.push({
      code: filter.readUInt16LE(offset),
      jt: filter.readUInt8(offset + 2),
      jf: filter.readUInt8(offset + 3),
      k: filter.readUInt32LE(offset + 4),
    });
  }
  return instructions;
}

function encodeSeccompData(data: SeccompData): Buffer {
  const buffer = Buffer.alloc(SECCOMP_DATA_SIZE);
  buffer.writeUInt32LE(data.nr >>> 0, 0);
  buffer.writeUInt32LE(data.arch >>> 0, 4);
  buffer.writeBigUInt64LE(data.instructionPointer ?? 0n, 8);
  (data.args ?? []).forEach((arg, index) => buffer.writeBigUInt64LE(BigInt.asUintN(64, BigInt(arg)), 16 + 8 * index));
  return buffer;
}

/** Runs the filter and returns the SECCOMP_RET_* value (action | data) it produces. */
export function runSeccompFilter(filter: Buffer, data: SeccompData): number {
  const program = decodeFilter(filter);
  if (program.length === 0 || program.length > BPF_MAXINSNS) throw new Error(`bad program length ${program.length}`);
  if ((program[program.length - 1].code & 0x07) !== 0x06) throw new Error('program does not end with a return');

  const input = encodeSeccompData(data);
  let accumulator = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc];
    const jumpTo = (offset: number) => {
      if (pc + 1 + offset >= program.length) throw new Error(`jump out of range at ${pc}`);
      pc += offset;
    };
    switch (code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        if (k % 4 !== 0 || k + 4 > SECCOMP_DATA_SIZE) throw new Error(`bad load offset ${k} at ${pc}`);
        accumulator = input.readUInt32LE(k);
        break;
      case 0x00: // BPF_LD | BPF_W | BPF_IMM
        accumulator = k;
        break;
      case 0x54: // BPF_ALU | BPF_AND | BPF_K
        accumulator = (accumulator & k) >>> 0;
        break;
      case 0x44: // BPF_ALU | BPF_OR | BPF_K
        accumulator = (accumulator | k) >>> 0;
        break;
      case 0x74: // BPF_ALU | BPF_RSH | BPF_K
        accumulator = k >= 32 ? 0 : accumulator >>> k;
        break;
      case 0x05: // BPF_JMP | BPF_JA
        jumpTo(k);
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        jumpTo(accumulator === k ? jt : jf);
        break;
      case 0x25: // BPF_JMP | BPF_JGT | BPF_K
        jumpTo(accumulator > k ? jt : jf);
        break;
      case 0x35: // BPF_JMP | BPF_JGE | BPF_K
        jumpTo(accumulator >= k ? jt : jf);
        break;
      case 0x45: // BPF_JMP | BPF_JSET | BPF_K
        jumpTo((accumulator & k) !== 0 ? jt : jf);
        break;
      case 0x06: // BPF_RET | BPF_K
        return k >>> 0;
      default:
        throw new Error(`unsupported instruction 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}
