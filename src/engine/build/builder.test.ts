/**
 * The builder against a fake backend (no root, no containers): what each step records, the
 * cache, build arguments in RUN, errors and output as dockerd words them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';

import tar from 'tar-stream';

import type { ImageConfig } from '../../images/types.js';
import { Builder, type BuildBackend, type BuildImage, type BuildOptions } from './builder.js';

interface Made {
  id: string;
  parent: string;
  container?: string;
  config: ImageConfig;
}

class FakeBackend implements BuildBackend {
  readonly images = new Map<string, Made>();
  readonly runs: Array<{ cmd: string[]; env: string[] }> = [];
  private readonly containers = new Map<string, { cmd: string[]; env: string[] }>();
  exitStatus = 0;

  constructor() {
    const base: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['PATH=/bin'], Cmd: ['sh'] } };
    this.images.set('sha256:' + 'b'.repeat(64), { id: 'sha256:' + 'b'.repeat(64), parent: '', config: base });
  }

  findImage(ref: string): BuildImage | undefined {
    const made = this.images.get(ref) ?? (ref === 'busybox' ? this.images.get('sha256:' + 'b'.repeat(64)) : undefined);
    return made ? { id: made.id, config: made.config } : undefined;
  }
  async pullImage(ref: string): Promise<BuildImage> {
    throw new Error(`pull access denied for ${ref}`);
  }
  children(parent: string): BuildImage[] {
    return [...this.images.values()].filter((m) => m.parent === parent && m.id !== 'sha256:' + 'b'.repeat(64)).map((m) => ({ id: m.id, config: m.config }));
  }
  async createImage(spec: { parent: string; container?: string; config: Partial<ImageConfig>; createdBy: string }): Promise<string> {
    const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, ...spec.config, created: new Date().toISOString(), history: [{ created_by: spec.createdBy }] } as ImageConfig;
    const id = 'sha256:' + createHash('sha256').update(JSON.stringify(config) + Math.random()).digest('hex');
    this.images.set(id, { id, parent: spec.parent, config, ...(spec.container ? { container: spec.container } : {}) });
    return id;
  }
  async emptyImage(): Promise<string> {
    return 'sha256:' + 'e'.repeat(64);
  }
  async removeImage(): Promise<void> {}
  normalizeTag(tag: string): string {
    if (/[A-Z]/.test(tag)) throw new Error('invalid reference format: repository name must be lowercase');
    return tag;
  }
  tagImage(_id: string, name: string): string {
    return name.includes(':') ? name : `${name}:latest`;
  }
  async createContainer(spec: { cmd: string[]; env: string[] }): Promise<string> {
    const id = createHash('sha256').update(String(Math.random())).digest('hex');
    this.containers.set(id, spec);
    return id;
  }
  async runContainer(id: string, output: (chunk: Buffer) => void): Promise<number> {
    this.runs.push(this.containers.get(id)!);
    output(Buffer.from('ran\n'));
    return this.exitStatus;
  }
  async withRootfs<T>(): Promise<T> {
    throw new Error('not in this test');
  }
  async removeContainer(): Promise<void> {}

  /** created_by of each image made, oldest first. */
  createdBy(id: string): string[] {
    const out: string[] = [];
    for (let m = this.images.get(id); m && m.parent !== ''; m = this.images.get(m.parent)) out.unshift(m.config.history![0]!.created_by!);
    return out;
  }
}

function contextTar(files: Record<string, string>): Readable {
  const pack = tar.pack();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  for (const [name, data] of Object.entries(files)) pack.entry({ name, uid, gid }, data);
  pack.finalize();
  return pack as unknown as Readable;
}

const defaults: BuildOptions = { dockerfile: 'Dockerfile', tags: [], buildArgs: {}, labels: {}, noCache: false, rm: true, forceRm: false, pull: false, extraHosts: [], auth: {} };

