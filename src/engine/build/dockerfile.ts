/**
 * Dockerfiles as Docker's legacy builder reads them (moby's buildkit/frontend/dockerfile parser,
 * instructions and shell lexer): pure, no file system.
 *
 *   text ──parseDockerfile──▶ Instruction[] (logical lines: directives, continuations, comments)
 *        ──planBuild──▶ BuildPlan: global ARGs + stages, each a FROM and typed commands
 *   words ──ShellLex.processWord(s)──▶ variables substituted, quotes and escapes removed
 *
 * Why a parser of our own rather than an npm one: `dockerfile-ast` (the VS Code Docker
 * extension's) is an editor AST of ranges; it keeps comment lines found inside a continuation in
 * an instruction's text (Docker drops them) and gives no Docker-exact "original" line for the
 * `Step N/M :` output; `docker-file-parser` ignores the escape directive and splits continuations
 * with comments into bogus instructions. Neither has Docker's shell-word lexer, which variable
 * substitution needs anyway. Docker's line grammar is small: the `# escape=` directive, the
 * escape character ending a line, comments and empty lines inside continuations, JSON (exec) vs
 * shell form, flags (`--from=`), `KEY=value` pairs and the old `KEY value` form. Heredocs
 * (BuildKit only) are not supported.
 */
import { goDuration, parseGoDuration } from '../../common/duration.js';
import { InvalidArgumentError } from '../../common/errors.js';

/** A logical line of a Dockerfile. */
export interface Instruction {
  /** Upper-case keyword ("RUN"). */
  keyword: string;
  /** The line as written (continuations joined), for `Step N/M : <original>`. */
  original: string;
  /** 1-based line where it starts; none for a change of commit or import (errors then name no line). */
  line?: number;
  /** Leading `--name=value` flags, as written. */
  flags: string[];
  /** The text after the keyword and flags. */
  rest: string;
}

/** A parse or plan error as dockerd words it: "dockerfile parse error line N: ...". */
export class DockerfileError extends InvalidArgumentError {
  constructor(message: string, line?: number) {
    super(line !== undefined ? `dockerfile parse error line ${line}: ${message}` : message);
  }
}

// ---- lines -----------------------------------------------------------------------------------

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;

/** The escape character from the `# escape=` directive at the top (default "\"). */
export function escapeDirective(text: string): string {
  for (const raw of text.replace(/^\uFEFF/, '').split('\n')) {
    const m = DIRECTIVE.exec(raw.replace(/\r$/, '').trim());
    if (!m) break;
    if (m[1]!.toLowerCase() === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw new DockerfileError(`invalid escape token '${m[2]}' does not match ` + '` or \\');
      return m[2]!;
    }
  }
  return '\\';
}

/** Splits a Dockerfile into logical lines (moby's parser.Parse). */
export function parseDockerfile(text: string): { escape: string; instructions: Instruction[] } {
  const escape = escapeDirective(text);
  const continuation = new RegExp(`\\${escape}[ \\t]*$`);
  const lines = text.replace(/^\uFEFF/, '').split('\n').map((l) => l.replace(/\r$/, ''));
  const isComment = (l: string): boolean => /^[ \t]*#/.test(l);
  const out: Instruction[] = [];
  let i = 0;
  while (i < lines.length) {
    const first = lines[i]!.replace(/^[ \t]+/, '');
    const start = ++i;
    if (first === '' || first.startsWith('#')) continue;
    let line = first;
    let more = continuation.test(line);
    if (more) line = line.replace(continuation, '');
    while (more && i < lines.length) {
      const next = lines[i++]!;
      if (isComment(next)) continue;
      if (next.trim() === '') continue; // an empty continuation line (Docker warns, then goes on)
      more = continuation.test(next);
      line += more ? next.replace(continuation, '') : next;
    }
    if (line.trim() === '') continue;
    out.push(splitInstruction(line, start));
  }
  return { escape, instructions: out };
}

function splitInstruction(line: string, lineNo: number): Instruction {
  const trimmed = line.trim();
  const m = /^(\S+)(?:[ \t\v\f\r]+([\s\S]*))?$/.exec(trimmed)!;
  const keyword = m[1]!.toUpperCase();
  const { flags, rest } = extractFlags(m[2] ?? '');
  return { keyword, original: trimmed, line: lineNo, flags, rest };
}

