#!/usr/bin/env node
// Generates src/runtime/seccomp/syscalls.ts (syscall name -> number per architecture) from the
// kernel UAPI headers installed on this machine, plus the syscalls added after those headers,
// up to Linux 6.13. The generated file is committed, so nothing reads the headers at runtime.
//
// Usage: node scripts/gen-syscalls.mjs [--include-dir /usr/include] [--out path]

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({
  options: {
    'include-dir': { type: 'string', default: '/usr/include' },
    out: {
      type: 'string',
      default: join(dirname(fileURLToPath(import.meta.url)), '../src/runtime/seccomp/syscalls.ts'),
    },
  },
});
const includeDir = options['include-dir'];

const X32_SYSCALL_BIT = 0x40000000;

/** `#define __NR_name 123` and x32's `#define __NR_name (__X32_SYSCALL_BIT + 123)`. */
function parseFlatHeader(path) {
  const table = new Map();
  const definition = /^#define __NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))\s*$/;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = definition.exec(line);
    if (!match) continue;
    const [, name, x32Number, plainNumber] = match;
    table.set(name, x32Number !== undefined ? (X32_SYSCALL_BIT | Number(x32Number)) >>> 0 : Number(plainNumber));
  }
  return table;
}

/**
 * asm-generic/unistd.h is shared by several architectures and selects entries with #if on the
 * __ARCH_WANT_* macros each architecture defines before including it, so evaluate those
 * conditionals the way arm64's asm/unistd.h sets them up.
 */
