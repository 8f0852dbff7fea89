/**
 * `berth-oci features`: what this runtime recognizes, in the runtime spec's features.md schema.
 * Everything is derived from the tables the validator and planner use, so the answer cannot
 * drift from what the code accepts.
 */

import { OCI_VERSION } from './config.js';
import { CAPABILITIES, KNOWN_MOUNT_OPTIONS } from '../plan/tables.js';
import { HOOK_NAMES, NAMESPACE_TYPES, SECCOMP_ACTIONS, SECCOMP_FLAGS, SECCOMP_OPERATORS } from './validate.js';

/** Seccomp architectures our BPF compiler emits filters for. */
export const SUPPORTED_SECCOMP_ARCHITECTURES: readonly string[] = Object.freeze([
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
]);

/** The lowest config.json version we accept (all 1.x configs are read alike). */
export const OCI_VERSION_MIN = '1.0.0';

export function runtimeFeatures(): object {
  const sorted = (items: readonly string[]) => [...items].sort();
  return {
    ociVersionMin: OCI_VERSION_MIN,
    ociVersionMax: OCI_VERSION,
    hooks: [...HOOK_NAMES],
    mountOptions: sorted(KNOWN_MOUNT_OPTIONS),
    linux: {
      namespaces: sorted(NAMESPACE_TYPES),
      // Kernel order, as runc lists them.
      capabilities: Object.entries(CAPABILITIES)
        .sort(([, a], [, b]) => a - b)
        .map(([name]) => name),
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: sorted(SECCOMP_ACTIONS),
        operators: sorted(SECCOMP_OPERATORS),
        archs: sorted(SUPPORTED_SECCOMP_ARCHITECTURES),
        knownFlags: sorted(SECCOMP_FLAGS),
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
    },
  };
}
