/**
 * Hijacked attach/exec sessions: the local terminal in raw mode, input forwarded with the
 * detach keys watched for (as the docker CLI's escape proxy does), output demultiplexed from
 * 8-byte frames (or raw with a TTY), and the remote TTY resized on start and on SIGWINCH.
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

import type { ApiClient, Query } from './client.js';
import { processIo, type CliIo } from './context.js';
import { DetachWatcher, FrameDemuxer, parseDetachKeys } from './demux.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

export interface Hijacked {
  socket: Socket | Readable;
  head: Buffer;
  writable: boolean;
}

export interface SessionOptions {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  detachKeys?: string;
}

export interface Session {
  /** Resolves when the output ends (detached: the escape sequence was typed). */
  done: Promise<{ detached: boolean }>;
  /** Starts forwarding input and output (after the container/exec was started). */
  start(): void;
}

/** Keeps the remote terminal's size in step with ours: now and on every SIGWINCH. */
export function followResize(resize: (h: number, w: number) => Promise<unknown>, io: Pick<CliIo, 'stdout'> = processIo): () => void {
  const out = io.stdout;
  if (!consoleSize(io)) return () => undefined;
  const send = (): void => {
    const [h, w] = consoleSize(io)!;
    resize(h, w).catch(() => undefined);
  };
  send();
  out.on('resize', send);
  return () => out.off('resize', send);
}

/** The local terminal's size as [height, width], or undefined when stdout is no TTY. */
export function consoleSize(io: Pick<CliIo, 'stdout'> = processIo): [number, number] | undefined {
  if (!io.stdout.isTTY || !io.stdout.getWindowSize) return undefined;
  const [w, h] = io.stdout.getWindowSize();
  return [h, w];
}

/**
 * Wires a hijacked connection to this process's stdio. Output flows at once (bytes the
 * daemon sends before start are kept); input only after start(), so that nothing typed is
 * lost or sent before the process exists.
 */
export function session(h: Hijacked, o: SessionOptions, io: Pick<CliIo, 'stdin' | 'stdout' | 'stderr'> = processIo): Session {
  const { socket } = h;
  const useStdin = o.stdin && h.writable;
  const input = useStdin ? io.stdin : undefined;
  let restoreTerminal = (): void => undefined;
  if (input && o.tty && input.isTTY && input.setRawMode) {
    input.setRawMode(true);
    restoreTerminal = () => {
      try {
        input.setRawMode?.(false);
      } catch {
        /* stdin closed */
      }
    };
  }
  let finish!: (r: { detached: boolean }) => void;
  const done = new Promise<{ detached: boolean }>((resolve) => {
    finish = (r) => {
      restoreTerminal();
      input?.pause();
      resolve(r);
    };
  });

  // Back pressure: a reader of ours slower than the container (`berth run ... | slow`) pauses
  // the connection, so output waits in the daemon rather than piling up in our memory.
  const paused = new Set<NodeJS.WritableStream>();
  // Stream 3 is the daemon's own error (sent even when stderr was not asked for).
  const outFor = (stream: number): NodeJS.WritableStream | undefined => {
    if (stream === 3) return io.stderr;
    if (stream === 2) return o.stderr ? io.stderr : undefined;
    return o.stdout ? io.stdout : undefined;
  };
  const write = (stream: number, data: Buffer): void => {
    const out = outFor(stream);
    if (!out || out.write(data) || paused.has(out)) return;
    paused.add(out);
    socket.pause();
    out.once('drain', () => {
      paused.delete(out);
      if (paused.size === 0) socket.resume();
    });
  };
  const demux = o.tty ? undefined : new FrameDemuxer(write);
  const onData = (chunk: Buffer): void => (demux ? demux.push(chunk) : write(1, chunk));
  if (h.head.length) onData(h.head);
  socket.on('data', onData);
  socket.on('end', () => finish({ detached: false }));
  socket.on('close', () => finish({ detached: false }));
  socket.on('error', () => finish({ detached: false }));

  const start = (): void => {
    if (!input) return;
    const watcher = new DetachWatcher(parseDetachKeys(o.detachKeys || DEFAULT_DETACH_KEYS));
    const sock = socket as Socket;
    input.on('data', (chunk: Buffer) => {
      // The escape sequence is watched for only on a terminal, as docker does.
      const { forward, detach } = o.tty ? watcher.feed(chunk) : { forward: chunk, detach: false };
      if (forward.length) sock.write(forward);
      if (detach) {
        socket.removeAllListeners('data');
        sock.destroy();
        finish({ detached: true });
      }
    });
    input.on('end', () => {
      // Half-close: the daemon closes the container's stdin, output keeps flowing.
      if (!sock.destroyed) sock.end();
    });
    input.resume();
  };
  return { done, start };
}

/** Opens a hijacked attach to a container. */
export async function attachContainer(client: ApiClient, id: string, o: SessionOptions, extra: Query = {}): Promise<Hijacked> {
  return client.hijack(`/containers/${encodeURIComponent(id)}/attach`, {
    stream: true,
    stdin: o.stdin,
    stdout: o.stdout,
    stderr: o.stderr,
    detachKeys: o.detachKeys,
    ...extra,
  });
}
