// The `moe` command end to end: spawned as a user would run it, on the PyTorch fixture checkpoints.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MIXTRAL = 'tests/fixtures/models/mixtral_f32';
const LLAMA = 'tests/fixtures/models/llama_f32';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function moe(...args: (string | Record<string, string>)[]): Run {
  const env = { ...process.env, ...(args.find((a) => typeof a === 'object') as Record<string, string> | undefined) };
  const argv = args.filter((a): a is string => typeof a === 'string');
  const r = spawnSync(process.execPath, ['bin/moe.mjs', ...argv], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface RoutingEntry {
  experts: number[];
  weights: number[];
  probs: number[];
}
interface EvalJson {
  logits: number[][];
  routing: RoutingEntry[][];
}

/** Exactly one JSON object on stdout, nothing on stderr. */
function onlyJson<T>(r: Run): T {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const value = JSON.parse(lines[0]);
  expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  return value as T;
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, t) => {
    expect(row.length).toBe(b[t].length);
    row.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[t][i]))));
  });
  return m;
}

/** A failure is one line "moe: ..." on stderr, a non-zero status and no stack trace. */
function expectOneLineFailure(r: Run, pattern: RegExp): void {
  expect(r.status).not.toBe(0);
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^moe: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).toMatch(pattern);
}

