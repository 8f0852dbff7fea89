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

/**
 * Encodes ops as "<name> <argc>\n" followed by "<len>\n<bytes>\n" per argument. Into one buffer
 * sized first: a container's plan has hundreds of small arguments, and a Buffer per piece cost
 * ~0.3 ms of every start.
 */
export function encodePlan(ops: readonly PlanOp[]): Buffer {
  const pieces: Array<string | Buffer> = [];
  let text = ''; // text since the last binary argument
  for (const [name, ...args] of ops) {
    text += `${name} ${args.length}\n`;
    for (const arg of args) {
      if (Buffer.isBuffer(arg)) {
        pieces.push(`${text}${arg.length}\n`, arg);
        text = '\n';
      } else {
        const value = String(arg);
        text += `${Buffer.byteLength(value)}\n${value}\n`;
      }
    }
  }
  pieces.push(text);
  const out = Buffer.allocUnsafe(pieces.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : Buffer.byteLength(p)), 0));
  let at = 0;
  for (const piece of pieces) at += Buffer.isBuffer(piece) ? piece.copy(out, at) : out.write(piece, at);
  return out;
}

/** Hex form of a 64-bit capability mask, as the C side parses it. */
export function mask64(bits: Iterable<number>): string {
  let mask = 0n;
  for (const bit of bits) mask |= 1n << BigInt(bit);
  return '0x' + mask.toString(16);
}