describe('the builder (fake backend)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-builder-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  async function build(backend: FakeBackend, dockerfile: string, options: Partial<BuildOptions> = {}): Promise<{ id: string; out: string; aux: unknown[] }> {
    const builder = new Builder(backend, path.join(tmp, 'b'));
    const b = await builder.prepare(contextTar({ Dockerfile: dockerfile }), { ...defaults, ...options });
    let out = '';
    const aux: unknown[] = [];
    try {
      const id = await b.run({ stream: (t) => (out += t), message: (m) => aux.push(m.aux) });
      return { id, out, aux };
    } catch (err) {
      (err as { output?: string }).output = out;
      throw err;
    } finally {
      b.close();
    }
  }

  it('records each step as dockerd does, with build args in RUN', async () => {
    const backend = new FakeBackend();
    const df = 'ARG TAG=latest\nFROM busybox:${TAG}\nARG A=1\nENV B=${A}x C="two words"\nRUN echo $A\nLABEL k=v\nEXPOSE 80 53/udp\nUSER nobody\nCMD echo hi\nENTRYPOINT ["/bin/sh"]\n';
    // busybox:latest is not in the fake: FROM busybox:${TAG} must use TAG's default (a pull, refused).
    await assert.rejects(build(backend, df), /pull access denied for busybox:latest/);
    const { id, out, aux } = await build(backend, df.replace('busybox:${TAG}', 'busybox'), { buildArgs: { A: '2', UNUSED: 'u', HTTP_PROXY: 'http://proxy' }, tags: ['x:1'] });
    assert.deepEqual(backend.createdBy(id), [
      '/bin/sh -c #(nop)  ARG A=1',
      '/bin/sh -c #(nop)  ENV B=2x C=two words',
      '|1 A=2 /bin/sh -c echo $A',
      '/bin/sh -c #(nop)  LABEL k=v',
      '/bin/sh -c #(nop)  EXPOSE 80 53/udp',
      '/bin/sh -c #(nop)  USER nobody',
      '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]',
      '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh"]',
    ]);
    // The RUN saw the build args (the proxy too, not recorded); ENV wins over ARG.
    assert.deepEqual(backend.runs[0], { ...backend.runs[0], cmd: ['/bin/sh', '-c', 'echo $A'], env: ['PATH=/bin', 'B=2x', 'C=two words', 'A=2', 'HTTP_PROXY=http://proxy'] });
    const config = backend.images.get(id)!.config.config!;
    assert.deepEqual(config.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
    assert.equal(config.User, 'nobody');
    // An ENTRYPOINT after CMD in the same stage keeps the CMD.
    assert.deepEqual(config.Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.match(out, /^Step 1\/10 : ARG TAG=latest\nStep 2\/10 : FROM busybox\n ---> bbbbbbbbbbbb\nStep 3\/10 : ARG A=1\n ---> [0-9a-f]{12}\n/);
    assert.match(out, / ---> Running in [0-9a-f]{12}\nran\nRemoving intermediate container [0-9a-f]{12}\n/);
    assert.match(out, /\[Warning\] One or more build-args \[UNUSED\] were not consumed\n/);
    assert.match(out, /Successfully built [0-9a-f]{12}\nSuccessfully tagged x:1\n$/);
    assert.deepEqual(aux, [{ ID: id }]);

    // The same build again: every step from the cache, no RUN.
    const again = await build(backend, df.replace('busybox:${TAG}', 'busybox'), { buildArgs: { A: '2' } });
    assert.equal(again.id, id);
    assert.equal((again.out.match(/Using cache/g) ?? []).length, 8);
    assert.equal(backend.runs.length, 1);
    // Another build arg value: ARG and ENV are cached, the RUN is not.
    const other = await build(backend, df.replace('busybox:${TAG}', 'busybox'), { buildArgs: { A: '3' } });
    assert.notEqual(other.id, id);
    assert.equal(backend.runs.length, 2);
    // nocache: nothing from the cache.
    const fresh = await build(backend, df.replace('busybox:${TAG}', 'busybox'), { buildArgs: { A: '2' }, noCache: true });
    assert.doesNotMatch(fresh.out, /Using cache/);
  });

  it('fails a RUN with the status, refuses what dockerd refuses', async () => {
    const backend = new FakeBackend();
    backend.exitStatus = 2;
    await assert.rejects(build(backend, 'FROM busybox\nRUN false\n'), (err: Error & { status?: number }) => {
      assert.equal(err.message, "The command '/bin/sh -c false' returned a non-zero code: 2");
      assert.equal(err.status, 2);
      return true;
    });
    await assert.rejects(build(backend, 'FROM busybox\nCOPY a b c\n'), /When using COPY with more than one source file, the destination must be a directory and end with a \//);
    // (http and https URLs are downloaded: the integration test serves one on loopback.)
    await assert.rejects(build(backend, 'FROM busybox\nADD ftp://127.0.0.1/x /x\n'), /ADD of ftp:\/\/127\.0\.0\.1\/x is not supported by berthd \(http and https URLs are\)/);
    // Errors at a step's dispatch name no line (dockerd's parse errors do); the lexer's name the word.
    await assert.rejects(build(backend, 'FROM busybox\nENV A=${B:?must-be-set}\n'), /^InvalidArgumentError: failed to process "\$\{B:\?must-be-set\}": B: must-be-set$/);
    await assert.rejects(build(backend, 'FROM $NOPE\n'), /^InvalidArgumentError: base name \(\$NOPE\) should not be blank$/);
    await assert.rejects(build(backend, 'FROM busybox\nSTOPSIGNAL FOO\n'), /^InvalidArgumentError: Invalid signal: FOO$/);
    await assert.rejects(build(backend, 'FROM busybox\nCOPY --from=0 /a /b\n'), /^InvalidArgumentError: invalid from flag value 0: refers to current build stage$/);
    await assert.rejects(build(backend, 'FROM busybox\nEXPOSE 80/xyz\n'), /Invalid proto: xyz/);
    const builder = new Builder(backend, path.join(tmp, 'c'));
    await assert.rejects(builder.prepare(contextTar({ other: 'x' }), defaults), /Cannot locate specified Dockerfile: Dockerfile/);
    await assert.rejects(builder.prepare(contextTar({ Dockerfile: 'FROM busybox\n' }), { ...defaults, tags: ['Bad'] }), /invalid reference format/);
  });

  it('adds the labels parameter as a last step, stops at the target', async () => {
    const backend = new FakeBackend();
    const { id, out } = await build(backend, 'FROM busybox AS one\nENV X=1\nFROM one\nENV Y=2\n', { labels: { b: '2', a: '1' }, target: 'one' });
    assert.match(out, /Step 3\/3 : LABEL "a"='1' "b"='2'/);
    assert.deepEqual(backend.images.get(id)!.config.config!.Labels, { a: '1', b: '2' });
    assert.deepEqual(backend.images.get(id)!.config.config!.Env, ['PATH=/bin', 'X=1']);
  });
});
