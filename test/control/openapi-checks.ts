// Checks of the OpenAPI document against what else describes the API: the route table (every
// route in the document, nothing else), and the examples in the Markdown docs (curl commands,
// routes named in code spans, the request and answer shapes the route tables show). Pure
// functions returning the problems found, so a test can feed them a broken table or example and
// see that they say so.
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Route } from '../../src/control/server.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };
/** The parts of an OpenAPI document the checks read. */
export interface OpenApiDoc {
  paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; schema: Schema }>; requestBody?: { content: Record<string, { schema?: Schema }> }; responses: Record<string, { content?: Record<string, { schema?: Schema }> } | { $ref: string }> }>>;
  components?: { schemas?: Record<string, Schema> };
}

const DOC_ID = 'openapi.json';

/** Routes of the table the document lacks, and operations of the document the table lacks. */
export function coverageProblems(routes: readonly Pick<Route, 'method' | 'path'>[], doc: OpenApiDoc): string[] {
  const problems: string[] = [];
  const inTable = new Set<string>();
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    inTable.add(`${r.method} ${path}`);
    if (!doc.paths[path]?.[r.method.toLowerCase()]) problems.push(`${r.method} ${r.path} is in the route table but not in the document`);
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      if (!inTable.has(`${method.toUpperCase()} ${path}`)) problems.push(`${method.toUpperCase()} ${path} is in the document but not in the route table`);
    }
  }
  return problems;
}

// ---- Examples in Markdown ----

/** A shape as the docs write one: `{"id","wsUrl"?,"rules":[…]}`; `any` for `…`, a placeholder or a literal. */
export type Shape = { object: Array<{ name: string; optional: boolean; value: Shape }>; open: boolean } | { array: Shape[] } | 'any';

/** A body or answer an example shows: JSON when it is JSON, else a shape (or why it could not be read). */
export type Shown = { json: unknown; text: string } | { shape: Shape; text: string } | { unreadable: string; text: string };

/** One example of a request (and maybe its answer) found in a Markdown file. */
export interface Example {
  where: string;
  method: string;
  /** The path as written, without the query string. */
  path: string;
  /** Query parameters; a value is null where the docs name the parameter only (`?account=&chat=`). */
  query: Array<[string, string | null]>;
  body?: Shown;
  /** A body the example names but does not show (`-d @config.json`). */
  bodyFromFile?: boolean;
  response?: Shown & { status?: number };
}

