import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';

/**
 * Renders this project's Helm chart for tests. Helm cannot be installed on these machines (not in
 * Debian, and its npm wrappers download binaries), so this implements exactly the template subset
 * the chart uses: {{- … -}} trimming, define/include, if/else/end with `not`, .Values/.Release/.Chart
 * fields, and the functions quote, nindent, toYaml, printf (%s), trunc, trimSuffix and join. Anything
 * else throws, so the chart cannot silently drift outside what the tests render.
 */
type Value = unknown;
type Node = { text: string } | { expr: string } | { cond: string; then: Node[]; else: Node[] };

function tokenize(src: string): (string | { action: string })[] {
  const out: (string | { action: string })[] = [];
  let at = 0;
  for (const m of src.matchAll(/\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g)) {
    let text = src.slice(at, m.index);
    if (m[1] === '-') text = text.replace(/\s+$/, '');
    out.push(text, { action: m[2]! });
    at = m.index! + m[0].length;
    if (m[3] === '-') at += /^\s*/.exec(src.slice(at))![0].length;
  }
  out.push(src.slice(at));
  return out;
}

function parse(tokens: (string | { action: string })[], defines: Map<string, Node[]>): Node[] {
  let i = 0;
  const block = (): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (i < tokens.length) {
      const t = tokens[i++]!;
      if (typeof t === 'string') {
        if (t) nodes.push({ text: t });
        continue;
      }
      const a = t.action;
      if (a === 'end' || a === 'else') return { nodes, end: a };
      if (a.startsWith('define ')) {
        defines.set(JSON.parse(a.slice(7)), block().nodes);
      } else if (a.startsWith('if ')) {
        const then = block();
        const otherwise = then.end === 'else' ? block().nodes : [];
        nodes.push({ cond: a.slice(3), then: then.nodes, else: otherwise });
      } else if (a.startsWith('/*') || a.startsWith('- /*')) {
        continue;
      } else {
        nodes.push({ expr: a });
      }
    }
    return { nodes, end: 'eof' };
  };
  return block().nodes;
}

function truthy(v: Value): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

function words(command: string): string[] {
  return [...command.matchAll(/"(?:[^"\\]|\\.)*"|\S+/g)].map((m) => m[0]);
}

export class Chart {
  readonly #defines = new Map<string, Node[]>();
  readonly #templates = new Map<string, Node[]>();
  readonly chart: Record<string, Value>;
  readonly values: Record<string, Value>;

  constructor(dir: string) {
    this.chart = parseYaml(readFileSync(join(dir, 'Chart.yaml'), 'utf8'));
    this.values = parseYaml(readFileSync(join(dir, 'values.yaml'), 'utf8'));
    for (const file of readdirSync(join(dir, 'templates'))) {
      const nodes = parse(tokenize(readFileSync(join(dir, 'templates', file), 'utf8')), this.#defines);
      if (file.endsWith('.yaml')) this.#templates.set(file, nodes);
    }
  }

  #value(word: string, dot: Record<string, Value>): Value {
    if (word.startsWith('"')) return JSON.parse(word);
    if (/^-?\d+$/.test(word)) return Number(word);
    if (word === '.') return dot;
    if (!word.startsWith('.')) throw new Error(`helm-lite: unsupported term ${word}`);
    return word.slice(1).split('.').reduce<Value>((v, k) => (v as Record<string, Value> | undefined)?.[k], dot);
  }

  #call(fn: string, args: Value[], dot: Record<string, Value>): Value {
    const s = (v: Value) => (v === undefined || v === null ? '' : String(v));
    switch (fn) {
      case 'include': return this.#render(this.#defines.get(args[0] as string)!, args[1] as Record<string, Value>);
      case 'quote': return JSON.stringify(s(args[0]));
      case 'nindent': return `\n${s(args[1]).split('\n').map((l) => ' '.repeat(args[0] as number) + l).join('\n')}`;
      case 'toYaml': return stringify(args[0]).trimEnd();
      case 'printf': { let i = 1; return s(args[0]).replace(/%s/g, () => s(args[i++])); }
      case 'trunc': return s(args[1]).slice(0, args[0] as number);
      case 'trimSuffix': return s(args[1]).endsWith(s(args[0])) ? s(args[1]).slice(0, -s(args[0]).length) : s(args[1]);
      case 'join': return ((args[1] as Value[]) ?? []).map(s).join(s(args[0]));
      case 'not': return !truthy(args[0]);
      default: throw new Error(`helm-lite: unsupported function ${fn} (${JSON.stringify(dot).length} bytes of context)`);
    }
  }

  #eval(expr: string, dot: Record<string, Value>): Value {
    let piped: Value;
    expr.split(/\s*\|\s*/).forEach((command, n) => {
      const [head, ...rest] = words(command);
      const args = rest.map((w) => this.#value(w, dot));
      if (n > 0) args.push(piped);
      piped = head!.startsWith('.') || head!.startsWith('"') ? this.#value(head!, dot) : this.#call(head!, args, dot);
    });
    return piped;
  }

  #render(nodes: Node[], dot: Record<string, Value>): string {
    return nodes
      .map((n) => ('text' in n ? n.text : 'expr' in n ? String(this.#eval(n.expr, dot) ?? '') : this.#render(truthy(this.#eval(n.cond, dot)) ? n.then : n.else, dot)))
      .join('');
  }

  /** Every manifest the chart renders with `overrides` merged over values.yaml. */
  render(overrides: Record<string, Value> = {}, release = 'policyd'): Record<string, Value>[] {
    const merge = (a: Value, b: Value): Value =>
      b && typeof b === 'object' && !Array.isArray(b) && a && typeof a === 'object'
        ? Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, merge((a as Record<string, Value>)[k], (b as Record<string, Value>)[k])]))
        : b === undefined ? a : b;
    const dot = { Values: merge(this.values, overrides), Release: { Name: release }, Chart: { Name: this.chart.name, AppVersion: this.chart.appVersion } };
    const docs: Record<string, Value>[] = [];
    for (const [file, nodes] of this.#templates) {
      const text = this.#render(nodes, dot);
      for (const doc of text.split(/^---$/m)) {
        const parsed = parseYaml(doc) as Record<string, Value> | null;
        if (parsed) docs.push({ ...parsed, __template: file });
      }
    }
    return docs;
  }
}
