// The routing trace as data a researcher can take away: one row per token × MoE layer × chosen
// expert (position, token, layer, expert, rank, weight, probability, the token's loss and the
// router's full probability vector), as CSV and as JSON with a header naming the model, the routing
// mode and the seed; the JSON also lists every token with its loss and all router probabilities.
// Pure functions: no DOM.
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
  /** −log p of this token given the tokens before it (nats); null for the first token. */
  loss: number | null;
  /** The router's probabilities over all experts at this token and layer (after interventions). */
  routerProbs: number[];
}

/** One token with its loss and, per MoE layer, the router's probabilities over every expert. */
export interface TraceToken {
  position: number;
  token: string;
  tokenId: number;
  loss: number | null;
  /** routerProbs[m][e]: MoE layer m (header.moeLayers[m]), expert e. */
  routerProbs: number[][];
}

export const TRACE_COLUMNS = [
  'position',
  'token',
  'token_id',
  'layer',
  'expert',
  'rank',
  'weight',
  'probability',
  'loss',
  'router_probs',
] as const;

function lossAt(run: RunState, t: number): number | null {
  const lp = run.logProbs[t];
  return lp === null || lp === undefined ? null : -lp;
}

/** Every token with its loss and full router probabilities. */
export function traceTokens(run: RunState): TraceToken[] {
  return run.tokenIds.map((tokenId, t) => ({
    position: run.trace.positions[t] ?? t,
    token: run.tokenTexts[t],
    tokenId,
    loss: lossAt(run, t),
    routerProbs: run.trace.layers.map((rows) => (rows[t] ? Array.from(rows[t].probs) : [])),
  }));
}

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
          loss: lossAt(run, t),
          routerProbs: Array.from(routing.probs),
        });
      });
    });
  }
  return rows;
}

export function traceHeader(
  run: RunState,
  settings: { model: string; seed: number; temperature: number; topP: number; prompt: string },
): TraceHeader {
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
    `# loss: -log p(token | tokens before it) in nats, empty for the first token; router_probs: the router's probabilities over experts 0..E-1, separated by ';'`,
    TRACE_COLUMNS.join(','),
    ...rows.map((r) =>
      [
        r.position,
        r.token,
        r.tokenId,
        r.layer,
        r.expert,
        r.rank,
        r.weight,
        r.probability,
        r.loss ?? '',
        r.routerProbs.join(';'),
      ]
        .map(csvField)
        .join(','),
    ),
  ];
  return `${lines.map((l) => (l.startsWith('#') ? l.replace(/[\r\n]/g, ' ') : l)).join('\n')}\n`;
}

/** The JSON: header, the per-expert rows, and (when given) every token with its loss and full router probabilities. */
export function traceJson(header: TraceHeader, rows: TraceRow[], tokens?: TraceToken[]): string {
  return JSON.stringify(tokens ? { header, rows, tokens } : { header, rows }, null, 1);
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
  if (!head || head.join(',') !== TRACE_COLUMNS.join(','))
    throw new Error('This is not a trace CSV: the column header is missing.');
  return body.map((r) => ({
    position: Number(r[0]),
    token: r[1],
    tokenId: Number(r[2]),
    layer: Number(r[3]),
    expert: Number(r[4]),
    rank: Number(r[5]),
    weight: Number(r[6]),
    probability: Number(r[7]),
    loss: r[8] === '' || r[8] === undefined ? null : Number(r[8]),
    routerProbs: r[9] ? r[9].split(';').map(Number) : [],
  }));
}
