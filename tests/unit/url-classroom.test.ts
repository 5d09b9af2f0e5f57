// The classroom keys of the share link: interventions, compare, upcycling, presenter/embed,
// teacher controls and tour step round-trip; bad values fall back with a notice; old links still read.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SHARE_STATE,
  fitInterventions,
  fitToModel,
  formatRecipe,
  formatShareFragment,
  parseRecipe,
  parseShareFragment,
  planOf,
  planTextOf,
  type ShareState,
} from '../../src/state/url.ts';
import { parsePlanText } from '../../src/engine/routing/index.ts';

const classroom: ShareState = {
  ...DEFAULT_SHARE_STATE,
  model: 'moe-top2',
  mode: 'topk',
  k: 1,
  iv: 'L1E3-,L0E2+',
  gen: 'topk:1|L1E3-',
  compare: true,
  bModel: 'ds-moe',
  bRouting: 'threshold:0.5|L0E1-',
  upcycle: 'E8G2K4S7',
  presenter: true,
  embed: true,
  hide: ['sampling', 'model'],
  lock: ['routing'],
  step: 3,
};

describe('classroom share keys', () => {
  it('round-trip exactly, with no notices', () => {
    const parsed = parseShareFragment(formatShareFragment(classroom));
    expect(parsed.notices).toEqual([]);
    expect(parsed.state).toEqual(classroom);
  });

  it('are left out of the link while they hold their defaults, so a v1 link from before reads the same', () => {
    const fragment = formatShareFragment(DEFAULT_SHARE_STATE);
    for (const key of ['iv=', 'cmp=', 'bmodel=', 'up=', 'pres=', 'embed=', 'hide=', 'lock=', 'step='])
      expect(fragment).not.toContain(key);
    const old = parseShareFragment('v=1&model=moe-top2&mode=dense&gen=native');
    expect(old.notices).toEqual([]);
    expect(old.state).toEqual({ ...DEFAULT_SHARE_STATE, model: 'moe-top2', mode: 'dense' });
  });

  it('refuse malformed interventions, recipes, routing strings and control names with a notice each', () => {
    const { state, notices } = parseShareFragment(
      'v=1&iv=L1E3x&up=E0G1K1S1&bmode=topk:1|L1E&hide=prompt,secret&pres=yes',
    );
    expect(state.iv).toBe('');
    expect(state.upcycle).toBe('');
    expect(state.bRouting).toBe('native');
    expect(state.hide).toEqual([]);
    expect(state.presenter).toBe(false);
    expect(notices).toHaveLength(5);
    expect(notices.join(' ')).toMatch(/interventions "L1E3x" was refused/);
    expect(notices.join(' ')).toMatch(
      /hidden controls "prompt,secret" was refused .*names a control that does not exist/,
    );
  });

  it('puts the interventions into the plan the engine runs, and its routing text', () => {
    const settings = { mode: 'topk', k: 1, t: 1, iv: 'L1E3-,L0E2+' } as const;
    expect(planTextOf(settings)).toBe('topk:1|L1E3-,L0E2+');
    expect(parsePlanText(planTextOf(settings))).toEqual(planOf(settings));
    expect(planOf(settings)).toEqual({
      mode: { kind: 'topk', k: 1 },
      interventions: [
        { layer: 1, expert: 3, action: 'ablate' },
        { layer: 0, expert: 2, action: 'force' },
      ],
    });
    expect(parsePlanText('dense')).toEqual({ mode: { kind: 'dense' }, interventions: [] });
    // A link's routing text is stored in the engine's canonical form.
    expect(parseShareFragment('v=1&gen=TopK:2|l1e3-').state.gen).toBe('topk:2|L1E3-');
  });

  it('drops interventions the loaded model cannot apply, saying which and why', () => {
    const fitted = fitInterventions('L1E3-,L5E0-,L0E9+,L1E3+,L0E1-', { numExperts: 8, moeLayers: [0, 1] });
    expect(fitted.iv).toBe('L1E3-,L0E1-');
    expect(fitted.notices).toHaveLength(3);
    expect(fitted.notices[0]).toMatch(/L5E0- was dropped: layer 5 has no router/);
    // Ablating every expert of a layer leaves the router nothing: the last one is refused.
    expect(fitInterventions('L0E0-,L0E1-', { numExperts: 2, moeLayers: [0] }).iv).toBe('L0E0-');
    const viaModel = fitToModel(
      { ...DEFAULT_SHARE_STATE, iv: 'L1E7-,L1E8-' },
      { numExperts: 8, numMoeLayers: 2, moeLayers: [0, 1] },
    );
    expect(viaModel.state.iv).toBe('L1E7-');
  });

  it('reads and writes upcycling recipes', () => {
    expect(parseRecipe('E8G2K4S7')).toEqual({ experts: 8, granularity: 2, topK: 4, seed: 7 });
    expect(formatRecipe({ experts: 16, granularity: 1, topK: 2, seed: 0 })).toBe('E16G1K2S0');
    expect(parseRecipe('')).toBeNull();
    expect(parseRecipe('E8G1K2S0D25')).toEqual({ experts: 8, granularity: 1, topK: 2, seed: 0, drop: 0.25 });
    expect(parseRecipe('E8G1K2S0D0')).toEqual({ experts: 8, granularity: 1, topK: 2, seed: 0 });
    expect(parseRecipe('E8G1K2S0D101')).toBeNull();
    expect(formatRecipe({ experts: 8, granularity: 1, topK: 2, seed: 0, drop: 0 })).toBe('E8G1K2S0');
  });
});

describe('the guided tour (public/tour.json)', () => {
  it('has steps whose links are valid share links naming the built-in models they need', async () => {
    const { readFileSync } = await import('node:fs');
    const tour = JSON.parse(readFileSync(new URL('../../public/tour.json', import.meta.url), 'utf8')) as {
      steps: { link: string; models: string[] }[];
    };
    const index = JSON.parse(readFileSync(new URL('../../public/models/index.json', import.meta.url), 'utf8')) as {
      models: { id: string }[];
    };
    const builtIn = index.models.map((m) => m.id);
    expect(tour.steps.length).toBeGreaterThanOrEqual(5);
    for (const step of tour.steps) {
      const parsed = parseShareFragment(step.link);
      expect(parsed.notices, step.link).toEqual([]);
      expect(step.models).toContain(parsed.state.model);
      for (const id of [parsed.state.model, parsed.state.bModel].filter(Boolean)) expect(builtIn).toContain(id);
    }
  });
});