/** Leading `--flag[=value]` words (moby's extractBuilderFlags); `--` ends them. */
function extractFlags(text: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let s = text;
  for (;;) {
    s = s.replace(/^[ \t]+/, '');
    if (!s.startsWith('--')) break;
    // One word, quotes allowed inside it.
    let word = '';
    let j = 0;
    let quote = '';
    for (; j < s.length; j++) {
      const ch = s[j]!;
      if (quote) {
        if (ch === quote) quote = '';
        else word += ch;
        continue;
      }
      if (ch === '"' || ch === "'") {
        quote = ch;
        continue;
      }
      if (ch === ' ' || ch === '\t') break;
      word += ch;
    }
    s = s.slice(j);
    if (word === '--') break;
    flags.push(word);
  }
  return { flags, rest: s.replace(/[ \t]+$/, '') };
}

/** A JSON array of strings (exec form), or undefined when the text is not one (shell form). */
export function parseJsonArgs(rest: string): string[] | undefined {
  if (!rest.trimStart().startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(rest);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) return undefined;
  return parsed as string[];
}

/**
 * Whitespace-separated words, quotes and escapes kept (moby's parseWords): `a="b c" d` is
 * [`a="b c"`, `d`]. The lexer removes the quotes later.
 */
export function splitWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote = '';
  let blank = true;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i]!;
    if (blank) {
      if (/\s/.test(ch)) continue;
      blank = false;
    }
    if (/\s/.test(ch) && quote === '') {
      words.push(word);
      word = '';
      blank = true;
      continue;
    }
    if (ch === escape && i + 1 < rest.length) {
      word += ch + rest[++i]!;
      continue;
    }
    if (quote === '' && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = '';
    word += ch;
  }
  if (!blank) words.push(word);
  return words;
}

/** `KEY=value ...` or the old `KEY value with spaces` (moby's parseNameVal); raw words. */
export function parseKeyValues(rest: string, keyword: string, escape: string, line: number | undefined): Array<[string, string]> {
  const words = splitWords(rest, escape);
  if (words.length === 0) throw new DockerfileError(`${keyword} requires at least one argument`, line);
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]+)$/.exec(rest.trim());
    if (!m) throw new DockerfileError(`${keyword} must have two arguments`, line);
    return [[m[1]!, m[2]!]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw new DockerfileError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`, line);
    if (eq === 0) throw new DockerfileError(`${keyword} names can not be blank`, line);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

// ---- the shell-word lexer ---------------------------------------------------------------------

export type Env = ReadonlyMap<string, string>;

/**
 * moby's shell.Lex: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`,
 * `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`; single quotes literal, double quotes with `$` and
 * escapes of `"`, `$` and the escape character; the escape character outside quotes takes the
 * next character literally.
 */
export class ShellLex {
  constructor(private readonly escape = '\\') {}

  /** One word: quotes removed, variables substituted, white space kept. */
  processWord(word: string, env: Env): string {
    return new Scan(word, env, this.escape).process().text;
  }

  /** Words split on unquoted white space (a variable's value is split too, as in a shell). */
  processWords(text: string, env: Env): string[] {
    return new Scan(text, env, this.escape).process().words;
  }
}

class Words {
  readonly list: string[] = [];
  private word = '';
  private inWord = false;
  addChar(ch: string): void {
    if (/\s/.test(ch)) {
      if (this.inWord) {
        this.list.push(this.word);
        this.word = '';
        this.inWord = false;
      }
      return;
    }
    this.addRaw(ch);
  }
  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  done(): string[] {
    if (this.inWord) this.list.push(this.word);
    return this.list;
  }
}

class Scan {
  private pos = 0;
  constructor(
    private readonly src: string,
    private readonly env: Env,
    private readonly escape: string,
  ) {}

  private peek(): string | undefined {
    return this.src[this.pos];
  }
  private next(): string | undefined {
    return this.src[this.pos++];
  }

  process(): { text: string; words: string[] } {
    return this.until(undefined);
  }

  private until(stop: string | undefined): { text: string; words: string[] } {
    let text = '';
    const words = new Words();
    while (this.peek() !== undefined) {
      const ch = this.peek()!;
      if (stop !== undefined && ch === stop) {
        this.next();
        return { text, words: words.done() };
      }
      if (ch === "'" || ch === '"' || ch === '$') {
        const part = ch === "'" ? this.single() : ch === '"' ? this.double() : this.dollar();
        text += part;
        if (ch === '$') words.addString(part);
        else words.addRaw(part);
        continue;
      }
      let c = this.next()!;
      if (c === this.escape) {
        const escaped = this.next();
        if (escaped === undefined) break;
        c = escaped;
        words.addRaw(c);
      } else words.addChar(c);
      text += c;
    }
    if (stop !== undefined) throw new InvalidArgumentError(`unexpected end of statement while looking for matching ${stop}`);
    return { text, words: words.done() };
  }

  private single(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new InvalidArgumentError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out;
      out += ch;
    }
  }

  private double(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new InvalidArgumentError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      let c = this.next()!;
      if (c === this.escape) {
        const p = this.peek();
        if (p === undefined) continue;
        if (p === '"' || p === '$' || p === this.escape) c = this.next()!;
      }
      out += c;
    }
  }

  private name(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) break;
      if (name === '' && /[0-9]/.test(ch)) {
        while (this.peek() !== undefined && /[0-9]/.test(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && '@*#?-$!0'.includes(ch)) return this.next()!;
      if (!/[\p{L}\p{N}_]/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }

  private dollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.name();
      return name === '' ? '$' : (this.env.get(name) ?? '');
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new InvalidArgumentError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new InvalidArgumentError('syntax error: bad substitution');
    const name = this.name();
    const ch = this.next();
    if (ch === '}') return this.env.get(name) ?? '';
    if (ch === undefined) throw new InvalidArgumentError("syntax error: missing '}'");
    const colon = ch === ':';
    const modifier = colon ? this.next() : ch;
    if (modifier === undefined || !'-+?'.includes(modifier)) throw new InvalidArgumentError(`unsupported modifier (${modifier ?? ''}) in substitution`);
    let word: string;
    try {
      word = this.until('}').text;
    } catch (err) {
      if (this.peek() === undefined) throw new InvalidArgumentError("syntax error: missing '}'");
      throw err;
    }
    const value = this.env.get(name);
    const set = value !== undefined && (!colon || value !== '');
    switch (modifier) {
      case '-':
        return set ? value! : word;
      case '+':
        return set ? word : colon ? (value ?? '') : '';
      default:
        if (value === undefined) throw new InvalidArgumentError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (colon && value === '') throw new InvalidArgumentError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
    }
  }
}

