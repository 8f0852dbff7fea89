/**
 * Network namespaces that the runtime may give a container instead of having clone() make one
 * (see NetnsPool in src/shim/spawner.ts, which berthd uses): only for a container that wants a
 * new network namespace and no user namespace (a namespace made ahead belongs to the host's
 * user namespace, not to the container's).
 */
import type { Spec } from './spec/config.js';

export interface TakenNetns {
  /** A path that names the namespace until release() (a /proc/<pid>/fd/<n> link). */
  path: string;
  /** Called once the container's process is in it, or its start failed. */
  release(): void;
}

export interface NetnsSource {
  take(): TakenNetns | undefined;
}

/** Whether the spec asks for a new network namespace that a namespace made ahead can stand in for. */
export function wantsFreshNetns(spec: Spec): boolean {
  const namespaces = spec.linux?.namespaces ?? [];
  return namespaces.some((ns) => ns.type === 'network' && !ns.path) && !namespaces.some((ns) => ns.type === 'user');
}

/** The spec to compile with the network namespace joined at `path` (the caller keeps the original). */
export function withNetnsPath(spec: Spec, path: string): Spec {
  return {
    ...spec,
    linux: { ...spec.linux, namespaces: (spec.linux?.namespaces ?? []).map((ns) => (ns.type === 'network' && !ns.path ? { ...ns, path } : ns)) },
  };
}
