import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../common/errors.js';
import { runSeccompFilter, type SeccompData } from '../../runtime/seccomp/bpf-interpreter.js';
import { compileSeccomp, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO } from '../../runtime/seccomp/compile.js';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  SYSCALLS_AARCH64,
  SYSCALLS_X32,
  SYSCALLS_X86,
  SYSCALLS_X86_64,
} from '../../runtime/seccomp/syscalls.js';
import type { Seccomp } from '../../runtime/spec/config.js';
import { ALL_CAPABILITIES, DOCKER_DEFAULT_CAPABILITIES } from './container-spec.js';
import { defaultSeccompProfile, parseSeccompProfile } from './seccomp-default.js';

/** moby's default profile, kept as a test fixture of the seccomp compiler. */
function fixture(): string {
  const candidates = [
    new URL('../../runtime/seccomp/testdata/docker-default.json', import.meta.url),
    new URL('../../../../src/runtime/seccomp/testdata/docker-default.json', import.meta.url),
    new URL('src/runtime/seccomp/testdata/docker-default.json', `file://${process.cwd()}/`),
  ];
  return readFileSync(candidates.find((c) => existsSync(c)) ?? candidates[0], 'utf8');
}

const ABIS = {
  x86_64: { arch: AUDIT_ARCH_X86_64, table: SYSCALLS_X86_64 },
  x86: { arch: AUDIT_ARCH_I386, table: SYSCALLS_X86 },
  x32: { arch: AUDIT_ARCH_X86_64, table: SYSCALLS_X32 },
  aarch64: { arch: AUDIT_ARCH_AARCH64, table: SYSCALLS_AARCH64 },
} as const;
type Abi = keyof typeof ABIS;

/** Argument values that take every branch of the profile's argument rules. */
const ARG_PROBES: Array<Array<number | bigint>> = [
  [],
  [0],
  [2],
  [8],
  [37],
  [38],
  [39],
  [40],
  [41],
  [0x20000],
  [0x20008],
  [0xffffffff],
  [0x1200011], // fork's clone flags
  [0x1200011 | 0x20000], // + CLONE_NEWNS
  [0x10000000], // CLONE_NEWUSER
  [0, 0x20000],
  [0x100000000n],
];

function compare(ours: Seccomp, docker: Seccomp, abis: Abi[], nativeArch: string, label: string): number {
  const a = compileSeccomp(ours, { nativeArch });
  const b = compileSeccomp(docker, { nativeArch });
  const names = new Set<string>();
  for (const rule of docker.syscalls ?? []) for (const name of rule.names) names.add(name);
  let checked = 0;
  for (const abi of abis) {
    const { arch, table } = ABIS[abi];
    for (const name of names) {
      const nr = table.get(name);
      if (nr === undefined) continue;
      for (const args of ARG_PROBES) {
        const data: SeccompData = { nr, arch, args: [...args, 0, 0, 0, 0, 0, 0].slice(0, 6).map(BigInt) };
        assert.equal(runSeccompFilter(a.filter, data), runSeccompFilter(b.filter, data), `${label}: ${abi} ${name}(${args.join(', ')})`);
        checked++;
      }
    }
    // Numbers past every name: ENOSYS in both.
    const past: SeccompData = { nr: 5000, arch };
    assert.equal(runSeccompFilter(a.filter, past), runSeccompFilter(b.filter, past), `${label}: ${abi} nr 5000`);
  }
  return checked;
}