const expected = JSON.parse(readFileSync(join(MIXTRAL, 'expected.json'), 'utf8')) as {
  tokens: number[];
  cases: { routing: string; interventions: string; logits: number[][]; routing_trace: RoutingEntry[][] }[];
};
const vocabSize = (JSON.parse(readFileSync(join(MIXTRAL, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;

describe('moe eval --json', () => {
  it('prints one object: a full-vocabulary row per position and one routing list per MoE layer', () => {
    const tokens = expected.tokens;
    const out = onlyJson<EvalJson>(moe('eval', MIXTRAL, '--tokens', tokens.join(','), '--json'));
    expect(Object.keys(out).sort()).toEqual(['logits', 'routing']);
    expect(out.logits).toHaveLength(tokens.length);
    for (const row of out.logits) expect(row).toHaveLength(vocabSize);
    expect(out.routing).toHaveLength(2); // both layers of the fixture are MoE layers
    for (const layer of out.routing) {
      expect(layer).toHaveLength(tokens.length);
      for (const r of layer) {
        expect(r.experts).toHaveLength(2);
        expect(r.weights).toHaveLength(2);
        expect(r.probs).toHaveLength(8);
      }
    }
  });

  for (const [routing, interventions] of [
    ['native', ''],
    ['topk:2', 'L1E3-'],
  ]) {
    it(`matches the PyTorch logits and routing for ${routing}${interventions ? ` with ${interventions}` : ''}`, () => {
      const ref = expected.cases.find((c) => c.routing === routing && c.interventions === interventions)!;
      expect(ref).toBeDefined();
      const args = ['eval', MIXTRAL, '--tokens', expected.tokens.join(','), '--routing', routing, '--json'];
      if (interventions) args.push('--interventions', interventions);
      const out = onlyJson<EvalJson>(moe(...args));
      expect(maxAbsDiff(out.logits, ref.logits)).toBeLessThan(1e-4);
      out.routing.forEach((layer, m) =>
        layer.forEach((r, t) => expect(r.experts).toEqual(ref.routing_trace[m][t].experts)),
      );
    });
  }

  // The command itself, on every architecture and dtype the fixtures cover (one mode each: the
  // engine's own parity test runs every mode; here we check the CLI's plumbing per architecture).
  const FIXTURES = join(MIXTRAL, '..');
  const cases: [string, string][] = readdirSync(FIXTURES)
    .filter((name) => existsSync(join(FIXTURES, name, 'expected.json')))
    .map((name, i) => {
      const routings = (
        JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as typeof expected
      ).cases
        .filter((c) => c.interventions === '')
        .map((c) => c.routing);
      return [name, routings[i % routings.length]];
    });
  it.each(cases)('%s under %s matches the PyTorch logits', (name, routing) => {
    const ref = (JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as typeof expected).cases.find(
      (c) => c.routing === routing && c.interventions === '',
    )!;
    const fixtureTokens = (JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as typeof expected)
      .tokens;
    const out = onlyJson<EvalJson>(
      moe('eval', join(FIXTURES, name), '--tokens', fixtureTokens.join(','), '--routing', routing, '--json'),
    );
    expect(maxAbsDiff(out.logits, ref.logits)).toBeLessThan(1e-4);
    expect(out.routing).toHaveLength(ref.routing_trace.length);
    out.routing.forEach((layer, m) =>
      layer.forEach((r, t) => expect(r.experts).toEqual(ref.routing_trace[m][t].experts)),
    );
  });

  it('--quantize q8: logits within 0.1 of the PyTorch f32 reference (measured 0.047 on logits up to 3.4), but not equal', () => {
    const ref = expected.cases.find((c) => c.routing === 'native' && c.interventions === '')!;
    const out = onlyJson<EvalJson>(
      moe('eval', MIXTRAL, '--tokens', expected.tokens.join(','), '--quantize', 'q8', '--json'),
    );
    const diff = maxAbsDiff(out.logits, ref.logits);
    expect(diff).toBeLessThan(0.1);
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('human output names the loss and the routing', () => {
    const r = moe('eval', MIXTRAL, '--text', 'hello world');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/mean loss \d+\.\d+/);
    expect(r.stdout).toMatch(/layer 1 routing/);
  });
});

describe('moe generate', () => {
  it("greedy --json: the first token is the argmax of eval's last row, routing covers prompt and output", () => {
    const gen = onlyJson<{ tokens: number[]; promptTokens: number[]; text: string; routing: RoutingEntry[][] }>(
      moe('generate', MIXTRAL, '--prompt', 'hello', '--max-tokens', '3', '--temperature', '0', '--json'),
    );
    expect(gen.promptTokens.length).toBeGreaterThan(0);
    expect(gen.tokens).toHaveLength(3);
    expect(typeof gen.text).toBe('string');
    expect(gen.routing).toHaveLength(2);
    expect(gen.routing[0]).toHaveLength(gen.promptTokens.length + 3);
    const scored = onlyJson<EvalJson>(moe('eval', MIXTRAL, '--tokens', gen.promptTokens.join(','), '--json'));
    const last = scored.logits[scored.logits.length - 1];
    expect(gen.tokens[0]).toBe(last.indexOf(Math.max(...last)));
  });
});

describe('moe upcycle', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'moe-cli-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("writes a Mixtral checkpoint whose logits equal the parent's", () => {
    const out = join(tmp, 'child');
    const up = moe(
      'upcycle',
      LLAMA,
      out,
      '--experts',
      '4',
      '--granularity',
      '2',
      '--top-k',
      '2',
      '--router-scale',
      '2',
      '--seed',
      '3',
    );
    expect(up.stderr).toBe('');
    expect(up.status).toBe(0);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(existsSync(join(out, f))).toBe(true);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('mixtral');
    expect(config.num_local_experts).toBe(4);
    expect(config.upcycling).toMatchObject({ experts: 4, granularity: 2, topK: 2 });

    const tokens = '5,17,42,99,3,250';
    const parent = onlyJson<EvalJson>(moe('eval', LLAMA, '--tokens', tokens, '--json'));
    const child = onlyJson<EvalJson>(moe('eval', out, '--tokens', tokens, '--json'));
    expect(parent.routing).toEqual([]); // dense: no MoE layers
    expect(child.routing).toHaveLength(config.num_hidden_layers);
    expect(maxAbsDiff(child.logits, parent.logits)).toBeLessThanOrEqual(1e-5);
  });

  it('rejects N not a multiple of G in one line', () => {
    expectOneLineFailure(
      moe('upcycle', LLAMA, join(tmp, 'bad'), '--experts', '6', '--granularity', '4'),
      /not a multiple of 4/,
    );
    expect(existsSync(join(tmp, 'bad'))).toBe(false);
  });
});

describe('moe inspect', () => {
  it("shows RoPE scaling, the sliding window and granitemoe's multipliers as config.json gives them", () => {
    type Report = { ropeScaling: unknown; slidingWindow: number | null; multipliers?: Record<string, number> };
    const rope = onlyJson<Report>(moe('inspect', join(MIXTRAL, '..', 'llama3_rope'), '--json'));
    expect(rope.ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 8,
      originalMaxPositions: 256,
    });
    expect(rope.multipliers).toBeUndefined();
    expect(onlyJson<Report>(moe('inspect', join(MIXTRAL, '..', 'mistral_sliding'), '--json')).slidingWindow).toBe(5);
    const granite = onlyJson<Report>(moe('inspect', join(MIXTRAL, '..', 'granitemoe_f32'), '--json'));
    expect(granite.multipliers).toEqual({ embedding: 12, attention: 0.125, residual: 0.22, logitsDivisor: 6 });
    expect(granite.slidingWindow).toBeNull();
    expect(moe('inspect', join(MIXTRAL, '..', 'granitemoe_f32')).stdout).toMatch(
      /multipliers\s+embedding ×12, scores ×0\.125, residual ×0\.22, logits ÷6/,
    );
  });

  it('prints the expert count (text and --json)', () => {
    const text = moe('inspect', MIXTRAL);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/experts\s+8 per layer, top-2/);
    const json = onlyJson<{
      experts: number;
      topK: number;
      parameters: { active: Record<string, number>; total: number };
    }>(moe('inspect', MIXTRAL, '--json'));
    expect(json.experts).toBe(8);
    expect(json.topK).toBe(2);
    expect(Object.keys(json.parameters.active)).toEqual(['dense', 'topk:1', 'topk:2', 'native']);
    expect(json.parameters.active.dense).toBe(json.parameters.total);
  });
});

