// Reading config text: multi-document YAML (or JSON) in, validated resources out, all or nothing.

import { Scalar, isScalar, parseAllDocuments, visit, type Document } from 'yaml';
import { describeKey, keyOf, type FieldError, type Resource } from './types.ts';
import { isObject } from './schema.ts';
import { inspect, toConfigError } from './validate.ts';
import { MAX_FLOW_DEPTH, tooDeep } from './yaml-depth.ts';

/** One parsed document, before any checks, with the words that locate it in messages. */
interface RawDocument {
  readonly value: unknown;
  readonly where: string;
}

interface ReadResult {
  readonly documents: RawDocument[];
  readonly problems: FieldError[];
}

/** "Map keys must be unique at line 2, column 1:\n\n..." -> "Map keys must be unique" */
function reasonOf(message: string): string {
  return message.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim();
}

function syntaxProblems(doc: Document.Parsed, source: string): FieldError[] {
  return doc.errors.map((e) => {
    const pos = e.linePos?.[0];
    const at = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    return { resource: source, path: '', message: `YAML syntax error${at}: ${reasonOf(e.message)}` };
  });
}

function readYaml(text: string, source: string): ReadResult {
  const deep = tooDeep(text);
  if (deep) return { documents: [], problems: [{ resource: source, path: '', message: `YAML nested deeper than ${MAX_FLOW_DEPTH} levels at line ${deep.line}, column ${deep.column}: no resource Weft reads is` }] };
  // merge: true accepts "<<" merge keys, as kubectl (YAML 1.1) does.
  const docs = parseAllDocuments(text, { merge: true });
  const list = Array.isArray(docs) ? docs : [];
  const problems = list.flatMap((doc) => syntaxProblems(doc, source));
  if (problems.length > 0) return { documents: [], problems };
  const documents: RawDocument[] = [];
  for (const [i, doc] of list.entries()) {
    const where = `${source} document ${i + 1}`;
    readFlowScalarsAsKubectl(doc, text);
    try {
      documents.push({ value: doc.toJS(), where });
    } catch (err) {
      // e.g. an alias to an anchor that does not exist
      problems.push({ resource: where, path: '', message: `YAML error: ${(err as Error).message}` });
    }
  }
  return { documents, problems };
}

/**
 * In a flow collection, kubectl's YAML reader (go-yaml) ends a plain scalar at ":" only when a
 * space follows, so it reads `addresses: [2001:db8::]` as the address "2001:db8::"; YAML 1.2 (and
 * this parser) reads an implicit key there, {"2001:db8:": null}. Such items are read as kubectl
 * reads them: a plain key ending in ":" directly before ",", "]" or "}", with no value.
 */
function readFlowScalarsAsKubectl(doc: Document.Parsed, text: string): void {
  visit(doc, {
    Map(_, map) {
      const pair = map.items.length === 1 ? map.items[0] : undefined;
      const k = pair?.key;
      const v = pair?.value;
      if (!isScalar(k) || k.type !== 'PLAIN' || !k.range || !map.range || text[map.range[0]] === '{') return undefined;
      if (v !== null && v !== undefined && !(isScalar(v) && v.value === null && v.source === '')) return undefined;
      const end = k.range[1];
      if (text[end] !== ':' || !',]}'.includes(text[end + 1] ?? '')) return undefined;
      return new Scalar(text.slice(k.range[0], end + 1));
    },
  });
}

/** JSON is YAML too, but JSON.parse copes with layouts YAML rejects (tab indentation). */
function readJson(text: string, source: string): ReadResult | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    return { documents: [{ value: JSON.parse(text) as unknown, where: `${source} document 1` }], problems: [] };
  } catch {
    return undefined; // let the YAML parser report the problem, with a line and column
  }
}

/** Skip empty documents; expand `kind: List` into its items. */
function expandLists(documents: RawDocument[]): { items: RawDocument[]; problems: FieldError[] } {
  const items: RawDocument[] = [];
  const problems: FieldError[] = [];
  for (const doc of documents) {
    if (doc.value === null || doc.value === undefined) continue;
    if (!isObject(doc.value) || doc.value.kind !== 'List') {
      items.push(doc);
    } else if (!Array.isArray(doc.value.items)) {
      problems.push({ resource: doc.where, path: 'items', message: 'must be a list' });
    } else {
      doc.value.items.forEach((value, i) => items.push({ value, where: `${doc.where} items[${i}]` }));
    }
  }
  return { items, problems };
}

/** The same kind, namespace and name twice in one input is a mistake: which one should win? */
function duplicateProblems(found: { resource: Resource; where: string }[]): FieldError[] {
  const firstSeen = new Map<string, string>();
  const problems: FieldError[] = [];
  for (const { resource, where } of found) {
    const id = describeKey(keyOf(resource));
    const first = firstSeen.get(id);
    if (first === undefined) firstSeen.set(id, where);
    else problems.push({ resource: id, path: '', message: `defined more than once (${first} and ${where})` });
  }
  return problems;
}

/**
 * Parse multi-document YAML or JSON text from `source` (a file name, used in messages) and return
 * every resource in it, validated and normalised. All or nothing: on any problem, throws one
 * ConfigError listing them all, one per line.
 */
export function parseConfig(text: string, source: string): Resource[] {
  const read = readJson(text, source) ?? readYaml(text, source);
  if (read.problems.length > 0) throw toConfigError(read.problems);
  const { items, problems } = expandLists(read.documents);
  const found: { resource: Resource; where: string }[] = [];
  const failedNames: (string | undefined)[] = [];
  for (const item of items) {
    const result = inspect(item.value, item.where);
    if (result.resource) found.push({ resource: result.resource, where: item.where });
    if (result.problems.length > 0) {
      problems.push(...result.problems);
      failedNames.push(result.name);
    }
  }
  problems.push(...duplicateProblems(found));
  if (problems.length === 0) return found.map((f) => f.resource);
  // Name the resource on the error only when the problems are all about that one resource.
  const only = failedNames.length === 1 && problems.every((p) => p.resource === failedNames[0]) ? failedNames[0] : undefined;
  throw toConfigError(problems, only);
}
