/**
 * The engine's event stream: what happened to containers, images, volumes and networks, in
 * Docker's event shape (so the API layer passes them through). Keeps the last events in
 * memory so that `since` can look back, as dockerd's events log does.
 */
import { EventEmitter } from 'node:events';

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon';

export interface EngineEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  /** Pre-1.22 fields, which the docker CLI still reads for containers and images. */
  status?: string;
  id?: string;
  from?: string;
}

const KEEP = 1024;

export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly recent: EngineEvent[] = [];

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    const nowNs = process.hrtime.bigint() - hrtimeOrigin + epochOriginNs;
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nowNs / 1_000_000_000n),
      timeNano: Number(nowNs),
    };
    if (type === 'container' || type === 'image') {
      event.status = action;
      event.id = id;
      if (attributes.image) event.from = attributes.image;
    }
    this.recent.push(event);
    if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
    this.emitter.emit('event', event);
    return event;
  }

  /** Events at or after `sinceNs` that are still kept. */
  since(sinceNs: number): EngineEvent[] {
    return this.recent.filter((e) => e.timeNano >= sinceNs);
  }

  subscribe(listener: (event: EngineEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}

// A nanosecond wall clock that never goes backwards within the process.
const hrtimeOrigin = process.hrtime.bigint();
const epochOriginNs = BigInt(Date.now()) * 1_000_000n;
