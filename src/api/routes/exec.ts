/** `/containers/{id}/exec` and `/exec/{id}/...`: docker exec over the engine's ExecService. */
import { checkObject, optionalBoolean } from '../../common/checks.js';
import { BerthError, InvalidArgumentError } from '../../common/errors.js';
import { type ExecConfig, ExecSetupError } from '../../engine/containers/exec.js';
import type { Engine } from '../../engine/engine.js';
import { parseDetachKeys, pipeAttach } from '../attach.js';
import type { Router } from '../router.js';
import { frame, RAW_STREAM, streamContentType } from '../stream.js';

function consoleSize(value: unknown): [number, number] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length !== 2 || !value.every((n) => Number.isInteger(n) && n >= 0)) throw new InvalidArgumentError('must be [height, width]', 'ConsoleSize');
  return value as [number, number];
}

export function execRoutes(router: Router, engine: Engine): void {
  const execs = engine.execs;

  router.post('/containers/{id*}/exec', async (ctx) => {
    const body = await ctx.json<ExecConfig>();
    consoleSize(body.ConsoleSize);
    // As dockerd's ContainerExecCreate: keys that do not parse are refused here, not at the start.
    if (body && typeof body === 'object' && typeof body.DetachKeys === 'string') parseDetachKeys(body.DetachKeys, 'escape');
    const id = execs.create(ctx.params.id!, body);
    ctx.sendJson(201, { Id: id });
  });

  router.post('/exec/{id}/start', async (ctx) => {
    const body = await ctx.json<{ Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null }>({});
    checkObject(body, 'body');
    optionalBoolean(body.Detach, 'Detach');
    optionalBoolean(body.Tty, 'Tty');
    const exec = execs.get(ctx.params.id!);
    const tty = body.Tty ?? exec.config.Tty === true;
    if (body.Detach) {
      await execs.start(exec.id, { detach: true, tty, consoleSize: consoleSize(body.ConsoleSize) });
      ctx.noContent(200);
      return;
    }
    // Checked before the exec starts, so that bad keys are a 400, not a hung connection.
    const detachKeys = parseDetachKeys(exec.config.DetachKeys, 'escape');
    let started;
    try {
      started = await execs.start(exec.id, { tty, consoleSize: consoleSize(body.ConsoleSize) });
    } catch (err) {
      // As dockerd: the connection is taken over anyway, the error goes down it as output, and
      // the exec's exit code is 126 (the CLI reads it from the exec's inspect).
      if (!(err instanceof BerthError) || err.code === 'SYSTEM') {
        const conn = ctx.hijack(tty ? RAW_STREAM : streamContentType(ctx));
        const message = (err as Error).message;
        const text = Buffer.from(err instanceof ExecSetupError ? `${message}\r\n` : `OCI runtime exec failed: exec failed: unable to start container process: ${message}: unknown\r\n`);
        conn.end(tty ? text : frame(1, text));
        return;
      }
      throw err;
    }
    const conn = ctx.hijack(tty ? RAW_STREAM : streamContentType(ctx));
    try {
      // Its output goes once the stream is connected and the head went out alone (see attach).
      const [stream] = await Promise.all([started.attach!(), ctx.headAlone()]);
      const outcome = await pipeAttach(conn, stream, {
        tty,
        stdout: exec.config.AttachStdout !== false,
        stderr: exec.config.AttachStderr !== false,
        stdin: exec.config.AttachStdin === true,
        detachKeys,
      });
      // The client inspects the exit code as soon as the stream ends: record it first.
      if (outcome === 'ended') await started.exited;
    } finally {
      // Whatever happens after the hijack, the client is not left waiting on the connection.
      if (!conn.destroyed) conn.end();
    }
  });

  router.get('/exec/{id}/json', (ctx) => {
    const exec = execs.get(ctx.params.id!);
    const c = exec.config;
    ctx.sendJson(200, {
      ID: exec.id,
      Running: exec.running,
      ExitCode: exec.exitCode,
      // `user` is omitempty in dockerd's ExecProcessConfig.
      ProcessConfig: { tty: c.Tty === true, entrypoint: c.Cmd?.[0] ?? '', arguments: c.Cmd?.slice(1) ?? [], privileged: c.Privileged === true, ...(c.User ? { user: c.User } : {}) },
      OpenStdin: c.AttachStdin === true,
      OpenStderr: c.AttachStderr === true,
      OpenStdout: c.AttachStdout === true,
      CanRemove: false,
      ContainerID: exec.containerId,
      DetachKeys: c.DetachKeys ?? '',
      Pid: exec.pid,
    });
  });

  router.post('/exec/{id}/resize', async (ctx) => {
    const { rows, cols } = ctx.terminalSize();
    await execs.resize(ctx.params.id!, rows, cols);
    ctx.noContent(200);
  });
}