function parseGenericHeader(path, { bitsPerLong, defined }) {
  const macros = new Set(defined);
  const values = new Map(); // __NR_* and __NR3264_* -> number
  const active = []; // one boolean per open #if
  const isActive = () => active.every(Boolean);

  const evaluate = (expression) => {
    const substituted = expression
      .replace(/defined\s*\(\s*(\w+)\s*\)/g, (_, name) => (macros.has(name) || values.has(name) ? '1' : '0'))
      .replace(/__BITS_PER_LONG/g, String(bitsPerLong));
    if (!/^[\d\s|&!=()<>]*$/.test(substituted)) throw new Error(`cannot evaluate #if ${expression}`);
    return Boolean(Function(`"use strict"; return (${substituted});`)());
  };

  for (const rawLine of readFileSync(path, 'utf8').split('\n')) {
    const line = rawLine.replace(/\/\*.*?\*\//g, '').trim();
    let match;
    if ((match = /^#ifdef\s+(\w+)/.exec(line))) active.push(macros.has(match[1]) || values.has(match[1]));
    else if ((match = /^#ifndef\s+(\w+)/.exec(line))) active.push(!(macros.has(match[1]) || values.has(match[1])));
    else if ((match = /^#if\s+(.*)$/.exec(line))) active.push(evaluate(match[1]));
    else if (/^#else\b/.test(line)) active.push(!active.pop());
    else if (/^#endif\b/.test(line)) active.pop();
    else if (!isActive()) continue;
    else if ((match = /^#define\s+(__NR(?:3264)?_\w+)\s+(\d+)$/.exec(line))) values.set(match[1], Number(match[2]));
    else if ((match = /^#define\s+(__NR_\w+)\s+(__NR3264_\w+)$/.exec(line))) values.set(match[1], values.get(match[2]));
    else if ((match = /^#undef\s+(\w+)/.exec(line))) values.delete(match[1]);
  }
  if (active.length !== 0) throw new Error(`unbalanced #if in ${path}`);

  const table = new Map();
  for (const [macro, number] of values) {
    if (!macro.startsWith('__NR_') || number === undefined) continue;
    table.set(macro.slice('__NR_'.length), number);
  }
  table.delete('syscalls'); // the table size, not a syscall
  table.delete('arch_specific_syscall'); // start of a reserved range
  return table;
}

// Added after the headers on this machine (Linux 6.1), up to Linux 6.13. Numbers are the same on
// every architecture here (x32 adds its bit); cross-checked with libseccomp's syscalls.csv.
const NEWER_COMMON_SYSCALLS = [
  ['cachestat', 451], // 6.5
  ['fchmodat2', 452], // 6.6
  ['map_shadow_stack', 453], // 6.6
  ['futex_wake', 454], // 6.7
  ['futex_wait', 455], // 6.7
  ['futex_requeue', 456], // 6.7
  ['statmount', 457], // 6.8
  ['listmount', 458], // 6.8
  ['lsm_get_self_attr', 459], // 6.8
  ['lsm_set_self_attr', 460], // 6.8
  ['lsm_list_modules', 461], // 6.8
  ['mseal', 462], // 6.10
  ['setxattrat', 463], // 6.13
  ['getxattrat', 464],
  ['listxattrat', 465],
  ['removexattrat', 466],
];
// uretprobe (6.11) exists only on x86_64 and x32, at 335.
const NEWER_X86_64_ONLY_SYSCALLS = [['uretprobe', 335]];

function withNewer(table, extra, offset = 0) {
  for (const [name, number] of extra) {
    const numbered = (offset | number) >>> 0;
    const existing = table.get(name);
    if (existing !== undefined && existing !== numbered) {
      throw new Error(`${name}: header says ${existing}, hand-written table says ${numbered}`);
    }
    table.set(name, numbered);
  }
  return table;
}

const headerDir = join(includeDir, 'x86_64-linux-gnu/asm');
const tables = {
  X86_64: withNewer(
    withNewer(parseFlatHeader(join(headerDir, 'unistd_64.h')), NEWER_COMMON_SYSCALLS),
    NEWER_X86_64_ONLY_SYSCALLS,
  ),
  X86: withNewer(parseFlatHeader(join(headerDir, 'unistd_32.h')), NEWER_COMMON_SYSCALLS),
  X32: withNewer(
    withNewer(parseFlatHeader(join(headerDir, 'unistd_x32.h')), NEWER_COMMON_SYSCALLS, X32_SYSCALL_BIT),
    NEWER_X86_64_ONLY_SYSCALLS,
    X32_SYSCALL_BIT,
  ),
  // arch/arm64/include/uapi/asm/unistd.h defines these before including asm-generic/unistd.h.
  AARCH64: withNewer(
    parseGenericHeader(join(includeDir, 'asm-generic/unistd.h'), {
      bitsPerLong: 64,
      defined: [
        '__ARCH_WANT_RENAMEAT',
        '__ARCH_WANT_NEW_STAT',
        '__ARCH_WANT_SET_GET_RLIMIT',
        '__ARCH_WANT_TIME32_SYSCALLS',
        '__ARCH_WANT_SYS_CLONE3',
        '__ARCH_WANT_MEMFD_SECRET',
      ],
    }),
    NEWER_COMMON_SYSCALLS,
  ),
};

function renderTable(name, table) {
  const entries = [...table].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
  const rows = entries.map(([syscall, number]) => {
    const literal = number >= X32_SYSCALL_BIT ? `X32_SYSCALL_BIT | ${number - X32_SYSCALL_BIT}` : String(number);
    return `  ['${syscall}', ${literal}],`;
  });
  return `export const SYSCALLS_${name}: ReadonlyMap<string, number> = new Map<string, number>([\n${rows.join('\n')}\n]);\n`;
}

const output = `// Generated by scripts/gen-syscalls.mjs from the kernel UAPI headers (Linux 6.1) plus the
// syscalls added up to Linux 6.13. Do not edit by hand; change the script and re-run it.

/** x32 syscalls are x86_64 syscalls with this bit set in the number. */
export const X32_SYSCALL_BIT = 0x40000000;

// AUDIT_ARCH_* from <linux/audit.h>: the ELF machine | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_ARM = 0x40000028;

${Object.entries(tables)
  .map(([name, table]) => renderTable(name, table))
  .join('\n')}`;

writeFileSync(options.out, output);
console.log(
  `wrote ${options.out}: ${Object.entries(tables)
    .map(([name, table]) => `${name} ${table.size}`)
    .join(', ')}`,
);
