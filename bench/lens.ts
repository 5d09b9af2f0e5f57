// Lens throughput: how many tokens per second the router lenses get through, next to the prefill
// speed of the same backend. Three stages:
//   analyze     analyzeCorpus end to end (scoring in context-sized windows + every routing lens), per backend;
//   statistics  the five routing lenses alone over traces already scored (what the worker adds per window);
//   agreement   the agreement lens alone over two runs' windows (top-1 and KL over the vocabulary per token).
// Texts: the public/eval domains through the model's tokenizer when it loads, else pseudo-random ids.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createBackend } from '../src/cli/common.ts';
import type { Checkpoint } from '../src/engine/format/index.ts';
import {
  analyzeCorpus,
  createAgreementLens,
  createCoactivationLens,
  createDomainLens,
  createLoadLens,
  createLocalityLens,
  createVocabLens,
  type LensText,
  type LensWindow,
  type LogitWindow,
  lensShape,
  planWindows,
  scoreWindow,
} from '../src/engine/lens/index.ts';
import { NATIVE_PLAN } from '../src/engine/routing/index.ts';
import { loadTokenizer } from '../src/engine/tokenizer.ts';
import type { BackendKind, LoadedModel } from '../src/engine/types.ts';

const EVAL = resolve(import.meta.dirname, '../public/eval');
const DOMAINS = ['english', 'german', 'python', 'arithmetic'];
/** SwiftShader scores a few tokens per second: analyze only this many there. */
const WEBGPU_TOKENS = 32;

export interface LensBenchRow {
  backend: BackendKind;
  stage: 'analyze' | 'statistics' | 'agreement';
  tokens: number;
  tokensPerSecond: number;
  /** The backend's prefill tok/s from the main table (native routing), when it was measured. */
  prefillTokensPerSecond: number | null;
}

export interface LensBenchReport {
  texts: string;
  tokens: number;
  rows: LensBenchRow[];
}

export interface LensBenchOptions {
  backends: BackendKind[];
  /** Tokens analysed in all (split evenly over the four texts). */
  tokens: number;
  /** Repeat the statistics-only stages until this much time is collected. */
  minSeconds: number;
  /** Prefill tok/s per backend from the main bench, printed alongside. */
  prefill: Partial<Record<BackendKind, number>>;
}

function benchTexts(ckpt: Checkpoint, tokens: number): { texts: LensText[]; label: string } {
  const per = Math.max(2, Math.ceil(tokens / DOMAINS.length));
  try {
    const tokenizer = loadTokenizer(ckpt.tokenizerJson, ckpt.tokenizerConfigJson);
    const texts = DOMAINS.map((name) => ({
      name,
      tokens: tokenizer.encode(readFileSync(join(EVAL, `${name}.txt`), 'utf8')).slice(0, per),
    }));
    if (texts.every((t) => t.tokens.length === per && t.tokens.every((id) => id < ckpt.spec.vocabSize))) {
      return { texts, label: `public/eval (${DOMAINS.join(', ')}), ${per} tokens each` };
    }
  } catch {
    // No usable tokenizer: fall through to ids.
  }
  const texts = DOMAINS.map((name, d) => ({
    name,
    tokens: Array.from({ length: per }, (_, i) => (i * 7919 + 13 + d * 101) % ckpt.spec.vocabSize),
  }));
  return { texts, label: `pseudo-random token ids, 4 texts × ${per}` };
}

async function scoreAll(model: LoadedModel, texts: LensText[], plan = NATIVE_PLAN): Promise<LogitWindow[]> {
  const plans = planWindows(texts, model.spec.maxPositions);
  const out: LogitWindow[] = [];
  for (let d = 0; d < texts.length; d++)
    for (const [s, e] of plans[d].windows)
      out.push(await scoreWindow(model, texts[d].tokens.slice(s, e), d, plan, true));
  return out;
}

