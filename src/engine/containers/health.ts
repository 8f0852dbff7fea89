/**
 * Docker's health checks: while a container with a Healthcheck runs, its test runs every
 * Interval as an exec (CMD: argv; CMD-SHELL: /bin/sh -c); Retries failures in a row make it
 * unhealthy, one success healthy again; failures during StartPeriod do not count. The state
 * goes into the container's record (inspect's State.Health) and out as `health_status` events.
 * Driven by the engine's events (start, die, destroy), so the container service knows nothing
 * of it.
 */
import { goDuration } from '../../common/duration.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { FrameParser, type Frame } from '../../shim/client.js';
import type { EngineEvent, EventBus } from '../events.js';
import type { ExecService } from './exec.js';
import { containerEventAttributes } from './record.js';
import type { ContainerService } from './service.js';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface Health {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export interface Healthcheck {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  /** API 1.44: the interval while in the start period (default 5 s). */
  StartInterval?: number;
  Retries?: number;
}

const NS_PER_MS = 1_000_000;
const DEFAULTS = { interval: 30_000, timeout: 30_000, startPeriod: 0, startInterval: 5_000, retries: 3 };
const MAX_OUTPUT = 4096;
/** How long a finished probe's output may take to arrive after its exit. */
const OUTPUT_GRACE_MS = 1000;
const KEEP_LOG = 5;

/**
 * Checks a create's Config.Healthcheck as dockerd does (the types its JSON decoding demands,
 * then its own rules): durations in nanoseconds, 0 or at least 1 ms; retries not negative.
 */
export function checkHealthcheck(value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError('must be an object', 'Healthcheck');
  const check = value as Record<string, unknown>;
  if (check.Test !== undefined && check.Test !== null && (!Array.isArray(check.Test) || check.Test.some((t) => typeof t !== 'string'))) throw new InvalidArgumentError('must be a list of strings', 'Healthcheck.Test');
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval']) {
    const v = check[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new InvalidArgumentError('must be an integer (nanoseconds)', `Healthcheck.${key}`);
    if (v < 0 || (v > 0 && v < NS_PER_MS)) throw new InvalidArgumentError(`${key} in Healthcheck cannot be less than 1ms`, `Healthcheck.${key}`);
  }
  const retries = check.Retries;
  if (retries !== undefined && retries !== null) {
    if (typeof retries !== 'number' || !Number.isInteger(retries)) throw new InvalidArgumentError('must be an integer', 'Healthcheck.Retries');
    if (retries < 0) throw new InvalidArgumentError('Retries in Healthcheck cannot be negative', 'Healthcheck.Retries');
  }
}

/**
 * A checked Healthcheck as dockerd keeps it: Go's omitempty drops the null, zero and empty
 * fields (docker-py sends Timeout: null, and inspect shows no Timeout at all).
 */
export function storedHealthcheck<T>(value: T): T {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null && v !== undefined && v !== 0 && !(Array.isArray(v) && v.length === 0))) as T;
}

/** The probe's argv, or undefined for none ("NONE", empty). */
export function probeCommand(test: string[] | undefined): string[] | undefined {
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  if (test[0] === 'CMD') return test.length > 1 ? test.slice(1) : undefined;
  if (test[0] === 'CMD-SHELL') return test.length > 1 ? ['/bin/sh', '-c', test.slice(1).join(' ')] : undefined;
  return ['/bin/sh', '-c', test.join(' ')];
}

/** Durations come in nanoseconds; 0 means the default. */
export function timing(check: Healthcheck): typeof DEFAULTS {
  const ms = (ns: number | undefined, fallback: number): number => (ns && ns > 0 ? Math.max(1, Math.round(ns / NS_PER_MS)) : fallback);
  return {
    interval: ms(check.Interval, DEFAULTS.interval),
    timeout: ms(check.Timeout, DEFAULTS.timeout),
    startPeriod: ms(check.StartPeriod, DEFAULTS.startPeriod),
    startInterval: ms(check.StartInterval, DEFAULTS.startInterval),
    retries: check.Retries && check.Retries > 0 ? check.Retries : DEFAULTS.retries,
  };
}

