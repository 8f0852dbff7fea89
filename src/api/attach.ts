/**
 * Joins a hijacked client connection to a shim's stream (container attach, exec start): the
 * shim's frames go out, raw for a TTY and as Docker's 8-byte frames otherwise (the shim already
 * speaks that framing); the client's bytes go in as stdin, watching for the detach keys as
 * dockerd does.
 */
import { once } from 'node:events';
import type net from 'node:net';
import type { Duplex } from 'node:stream';

import { InvalidArgumentError } from '../common/errors.js';
import { FrameParser, type Frame } from '../shim/client.js';
import { frame } from './stream.js';

export interface PipeOptions {
  tty: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Forward the client's bytes to the shim (its stream was opened with stdin). */
  stdin: boolean;
  /** The detach sequence (dockerd's default ctrl-p,ctrl-q); empty: none. */
  detachKeys: Buffer;
}

export const DEFAULT_DETACH_KEYS = Buffer.from([0x10, 0x11]);

/**
 * "ctrl-p,ctrl-q", "a,ctrl-\\" → bytes, as dockerd parses --detach-keys; refused in its words,
 * which call them escape keys for an exec.
 */
export function parseDetachKeys(text: string | null | undefined, what: 'detach' | 'escape' = 'detach'): Buffer {
  if (text === null || text === undefined || text === '') return DEFAULT_DETACH_KEYS;
  const bytes: number[] = [];
  for (const key of text.split(',')) {
    if (key.length === 1) bytes.push(key.charCodeAt(0));
    else if (/^ctrl-[a-z@[\\\]^_]$/.test(key)) {
      const c = key.slice(5);
      bytes.push(c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : ({ '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 } as Record<string, number>)[c]!);
    } else throw new InvalidArgumentError(`Invalid ${what} keys (${text}) provided`);
  }
  return Buffer.from(bytes);
}

/**
 * Runs until the shim's output ends (the process exited and everything was sent), the client
 * detaches, or the client goes away. Resolves with which of these happened.
 */
export async function pipeAttach(conn: Duplex, shim: net.Socket, opts: PipeOptions): Promise<'ended' | 'detached' | 'gone'> {
  let outcome: 'ended' | 'detached' | 'gone' | undefined;
  const finish = (what: 'detached' | 'gone'): void => {
    outcome ??= what;
    shim.destroy();
  };
  conn.once('close', () => finish('gone'));
  // on, not once: a socket can report several errors (EPIPE per write after the peer left), and
  // an 'error' with no listener would take the daemon down.
  conn.on('error', () => finish('gone'));

  if (opts.stdin) {
    let matched = 0;
    // Only a TTY's input is watched for the detach keys, as dockerd does (copyEscapable):
    // piped data is anything, and a ctrl-p ctrl-q in it must reach the process.
    const detachKeys = opts.tty ? opts.detachKeys : Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      if (detachKeys.length === 0) {
        shim.write(chunk);
        return;
      }
      // Forward everything but a complete detach sequence; a partial one is held until it
      // either completes (detach) or breaks (the held bytes go on).
      const out: number[] = [];
      for (const byte of chunk) {
        if (byte === detachKeys[matched]) {
          matched++;
          if (matched === detachKeys.length) {
            if (out.length) shim.write(Buffer.from(out));
            finish('detached');
            return;
          }
        } else {
          if (matched) out.push(...detachKeys.subarray(0, matched));
          matched = 0;
          if (byte === detachKeys[0]) matched = 1;
          else out.push(byte);
        }
      }
      if (out.length) shim.write(Buffer.from(out));
    });
    // The client closed its side (stdin EOF). As dockerd: a pipe's is passed on (with StdinOnce
    // the shim closes the container's stdin); a terminal's ends the attach and nothing else
    // (the docker CLI, detaching on its own ctrl-p ctrl-q, just closes the connection).
    const inputEnded = (): void => {
      if (outcome) return;
      if (opts.tty) finish('detached');
      else shim.end();
    };
    if (conn.readableEnded) inputEnded();
    else conn.once('end', inputEnded);
    // Explicitly: a socket paused by pause() does not start flowing when a listener is added.
    conn.resume();
  } else {
    conn.resume();
  }

  const parser = new FrameParser();
  shim.on('error', () => {
    if (!parser.writableEnded) parser.end();
  });
  shim.pipe(parser);
  try {
    for await (const f of parser as AsyncIterable<Frame>) {
      if (outcome) break;
      if ((f.stream === 2 && !opts.stderr) || (f.stream !== 2 && !opts.stdout)) continue;
      const data = opts.tty ? f.data : frame(f.stream === 2 ? 2 : 1, f.data);
      if (!conn.write(data)) await Promise.race([once(conn, 'drain'), once(conn, 'close')]);
    }
  } catch {
    /* the shim went away */
  }
  outcome ??= 'ended';
  return outcome;
}
