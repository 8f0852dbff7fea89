/**
 * The plan: the list of operations that native/runtime/berth-nsexec carries out between
 * clone() and execve(). TypeScript decides everything (order, flags, paths); the C stage
 * only executes. A plan is plain data, so unit tests read it as a recorded sequence of
 * operations without root (the idea of youki's recording syscall layer).
 *
 * Ops before `clone` run in the runtime's namespaces (stage 0); ops after it run in the
 * container process. See native/runtime/*.c for what each op does.
 */

export type PlanArg = string | number | bigint | Buffer;
export type PlanOp = [name: string, ...args: PlanArg[]];

/** Joins list items with NUL, the C side's list separator (argv, env). */
export function nulList(items: readonly string[]): Buffer {
  return Buffer.from(items.map((s) => s + '\0').join(''));
}

/** Encodes ops as "<name> <argc>\n" followed by "<len>\n<bytes>\n" per argument. */
export function encodePlan(ops: readonly PlanOp[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, ...args] of ops) {
    parts.push(Buffer.from(`${name} ${args.length}\n`));
    for (const arg of args) {
      const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
      parts.push(Buffer.from(`${bytes.length}\n`), bytes, Buffer.from('\n'));
    }
  }
  return Buffer.concat(parts);
}

/** Hex form of a 64-bit capability mask, as the C side parses it. */
export function mask64(bits: Iterable<number>): string {
  let mask = 0n;
  for (const bit of bits) mask |= 1n << BigInt(bit);
  return '0x' + mask.toString(16);
}
