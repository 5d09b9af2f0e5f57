// The share-link schema: round trips, whitelist, clamping, refusals with notices.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SHARE_STATE,
  LIMITS,
  fitToModel,
  formatShareFragment,
  parseShareFragment,
  routingOf,
  type ShareState,
} from '../../src/state/url.ts';

const custom: ShareState = {
  ...DEFAULT_SHARE_STATE,
  model: '/fixtures/mixtral_f32/',
  prompt: 'Grüße & <b>bold</b> #1 = 100%?',
  mode: 'threshold',
  k: 3,
  t: 0.75,
  gen: 'topk:3',
  temperature: 0.3,
  topP: 0.9,
  seed: 1234567,
  maxTokens: 40,
  layer: 1,
  token: 7,
  view: 'probs',
};

describe('share link schema', () => {
  it('round-trips every field exactly, with no notices', () => {
    const parsed = parseShareFragment(`#${formatShareFragment(custom)}`);
    expect(parsed.notices).toEqual([]);
    expect(parsed.state).toEqual(custom);
    // The 13 keys of the first schema are always written; classroom keys only when set.
    expect(parsed.present.size).toBe(13);
  });

  it('gives the defaults for an empty fragment', () => {
    expect(parseShareFragment('')).toMatchObject({ state: DEFAULT_SHARE_STATE, notices: [] });
  });

  it('clamps out-of-range numbers and says so', () => {
    const { state, notices } = parseShareFragment('v=1&temp=9&topp=0&max=100000&seed=-5&k=0&layer=999');
    expect(state.temperature).toBe(LIMITS.temperature[1]);
    expect(state.topP).toBe(LIMITS.topP[0]);
    expect(state.maxTokens).toBe(LIMITS.maxTokens[1]);
    expect(state.seed).toBe(0);
    expect(state.k).toBe(1);
    expect(state.layer).toBe(LIMITS.layer[1]);
    expect(notices).toHaveLength(6);
    expect(notices.every((n) => /clamped/.test(n))).toBe(true);
  });

  it('refuses values of the wrong type and keeps the defaults', () => {
    const { state, notices } = parseShareFragment('v=1&temp=hot&seed=1.5&mode=sparse&view=<img>&gen=topk:0');
    expect(state.temperature).toBe(DEFAULT_SHARE_STATE.temperature);
    expect(state.seed).toBe(DEFAULT_SHARE_STATE.seed);
    expect(state.mode).toBe('native');
    expect(state.view).toBe(DEFAULT_SHARE_STATE.view);
    expect(state.gen).toBe('native');
    expect(notices).toHaveLength(5);
    expect(notices.every((n) => /refused/.test(n))).toBe(true);
  });

  it('refuses an oversized prompt and a whole oversized link', () => {
    const long = 'a'.repeat(LIMITS.promptChars + 1);
    const one = parseShareFragment(`v=1&prompt=${long}`);
    expect(one.state.prompt).toBe(DEFAULT_SHARE_STATE.prompt);
    expect(one.notices[0]).toMatch(/prompt/);
    const huge = parseShareFragment(`v=1&prompt=${'x'.repeat(100_000)}`);
    expect(huge.state).toEqual(DEFAULT_SHARE_STATE);
    expect(huge.notices[0]).toMatch(/ignored/);
    // The notice quotes at most a short piece of what it refused.
    expect(huge.notices[0].length).toBeLessThan(300);
  });

  it('keeps markup in a prompt as plain text (the page renders it as text)', () => {
    const { state, notices } = parseShareFragment(`v=1&prompt=${encodeURIComponent('<script>alert(1)</script>')}`);
    expect(notices).toEqual([]);
    expect(state.prompt).toBe('<script>alert(1)</script>');
  });

  it('refuses model ids that are not plain ids, same-site paths or remote sources', () => {
    // An https:// source is a valid link model since issue 11: the page shows its host and asks
    // before reading anything but its configs. Plain http (off this machine), credentials, script
    // URLs and climbing paths are refused.
    for (const bad of [
      'http://evil.example/m/',
      'https://user:pw@evil.example/m/',
      'javascript:alert(1)',
      '../../etc/passwd',
      'a b',
      'local:disk',
    ]) {
      const { state, notices } = parseShareFragment(`v=1&model=${encodeURIComponent(bad)}`);
      expect(state.model).toBe('');
      expect(notices).toHaveLength(1);
    }
  });

  it('ignores a stale schema version and unknown keys, with notices', () => {
    const stale = parseShareFragment('v=0&temp=0.1');
    expect(stale.state).toEqual(DEFAULT_SHARE_STATE);
    expect(stale.notices[0]).toMatch(/version/);
    const unknown = parseShareFragment('v=1&evil=1&temp=0.5');
    expect(unknown.state.temperature).toBe(0.5);
    expect(unknown.notices).toEqual([expect.stringMatching(/"evil" is unknown/)]);
  });

  it('fits k, threshold, layer and generation routing to the loaded model', () => {
    const { state, notices } = fitToModel(
      { ...custom, k: 20, t: 30, layer: 5, gen: 'topk:9' },
      { numExperts: 8, numMoeLayers: 2 },
    );
    expect(state).toMatchObject({ k: 8, t: 8, layer: 1, gen: 'native' });
    expect(notices).toHaveLength(4);
    expect(fitToModel(custom, { numExperts: 8, numMoeLayers: 2 }).notices).toEqual([]);
  });

  it('leaves routing settings alone, without notices, for a dense model (no router to fit)', () => {
    const linked = { ...custom, k: 2, t: 1.5, gen: 'topk:2' };
    const { state, notices } = fitToModel(linked, { numExperts: 0, numMoeLayers: 0 });
    expect(notices).toEqual([]);
    expect(state).toMatchObject({ k: 2, t: 1.5, gen: 'topk:2' });
  });

  it('writes the routing string the engine parses', () => {
    expect(routingOf({ mode: 'topk', k: 3, t: 1 })).toBe('topk:3');
    expect(routingOf({ mode: 'threshold', k: 3, t: 0.5 })).toBe('threshold:0.5');
    expect(routingOf({ mode: 'dense', k: 3, t: 0.5 })).toBe('dense');
  });
});