describe("defaultSeccompProfile: the same verdicts as moby's default profile", () => {
  const capSets: Record<string, string[]> = {
    default: [...DOCKER_DEFAULT_CAPABILITIES],
    'SYS_ADMIN': [...DOCKER_DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'],
    'SYS_PTRACE SYS_TIME SYS_MODULE SYSLOG': [...DOCKER_DEFAULT_CAPABILITIES, 'CAP_SYS_PTRACE', 'CAP_SYS_TIME', 'CAP_SYS_MODULE', 'CAP_SYSLOG'],
    none: [],
    all: [...ALL_CAPABILITIES],
  };
  for (const [label, caps] of Object.entries(capSets)) {
    it(`for caps: ${label}, on x86_64 (with x86 and x32) and aarch64`, () => {
      const amd64 = parseSeccompProfile(fixture(), { capabilities: caps, arch: 'amd64', field: 'fixture' });
      const checked = compare(defaultSeccompProfile({ capabilities: caps, arch: 'x86_64' }), amd64, ['x86_64', 'x86', 'x32'], 'x86_64', label);
      assert.ok(checked > 3 * 300 * ARG_PROBES.length, `only ${checked} checks`);
      const arm64 = parseSeccompProfile(fixture(), { capabilities: caps, arch: 'arm64', field: 'fixture' });
      compare(defaultSeccompProfile({ capabilities: caps, arch: 'aarch64' }), arm64, ['aarch64'], 'aarch64', `${label} arm64`);
    });
  }

  it('leaves out rules newer than the kernel, as moby does with minKernel', () => {
    const caps = [...DOCKER_DEFAULT_CAPABILITIES];
    const old = defaultSeccompProfile({ capabilities: caps, arch: 'amd64', kernel: '4.4.0' });
    const docker = parseSeccompProfile(fixture(), { capabilities: caps, arch: 'amd64', kernel: '4.4.0', field: 'fixture' });
    compare(old, docker, ['x86_64'], 'x86_64', 'kernel 4.4');
    const ptrace = { nr: SYSCALLS_X86_64.get('ptrace')!, arch: AUDIT_ARCH_X86_64 };
    assert.equal(runSeccompFilter(compileSeccomp(old).filter, ptrace), (SECCOMP_RET_ERRNO | 1) >>> 0);
    const recent = defaultSeccompProfile({ capabilities: caps, arch: 'amd64', kernel: '6.1.0-18-amd64' });
    assert.equal(runSeccompFilter(compileSeccomp(recent).filter, ptrace), SECCOMP_RET_ALLOW);
  });

  it('is an OCI profile: ERRNO(EPERM) by default, native architecture first', () => {
    const profile = defaultSeccompProfile({ capabilities: [...DOCKER_DEFAULT_CAPABILITIES], arch: 'x64' });
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(profile.defaultErrnoRet, 1);
    assert.deepEqual(profile.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.ok(!JSON.stringify(profile).includes('includes'));
  });
});

describe('parseSeccompProfile', () => {
  const opts = { capabilities: [], arch: 'amd64', field: 'HostConfig.SecurityOpt[0]' };
  it('accepts plain OCI profiles', () => {
    const profile = parseSeccompProfile(
      JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }),
      opts,
    );
    assert.deepEqual(profile, { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    const single = parseSeccompProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'mkdir', action: 'SCMP_ACT_ERRNO' }] }), opts);
    assert.deepEqual(single.syscalls, [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }]);
  });

  it('names the option and the field in errors', () => {
    const bad = (json: string, pattern: RegExp) =>
      assert.throws(() => parseSeccompProfile(json, opts), (error: unknown) => error instanceof InvalidArgumentError && pattern.test(error.message));
    bad('{', /^HostConfig\.SecurityOpt\[0\]: seccomp profile is not valid JSON/);
    bad('[]', /must be a JSON object/);
    bad('{}', /^HostConfig\.SecurityOpt\[0\]\.defaultAction: /);
    bad('{"defaultAction":"SCMP_ACT_NOPE"}', /^HostConfig\.SecurityOpt\[0\]: invalid seccomp profile: .*unknown seccomp action/);
    bad('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}', /syscalls\[0\]: use either 'name' or 'names'/);
    bad('{"defaultAction":"SCMP_ACT_ALLOW","archMap":[],"architectures":[]}', /cannot both be given/);
    bad('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":{"caps":"x"}}]}', /syscalls\[0\]\.includes\.caps: must be a list/);
  });
});
