/**
 * A subset of Go's text/template, as docker's `--format` uses it: `{{.Field}}`, `{{.A.B}}`,
 * `{{json .}}`, pipes `{{.X | json}}`, `{{range}}`/`{{if}}`/`{{with}}` with `else` and `end`,
 * variables (`$`, `$v := ...`, `range $k, $v := ...`), `{{- -}}` trimming, and the functions
 * docker adds (json, join, split, lower, upper, title, truncate, pad, println) plus Go's
 * builtins (index, len, printf, print, eq, ne, lt, le, gt, ge, and, or, not).
 * No npm package implements Go templates with Go's printing rules, hence this file.
 */

export class TemplateError extends Error {}

/** A template that does not parse, in Go's words: "template: :LINE: message". */
export class TemplateParseError extends TemplateError {}

/** A template that fails on a value: "template: :LINE:COL: executing "" at <NODE>: message". */
export class TemplateExecError extends TemplateError {}

type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if' | 'with'; pipe: Pipe; body: Node[]; else: Node[] }
  | { t: 'range'; pipe: Pipe; body: Node[]; else: Node[] };

interface Pipe {
  decl: string[];
  cmds: Operand[][];
}

type Operand =
  | { k: 'field'; base: 'dot' | string; path: string[]; text?: string; where?: string } // base: 'dot' or a variable name ($, $x); where: "LINE:COL" in the template
  | { k: 'lit'; v: unknown }
  | { k: 'fn'; name: string }
  | { k: 'sub'; pipe: Pipe; path: string[] };

// ---- lexing ----

