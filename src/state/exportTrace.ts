// The routing trace as data a researcher can take away: one row per token × MoE layer × chosen
// expert (position, token, layer, expert, rank, weight, probability), as CSV and as JSON with a
// header naming the model, the routing mode and the seed. Pure functions: no DOM.
import type { RunState } from './store.ts';

export interface TraceHeader {
  format: 'moe-playground-trace';
  version: 1;
  model: string;
  /** The routing the trace was scored under ("topk:2", with "|L1E3-" when interventions applied). */
  routing: string;
  /** The routing the text was generated under. */
  generatedWith: string;
  interventions: string;
  seed: number;
  temperature: number;
  topP: number;
  prompt: string;
  tokens: number;
  promptTokens: number;
  /** Absolute indices of the MoE layers (the `layer` column uses these). */
  moeLayers: number[];
  columns: readonly string[];
}

export interface TraceRow {
  position: number;
  token: string;
  tokenId: number;
  layer: number;
  expert: number;
  rank: number;
  weight: number;
  probability: number;
}

export const TRACE_COLUMNS = ['position', 'token', 'token_id', 'layer', 'expert', 'rank', 'weight', 'probability'] as const;

export function traceRows(run: RunState): TraceRow[] {
  const rows: TraceRow[] = [];
  const n = run.tokenIds.length;
  for (let t = 0; t < n; t++) {
    run.trace.moeLayers.forEach((layer, m) => {
      const routing = run.trace.layers[m][t];
      if (!routing) return;
      routing.experts.forEach((expert, rank) => {
        rows.push({
          position: run.trace.positions[t] ?? t,
          token: run.tokenTexts[t],
          tokenId: run.tokenIds[t],
          layer,
          expert,
          rank,
          weight: routing.weights[rank],
          probability: routing.probs[expert],
        });
      });
    });
  }
  return rows;
}

export function traceHeader(run: RunState, settings: { model: string; seed: number; temperature: number; topP: number; prompt: string }): TraceHeader {
  return {
    format: 'moe-playground-trace',
    version: 1,
    model: settings.model || run.modelLabel,
    routing: run.routing,
    generatedWith: run.generatedWith,
    interventions: run.routing.split('|')[1] ?? '',
    seed: settings.seed,
    temperature: settings.temperature,
    topP: settings.topP,
    prompt: settings.prompt,
    tokens: run.tokenIds.length,
    promptTokens: run.promptLength,
    moeLayers: [...run.trace.moeLayers],
    columns: TRACE_COLUMNS,
  };
}

/** RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled. */
function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The CSV, with the header fields as leading "# key: value" comment lines (most tools skip them with comment='#'). */
export function traceCsv(header: TraceHeader, rows: TraceRow[]): string {
  const lines = [
    `# model: ${header.model}`,
    `# routing: ${header.routing}`,
    `# generated_with: ${header.generatedWith}`,
    `# seed: ${header.seed}`,
    TRACE_COLUMNS.join(','),
    ...rows.map((r) => [r.position, r.token, r.tokenId, r.layer, r.expert, r.rank, r.weight, r.probability].map(csvField).join(',')),
  ];
  return `${lines.map((l) => (l.startsWith('#') ? l.replace(/[\r\n]/g, ' ') : l)).join('\n')}\n`;
}

export function traceJson(header: TraceHeader, rows: TraceRow[]): string {
  return JSON.stringify({ header, rows }, null, 1);
}

/** Reads the CSV back (for tests and for anyone checking a file): comment lines skipped, quotes honoured. */
export function parseTraceCsv(text: string): TraceRow[] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  let lineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (lineStart && !quoted && c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    lineStart = false;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      lineStart = true;
    } else field += c;
  }
  if (field !== '' || record.length > 0) records.push([...record, field]);
  const [head, ...body] = records;
  if (!head || head.join(',') !== TRACE_COLUMNS.join(',')) throw new Error('This is not a trace CSV: the column header is missing.');
  return body.map((r) => ({
    position: Number(r[0]),
    token: r[1],
    tokenId: Number(r[2]),
    layer: Number(r[3]),
    expert: Number(r[4]),
    rank: Number(r[5]),
    weight: Number(r[6]),
    probability: Number(r[7]),
  }));
}
