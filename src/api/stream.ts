/** Docker's stream framing for attach, logs and exec without a TTY. */
import type { Context } from './context.js';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

/** A frame: [stream, 0, 0, 0, length as uint32 big-endian] then the bytes (1 stdout, 2 stderr). */
export function frame(stream: 0 | 1 | 2, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

/** dockerd names multiplexed output raw-stream before API 1.42. */
export function streamContentType(ctx: Context): string {
  return ctx.atLeast('1.42') ? MULTIPLEXED_STREAM : RAW_STREAM;
}