/** The tokens of an action; `offsets` gets each one's offset in src (for Go's error positions). */
function tokenize(src: string, offsets: number[] = []): string[] {
  const toks: string[] = [];
  let i = 0;
  const add = (tok: string): void => {
    toks.push(tok);
    offsets.push(i);
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      add(src.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError('unterminated raw quoted string');
      add(src.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === ':' && src[i + 1] === '=') {
      add(':=');
      i += 2;
      continue;
    }
    if ('|(),='.includes(c)) {
      add(c);
      i++;
      continue;
    }
    let j = i;
    while (j < src.length && !/[\s|(),"`]/.test(src[j]) && !(src[j] === ':' && src[j + 1] === '=')) j++;
    // A field chain may follow a closing parenthesis: (.A).B is lexed as ")" then ".B".
    add(src.slice(i, j));
    i = j;
  }
  return toks;
}

function parseString(tok: string): string {
  if (tok.startsWith('`')) return tok.slice(1, -1);
  return JSON.parse(tok.replace(/\\'/g, "'")) as string;
}

class PipeParser {
  private i = 0;
  /** `offsets`: each token's offset from `base`; `where` turns an offset in the template into "LINE:COL". */
  constructor(
    private readonly toks: string[],
    private readonly offsets: number[] = [],
    private readonly base = 0,
    private readonly where: (pos: number) => string = () => '',
  ) {}

  done(): boolean {
    return this.i >= this.toks.length;
  }

  pipe(): Pipe {
    const decl: string[] = [];
    // `$x := ...` or `$k, $v := ...`
    const save = this.i;
    if (this.toks[this.i]?.startsWith('$')) {
      const names = [this.toks[this.i]];
      let j = this.i + 1;
      if (this.toks[j] === ',' && this.toks[j + 1]?.startsWith('$')) {
        names.push(this.toks[j + 1]);
        j += 2;
      }
      if (this.toks[j] === ':=' || this.toks[j] === '=') {
        decl.push(...names);
        this.i = j + 1;
      } else this.i = save;
    }
    const cmds: Operand[][] = [[]];
    while (!this.done() && this.toks[this.i] !== ')') {
      const tok = this.toks[this.i];
      if (tok === '|') {
        if (cmds[cmds.length - 1].length === 0) throw new TemplateError('missing command before |');
        cmds.push([]);
        this.i++;
        continue;
      }
      cmds[cmds.length - 1].push(this.operand());
    }
    if (cmds[cmds.length - 1].length === 0) throw new TemplateError('missing value for command');
    return { decl, cmds };
  }

  private operand(): Operand {
    const at = this.base + (this.offsets[this.i] ?? 0);
    const tok = this.toks[this.i++];
    if (tok === '(') {
      const pipe = this.pipe();
      if (this.toks[this.i++] !== ')') throw new TemplateError('unclosed left paren');
      let path: string[] = [];
      if (this.toks[this.i]?.startsWith('.') && this.toks[this.i] !== '.') path = this.toks[this.i++].split('.').slice(1);
      return { k: 'sub', pipe, path };
    }
    if (tok.startsWith('"') || tok.startsWith('`')) return { k: 'lit', v: parseString(tok) };
    if (tok === '.') return { k: 'field', base: 'dot', path: [] };
    if (tok.startsWith('.')) {
      // Go places a chain (.A.B) at its second field.
      const second = tok.indexOf('.', 1);
      return { k: 'field', base: 'dot', path: tok.split('.').slice(1), text: tok, where: this.where(at + (second > 0 ? second : 0)) };
    }
    if (tok.startsWith('$')) {
      const [name, ...path] = tok.split('.');
      return { k: 'field', base: name, path };
    }
    if (tok === 'true' || tok === 'false') return { k: 'lit', v: tok === 'true' };
    if (tok === 'nil') return { k: 'lit', v: null };
    if (/^-?\d+(\.\d+)?$/.test(tok)) return { k: 'lit', v: Number(tok) };
    if (/^[A-Za-z_]\w*$/.test(tok)) {
      // As Go's parser: a function must exist when the template is parsed.
      if (!Object.hasOwn(FUNCS, tok)) throw new TemplateError(`function "${tok}" not defined`);
      return { k: 'fn', name: tok };
    }
    throw new TemplateError(`unexpected "${tok}" in command`);
  }
}

function parsePipe(src: string, base = 0, where?: (pos: number) => string): Pipe {
  const offsets: number[] = [];
  const p = new PipeParser(tokenize(src, offsets), offsets, base, where);
  const pipe = p.pipe();
  if (!p.done()) throw new TemplateError(`unexpected ")" in command`);
  return pipe;
}

// ---- parsing the template ----

/** `at`: the action's offset in the template; `line`: the line its "{{" is on. */
type Item = { t: 'text'; s: string } | { t: 'act'; s: string; at: number; line: number };

const lineOf = (src: string, pos: number): number => src.slice(0, pos).split('\n').length;

function lex(src: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      items.push({ t: 'text', s: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start++;
    }
    if (text) items.push({ t: 'text', s: text });
    const close = src.indexOf('}}', start);
    if (close < 0) throw new TemplateParseError(`template: :${lineOf(src, open)}: unclosed action`);
    let inner = src.slice(start, close);
    i = close + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      const m = /^\s*/.exec(src.slice(i));
      i += m ? m[0].length : 0;
    }
    const trimmed = inner.trim();
    if (!trimmed.startsWith('/*')) items.push({ t: 'act', s: trimmed, at: start + (inner.length - inner.trimStart().length), line: lineOf(src, open) });
  }
  return items;
}

function parseTemplate(src: string): Node[] {
  const items = lex(src);
  const where = (at: number): string => {
    const before = src.slice(0, at);
    return `${before.split('\n').length}:${at - (before.lastIndexOf('\n') + 1)}`;
  };
  let pos = 0;
  let line = 1;
  /** An action's pipeline, `text` starting at offset `at`; its errors name the action's line. */
  const pipeAt = (text: string, at: number): Pipe => parsePipe(text, at, where);
  type Act = Extract<Item, { t: 'act' }>;
  // Parses nodes until an `end` or `else` at this level; returns the terminator.
  const block = (): { nodes: Node[]; term: Act | undefined } => {
    const nodes: Node[] = [];
    while (pos < items.length) {
      const it = items[pos++]!;
      if (it.t === 'text') {
        nodes.push({ t: 'text', s: it.s });
        continue;
      }
      line = it.line;
      const m = /^(\w+)\b\s*([\s\S]*)$/.exec(it.s);
      const kw = m?.[1];
      if (kw === 'end' || kw === 'else') return { nodes, term: it };
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        nodes.push(control(kw, m![2]!, it.at + it.s.length - m![2]!.length));
        continue;
      }
      if (kw === 'define' || kw === 'template' || kw === 'block') throw new TemplateError(`${kw} is not supported`);
      nodes.push({ t: 'action', pipe: pipeAt(it.s, it.at) });
    }
    return { nodes, term: undefined };
  };
  const control = (kw: 'if' | 'with' | 'range', pipeSrc: string, at: number): Node => {
    const pipe = pipeAt(pipeSrc, at);
    const body = block();
    let elseNodes: Node[] = [];
    if (body.term === undefined) {
      line = src.split('\n').length;
      throw new TemplateError('unexpected EOF');
    }
    const term = body.term.s;
    if (term.startsWith('else')) {
      const rest = term.slice(4).trim();
      if (rest.startsWith('if ') || rest.startsWith('with ')) {
        // `else if X` nests a new if whose `end` closes both.
        const k = rest.startsWith('if ') ? 'if' : 'with';
        const cond = rest.slice(k.length + 1);
        elseNodes = [control(k, cond, body.term.at + term.length - cond.length)];
      } else {
        const e = block();
        if (e.term?.s !== 'end') throw new TemplateError(`expected end; found ${e.term ? e.term.s : 'EOF'}`);
        elseNodes = e.nodes;
      }
    } else if (term !== 'end') throw new TemplateError(`unexpected ${term}`);
    return { t: kw, pipe, body: body.nodes, else: elseNodes } as Node;
  };
  try {
    const { nodes, term } = block();
    if (term !== undefined) throw new TemplateError(`unexpected {{${term.s}}}`);
    return nodes;
  } catch (err) {
    if (err instanceof TemplateError && !(err instanceof TemplateParseError)) throw new TemplateParseError(`template: :${line}: ${err.message}`);
    throw err;
  }
}

// ---- values as Go prints them ----

/** Go's fmt %v of a JSON-ish value: maps as map[k:v] (sorted keys), slices as [a b]. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${goString((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function sprintf(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([svdqtfx%])/g, (_m, flags: string, width: string, prec: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s: string;
    if (verb === 'q') s = JSON.stringify(typeof a === 'string' ? a : goString(a));
    else if (verb === 'f') s = Number(a).toFixed(prec ? Number(prec) : 6);
    else if (verb === 'x') s = typeof a === 'number' ? a.toString(16) : Buffer.from(String(a)).toString('hex');
    else s = goString(a);
    if (verb === 's' && prec) s = s.slice(0, Number(prec));
    const w = Number(width || 0);
    return flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ');
  });
}

const cmp = (a: unknown, b: unknown): number => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0);

type Fn = (...args: unknown[]) => unknown;

export const FUNCS: Record<string, Fn> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  lower: (s) => goString(s).toLowerCase(),
  upper: (s) => goString(s).toUpperCase(),
  title: (s) => goString(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (list, sep) => (Array.isArray(list) ? list.map(goString).join(String(sep)) : goString(list)),
  split: (s, sep) => goString(s).split(String(sep)),
  truncate: (s, n) => {
    const str = goString(s);
    return str.length > Number(n) ? str.slice(0, Number(n)) : str;
  },
  pad: (s, l, r) => ' '.repeat(Number(l)) + goString(s) + ' '.repeat(Number(r)),
  println: (...a) => a.map(goString).join(' ') + '\n',
  print: (...a) => a.map(goString).join(''),
  printf: (f, ...a) => sprintf(String(f), a),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  // A key the map lacks gives "", as Go's index on the string maps docker's structs have (labels).
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) cur = cur == null ? undefined : (cur as Record<string, unknown>)[String(k)];
    return cur === undefined ? '' : cur;
  },
  eq: (a, ...bs) => bs.some((b) => a === b || (a != null && b != null && goString(a) === goString(b) && typeof a === typeof b)),
  ne: (a, b) => a !== b,
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  not: (a) => !truthy(a),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
};

// ---- evaluation ----

type Scope = Map<string, unknown>;

export interface ExecOptions {
  /**
   * Whether a field the value does not have is an error, as on docker's formatter contexts
   * (rows: "can't evaluate field X in type *formatter.ContainerContext"), rather than
   * "<no value>", as on JSON of the API whose Go structs leave empty fields out.
   */
  strictFields?: boolean;
}

/** The Go type a row stands for, in errors about its fields (see ExecOptions.strictFields). */
export const GO_TYPE = Symbol('goType');

function field(v: unknown, path: string[], opts: ExecOptions = {}): unknown {
  let cur = v;
  for (const name of path) {
    if (cur === undefined || cur === null) throw new TemplateError(`nil pointer evaluating .${name}`);
    if (typeof cur !== 'object') throw new TemplateError(`can't evaluate field ${name} in type ${typeof cur}`);
    if (opts.strictFields && !Array.isArray(cur) && !(name in cur)) {
      throw new TemplateError(`can't evaluate field ${name} in type ${(cur as { [GO_TYPE]?: string })[GO_TYPE] ?? 'map[string]interface {}'}`);
    }
    const next = (cur as Record<string, unknown>)[name];
    cur = typeof next === 'function' ? (next as () => unknown).call(cur) : next;
  }
  return cur;
}

function evalPipe(p: Pipe, dot: unknown, scope: Scope, opts: ExecOptions): unknown {
  let result: unknown;
  p.cmds.forEach((cmd, ci) => {
    const piped = ci > 0 ? [result] : [];
    const [head, ...rest] = cmd;
    const arg = (o: Operand): unknown => {
      if (o.k === 'lit') return o.v;
      if (o.k === 'sub') return field(evalPipe(o.pipe, dot, scope, opts), o.path, opts);
      if (o.k === 'fn') return callFn(o.name, []);
      if (!scope.has(o.base) && o.base !== 'dot') throw new TemplateError(`undefined variable "${o.base}"`);
      try {
        return field(o.base === 'dot' ? dot : scope.get(o.base), o.path, opts);
      } catch (err) {
        // Go's execution errors say where: "template: :1:2: executing "" at <.Nope>: …".
        if (!(err instanceof TemplateError) || err instanceof TemplateExecError || !o.where) throw err;
        throw new TemplateExecError(`template: :${o.where}: executing "" at <${o.text}>: ${err.message}`);
      }
    };
    const callFn = (name: string, args: unknown[]): unknown => {
      const f = FUNCS[name];
      if (!f) throw new TemplateError(`function "${name}" not defined`);
      return f(...args);
    };
    if (head.k === 'fn') result = callFn(head.name, [...rest.map(arg), ...piped]);
    else if ((rest.length || piped.length) && head.k === 'field' && head.path.length > 0) {
      // A method with arguments, as docker's formatters offer ({{.Label "app"}}).
      const receiver = arg({ ...head, path: head.path.slice(0, -1) });
      const method = receiver !== null && typeof receiver === 'object' ? (receiver as Record<string, unknown>)[head.path.at(-1)!] : undefined;
      if (typeof method !== 'function') throw new TemplateError(`can't give argument to non-function .${head.path.join('.')}`);
      result = (method as Fn).call(receiver, ...rest.map(arg), ...piped);
    } else {
      if (rest.length || piped.length) throw new TemplateError(`can't give argument to non-function`);
      result = arg(head);
    }
  });
  if (p.decl.length === 1) scope.set(p.decl[0], result);
  return result;
}

function run(nodes: Node[], dot: unknown, scope: Scope, out: string[], opts: ExecOptions): void {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out.push(n.s);
        break;
      case 'action': {
        const v = evalPipe(n.pipe, dot, scope, opts);
        if (n.pipe.decl.length === 0) out.push(goString(v));
        break;
      }
      case 'if': {
        const v = evalPipe({ ...n.pipe, decl: [] }, dot, scope, opts);
        run(truthy(v) ? n.body : n.else, dot, new Map(scope), out, opts);
        break;
      }
      case 'with': {
        const v = evalPipe({ ...n.pipe, decl: [] }, dot, scope, opts);
        if (truthy(v)) run(n.body, v, new Map(scope), out, opts);
        else run(n.else, dot, new Map(scope), out, opts);
        break;
      }
      case 'range': {
        const v = evalPipe({ ...n.pipe, decl: [] }, dot, scope, opts);
        const entries: [unknown, unknown][] = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v && typeof v === 'object'
            ? Object.keys(v)
                .sort()
                .map((k) => [k, (v as Record<string, unknown>)[k]])
            : typeof v === 'number'
              ? Array.from({ length: v }, (_x, i) => [i, i])
              : [];
        if (entries.length === 0) {
          run(n.else, dot, new Map(scope), out, opts);
          break;
        }
        for (const [k, x] of entries) {
          const s = new Map(scope);
          if (n.pipe.decl.length === 1) s.set(n.pipe.decl[0], x);
          if (n.pipe.decl.length === 2) {
            s.set(n.pipe.decl[0], k);
            s.set(n.pipe.decl[1], x);
          }
          run(n.body, x, s, out, opts);
        }
        break;
      }
    }
  }
}

export interface Template {
  execute(data: unknown): string;
}

/** Parses a template once; execute() renders it for one value ($ and . are that value). */
export function parse(src: string, opts: ExecOptions = {}): Template {
  const nodes = parseTemplate(src);
  return {
    execute(data: unknown): string {
      const out: string[] = [];
      run(nodes, data, new Map([['$', data]]), out, opts);
      return out.join('');
    },
  };
}

export function render(src: string, data: unknown): string {
  return parse(src).execute(data);
}
