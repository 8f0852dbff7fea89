/**
 * Device rules for cgroup v2, which has no devices.allow/deny files: the rules become an eBPF
 * program of type BPF_PROG_TYPE_CGROUP_DEVICE that the C stage loads and attaches to the
 * container's cgroup (op `bpf_devices`). Pure: this only assembles the instructions.
 *
 * Semantics as cgroup v1's list, and as runc's devicefilter: the last rule that matches a
 * request decides; nothing matching means deny. The program sees
 * struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, where access_type is
 * (access << 16) | type.
 */
import type { NormalizedDeviceRule } from './convert.js';

const BPF_DEVCG_DEV_BLOCK = 1;
const BPF_DEVCG_DEV_CHAR = 2;
const ACCESS_BITS: Record<string, number> = { m: 1 /* MKNOD */, r: 2 /* READ */, w: 4 /* WRITE */ };

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K = 0x54;
const ALU32_RSH_K = 0x74;
const ALU32_MOV_X = 0xbc;
const ALU64_MOV_K = 0xb7;
const JMP_JNE_K = 0x55; // if dst != imm goto +off
const JMP_EXIT = 0x95;

type Insn = [code: number, dst: number, src: number, off: number, imm: number];

const R0 = 0, CTX = 1, TYPE = 2, ACCESS = 3, MAJOR = 4, MINOR = 5, SCRATCH = 6;

function accessMask(access: string): number {
  let mask = 0;
  for (const c of access) mask |= ACCESS_BITS[c] ?? 0;
  return mask;
}

/** One rule: jumps to the next rule when it does not match, else returns its verdict. */
function ruleBlock(rule: NormalizedDeviceRule): Insn[] {
  const checks: Array<(skip: number) => Insn[]> = [];
  if (rule.type !== 'a') checks.push((skip) => [[JMP_JNE_K, TYPE, 0, skip, rule.type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR]]);
  const mask = accessMask(rule.access);
  if (mask !== 7) {
    // The request must ask for nothing beyond the rule's access.
    checks.push((skip) => [
      [ALU32_MOV_X, SCRATCH, ACCESS, 0, 0],
      [ALU32_AND_K, SCRATCH, 0, 0, ~mask & 7],
      [JMP_JNE_K, SCRATCH, 0, skip, 0],
    ]);
  }
  if (rule.major !== -1) checks.push((skip) => [[JMP_JNE_K, MAJOR, 0, skip, rule.major]]);
  if (rule.minor !== -1) checks.push((skip) => [[JMP_JNE_K, MINOR, 0, skip, rule.minor]]);
  const verdict: Insn[] = [
    [ALU64_MOV_K, R0, 0, 0, rule.allow ? 1 : 0],
    [JMP_EXIT, 0, 0, 0, 0],
  ];
  // Lay the checks out first with dummy offsets to learn their lengths, then aim each jump
  // past the end of this block.
  const lengths = checks.map((check) => check(0).length);
  const insns: Insn[] = [];
  let remaining = lengths.reduce((a, b) => a + b, 0) + verdict.length;
  checks.forEach((check, i) => {
    remaining -= lengths[i];
    insns.push(...check(remaining));
  });
  return [...insns, ...verdict];
}

export function compileDeviceFilter(rules: NormalizedDeviceRule[]): Buffer {
  const insns: Insn[] = [
    [LDX_MEM_W, TYPE, CTX, 0, 0],
    [ALU32_AND_K, TYPE, 0, 0, 0xffff],
    [LDX_MEM_W, ACCESS, CTX, 0, 0],
    [ALU32_RSH_K, ACCESS, 0, 0, 16],
    [LDX_MEM_W, MAJOR, CTX, 4, 0],
    [LDX_MEM_W, MINOR, CTX, 8, 0],
  ];
  // A rule that matches everything ends the program: the kernel's verifier refuses code it
  // can never reach, so nothing (not even the default deny) may follow it.
  let unconditional = false;
  for (const rule of [...rules].reverse()) {
    const block = ruleBlock(rule);
    insns.push(...block);
    if (block.length === 2) {
      unconditional = true;
      break;
    }
  }
  if (!unconditional) insns.push([ALU64_MOV_K, R0, 0, 0, 0], [JMP_EXIT, 0, 0, 0, 0]);
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, dst, src, off, imm], i) => {
    out.writeUInt8(code, i * 8);
    out.writeUInt8((src << 4) | dst, i * 8 + 1);
    out.writeInt16LE(off, i * 8 + 2);
    out.writeInt32LE(imm, i * 8 + 4);
  });
  return out;
}