// ---- typed commands ---------------------------------------------------------------------------

/** A command line in exec (JSON) or shell form. */
export interface CommandLine {
  args: string[];
  /** Shell form: `args` is one string, run through the SHELL. */
  shell: boolean;
}

export interface HealthcheckSpec {
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export type Command = { ins: Instruction } & (
  | { kind: 'RUN' | 'CMD' | 'ENTRYPOINT'; line: CommandLine }
  | { kind: 'SHELL'; shell: string[] }
  | { kind: 'ENV' | 'LABEL'; pairs: Array<[string, string]> }
  | { kind: 'ARG'; args: Array<{ key: string; value?: string }> }
  | { kind: 'COPY' | 'ADD'; sources: string[]; dest: string; from?: string; chown?: string; chmod?: string }
  | { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL' | 'MAINTAINER'; value: string }
  | { kind: 'EXPOSE' | 'VOLUME'; values: string[] }
  | { kind: 'HEALTHCHECK'; health: HealthcheckSpec }
  | { kind: 'ONBUILD'; expression: string }
);

export interface Stage {
  /** 0-based position, which `COPY --from=N` names. */
  index: number;
  /** `AS name`, lower-cased as Docker does. */
  name?: string;
  /** The image, as written (substituted with the global ARGs at build time). */
  base: string;
  platform?: string;
  from: Instruction;
  commands: Command[];
}

export interface BuildPlan {
  escape: string;
  /** ARGs before the first FROM: usable in FROM lines. */
  metaArgs: Array<Command & { kind: 'ARG' }>;
  stages: Stage[];
}

const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  COPY: ['from', 'chown', 'chmod', 'link'],
  ADD: ['chown', 'chmod', 'link'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

const KEYWORDS = new Set(['FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'ENV', 'LABEL', 'ARG', 'COPY', 'ADD', 'WORKDIR', 'USER', 'STOPSIGNAL', 'MAINTAINER', 'EXPOSE', 'VOLUME', 'HEALTHCHECK', 'ONBUILD']);

const BUILDKIT_FLAGS = new Set(['mount', 'network', 'security', 'link', 'parents', 'exclude', 'keep-git-dir', 'checksum']);

/** `--name=value` flags, checked against what the instruction takes (moby's BFlags). */
function flagMap(ins: Instruction): Map<string, string> {
  const allowed = FLAGS[ins.keyword] ?? [];
  const out = new Map<string, string>();
  for (const f of ins.flags) {
    const body = f.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    // The legacy builder's words for what only BuildKit has (RUN --mount, --network, --security; COPY --link, ...).
    if (!allowed.includes(name) && BUILDKIT_FLAGS.has(name)) throw new DockerfileError(`the --${name} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`, ins.line);
    if (!allowed.includes(name)) throw new DockerfileError(`Unknown flag: ${name}`, ins.line);
    if (out.has(name)) throw new DockerfileError(`Duplicate flag specified: ${name}`, ins.line);
    out.set(name, eq < 0 ? '' : body.slice(eq + 1));
  }
  return out;
}

function commandLine(rest: string): CommandLine {
  const json = parseJsonArgs(rest);
  // An empty shell form has no command string: `CMD` alone is the shell by itself, as in moby.
  return json ? { args: json, shell: false } : { args: rest.trim() === '' ? [] : [rest], shell: true };
}

export { goDuration, parseGoDuration };

function healthcheck(ins: Instruction): HealthcheckSpec {
  const flags = flagMap(ins);
  const words = ins.rest.trim().split(/\s+/);
  const type = (words[0] ?? '').toUpperCase();
  if (type === 'NONE') {
    if (words.length > 1 || flags.size > 0) throw new DockerfileError('HEALTHCHECK NONE takes no arguments', ins.line);
    return { test: ['NONE'] };
  }
  if (type !== 'CMD') throw new DockerfileError(`Unknown type "${type}" in HEALTHCHECK (try CMD)`, ins.line);
  const cmdRest = ins.rest.trim().slice(3).trim();
  if (cmdRest === '') throw new DockerfileError('Missing command after HEALTHCHECK CMD', ins.line);
  const line = commandLine(cmdRest);
  const spec: HealthcheckSpec = { test: line.shell ? ['CMD-SHELL', line.args[0]!] : ['CMD', ...line.args] };
  const duration = (name: string, min: number): number | undefined => {
    const v = flags.get(name);
    if (v === undefined || v === '') return undefined;
    let d: number;
    try {
      d = parseGoDuration(v);
    } catch (err) {
      throw new DockerfileError((err as Error).message, ins.line);
    }
    if (d !== 0 && d < min) throw new DockerfileError(`Interval "${name}" cannot be less than ${min / 1e6}ms`, ins.line);
    return d;
  };
  const interval = duration('interval', 1e6);
  const timeout = duration('timeout', 1e6);
  const startPeriod = duration('start-period', 1e6);
  const startInterval = duration('start-interval', 1e6);
  if (interval !== undefined) spec.interval = interval;
  if (timeout !== undefined) spec.timeout = timeout;
  if (startPeriod !== undefined) spec.startPeriod = startPeriod;
  if (startInterval !== undefined) spec.startInterval = startInterval;
  const retries = flags.get('retries');
  if (retries !== undefined && retries !== '') {
    const n = Number(retries);
    if (!Number.isInteger(n)) throw new DockerfileError(`strconv.ParseInt: parsing "${retries}": invalid syntax`, ins.line);
    if (n < 0) throw new DockerfileError('--retries cannot be negative', ins.line);
    spec.retries = n;
  }
  return spec;
}

/** One instruction (not FROM) as a typed command. */
export function toCommand(ins: Instruction, escape: string): Command {
  const { keyword: k, rest, line } = ins;
  if (!KEYWORDS.has(k)) throw new DockerfileError(`unknown instruction: ${k}`, line);
  if (k !== 'HEALTHCHECK') flagMap(ins);
  const need = (): void => {
    if (rest.trim() === '') throw new DockerfileError(`${k} requires at least one argument`, line);
  };
  switch (k) {
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT':
      if (k === 'RUN') need();
      return { ins, kind: k, line: commandLine(rest) };
    case 'SHELL': {
      const json = parseJsonArgs(rest);
      if (!json) throw new DockerfileError('SHELL requires the arguments to be in JSON form', line);
      if (json.length === 0) throw new DockerfileError('SHELL requires at least one argument', line);
      return { ins, kind: 'SHELL', shell: json };
    }
    case 'ENV':
    case 'LABEL':
      return { ins, kind: k, pairs: parseKeyValues(rest, k, escape, line) };
    case 'ARG': {
      const words = splitWords(rest, escape);
      if (words.length === 0) throw new DockerfileError('ARG requires at least one argument', line);
      return {
        ins,
        kind: 'ARG',
        args: words.map((w) => {
          const eq = w.indexOf('=');
          if (eq === 0) throw new DockerfileError('ARG names can not be blank', line);
          return eq < 0 ? { key: w } : { key: w.slice(0, eq), value: w.slice(eq + 1) };
        }),
      };
    }
    case 'COPY':
    case 'ADD': {
      const flags = flagMap(ins);
      const json = parseJsonArgs(rest);
      const words = json ?? splitWords(rest, escape);
      if (words.length < 2) throw new DockerfileError(`${k} requires at least two arguments, but only one was provided. Destination could not be determined`, line);
      const from = flags.get('from');
      return {
        ins,
        kind: k,
        sources: words.slice(0, -1),
        dest: words.at(-1)!,
        ...(from !== undefined ? { from } : {}),
        ...(flags.get('chown') ? { chown: flags.get('chown') } : {}),
        ...(flags.get('chmod') ? { chmod: flags.get('chmod') } : {}),
      };
    }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      if (rest.trim() === '') throw new DockerfileError(`${k} requires exactly one argument`, line);
      return { ins, kind: k, value: rest.trim() };
    case 'EXPOSE':
    case 'VOLUME': {
      need();
      const json = k === 'VOLUME' ? parseJsonArgs(rest) : undefined;
      if (json?.length === 0) throw new DockerfileError(`${k} requires at least one argument`, line);
      return { ins, kind: k, values: json ?? splitWords(rest, escape) };
    }
    case 'HEALTHCHECK':
      need();
      return { ins, kind: 'HEALTHCHECK', health: healthcheck(ins) };
    case 'ONBUILD': {
      need();
      const trigger = rest.trim().split(/\s+/)[0]!.toUpperCase();
      if (trigger === 'ONBUILD') throw new DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", line);
      if (trigger === 'FROM' || trigger === 'MAINTAINER') throw new DockerfileError(`${trigger} isn't allowed as an ONBUILD trigger`, line);
      return { ins, kind: 'ONBUILD', expression: ins.original.replace(/^\s*ONBUILD\s*/i, '') };
    }
  }
  throw new DockerfileError(`unknown instruction: ${k}`, line);
}

/**
 * The build plan: global ARGs, then stages (cut after `target`, if given). Every instruction is
 * checked here, so a bad Dockerfile fails before anything runs.
 */
export function planBuild(text: string, opts: { target?: string; name?: string } = {}): BuildPlan {
  const { escape, instructions } = parseDockerfile(text);
  if (instructions.length === 0) throw new DockerfileError(`the Dockerfile (${opts.name ?? 'Dockerfile'}) cannot be empty`);
  const plan: BuildPlan = { escape, metaArgs: [], stages: [] };
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const flags = flagMap(ins);
      const words = splitWords(ins.rest, escape);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toUpperCase() === 'AS')) {
        throw new DockerfileError('FROM requires either one or three arguments', ins.line);
      }
      const name = words[2]?.toLowerCase();
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw new DockerfileError(`invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`, ins.line);
        if (plan.stages.some((s) => s.name === name)) throw new DockerfileError(`duplicate name ${name}`, ins.line);
      }
      plan.stages.push({
        index: plan.stages.length,
        ...(name !== undefined ? { name } : {}),
        base: words[0]!,
        ...(flags.get('platform') ? { platform: flags.get('platform') } : {}),
        from: ins,
        commands: [],
      });
      continue;
    }
    const command = toCommand(ins, escape);
    const stage = plan.stages.at(-1);
    if (stage) stage.commands.push(command);
    else if (command.kind === 'ARG') plan.metaArgs.push(command);
    else throw new DockerfileError('no build stage in current context'); // dockerd names no line
  }
  if (plan.stages.length === 0) throw new DockerfileError('no build stage in current context');
  if (opts.target) {
    const at = plan.stages.findIndex((s) => s.name === opts.target!.toLowerCase());
    if (at < 0) throw new InvalidArgumentError(`failed to reach build target ${opts.target} in Dockerfile`);
    plan.stages = plan.stages.slice(0, at + 1);
  }
  return plan;
}

