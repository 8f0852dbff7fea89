/**
 * Starts prepared ahead. Right after `create`, berthd does the part of a start that comes
 * before the container's process exists (its root file system mounted, spec built, runtime
 * record, cgroups, shim started, plan compiled: Runtime.prepare), while the client is on its
 * way with `start`: `docker run` sends an attach and a wait first, 4–5 ms here, and a start
 * takes ~10 ms of which this part is half. The start then only launches the process.
 *
 * A preparation is used only by the start of the container as it was when prepared (its
 * fingerprint); any other operation on the container under its lock aborts it first, and so
 * does a start that finds the container changed (renamed, updated, connected to a network) or
 * one that comes after PREPARED_TTL_MS (its shim waits a minute at most for the launch). Only
 * containers whose start has no side effects beyond their own files are prepared: no volumes
 * (mounted and announced at start), no namespaces of another container, no legacy links (their
 * targets' addresses and variables are read at start).
 */
import type { Launched } from '../../runtime/launch.js';
import type { PreparedCreate } from '../../runtime/runtime.js';
import type { ContainerRecord } from './record.js';

/** After this, a preparation nobody started is undone (berth-shim gives up waiting after 60 s). */
export const PREPARED_TTL_MS = 20_000;
/**
 * At most this many at a time: each holds a shim, a mount, cgroups and maybe a network
 * namespace, and a client that creates many containers before it starts any (compose) gains
 * nothing from more.
 */
export const PREPARED_MAX = 16;

/** A start prepared up to its launch. */
export interface PreparedStart {
  /** Planned to run at once (no network to attach between the runtime's create and start). */
  readonly startNow: boolean;
  launch(late: { holdMs?: number }): Promise<Launched>;
  /** Undoes it (the runtime's part); the caller unmounts the root file system. */
  abort: PreparedCreate['abort'];
}

/** What a start is made of, of the container's record: a preparation from a different one is not used. */
export function startFingerprint(record: ContainerRecord): string {
  const { name, image, path, args, config, hostConfig, mounts, snapshotKey, endpoints, idRange, logPath } = record;
  return JSON.stringify({ name, image, path, args, config, hostConfig, mounts, snapshotKey, endpoints, idRange, logPath });
}

/** Whether the container's start can be prepared ahead (see the module's comment). */
export function canPrepareAhead(record: ContainerRecord): boolean {
  const host = record.hostConfig;
  const joins = [host.NetworkMode, host.PidMode, host.IpcMode].some((mode) => typeof mode === 'string' && mode.startsWith('container:'));
  const links = Array.isArray(host.Links) && host.Links.length > 0;
  return record.state.status === 'created' && !joins && !links && host.IpcMode !== 'shareable' && !record.mounts.some((m) => m.Type === 'volume');
}

/** The prepared starts, by container id, each with the fingerprint it was made for. */
export class PreparedStarts {
  private readonly entries = new Map<string, { fingerprint: string; start: PreparedStart; timer: NodeJS.Timeout }>();

  /** `expire(id)`: called after ttlMs for a preparation still here; it should take and abort it. */
  constructor(
    private readonly expire: (id: string) => void,
    private readonly ttlMs = PREPARED_TTL_MS,
    private readonly max = PREPARED_MAX,
  ) {}

  put(id: string, fingerprint: string, start: PreparedStart): void {
    const timer = setTimeout(() => this.expire(id), this.ttlMs);
    timer.unref();
    this.entries.set(id, { fingerprint, start, timer });
  }

  /** Removes and returns the container's preparation, if any. */
  take(id: string): { fingerprint: string; start: PreparedStart } | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.entries.delete(id);
    return { fingerprint: entry.fingerprint, start: entry.start };
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Whether another may be made (see PREPARED_MAX). */
  get full(): boolean {
    return this.entries.size >= this.max;
  }

  ids(): string[] {
    return [...this.entries.keys()];
  }
}
