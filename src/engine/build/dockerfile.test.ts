import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BuildArgs, goDuration, goQuoteList, parseDockerfile, parseGoDuration, planBuild, ShellLex, splitWords, stepCount, substitutionEnv, toCommand } from './dockerfile.js';

const env = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

describe('Dockerfile lines', () => {
  it('joins continuations, drops comments and empty lines inside them', () => {
    const { instructions } = parseDockerfile('FROM busybox\n# a comment\nRUN echo a && \\\n  # inside\n\n  echo b\n  \nenv A=1\n');
    assert.deepEqual(
      instructions.map((i) => [i.keyword, i.original, i.line]),
      [
        ['FROM', 'FROM busybox', 1],
        ['RUN', 'RUN echo a &&   echo b', 3],
        ['ENV', 'env A=1', 8],
      ],
    );
  });

  it('honours the escape directive (backtick), and only at the top', () => {
    const { escape, instructions } = parseDockerfile('# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\n');
    assert.equal(escape, '`');
    assert.equal(instructions[1]!.rest, 'dir c:\\   && echo hi');
    assert.equal(parseDockerfile('FROM x\n# escape=`\n').escape, '\\');
    assert.throws(() => parseDockerfile('# escape=x\nFROM a\n'), /invalid escape token/);
  });

  it('splits flags from the arguments', () => {
    const { instructions } = parseDockerfile('COPY --from=build --chown=1:2 a b /c/\n');
    assert.deepEqual(instructions[0]!.flags, ['--from=build', '--chown=1:2']);
    assert.equal(instructions[0]!.rest, 'a b /c/');
  });

  it('keeps quotes in words for the lexer', () => {
    assert.deepEqual(splitWords('a="b c" d \'e f\'', '\\'), ['a="b c"', 'd', "'e f'"]);
  });
});