/** Runs `pass` until minSeconds have been spent (at least once); tokens per second of `tokensPerPass`. */
function rate(tokensPerPass: number, minSeconds: number, pass: () => void): number {
  let seconds = 0;
  let passes = 0;
  do {
    const start = performance.now();
    pass();
    seconds += (performance.now() - start) / 1000;
    passes++;
  } while (seconds < minSeconds && passes < 100_000);
  return (passes * tokensPerPass) / seconds;
}

export async function benchLenses(ckpt: Checkpoint, options: LensBenchOptions): Promise<LensBenchReport> {
  const { texts, label } = benchTexts(ckpt, options.tokens);
  const total = texts.reduce((a, t) => a + t.tokens.length, 0);
  const rows: LensBenchRow[] = [];
  for (const kind of options.backends) {
    const backend = await createBackend(kind);
    const model = await backend.load(ckpt.spec, ckpt.weights);
    try {
      const capped = kind === 'webgpu' ? Math.ceil(Math.min(total, WEBGPU_TOKENS) / texts.length) : Infinity;
      const analysed = kind === 'webgpu' ? texts.reduce((a, t) => a + Math.min(t.tokens.length, capped), 0) : total;
      await analyzeCorpus(model, texts, { plan: NATIVE_PLAN, maxTokens: Math.min(capped, 4), tradeoffModes: [] }); // warm-up
      const start = performance.now();
      await analyzeCorpus(model, texts, { plan: NATIVE_PLAN, maxTokens: capped, tradeoffModes: [] });
      const seconds = (performance.now() - start) / 1000;
      rows.push({
        backend: kind,
        stage: 'analyze',
        tokens: analysed,
        tokensPerSecond: analysed / seconds,
        prefillTokensPerSecond: options.prefill[kind] ?? null,
      });

      if (kind !== 'cpu') continue;
      // The statistics-only stages read traces the CPU already produced: they do not depend on the backend.
      const shape = lensShape(model);
      const names = texts.map((t) => t.name);
      const windows: LensWindow[] = await scoreAll(model, texts);
      rows.push({
        backend: kind,
        stage: 'statistics',
        tokens: total,
        tokensPerSecond: rate(total, options.minSeconds, () => {
          const sinks = [
            createDomainLens(shape, names),
            createVocabLens(shape),
            createCoactivationLens(shape),
            createLocalityLens(shape),
            createLoadLens(shape),
          ];
          for (const w of windows) for (const s of sinks) s.add(w);
          for (const s of sinks) s.result();
        }),
        prefillTokensPerSecond: options.prefill[kind] ?? null,
      });
      const dense = await scoreAll(model, texts, { mode: { kind: 'dense' }, interventions: [] });
      const native = windows as LogitWindow[];
      rows.push({
        backend: kind,
        stage: 'agreement',
        tokens: total,
        tokensPerSecond: rate(total, options.minSeconds, () => {
          const acc = createAgreementLens(shape);
          native.forEach((w, i) => acc.add(w, dense[i]));
          acc.result();
        }),
        prefillTokensPerSecond: options.prefill[kind] ?? null,
      });
    } finally {
      model.dispose();
      backend.dispose();
    }
  }
  return { texts: label, tokens: total, rows };
}

const COLUMNS = ['backend', 'lens stage', 'tokens', 'tok/s', 'prefill tok/s', 'vs prefill'];

/** The lens rows as a Markdown table, the same shape as the main one. */
export function formatLensTable(report: LensBenchReport): string {
  const fmt = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  const body = [
    COLUMNS,
    ...report.rows.map((r) => [
      r.backend,
      r.stage,
      String(r.tokens),
      fmt(r.tokensPerSecond),
      r.prefillTokensPerSecond === null ? '—' : fmt(r.prefillTokensPerSecond),
      r.prefillTokensPerSecond === null ? '—' : `${(r.tokensPerSecond / r.prefillTokensPerSecond).toFixed(2)}×`,
    ]),
  ];
  const widths = COLUMNS.map((_, i) => Math.max(...body.map((l) => l[i].length)));
  const line = (l: string[]) =>
    `| ${l.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [
    `lens throughput (${report.texts}; native routing; windows of the model's context):`,
    '',
    line(COLUMNS),
    rule,
    ...body.slice(1).map(line),
  ].join('\n');
}