describe('moe bench --json', () => {
  it('reports every mode of interest with speeds and active parameters', () => {
    const out = onlyJson<{
      results: {
        routing: string;
        backend: string;
        prefillTokensPerSecond: number;
        decodeTokensPerSecond: number;
        activeParameters: number;
      }[];
    }>(moe('bench', MIXTRAL, '--prompt-tokens', '4', '--decode-tokens', '2', '--min-seconds', '0', '--json'));
    expect(out.results.map((r) => r.routing)).toEqual(['dense', 'topk:1', 'topk:2', 'native', 'threshold:1']);
    for (const r of out.results) {
      expect(r.backend).toBe('cpu');
      expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
      expect(r.decodeTokensPerSecond).toBeGreaterThan(0);
    }
    const active = Object.fromEntries(out.results.map((r) => [r.routing, r.activeParameters]));
    expect(active['topk:1']).toBeLessThan(active['topk:2']);
    expect(active['topk:2']).toBeLessThan(active.dense);
    expect(active.native).toBe(active['topk:2']);
  });
});

describe('moe quantcost', () => {
  it('--json: one object with weight bytes per scheme and, per scheme, routing/top-1 shares, KL and Δloss', () => {
    const text = join(tmpdir(), `quantcost-${process.pid}.txt`);
    writeFileSync(text, 'hello world, the quick brown fox jumps over the lazy dog again and again');
    try {
      const out = onlyJson<{
        tokens: number;
        weightBytes: Record<string, number>;
        results: {
          scheme: string;
          routingUnchanged: number;
          top1Agreement: number;
          meanKl: number;
          deltaLoss: number;
        }[];
      }>(moe('quantcost', MIXTRAL, '--texts', text, '--json'));
      expect(out.results.map((r) => r.scheme)).toEqual(['q8', 'q4']);
      expect(out.weightBytes.q4).toBeLessThan(out.weightBytes.q8);
      expect(out.weightBytes.q8).toBeLessThan(out.weightBytes.none);
      for (const r of out.results) {
        expect(r.routingUnchanged).toBeGreaterThan(0);
        expect(r.routingUnchanged).toBeLessThanOrEqual(1);
        expect(r.meanKl).toBeGreaterThan(0);
      }
      expect(out.results[0].meanKl).toBeLessThan(out.results[1].meanKl); // q8 costs less than q4
    } finally {
      rmSync(text, { force: true });
    }
  });
  it('refuses "none" as a scheme to compare', () => {
    expectOneLineFailure(moe('quantcost', MIXTRAL, '--schemes', 'none,q8'), /--schemes lists "none"/);
  });
});

describe('failures', () => {
  it('a folder without a checkpoint', () => {
    expectOneLineFailure(moe('eval', 'tests/fixtures', '--tokens', '1'), /config\.json/);
  });
  it('a folder that does not exist', () => {
    expectOneLineFailure(moe('inspect', 'no/such/folder'), /does not exist/);
  });
  it('an unknown flag or command shows the usage', () => {
    expectOneLineFailure(
      moe('eval', MIXTRAL, '--tokens', '1', '--frobnicate'),
      /unknown option --frobnicate\. usage: moe eval SOURCE/,
    );
    expectOneLineFailure(moe('transmogrify'), /unknown command "transmogrify"\. usage: moe </);
  });
  it('an unknown quantization', () => {
    expectOneLineFailure(
      moe('eval', MIXTRAL, '--tokens', '1', '--quantize', 'q3'),
      /Unknown quantization "q3"\. Hint: Use --quantize none, q8/,
    );
    expectOneLineFailure(
      moe('generate', MIXTRAL, '--prompt', 'a', '--quantize', 'int8'),
      /Unknown quantization "int8"/,
    );
  });
  it('a routing mode the model cannot run', () => {
    expectOneLineFailure(moe('eval', MIXTRAL, '--tokens', '1,2', '--routing', 'topk:9'), /topk:9 .*8/);
  });
  it('--backend webgpu without a usable adapter says so in words', () => {
    const result = moe('eval', MIXTRAL, '--tokens', '1', '--backend', 'webgpu', {
      VK_ICD_FILENAMES: '/nonexistent/icd.json',
    });
    expect(result.status).not.toBe(0);
    // Dawn itself prints Vulkan warnings on stderr; ours is exactly one "moe:" line, with no JS stack.
    const ours = result.stderr.split('\n').filter((line) => line.startsWith('moe: '));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/WebGPU/);
    expect(result.stderr).not.toMatch(/\n\s+at .*\.(ts|mjs|js):\d+/);
  });
});