describe('commands', () => {
  const one = (line: string) => toCommand(parseDockerfile(line).instructions[0]!, '\\');

  it('tells exec form from shell form', () => {
    assert.deepEqual((one('RUN ["echo", "a b"]') as { line: unknown }).line, { args: ['echo', 'a b'], shell: false });
    assert.deepEqual((one('CMD echo "a b"') as { line: unknown }).line, { args: ['echo "a b"'], shell: true });
    // Not an array of strings: shell form, as Docker.
    assert.deepEqual((one('CMD [1, 2]') as { line: unknown }).line, { args: ['[1, 2]'], shell: true });
    // An empty shell form has no command string (moby: CMD alone is the shell by itself).
    assert.deepEqual((one('CMD') as { line: unknown }).line, { args: [], shell: true });
  });

  it('reads ENV and LABEL pairs in both forms', () => {
    assert.deepEqual((one('ENV A=1 B="two words"') as { pairs: unknown }).pairs, [
      ['A', '1'],
      ['B', '"two words"'],
    ]);
    assert.deepEqual((one('ENV OLD value with spaces') as { pairs: unknown }).pairs, [['OLD', 'value with spaces']]);
    assert.throws(() => one('ENV A=1 B'), /can't find = in "B"/);
    assert.throws(() => one('ENV =x'), /^DockerfileError: dockerfile parse error line 1: ENV names can not be blank$/);
    assert.throws(() => one('LABEL a=b =c'), /LABEL names can not be blank$/);
  });

  it('refuses unknown instructions and flags as Docker words them', () => {
    assert.throws(() => one('FOO bar'), /^DockerfileError: dockerfile parse error line 1: unknown instruction: FOO$/);
    assert.throws(() => one('RUN --mount=type=cache true'), /line 1: the --mount option requires BuildKit\. Refer to https:\/\/docs\.docker\.com\/go\/buildkit\/ to learn how to build images with BuildKit enabled$/);
    assert.throws(() => one('RUN --bogus true'), /line 1: Unknown flag: bogus$/);
    assert.throws(() => one('ARG'), /line 1: ARG requires at least one argument$/);
    assert.throws(() => one('ARG A =x'), /line 1: ARG names can not be blank$/);
    assert.throws(() => one('VOLUME []'), /line 1: VOLUME requires at least one argument$/);
    assert.throws(() => one('COPY onlyone'), /COPY requires at least two arguments, but only one was provided\. Destination could not be determined$/);
    for (const k of ['USER', 'WORKDIR', 'STOPSIGNAL', 'MAINTAINER']) assert.throws(() => one(k), new RegExp(`line 1: ${k} requires exactly one argument$`));
    assert.throws(() => one('ONBUILD ONBUILD RUN x'), /Chaining ONBUILD/);
  });

  it('reads HEALTHCHECK', () => {
    const h = one('HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost') as { health: unknown };
    assert.deepEqual(h.health, { test: ['CMD-SHELL', 'wget -q localhost'], interval: 5e9, retries: 3 });
    assert.deepEqual((one('HEALTHCHECK NONE') as { health: unknown }).health, { test: ['NONE'] });
  });

  it('keeps the ONBUILD expression', () => {
    assert.equal((one('ONBUILD  RUN echo x') as { expression: string }).expression, 'RUN echo x');
  });
});

describe('the build plan', () => {
  it('has global ARGs, named stages and the step count', () => {
    const plan = planBuild('ARG V=1\nFROM busybox:${V} AS Build\nRUN true\nFROM scratch\nCOPY --from=build /a /a\n');
    assert.equal(plan.metaArgs.length, 1);
    assert.deepEqual(
      plan.stages.map((s) => [s.name, s.base, s.commands.length]),
      [
        ['build', 'busybox:${V}', 1],
        [undefined, 'scratch', 1],
      ],
    );
    assert.equal(stepCount(plan), 5);
  });

  it('cuts at the target, refuses a missing one', () => {
    const text = 'FROM a AS one\nRUN x\nFROM b AS two\nRUN y\n';
    assert.equal(planBuild(text, { target: 'one' }).stages.length, 1);
    assert.throws(() => planBuild(text, { target: 'three' }), /failed to reach build target three/);
  });

  it('refuses instructions before FROM, empty files, bad stage names', () => {
    assert.throws(() => planBuild('RUN x\n'), /^DockerfileError: no build stage in current context$/, 'dockerd names no line');
    assert.throws(() => planBuild('# only a comment\n'), /cannot be empty/);
    assert.throws(() => planBuild('FROM a AS 1x\n'), /invalid name for build stage/);
    assert.throws(() => planBuild('FROM a AS x\nFROM b AS x\n'), /duplicate name x/);
  });
});

describe('variable substitution', () => {
  const lex = new ShellLex();
  const e = env({ A: 'a', EMPTY: '', SP: 'x y' });

  it('substitutes $VAR and ${VAR}', () => {
    assert.equal(lex.processWord('$A-${A}-$NONE-${NONE}', e), 'a-a--');
    assert.equal(lex.processWord('cost $5 $', e), 'cost  $');
  });

  it('has the default and alternative modifiers', () => {
    assert.equal(lex.processWord('${NONE:-d} ${EMPTY:-d} ${EMPTY-d} ${A:-d}', e), 'd d  a');
    assert.equal(lex.processWord('${A:+x} ${EMPTY:+x} ${EMPTY+x} ${NONE+x}', e), 'x  x ');
    assert.throws(() => lex.processWord('${NONE:?must be set}', e), /NONE: must be set/);
    assert.throws(() => lex.processWord('${EMPTY:?}', e), /EMPTY: is not allowed to be empty/);
    assert.throws(() => lex.processWord('${A', e), /missing '}'/);
    assert.throws(() => lex.processWord('${:}', e), /bad substitution/);
  });

  it('handles quotes and escapes', () => {
    assert.equal(lex.processWord('"$A b" \'$A\' \\$A', e), 'a b $A $A');
    assert.equal(lex.processWord('"say \\"hi\\""', e), 'say "hi"');
    assert.equal(new ShellLex('`').processWord('`$A', e), '$A');
  });

  it('splits words, a variable value too, quoted text not', () => {
    assert.deepEqual(lex.processWords('$SP "$SP" z', e), ['x', 'y', 'x y', 'z']);
  });
});

describe('build arguments', () => {
  it('takes request values over defaults, global defaults for bare ARGs, and warns about unused ones', () => {
    const args = new BuildArgs({ V: '2', UNUSED: 'x', HTTP_PROXY: 'http://p' });
    args.addMeta('V', '1');
    args.addMeta('G', 'g');
    assert.deepEqual([...args.metaEnv()], [
      ['V', '2'],
      ['G', 'g'],
    ]);
    const stage = args.stage();
    stage.declare('G', undefined);
    stage.declare('D', 'def');
    assert.deepEqual(stage.filterAllowed(['D=env']), ['G=g', 'HTTP_PROXY=http://p']);
    assert.equal(stage.recorded('HTTP_PROXY'), false);
    assert.equal(substitutionEnv(['D=env'], stage).get('D'), 'env');
    assert.equal(args.unusedWarning(), '[Warning] One or more build-args [UNUSED] were not consumed\n');
  });
});

describe('formats', () => {
  it('writes Go values as dockerd records them', () => {
    assert.equal(goQuoteList(['/bin/sh', '-c', 'echo "hi"']), '["/bin/sh" "-c" "echo \\"hi\\""]');
    assert.equal(goDuration(30e9), '30s');
    assert.equal(goDuration(90e9), '1m30s');
    assert.equal(goDuration(0), '0s');
    assert.equal(parseGoDuration('1m30s'), 90e9);
    assert.equal(parseGoDuration('500ms'), 5e8);
    assert.throws(() => parseGoDuration('5x'), /invalid duration/);
  });
});