/** The next health state after a probe, as moby's handleProbeResult. */
export function nextHealth(current: Health, entry: HealthLogEntry, retries: number, inStartPeriod: boolean): Health {
  const log = [...current.Log, entry].slice(-KEEP_LOG);
  if (entry.ExitCode === 0) return { Status: 'healthy', FailingStreak: 0, Log: log };
  if (inStartPeriod && current.Status === 'starting') return { ...current, Log: log };
  const streak = current.FailingStreak + 1;
  return { Status: streak >= retries ? 'unhealthy' : current.Status, FailingStreak: streak, Log: log };
}

export class HealthMonitor {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly containers: ContainerService,
    private readonly execs: ExecService,
    private readonly events: EventBus,
  ) {
    events.subscribe((e) => this.onEvent(e));
  }

  private onEvent(e: EngineEvent): void {
    if (e.Type !== 'container') return;
    if (e.Action === 'start') this.begin(e.Actor.ID);
    else if (e.Action === 'die' || e.Action === 'destroy') this.end(e.Actor.ID);
  }

  /** Starts probing a running container (also after a daemon restart). */
  begin(id: string): void {
    const record = this.containers.find(id);
    const check = record?.config.Healthcheck as Healthcheck | undefined;
    const argv = probeCommand(check?.Test);
    if (!record || !check || !argv) return;
    this.end(id);
    const t = timing(check);
    const startedAt = Date.now();
    this.containers.setHealth(id, { Status: 'starting', FailingStreak: 0, Log: [] });
    // As dockerd: within the start period, while still "starting", probes come every StartInterval.
    const delay = (): number => (Date.now() - startedAt < t.startPeriod && this.containers.find(id)?.state.health?.Status === 'starting' ? t.startInterval : t.interval);
    const tick = (): void => {
      this.timers.set(
        id,
        setTimeout(() => {
          void this.probe(id, argv, t.timeout)
            .then((entry) => {
              const current = this.containers.find(id)?.state.health;
              if (!current || !this.timers.has(id)) return;
              const next = nextHealth(current, entry, t.retries, Date.now() - startedAt < t.startPeriod);
              this.containers.setHealth(id, next);
              const record = this.containers.find(id);
              if (record && next.Status !== current.Status) this.events.emit('container', `health_status: ${next.Status}`, id, containerEventAttributes(record));
            })
            .catch(() => undefined)
            .finally(() => {
              if (this.timers.has(id)) tick();
            });
        }, delay()).unref(),
      );
    };
    tick();
  }

  end(id: string): void {
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
  }

  close(): void {
    for (const id of [...this.timers.keys()]) this.end(id);
  }

  /**
   * One run of the test: its exit code (-1 on timeout or failure to start) and its output, the
   * first 4096 bytes and "..." when there was more (moby's limitedBuffer).
   */
  private async probe(id: string, argv: string[], timeoutMs: number): Promise<HealthLogEntry> {
    const start = new Date().toISOString();
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let truncated = false;
    let output: string | undefined;
    let exitCode = -1;
    try {
      const execId = this.execs.create(id, { Cmd: argv, AttachStdout: true, AttachStderr: true });
      const started = await this.execs.start(execId, {});
      // The shim's frames, parsed by the shared parser (a frame may span chunks).
      const frames = (await started.attach!()).pipe(new FrameParser());
      frames.on('data', (f: Frame) => {
        const keep = Math.min(MAX_OUTPUT - keptBytes, f.data.length);
        if (keep > 0) kept.push(f.data.subarray(0, keep));
        keptBytes += Math.max(keep, 0);
        if (keep < f.data.length) truncated = true;
      });
      // The output may still be on its way when the exit is known: read to its end (bounded).
      const drained = new Promise<void>((resolve) => {
        for (const event of ['end', 'close', 'error']) frames.once(event, () => resolve());
      });
      const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(-1), timeoutMs).unref());
      exitCode = await Promise.race([started.exited, timeout]);
      if (exitCode === -1) output = `Health check exceeded timeout (${goDuration(timeoutMs * 1e6)})`;
      else {
        await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, OUTPUT_GRACE_MS).unref())]);
        this.execs.forget(execId);
      }
    } catch (err) {
      output = (err as Error).message;
    }
    output ??= Buffer.concat(kept).toString('utf8') + (truncated ? '...' : '');
    return { Start: start, End: new Date().toISOString(), ExitCode: exitCode, Output: output };
  }
}
