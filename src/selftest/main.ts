// The engine self-test page (selftest.html): runs the PyTorch reference fixtures on this browser's WebGPU
// backend and on the CPU backend, compares logits and routing, and shows a table plus a JSON summary in
// <pre id="result"> (read by tests/e2e/selftest.test.ts). Query: ?fixtures=BASE_URL&names=a,b&backends=webgpu,cpu
import type { Backend, BackendKind, LoadedModel } from '../engine/types.ts';
import { loadCheckpoint, urlSource } from '../engine/format/index.ts';
import { parseRoutingPlan } from '../engine/routing/index.ts';
import { createCpuBackend } from '../engine/backends/cpu/index.ts';
import { createWebGpuBackend } from '../engine/backends/webgpu/index.ts';
import { compareRouting, maxAbsDiff, type ExpectedFile } from './compare.ts';

const DEFAULT_NAMES = [
  'llama_f32',
  'llama_tied_bf16',
  'mistral_f32',
  'mixtral_f32',
  'mixtral_f16',
  'mixtral_bf16',
  'mixtral_sharded_f32',
  'qwen2_moe_f32',
  'qwen3_moe_f32',
  'qwen3_moe_fused_f32',
  'olmoe_f32',
  'granitemoe_f32',
  'granitemoe_bf16',
  'llama3_rope',
  'mistral_sliding',
];
/** Pass thresholds. The f16/bf16 references are computed from the stored (rounded) weights, so one bound fits all dtypes. */
const TOLERANCE = { logits: 1e-3, probs: 1e-4, weights: 1e-4 };

export interface FixtureResult {
  fixture: string;
  backend: BackendKind;
  dtype: string | null;
  cases: number;
  /** Largest |Δlogit| over every case and position (prefill). */
  maxLogitDiff: number;
  /** Largest |Δlogit| of the token-by-token decode (KV cache) of the first case. */
  decodeMaxLogitDiff: number;
  maxProbDiff: number;
  maxWeightDiff: number;
  routingMismatches: number;
  nearTies: number;
  pass: boolean;
  error?: string;
}

export interface SelfTestResult {
  status: 'done';
  pass: boolean;
  /** WebGPU as found: the adapter, or why there is none (then the CPU backend runs alone: the fallback). */
  webgpu: { requested: boolean; available: boolean; description?: string; reason?: string };
  backends: BackendKind[];
  cpuFallback: boolean;
  tolerance: typeof TOLERANCE;
  fixtures: FixtureResult[];
  seconds: number;
}

function message(e: unknown): string {
  const err = e as { message?: string; hint?: string };
  return `${err?.message ?? String(e)}${err?.hint ? ` ${err.hint}` : ''}`;
}

async function runFixture(model: LoadedModel, expected: ExpectedFile, row: FixtureResult): Promise<void> {
  const T = expected.tokens.length;
  for (const [i, c] of expected.cases.entries()) {
    const plan = parseRoutingPlan(c.routing, c.interventions);
    const cache = model.newCache(T);
    try {
      const out = await model.forward(expected.tokens, cache, { routing: plan, logits: 'all' });
      out.logits.forEach((r, t) => (row.maxLogitDiff = Math.max(row.maxLogitDiff, maxAbsDiff(r, c.logits[t]))));
      if (out.logits.length !== T || out.routing.layers.length !== c.routing_trace.length) row.routingMismatches++;
      c.routing_trace.forEach((layer, m) =>
        layer.forEach((want, t) => {
          const got = out.routing.layers[m]?.[t];
          if (!got) return void row.routingMismatches++;
          const cmp = compareRouting(got, want);
          row.maxProbDiff = Math.max(row.maxProbDiff, cmp.probDiff);
          row.maxWeightDiff = Math.max(row.maxWeightDiff, cmp.weightDiff);
          if (cmp.mismatch) row.routingMismatches++;
          if (cmp.nearTie) row.nearTies++;
        }),
      );
    } finally {
      cache.dispose();
    }
    if (i === 0) {
      // The same case one token at a time through the KV cache (the decode path).
      const stepCache = model.newCache(T);
      try {
        for (let t = 0; t < T; t++) {
          const step = await model.forward([expected.tokens[t]], stepCache, { routing: plan, logits: 'last' });
          row.decodeMaxLogitDiff = Math.max(row.decodeMaxLogitDiff, maxAbsDiff(step.logits[0], c.logits[t]));
        }
      } finally {
        stepCache.dispose();
      }
    }
    row.cases++;
  }
}

// ---------------------------------------------------------------------------------------------
// Page

const $ = (id: string) => document.getElementById(id)!;

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toExponential(2) : String(x);
}