/** The `Step N/M` count: global ARGs, and each stage's FROM and commands. */
export function stepCount(plan: BuildPlan): number {
  return plan.metaArgs.length + plan.stages.reduce((n, s) => n + 1 + s.commands.length, 0);
}

// ---- build arguments ---------------------------------------------------------------------------

/** Proxy variables every build may set without an ARG (moby's builtinAllowedBuildArgs). */
export const BUILTIN_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/**
 * moby's BuildArgs: values from the request (`buildargs`), the global ARGs' defaults, and the
 * ARGs a stage declared; which were referenced (for the "not consumed" warning).
 */
export class BuildArgs {
  private readonly meta = new Map<string, string | undefined>();
  private readonly referenced = new Set<string>();

  constructor(private readonly fromOptions: Readonly<Record<string, string | null>>) {}

  /** A global ARG (before the first FROM). */
  addMeta(key: string, value: string | undefined): void {
    this.meta.set(key, value);
    this.referenced.add(key);
  }

  /** What the global ARGs give FROM lines: request values over defaults. */
  metaEnv(): Map<string, string> {
    const env = new Map<string, string>();
    for (const [key, def] of this.meta) {
      const v = this.fromOptions[key] ?? def;
      if (v !== undefined && v !== null) env.set(key, v);
    }
    return env;
  }

