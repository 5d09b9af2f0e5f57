// The Lenses view's state: its share-link keys (round trip, limits, fallbacks with a notice), the
// page's link parser leaving them alone, the texts a job gets, the export rows of a result, and the
// job store's handling of progress, stale replies and failures.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dirSource } from '../../src/cli/fsSource.ts';
import { createCpuBackend } from '../../src/engine/backends/cpu/index.ts';
import { loadCheckpoint } from '../../src/engine/format/index.ts';
import {
  analyzeCorpus,
  defaultTradeoffModes,
  domainTable,
  tableToCsv,
  tradeoffTable,
} from '../../src/engine/lens/index.ts';
import { parseRoutingPlan } from '../../src/engine/routing/index.ts';
import {
  createLensStore,
  DEFAULT_LENS_SETTINGS,
  formatLensParams,
  isLensKey,
  jobTexts,
  LENS_LIMITS,
  lensCsv,
  lensJson,
  lensSentence,
  lensTable,
  linkSettings,
  parseLensFragment,
  textNameOf,
  type LensSettings,
} from '../../src/state/lenses.ts';
import { parseShareFragment } from '../../src/state/url.ts';
import type { LensJobResult } from '../../src/worker/lensJobs.ts';

const link = (s: LensSettings) => parseLensFragment(`#v=1&model=x&${formatLensParams(s).params}`);

