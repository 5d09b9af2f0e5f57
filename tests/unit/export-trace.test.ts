// Trace export: the CSV and JSON hold exactly the engine's routing (checked against a real
// generation of the mixtral fixture through the worker session), and survive a parse round trip.
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePlanText } from '../../src/engine/routing/index.ts';
import { resolve } from 'node:path';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createPlaygroundStore, type RunState } from '../../src/state/store.ts';
import { EngineSession } from '../../src/worker/session.ts';
import {
  parseTraceCsv,
  traceCsv,
  traceHeader,
  traceJson,
  traceRows,
  traceTokens,
  TRACE_COLUMNS,
} from '../../src/state/exportTrace.ts';

const fixture = resolve(import.meta.dirname, '../fixtures/models/mixtral_f32');
let run: RunState;
const settings = { model: '/fixtures/mixtral_f32/', seed: 5, temperature: 1, topP: 1, prompt: 'a, "quoted"\nline' };

beforeAll(async () => {
  const store = createPlaygroundStore();
  const session = new EngineSession(
    (m) => store.getState().receive(m),
    (dir) => dirSource(dir),
  );
  await session.handle({ type: 'init', preferBackend: 'cpu' });
  store.getState().begin(1, 'loading');
  await session.handle({ type: 'load', requestId: 1, modelId: 'm', baseUrl: fixture });
  store.getState().begin(2, 'generating', 'topk:3|L1E3-');
  await session.handle({
    type: 'generate',
    requestId: 2,
    prompt: settings.prompt,
    sampling: { temperature: 1, topP: 1, seed: 5, maxTokens: 5 },
    routing: parsePlanText('topk:3|L1E3-'),
  });
  await session.idle();
  run = store.getState().run!;
});

describe('trace export', () => {
  it('has one row per token × layer × chosen expert, in rank order, with the trace’s numbers', () => {
    const rows = traceRows(run);
    const n = run.tokenIds.length;
    expect(rows).toHaveLength(n * run.trace.moeLayers.length * 3);
    for (const row of rows) {
      const m = run.trace.moeLayers.indexOf(row.layer);
      const routing = run.trace.layers[m][row.position];
      expect(routing.experts[row.rank]).toBe(row.expert);
      expect(row.weight).toBe(routing.weights[row.rank]);
      expect(row.probability).toBe(routing.probs[row.expert]);
      expect(row.token).toBe(run.tokenTexts[row.position]);
    }
    // The intervention held: layer 1 never chose expert 3, whose probability is 0.
    expect(rows.filter((r) => r.layer === 1 && r.expert === 3)).toEqual([]);
    expect(run.trace.layers[1].every((r) => r.probs[3] === 0)).toBe(true);
    // Weights are renormalised over the three chosen experts (Mixtral).
    const first = rows.filter((r) => r.position === 0 && r.layer === 0);
    expect(first.reduce((a, r) => a + r.weight, 0)).toBeCloseTo(1, 6);
  });

  it('round-trips through CSV, tokens with commas, quotes and line breaks included', () => {
    const rows = traceRows(run);
    const csv = traceCsv(traceHeader(run, settings), rows);
    expect(csv.split('\n').find((l) => !l.startsWith('#'))).toBe(TRACE_COLUMNS.join(','));
    expect(csv).toMatch(/^# model: \/fixtures\/mixtral_f32\/$/m);
    expect(csv).toMatch(/^# seed: 5$/m);
    const back = parseTraceCsv(csv);
    expect(back).toHaveLength(rows.length);
    back.forEach((r, i) => {
      expect(r).toMatchObject({ ...rows[i], weight: expect.any(Number), probability: expect.any(Number) });
      expect(r.weight).toBeCloseTo(rows[i].weight, 12);
      expect(r.probability).toBeCloseTo(rows[i].probability, 12);
      expect(r.loss === null ? null : r.loss).toEqual(rows[i].loss === null ? null : expect.closeTo(rows[i].loss!, 12));
      expect(r.routerProbs).toHaveLength(rows[i].routerProbs.length);
      r.routerProbs.forEach((p, e) => expect(p).toBeCloseTo(rows[i].routerProbs[e], 12));
    });
    expect(back.some((r) => r.token.includes(','))).toBe(run.tokenTexts.some((t) => t.includes(',')));
  });

  it('writes JSON with model id, routing mode and seed in the header', () => {
    const parsed = JSON.parse(traceJson(traceHeader(run, settings), traceRows(run)));
    expect(parsed.header).toMatchObject({
      model: '/fixtures/mixtral_f32/',
      routing: 'topk:3|L1E3-',
      interventions: 'L1E3-',
      seed: 5,
      moeLayers: [0, 1],
      tokens: run.tokenIds.length,
    });
    expect(parsed.rows).toEqual(JSON.parse(JSON.stringify(traceRows(run))));
  });

  it('carries every token’s loss and the router’s full probabilities, as the engine computed them', () => {
    const tokens = traceTokens(run);
    const parsed = JSON.parse(traceJson(traceHeader(run, settings), traceRows(run), tokens));
    expect(parsed.tokens).toHaveLength(run.tokenIds.length);
    expect(parsed.tokens[0].loss).toBeNull();
    parsed.tokens.forEach((tok: { loss: number | null; routerProbs: number[][]; tokenId: number }, t: number) => {
      expect(tok.tokenId).toBe(run.tokenIds[t]);
      if (t > 0) expect(tok.loss).toBe(-run.logProbs[t]!);
      expect(tok.routerProbs).toHaveLength(run.trace.moeLayers.length);
      tok.routerProbs.forEach((probs, m) => {
        // All E experts, summing to 1; the ablated expert 3 of layer 1 has probability 0.
        expect(probs).toEqual(Array.from(run.trace.layers[m][t].probs));
        expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      });
      expect(tok.routerProbs[1][3]).toBe(0);
    });
    // The CSV rows carry the same: loss per token and the probability vector per token and layer.
    const rows = traceRows(run);
    for (const r of rows) expect(r.routerProbs[r.expert]).toBe(r.probability);
  });
});
