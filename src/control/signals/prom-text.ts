// A parser for Prometheus's text exposition format (0.0.4), for what the control plane scrapes
// from sidecars. It trusts nothing: a line that does not parse is skipped and counted (the first
// error is kept, with its line number), metrics the caller does not want are skipped before their
// labels are read, and the caller bounds the series. It never throws on any input.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParseResult {
  samples: Sample[];
  /** Lines that did not parse. */
  bad: number;
  /** The first of them: "line N: why". */
  firstError?: string;
  /** More series than maxSeries were wanted: the rest were left out. */
  truncated: boolean;
}

export interface ParseOptions {
  /** Whether to keep a metric (by name); the others are skipped unread. */
  want: (name: string) => boolean;
  maxSeries: number;
  /** Lines longer than this are malformed (default 64 KiB). */
  maxLineLength?: number;
  /** Labels per sample (default 64). */
  maxLabels?: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parsePrometheusText(text: string, opts: ParseOptions): ParseResult {
  const out: ParseResult = { samples: [], bad: 0, truncated: false };
  const maxLine = opts.maxLineLength ?? 65_536;
  const maxLabels = opts.maxLabels ?? 64;
  let start = 0;
  let lineNo = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end);
    start = end + 1;
    if (line === '' || line.startsWith('#')) continue;
    const fail = (why: string) => {
      out.bad++;
      out.firstError ??= `line ${lineNo}: ${why}`;
    };
    if (line.length > maxLine) {
      fail(`longer than ${maxLine} characters`);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) {
      fail('no metric name');
      continue;
    }
    if (!opts.want(name)) continue;
    const parsed = parseRest(line, name.length, maxLabels);
    if (typeof parsed === 'string') {
      fail(`${name}: ${parsed}`);
      continue;
    }
    if (out.samples.length >= opts.maxSeries) {
      out.truncated = true;
      break;
    }
    out.samples.push({ name, labels: parsed.labels, value: parsed.value });
  }
  return out;
}

/** The labels and value after the metric name, or why they do not parse. */
function parseRest(line: string, at: number, maxLabels: number): { labels: Record<string, string>; value: number } | string {
  // A null-prototype object: a label named __proto__ is only a label.
  const labels = Object.create(null) as Record<string, string>;
  let i = at;
  if (line[i] === '{') {
    i++;
    let n = 0;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const ln = LABEL_NAME.exec(line.slice(i, i + 1024))?.[0];
      if (!ln) return `bad label name at column ${i + 1}`;
      i += ln.length;
      while (line[i] === ' ') i++;
      if (line[i] !== '=' || line[i + 1] !== '"') return `label ${ln}: expected ="`;
      i += 2;
      let v = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return `label ${ln}: unterminated value`;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i + 1];
          if (e === 'n') v += '\n';
          else if (e === '\\' || e === '"') v += e;
          else return `label ${ln}: bad escape \\${e ?? ''}`;
          i += 2;
          continue;
        }
        // Runs of plain characters at once.
        let j = i;
        while (j < line.length && line[j] !== '"' && line[j] !== '\\') j++;
        v += line.slice(i, j);
        i = j;
      }
      i++;
      if (ln in labels) return `label ${ln} twice`;
      if (++n > maxLabels) return `more than ${maxLabels} labels`;
      labels[ln] = v;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return `expected , or } after label ${ln}`;
    }
  }
  const rest = line.slice(i).trim().split(/[ \t]+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') return 'expected a value (and an optional timestamp)';
  const value = parseValue(rest[0]!);
  if (value === undefined) return `bad value "${rest[0]!.slice(0, 40)}"`;
  return { labels, value };
}

function parseValue(s: string): number | undefined {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** A bucket bound ("le") as a number: "+Inf" too. */
export function parseLe(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = parseValue(s);
  return v === undefined || Number.isNaN(v) ? undefined : v;
}