  /** A stage's view: ARGs it declares, on top of the global ones. */
  stage(): StageArgs {
    return new StageArgs(this.fromOptions, this.meta, this.referenced);
  }

  /** moby's WarnOnUnusedBuildArgs. */
  unusedWarning(): string | undefined {
    const left = Object.keys(this.fromOptions)
      .filter((k) => !BUILTIN_ARGS.has(k) && !this.referenced.has(k))
      .sort();
    return left.length ? `[Warning] One or more build-args [${left.join(' ')}] were not consumed\n` : undefined;
  }
}

export class StageArgs {
  private readonly allowed = new Map<string, string | undefined>();

  constructor(
    private readonly fromOptions: Readonly<Record<string, string | null>>,
    private readonly meta: ReadonlyMap<string, string | undefined>,
    private readonly referenced: Set<string>,
  ) {}

  declare(key: string, value: string | undefined): void {
    this.allowed.set(key, value);
    this.referenced.add(key);
  }

  private value(key: string): string | undefined {
    const given = this.fromOptions[key];
    if (given !== undefined && given !== null) return given;
    const def = this.allowed.get(key);
    if (def !== undefined) return def;
    const m = this.meta.get(key);
    return m ?? undefined;
  }

  /** Declared ARGs with a value, plus proxy variables the request gave (moby's GetAllAllowed). */
  allowedValues(): Map<string, string> {
    const out = new Map<string, string>();
    for (const key of this.allowed.keys()) {
      const v = this.value(key);
      if (v !== undefined) out.set(key, v);
    }
    for (const [key, v] of Object.entries(this.fromOptions)) if (BUILTIN_ARGS.has(key) && v !== null && !out.has(key)) out.set(key, v);
    return out;
  }

  /** `KEY=value` of the allowed args that ENV does not set, sorted (a RUN's extra environment). */
  filterAllowed(env: readonly string[]): string[] {
    const set = new Set(env.map((e) => e.split('=', 1)[0]));
    return [...this.allowedValues()]
      .filter(([k]) => !set.has(k))
      .map(([k, v]) => `${k}=${v}`)
      .sort();
  }

  /** Whether a RUN's command line records the argument (builtin proxy args only if declared). */
  recorded(key: string): boolean {
    return !BUILTIN_ARGS.has(key) || this.allowed.has(key);
  }
}

/** The substitution environment: ENV over allowed build args. */
export function substitutionEnv(env: readonly string[], args: StageArgs): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of args.allowedValues()) out.set(k, v);
  for (const e of env) {
    const eq = e.indexOf('=');
    out.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return out;
}

// ---- formatting as dockerd records it ---------------------------------------------------------

/** Go's %q of a []string: `["a" "b c"]`. */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