function render(rows: FixtureResult[]): void {
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  for (const h of [
    'fixture',
    'backend',
    'dtype',
    'cases',
    'max |Δlogit|',
    'decode max |Δlogit|',
    'max |Δprob|',
    'routing mismatches',
    'near-ties',
    'result',
  ]) {
    const th = document.createElement('th');
    th.textContent = h;
    th.scope = 'col';
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    tr.dataset.fixture = r.fixture;
    tr.dataset.backend = r.backend;
    const cells: Array<[string, boolean?]> = [
      [r.fixture],
      [r.backend],
      [r.dtype ?? '?'],
      [String(r.cases), true],
      [fmt(r.maxLogitDiff), true],
      [fmt(r.decodeMaxLogitDiff), true],
      [fmt(r.maxProbDiff), true],
      [String(r.routingMismatches), true],
      [String(r.nearTies), true],
      [r.pass ? 'pass' : `FAIL${r.error ? `: ${r.error}` : ''}`],
    ];
    for (const [text, num] of cells) {
      const td = tr.insertCell();
      td.textContent = text;
      if (num) td.className = 'num';
    }
    tr.lastElementChild!.className = r.pass ? 'pass' : 'fail';
  }
  $('table').replaceChildren(table);
}

async function main(): Promise<void> {
  const started = performance.now();
  const query = new URLSearchParams(location.search);
  const base = query.get('fixtures') ?? '/fixtures/';
  const names = (query.get('names') ?? DEFAULT_NAMES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const wanted = (query.get('backends') ?? 'webgpu,cpu').split(',').map((s) => s.trim());

  const webgpu: SelfTestResult['webgpu'] = { requested: wanted.includes('webgpu'), available: false };
  const backends: Backend[] = [];
  if (webgpu.requested) {
    try {
      const b = await createWebGpuBackend();
      backends.push(b);
      webgpu.available = true;
      webgpu.description = b.description;
    } catch (e) {
      webgpu.reason = message(e);
    }
  }
  const cpuFallback = webgpu.requested && !webgpu.available;
  if (wanted.includes('cpu') || cpuFallback) backends.push(createCpuBackend());
  $('backends').textContent = [
    webgpu.available ? `WebGPU: ${webgpu.description}` : cpuFallback ? `CPU fallback: ${webgpu.reason}` : '',
    backends.some((b) => b.kind === 'cpu') ? 'CPU: TypeScript reference (f32)' : '',
  ]
    .filter(Boolean)
    .join(' · ');

  const rows: FixtureResult[] = [];
  for (const name of names) {
    const source = urlSource(new URL(`${name}/`, new URL(base, location.href)).href);
    let loaded: { expected: ExpectedFile; ckpt: Awaited<ReturnType<typeof loadCheckpoint>> } | null = null;
    let loadError: string | undefined;
    try {
      const bytes = await source.readFile('expected.json');
      if (!bytes) throw new Error(`${source.label} has no expected.json: is this a fixture folder?`);
      loaded = {
        expected: JSON.parse(new TextDecoder().decode(bytes)) as ExpectedFile,
        ckpt: await loadCheckpoint(source),
      };
    } catch (e) {
      loadError = message(e);
    }
    for (const backend of backends) {
      $('summary').textContent = `Running ${name} on ${backend.kind}…`;
      const row: FixtureResult = {
        fixture: name,
        backend: backend.kind,
        dtype: loaded?.ckpt.spec.dtype ?? null,
        cases: 0,
        maxLogitDiff: 0,
        decodeMaxLogitDiff: 0,
        maxProbDiff: 0,
        maxWeightDiff: 0,
        routingMismatches: 0,
        nearTies: 0,
        pass: false,
        error: loadError,
      };
      if (loaded) {
        let model: LoadedModel | null = null;
        try {
          model = await backend.load(loaded.ckpt.spec, loaded.ckpt.weights);
          await runFixture(model, loaded.expected, row);
        } catch (e) {
          row.error = message(e);
        } finally {
          model?.dispose();
        }
      }
      row.pass =
        row.error === undefined &&
        loaded !== null &&
        row.cases === loaded.expected.cases.length &&
        row.maxLogitDiff <= TOLERANCE.logits &&
        row.decodeMaxLogitDiff <= TOLERANCE.logits &&
        row.maxProbDiff <= TOLERANCE.probs &&
        row.maxWeightDiff <= TOLERANCE.weights &&
        row.routingMismatches === 0;
      rows.push(row);
      render(rows);
    }
  }
  for (const b of backends) b.dispose();

  const result: SelfTestResult = {
    status: 'done',
    pass: rows.length > 0 && rows.every((r) => r.pass),
    webgpu,
    backends: backends.map((b) => b.kind),
    cpuFallback,
    tolerance: TOLERANCE,
    fixtures: rows,
    seconds: (performance.now() - started) / 1000,
  };
  const failed = rows.filter((r) => !r.pass).length;
  $('summary').textContent =
    rows.length === 0
      ? 'Nothing ran: no backend or no fixture names.'
      : failed === 0
        ? `All ${rows.length} runs pass (${names.length} fixtures × ${backends.length} backends) in ${result.seconds.toFixed(1)} s.`
        : `${failed} of ${rows.length} runs FAIL.`;
  $('summary').className = result.pass ? 'pass' : 'fail';
  const pre = $('result');
  pre.textContent = JSON.stringify(result, null, 2);
  pre.dataset.status = 'done';
}

main().catch((e) => {
  // Anything outside the per-fixture handling: still a readable result, never a blank page.
  $('summary').textContent = `The self-test stopped: ${message(e)}`;
  $('summary').className = 'fail';
  const pre = $('result');
  pre.textContent = JSON.stringify({ status: 'done', pass: false, error: message(e) });
  pre.dataset.status = 'done';
});