describe('lens link', () => {
  it('round-trips every setting', () => {
    const s: LensSettings = {
      model: 'moe-top2',
      routing: 'topk:1|L1E3-',
      compare: true,
      compareModel: '/fixtures/mixtral_f16/',
      compareRouting: 'threshold:1.5',
      source: 'builtin',
      builtin: ['python', 'arithmetic'],
      pasted: [],
      maxTokens: 512,
      tradeoff: false,
      layer: 3,
      focus: 'coactivation',
    };
    const parsed = link(s);
    expect(parsed.notices).toEqual([]);
    expect(parsed.present).toBe(true);
    expect(parsed.settings).toEqual(s);
  });

  it('carries pasted texts with any characters, in order', () => {
    const pasted = [
      { name: 'notes', text: 'a = b & c\n# not a fragment?\tüñî 漢字 +%20' },
      { name: 'code two', text: 'def f(x):\n    return x == 1' },
    ];
    const parsed = link({ ...DEFAULT_LENS_SETTINGS, source: 'pasted', pasted, focus: 'vocab' });
    expect(parsed.notices).toEqual([]);
    expect(parsed.settings.source).toBe('pasted');
    expect(parsed.settings.pasted).toEqual(pasted);
  });

  it('leaves out pasted texts past the limits and says why', () => {
    const long = 'x'.repeat(LENS_LIMITS.linkTextChars + 1);
    const out = formatLensParams({
      ...DEFAULT_LENS_SETTINGS,
      source: 'pasted',
      pasted: [{ name: 'big', text: long }],
      focus: 'domain',
    });
    expect(out.params).not.toContain('lenstext=');
    expect(out.problem).toMatch(/4001 characters long; a link holds at most 4000.*built-in texts instead/);
    // Encoded size counts too: 3000 characters that each take 9 bytes encoded.
    const wide = formatLensParams({
      ...DEFAULT_LENS_SETTINGS,
      source: 'pasted',
      pasted: [{ name: 'wide', text: '漢'.repeat(3000) }],
    });
    expect(wide.problem).toMatch(/once encoded/);
    // A hand-made link past the limit keeps the texts that fit, and says which were refused.
    const params = new URLSearchParams({ v: '1', lens: 'domain' });
    params.append('lenstext', `a=${'y'.repeat(3000)}`);
    params.append('lenstext', `b=${'z'.repeat(1500)}`);
    const parsed = parseLensFragment(params.toString());
    expect(parsed.settings.pasted.map((t) => t.name)).toEqual(['a']);
    expect(parsed.notices).toEqual([
      expect.stringMatching(/lens pasted text "b=z+…" was refused \(more than 4000 characters/),
    ]);
  });

  it('refuses bad values with a notice each and keeps the defaults', () => {
    const parsed = parseLensFragment(
      'v=1&lens=heatmap&lensmodel=../../etc&lensmode=topk:0&lensbmode=sparse&lenscmp=yes&lenstexts=english,klingon&lensmax=99999&lenslayer=-1&lenssweep=2&lenstext=noname&lenstext=a%3D1&lenstext=a%3D2',
    );
    expect(parsed.settings).toEqual({
      ...DEFAULT_LENS_SETTINGS,
      builtin: ['english'],
      maxTokens: 4096,
      layer: 0,
      source: 'pasted',
      pasted: [{ name: 'a', text: '1' }],
    });
    const n = parsed.notices.join('\n');
    expect(n).toMatch(/lens "heatmap" was refused \(not one of domain, vocab/);
    expect(n).toMatch(/lens model "..\/..\/etc" was refused \(climbs out of the site\)/);
    expect(n).toMatch(/lens routing "topk:0" was refused/);
    expect(n).toMatch(/lens second routing "sparse" was refused/);
    expect(n).toMatch(/lens comparison switch "yes" was refused/);
    expect(n).toMatch(/"klingon" are not built-in texts/);
    expect(n).toMatch(/tokens per text 99999 is out of range and was clamped to 4096/);
    expect(n).toMatch(/lens layer -1 is out of range and was clamped to 0/);
    expect(n).toMatch(/trade-off switch "2" was refused/);
    expect(n).toMatch(/"noname" was refused \(has no name; write NAME=TEXT\)/);
    expect(n).toMatch(/"a=2" was refused \(a second text called "a"\)/);
    expect(parsed.notices).toHaveLength(11);
  });

  it('is absent without lens keys, ignored without the schema version, and invisible to the page parser', () => {
    expect(parseLensFragment('v=1&model=moe-top2').present).toBe(false);
    expect(parseLensFragment('lens=domain&lensmax=9').present).toBe(false);
    expect(isLensKey('lensmax')).toBe(true);
    expect(isLensKey('model')).toBe(false);
    const page = parseShareFragment('v=1&model=moe-top2&lens=domain&lensmax=64&lenstext=a%3Db&bogus=1');
    expect(page.notices).toEqual(['The link parameter "bogus" is unknown and was ignored.']);
    expect(page.state.model).toBe('moe-top2');
  });

  it('names the models a result ran with, the lens in focus', () => {
    const ran = { ...DEFAULT_LENS_SETTINGS, compare: true, ranModel: 'moe-top2', ranCompareModel: 'ds-moe' };
    expect(linkSettings(ran, 'tradeoff')).toEqual({
      ...DEFAULT_LENS_SETTINGS,
      compare: true,
      model: 'moe-top2',
      compareModel: 'ds-moe',
      focus: 'tradeoff',
    });
    expect(linkSettings({ ...ran, compare: false }, 'load').compareModel).toBe('');
  });
});

describe('job texts', () => {
  const builtIn = { english: 'Hello there.', python: 'print(1)' };
  it('takes the built-in texts by name, or the pasted ones trimmed of their name spaces', () => {
    expect(jobTexts({ ...DEFAULT_LENS_SETTINGS, builtin: ['python', 'english'] }, builtIn)).toEqual({
      texts: [
        { name: 'python', text: 'print(1)' },
        { name: 'english', text: 'Hello there.' },
      ],
    });
    expect(jobTexts({ ...DEFAULT_LENS_SETTINGS, source: 'pasted', pasted: [{ name: ' a ', text: 'x' }] }, {})).toEqual({
      texts: [{ name: 'a', text: 'x' }],
    });
  });
  it('says why a set cannot run', () => {
    const problem = (s: Partial<LensSettings>) => {
      const r = jobTexts({ ...DEFAULT_LENS_SETTINGS, ...s }, builtIn);
      return 'problem' in r ? r.problem : null;
    };
    expect(problem({ builtin: [] })).toBe('No text is selected.');
    expect(problem({ builtin: ['german'] })).toBe('The built-in text "german" could not be read from this site.');
    expect(problem({ source: 'pasted', pasted: [] })).toBe('There is no text to analyse.');
    expect(problem({ source: 'pasted', pasted: [{ name: 'n', text: '  \n' }] })).toBe('The text "n" is empty.');
    expect(problem({ source: 'pasted', pasted: [{ name: ' ', text: 'x' }] })).toBe('A text has no name.');
    expect(
      problem({
        source: 'pasted',
        pasted: [
          { name: 'a', text: 'x' },
          { name: 'a ', text: 'y' },
        ],
      }),
    ).toBe('Two texts are both called "a".');
  });
  it('names a dropped file after itself', () => {
    expect(textNameOf('recipes.txt')).toBe('recipes');
    expect(textNameOf('my notes (v2).md')).toBe('my notes -v2');
    expect(textNameOf('???.txt')).toBe('text');
  });
});

describe('export rows and the job store', () => {
  let result: LensJobResult;
  beforeAll(async () => {
    const dir = join(import.meta.dirname, '..', 'fixtures', 'models');
    const load = async (name: string) => {
      const ckpt = await loadCheckpoint(dirSource(join(dir, name)));
      return createCpuBackend().load(ckpt.spec, ckpt.weights);
    };
    const texts = [
      { name: 'one', tokens: [5, 9, 12, 40, 7, 7, 88, 3, 150, 2] },
      { name: 'two', tokens: [100, 101, 102, 5, 6, 200, 201, 9] },
    ];
    const plan = parseRoutingPlan('native', '');
    const a = await analyzeCorpus(await load('mixtral_f32'), texts, {
      plan,
      tradeoffModes: [{ kind: 'topk', k: 1 }, { kind: 'dense' }],
    });
    const b = await analyzeCorpus(await load('mixtral_f16'), texts, { plan, tradeoffModes: [{ kind: 'dense' }] });
    result = {
      a: { label: 'A (native)', modelId: 'A', routing: 'native', analysis: a },
      b: { label: 'B (native)', modelId: 'B', routing: 'native', analysis: b },
      agreement: null,
      tokens: { one: 10, two: 8 },
    };
  });

  it('puts both runs in one table, each row tagged with its run', () => {
    const table = lensTable('domain', result)!;
    const a = domainTable(result.a.analysis.domain);
    const b = domainTable(result.b!.analysis.domain);
    expect(table.columns).toEqual(['run', ...a.columns]);
    expect(table.rows).toEqual([
      ...a.rows.map((r) => ['A (native)', ...r]),
      ...b.rows.map((r) => ['B (native)', ...r]),
    ]);
    expect(lensCsv('domain', result)).toBe(tableToCsv(table));
    const json = JSON.parse(lensJson('domain', result)!) as {
      rows: unknown[];
      runs: string[];
      texts: { name: string }[];
    };
    expect(json.rows).toHaveLength(table.rows.length);
    expect(json.runs).toEqual(['A (native)', 'B (native)']);
    expect(json.texts.map((t) => t.name)).toEqual(['one', 'two']);
  });

  it('draws one trade-off curve per model, labelled with the model', () => {
    const table = lensTable('tradeoff', result)!;
    expect(table.rows).toEqual([
      ...tradeoffTable(result.a.analysis.tradeoff, 'A').rows,
      ...tradeoffTable(result.b!.analysis.tradeoff, 'B').rows,
    ]);
    expect(table.rows.filter((r) => r[1] === 'dense').map((r) => r[0])).toEqual(['A', 'B']);
    expect(lensSentence('tradeoff', result)).toBe(
      `A: ${result.a.analysis.tradeoff.sentence} B: ${result.b!.analysis.tradeoff.sentence}`,
    );
    expect(lensTable('agreement', result)).toBeNull();
  });

  it('the default sweep (what the page asks for) scores every mode, as an explicit list does', async () => {
    const ckpt = await loadCheckpoint(dirSource(join(import.meta.dirname, '..', 'fixtures', 'models', 'mixtral_f32')));
    const model = await createCpuBackend().load(ckpt.spec, ckpt.weights);
    const texts = [{ name: 'one', tokens: [5, 9, 12, 40, 7, 7, 88, 3, 150, 2, 17, 30] }];
    const plan = parseRoutingPlan('native', '');
    const byDefault = await analyzeCorpus(model, texts, { plan });
    const explicit = await analyzeCorpus(model, texts, { plan, tradeoffModes: defaultTradeoffModes(ckpt.spec) });
    expect(byDefault.tradeoff.points).toEqual(explicit.tradeoff.points);
    // topk:1 reads fewer experts than dense: a real sweep, not the analysed point copied under each name.
    const [k1, dense] = ['topk:1', 'dense'].map((m) => byDefault.tradeoff.points.find((p) => p.mode === m)!);
    expect(k1.expertsPerLayer).toBe(1);
    expect(dense.expertsPerLayer).toBe(8);
    expect(k1.loss).not.toBe(dense.loss);
  });

  it('takes progress and results of its own job only; a failure keeps the result on screen', () => {
    const store = createLensStore({ settings: { ...DEFAULT_LENS_SETTINGS, layer: 9 } });
    const spec = {
      a: { model: { id: 'A', baseUrl: '/a/' }, routing: parseRoutingPlan('native', '') },
      texts: [],
      maxTokens: 8,
      tradeoff: false,
    };
    store.getState().begin(7, spec, { model: 'A', compareModel: '' });
    store.getState().receive({ type: 'lensProgress', requestId: 6, stage: 'old', fraction: 0.9 });
    expect(store.getState().job).toEqual({ requestId: 7, stage: 'starting', fraction: 0 });
    store.getState().receive({ type: 'lensProgress', requestId: 7, stage: 'routing', fraction: 0.5 });
    expect(store.getState().job?.fraction).toBe(0.5);
    store.getState().receive({ type: 'lensDone', requestId: 7, result });
    expect(store.getState().job).toBeNull();
    expect(store.getState().result).toBe(result);
    expect(store.getState().resultSettings?.ranModel).toBe('A');
    // The layer is clamped to the model's MoE layers.
    expect(store.getState().settings.layer).toBe(result.a.analysis.moeLayers.length - 1);
    store.getState().begin(8, spec, { model: 'A', compareModel: '' });
    store.getState().receive({
      type: 'lensFailed',
      requestId: 8,
      message: 'The analysis was cancelled; nothing was measured.',
      cancelled: true,
    });
    expect(store.getState().problem).toEqual({
      message: 'The analysis was cancelled; nothing was measured.',
      hint: undefined,
      cancelled: true,
    });
    expect(store.getState().result).toBe(result);
  });
});