/** The API examples of a Markdown file: curl commands and routes named in code spans (those under /v1/). */
export function markdownExamples(text: string, file: string): Example[] {
  const out: Example[] = [];
  const lines = text.split('\n');
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const where = `${file}:${i + 1}`;
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!}`;
    if (/(^|\s)curl\s/.test(line)) {
      const ex = curlExample(line, where);
      if (ex) out.push(ex);
      continue;
    }
    if (!fenced) out.push(...spanExamples(line, where));
  }
  return out;
}

function curlExample(line: string, where: string): Example | null {
  const url = /https?:\/\/[^\s'"/]+(\/v1\/[^\s'"]*)/.exec(line);
  if (!url) return null;
  const data = /(?:-d|--data(?:-raw|-binary)?)\s+(?:'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+))/.exec(line);
  const raw = data ? (data[1] ?? data[2]?.replace(/\\(.)/g, '$1') ?? data[3]!) : undefined;
  const method = /(?:-X|--request)\s+([A-Z]+)/.exec(line)?.[1] ?? (data ? 'POST' : 'GET');
  const [path, query] = splitQuery(url[1]!, true);
  const ex: Example = { where, method, path, query };
  if (raw?.startsWith('@')) ex.bodyFromFile = true;
  else if (raw !== undefined) ex.body = shown(raw);
  return ex;
}

/**
 * Routes named in code spans (`GET /v1/inbox?account=&chat=`, `POST /v1/inbox/ack {"consumer", "cursor"}`),
 * with the shapes shown after them on the same line: after "body " the request, after "→ " or
 * "answers " the answer, and in a route table (a row whose first cell is the route) also a shape
 * opening a later cell. A line's shapes belong to the first route it names; in a table whose rows
 * are something else (a CLI command, a tool), routes are checked but the shapes are not theirs.
 */
function spanExamples(line: string, where: string): Example[] {
  const out: Example[] = [];
  const span = /`([^`]+)`/g;
  const tableRow = /^\s*\|/.test(line);
  const routeRow = /^\s*\|\s*`(GET|POST|PUT|DELETE) \/v1\//.test(line);
  let first: Example | undefined;
  let last = 0;
  for (let m = span.exec(line); m; m = span.exec(line)) {
    const code = m[1]!.replace(/\\\|/g, '|');
    const before = line.slice(last, m.index);
    last = m.index + m[0].length;
    const named = /^(GET|POST|PUT|DELETE) (\/v1\/[^\s{]*)\s*(\{.*\})?$/.exec(code);
    if (named) {
      const [path, query] = splitQuery(named[2]!, false);
      const ex: Example = { where, method: named[1]!, path, query, ...(named[3] ? { body: shown(named[3]) } : {}) };
      out.push(ex);
      first ??= ex;
      continue;
    }
    if (!first || (tableRow && !routeRow) || !/^(\d{3} )?[{[]/.test(code)) continue;
    if (/\bbody:?\s*$/.test(before)) first.body ??= shown(code);
    else if (/(→|\banswers)\s*$/.test(before) || (routeRow && /\|\s*$/.test(before))) {
      const status = /^(\d{3}) /.exec(code);
      first.response ??= { ...shown(status ? code.slice(4) : code), ...(status ? { status: Number(status[1]) } : {}) };
    }
  }
  return out;
}

function splitQuery(target: string, withValues: boolean): [string, Array<[string, string | null]>] {
  const q = target.indexOf('?');
  if (q < 0) return [target, []];
  const params = new URLSearchParams(target.slice(q + 1));
  return [target.slice(0, q), [...params].map(([k, v]) => [k, withValues && v !== '' ? v : null])];
}

function shown(text: string): Shown {
  try {
    return { json: JSON.parse(text), text };
  } catch {
    try {
      return { shape: parseShape(text), text };
    } catch (err) {
      return { unreadable: (err as Error).message, text };
    }
  }
}

/** Reads a shape (`{"a","b"?,"c":[{"d"}],"e":"CURSOR"}`); throws on what it cannot read. */
export function parseShape(text: string): Shape {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`cannot read the shape ${text} at ${i}: expected ${what}`);
  };
  const ellipsis = () => {
    ws();
    if (text.startsWith('…', i)) return (i += 1), true;
    if (text.startsWith('...', i)) return (i += 3), true;
    return false;
  };
  const str = () => {
    const end = text.indexOf('"', i + 1);
    if (text[i] !== '"' || end < 0) fail('a string');
    const s = text.slice(i + 1, end);
    i = end + 1;
    return s;
  };
  // A member's name: quoted, or bare as some tables write them (`{account, to}`).
  const name = () => {
    const bare = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (text[i] === '"' || !bare) return str();
    i += bare[0].length;
    return bare[0];
  };
  const value = (): Shape => {
    ws();
    if (ellipsis()) return 'any';
    const c = text[i];
    if (c === '{') {
      i++;
      const members: Array<{ name: string; optional: boolean; value: Shape }> = [];
      let open = false;
      for (;;) {
        ws();
        if (text[i] === '}') return i++, { object: members, open };
        if (ellipsis()) open = true;
        else {
          // `"a"|"b"`: either of them.
          const names = [name()];
          while (text[i] === '|') i++, names.push(name());
          const optional = text[i] === '?' ? (i++, true) : names.length > 1;
          ws();
          const v = text[i] === ':' ? (i++, value()) : 'any';
          for (const name of names) members.push({ name, optional, value: v });
        }
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail('"," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const items: Shape[] = [];
      for (;;) {
        ws();
        if (text[i] === ']') return i++, { array: items };
        const v = value();
        if (v !== 'any') items.push(v);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail('"," or "]"');
      }
    }
    if (c === '"') return str(), 'any';
    const word = /^[A-Za-z0-9_.+-]+/.exec(text.slice(i));
    if (!word) fail('a value');
    i += word![0].length;
    return 'any';
  };
  const shape = value();
  ws();
  if (i !== text.length) fail('the end');
  return shape;
}

/** What the examples say that the document does not: an unknown route or parameter, a body or answer it would refuse. */
export function exampleProblems(examples: readonly Example[], doc: OpenApiDoc): string[] {
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false });
  ajv.addSchema(doc as unknown as object, DOC_ID);
  // Query values are text: "5" is the integer a parameter schema asks for.
  const params = new Ajv2020({ strict: false, validateFormats: false, coerceTypes: true });
  params.addSchema(doc as unknown as object, DOC_ID);
  const problems: string[] = [];
  for (const ex of examples) {
    const say = (what: string) => problems.push(`${ex.where}: ${ex.method} ${ex.path}: ${what}`);
    const found = findOperation(doc, ex.method, ex.path);
    if (!found) {
      say('the document has no such route');
      continue;
    }
    const { path, op } = found;
    const base = ['paths', path, ex.method.toLowerCase()];
    for (const [name, value] of ex.query) {
      const index = (op.parameters ?? []).findIndex((p) => p.in === 'query' && p.name === name);
      if (index < 0) {
        say(`query parameter "${name}" is not in the document`);
        continue;
      }
      if (value === null) continue;
      const schema = op.parameters![index]!.schema;
      const validate = params.getSchema(pointer(...base, 'parameters', String(index), 'schema'))!;
      const v = schema.type === 'array' ? value.split(',') : value;
      if (!validate(v)) say(`query parameter ${name}=${value}: ${ajv.errorsText(validate.errors)}`);
    }
    if (ex.body) {
      const schema = op.requestBody?.content['application/json']?.schema;
      if (!schema) say(`shows a JSON body, which the document does not take`);
      else check(ajv, schema, pointer(...base, 'requestBody', 'content', 'application/json', 'schema'), ex.body, 'body', doc, say);
    }
    if (ex.bodyFromFile && !op.requestBody) say('sends a body, which the document does not take');
    if (ex.response) {
      const status = ex.response.status !== undefined ? String(ex.response.status) : Object.keys(op.responses).find((s) => /^2/.test(s));
      const answer = status ? op.responses[status] : undefined;
      const schema = answer && 'content' in answer ? answer.content?.['application/json']?.schema : undefined;
      if (!schema) say(`shows a JSON answer${status ? ` (${status})` : ''}, which the document does not describe`);
      else check(ajv, schema, pointer(...base, 'responses', status!, 'content', 'application/json', 'schema'), ex.response, 'answer', doc, say);
    }
  }
  return problems;
}

function check(ajv: Ajv2020, schema: Schema, at: string, shown: Shown, what: string, doc: OpenApiDoc, say: (what: string) => void): void {
  if ('unreadable' in shown) {
    say(`the ${what}: ${shown.unreadable}`);
    return;
  }
  if ('json' in shown) {
    const validate = ajv.getSchema(at)!;
    if (!validate(shown.json)) say(`the ${what} ${shown.text} is refused by the document: ${ajv.errorsText(validate.errors)}`);
    return;
  }
  for (const p of shapeProblems(shown.shape, schema, doc, what)) say(`the ${what} ${shown.text}: ${p}`);
}

/** Fields a shape names that the schema lacks, and fields it marks optional that the schema requires. */
export function shapeProblems(shape: Shape, schema: Schema, doc: OpenApiDoc, where: string): string[] {
  if (shape === 'any') return [];
  const variants = resolve(schema, doc);
  if ('array' in shape) {
    const arrays = variants.filter((v) => v.type === 'array');
    if (!arrays.length) return [`${where} is an array in the docs, not in the document`];
    return shape.array.flatMap((item) => {
      const perVariant = arrays.map((a) => (a.items ? shapeProblems(item, a.items as Schema, doc, `${where}[]`) : []));
      return perVariant.some((p) => p.length === 0) ? [] : perVariant[0]!;
    });
  }
  const objects = variants.filter((v) => v.type === 'object' || v.properties);
  if (!objects.length) return [`${where} is an object in the docs, not in the document`];
  const problems: string[] = [];
  for (const m of shape.object) {
    const field = `${where}.${m.name}`;
    const having = objects.filter((o) => (o.properties as Schema | undefined)?.[m.name] !== undefined);
    if (!having.length) {
      if (!objects.some((o) => o.additionalProperties !== undefined && o.additionalProperties !== false)) problems.push(`${field} is not in the document`);
      continue;
    }
    if (m.optional && having.every((o) => ((o.required as string[] | undefined) ?? []).includes(m.name))) problems.push(`${field} is marked optional, but the document requires it`);
    const nested = having.map((o) => shapeProblems(m.value, (o.properties as Record<string, Schema>)[m.name]!, doc, field));
    if (!nested.some((p) => p.length === 0)) problems.push(...nested[0]!);
  }
  return problems;
}

/** A schema's alternatives, references followed. */
function resolve(schema: Schema, doc: OpenApiDoc): Schema[] {
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    const target = doc.components?.schemas?.[name];
    return target ? resolve(target, doc) : [];
  }
  const alternatives = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (alternatives) return alternatives.flatMap((s) => resolve(s, doc));
  return [schema];
}

/** The document's operation for a path as the docs write it (`/v1/accounts/ID`, `/v1/messages/:id`, `/v1/inbox/3EB0C0FFEE/media`). */
export function findOperation(doc: OpenApiDoc, method: string, written: string): { path: string; op: OpenApiDoc['paths'][string][string] } | null {
  const segs = written.split('/').filter((s) => s !== '');
  let best: { path: string; literal: number } | null = null;
  for (const path of Object.keys(doc.paths)) {
    if (!doc.paths[path]![method.toLowerCase()]) continue;
    const pattern = path.split('/').filter((s) => s !== '');
    if (pattern.length !== segs.length) continue;
    const isParam = (p: string) => p.startsWith('{') && p.endsWith('}');
    if (!pattern.every((p, i) => p === segs[i] || isParam(p))) continue;
    // A literal segment wins over a parameter: /v1/messages/changes is not message "changes".
    const literal = pattern.filter((p, i) => p === segs[i]).length;
    if (!best || literal > best.literal) best = { path, literal };
  }
  return best ? { path: best.path, op: doc.paths[best.path]![method.toLowerCase()]! } : null;
}

function pointer(...parts: string[]): string {
  return `${DOC_ID}#/${parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

/** What the document says against a real answer of the daemon: null when the answer is one it describes. */
export function answerProblem(doc: OpenApiDoc, method: string, path: string, status: number, body: unknown): string | null {
  const found = findOperation(doc, method, path.split('?')[0]!);
  if (!found) return `${method} ${path}: the document has no such route`;
  const answer = found.op.responses[String(status)] ?? found.op.responses.default;
  if (!answer) return `${method} ${path}: the document has no answer ${status}`;
  const ajv = validators.get(doc) ?? new Ajv2020({ strict: false, validateFormats: false });
  if (!validators.has(doc)) {
    ajv.addSchema(doc as unknown as object, DOC_ID);
    validators.set(doc, ajv);
  }
  const at =
    '$ref' in answer
      ? pointer('components', 'responses', answer.$ref.replace('#/components/responses/', ''), 'content', 'application/json', 'schema')
      : pointer('paths', found.path, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema');
  const validate = ajv.getSchema(at);
  if (!validate) return `${method} ${path}: the document describes no JSON answer ${status}`;
  return validate(body) ? null : `${method} ${path} answered ${status} ${JSON.stringify(body)}: ${ajv.errorsText(validate.errors)}`;
}

const validators = new WeakMap<OpenApiDoc, Ajv2020>();
