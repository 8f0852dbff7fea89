/**
 * The JSON messages of dockerd's pull and push streams, made from the registry client's
 * progress events (pure). dockerd's pull says, per layer: "Pulling fs layer" (or "Already
 * exists"), "Downloading" with progressDetail, "Verifying Checksum", "Download complete",
 * "Extracting", "Pull complete"; before the layers "<tag>: Pulling from <repository path>", after
 * them "Digest: …" and a "Status: …" line. Push: "The push refers to repository [name]",
 * "Preparing", "Pushing", "Pushed" / "Layer already exists" / "Mounted from …", then
 * "<tag>: digest: … size: …" and an aux message.
 */
import type { ProgressEvent } from '../images/types.js';

/** One line of a Docker progress stream (jsonmessage.JSONMessage). */
export interface JsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  stream?: string;
  aux?: unknown;
  errorDetail?: { code?: number; message: string };
  error?: string;
}

/** Docker's units.HumanSize: decimal units, 4 significant digits ("2.097MB", "527B"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

/** What dockerd puts in `progress` (jsonmessage.JSONProgress): "[=====>      ]  1.049MB/2.097MB". */
export function progressBar(current: number, total: number): string {
  if (!(total > 0)) return humanSize(current).padStart(8);
  const filled = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  return `[${'='.repeat(filled)}>${' '.repeat(50 - filled)}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

function detailed(e: ProgressEvent): JsonMessage {
  if (e.current === undefined) return { status: e.status, progressDetail: {}, id: e.id };
  const m: JsonMessage = { status: e.status, progressDetail: { current: e.current, ...(e.total !== undefined ? { total: e.total } : {}) }, id: e.id };
  if (e.total !== undefined) m.progress = progressBar(e.current, e.total);
  return m;
}

/**
 * Maps one pull's events to dockerd's messages. `repository` is the path in the registry
 * ("library/busybox"), `tagOrDigest` what was asked for.
 */
export class PullProgress {
  private announced = false;
  private readonly existing = new Set<string>();

  constructor(
    private readonly repository: string,
    private readonly tagOrDigest: string,
  ) {}

  map(e: ProgressEvent): JsonMessage[] {
    const out: JsonMessage[] = [];
    const announce = (): void => {
      if (this.announced) return;
      this.announced = true;
      out.push({ status: `Pulling from ${this.repository}`, id: this.tagOrDigest });
    };
    switch (e.status) {
      case 'Resolving':
        // Before the manifest is fetched: dockerd says nothing yet (a missing image is then a
        // plain HTTP error).
        return out;
      case 'Resolved':
        // The manifest is there: dockerd's "Pulling from" comes before choosing from an index,
        // so a platform it lacks is an error in the stream after it.
        announce();
        return out;
      case 'Waiting':
        announce();
        out.push({ status: 'Pulling fs layer', progressDetail: {}, id: e.id });
        return out;
      case 'Already exists':
        announce();
        this.existing.add(e.id);
        out.push({ status: 'Already exists', progressDetail: {}, id: e.id });
        return out;
      case 'Pull complete':
        if (this.existing.has(e.id)) return out;
        out.push({ status: 'Pull complete', progressDetail: {}, id: e.id });
        return out;
      case 'Downloading':
      case 'Extracting':
      case 'Verifying Checksum':
      case 'Download complete':
        announce();
        out.push(detailed(e));
        return out;
    }
    if (e.status.startsWith('Digest: ')) {
      announce();
      out.push({ status: e.status });
      return out;
    }
    // pullImage's own "Status: …" line is replaced by the caller's (it knows whether the image
    // was up to date).
    if (e.status.startsWith('Status: ')) return out;
    announce();
    out.push({ status: e.status, progressDetail: {}, id: e.id });
    return out;
  }

  /** Whether anything was said yet (a failure after that goes into the stream). */
  get started(): boolean {
    return this.announced;
  }
}

/** dockerd's last pull line. */
export function pullStatus(familiarRef: string, upToDate: boolean): JsonMessage {
  return { status: upToDate ? `Status: Image is up to date for ${familiarRef}` : `Status: Downloaded newer image for ${familiarRef}` };
}

/** Maps one push event to dockerd's messages (the final digest line has no id). */
export function pushMessages(e: ProgressEvent): JsonMessage[] {
  if (/: digest: sha256:[a-f0-9]{64} size: \d+$/.test(e.status)) return [{ status: e.status }];
  if (e.status === 'Pushing') return [detailed(e)];
  return [{ status: e.status, progressDetail: {}, id: e.id }];
}
