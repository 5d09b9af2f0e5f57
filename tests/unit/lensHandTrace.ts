// A 4-expert trace small enough to work out on paper (MoE layers 1 and 3; text "a" of 4 tokens, "b" of 2),
// shared by the hand-computed lens test and the view test.
import type { LensWindow } from '../../src/engine/lens/index.ts';
import type { TokenRouting } from '../../src/engine/types.ts';

export const r = (experts: number[], probs: number[]): TokenRouting => ({
  experts,
  weights: experts.map((e) => probs[e]),
  probs: Float32Array.from(probs),
});
export const shape = { numExperts: 4, moeLayers: [1, 3] };
export const names = ['a', 'b'];

export const a: LensWindow = {
  domain: 0,
  tokens: [7, 8, 7, 9],
  predicted: [8, 7, 9, 7],
  logProbs: [-1, -2, -3],
  trace: {
    moeLayers: [1, 3],
    positions: [0, 1, 2, 3],
    layers: [
      [
        r([0, 1], [0.5, 0.3, 0.1, 0.1]),
        r([0, 2], [0.4, 0.1, 0.3, 0.2]),
        r([1, 0], [0.35, 0.45, 0.1, 0.1]),
        r([0, 3], [0.6, 0.05, 0.05, 0.3]),
      ],
      [
        r([2, 3], [0.1, 0.1, 0.5, 0.3]),
        r([2, 3], [0.1, 0.1, 0.45, 0.35]),
        r([3, 2], [0.1, 0.1, 0.3, 0.5]),
        r([2, 1], [0.1, 0.3, 0.5, 0.1]),
      ],
    ],
  },
};
export const b: LensWindow = {
  domain: 1,
  tokens: [7, 5],
  predicted: [5, 5],
  logProbs: [-0.5],
  trace: {
    moeLayers: [1, 3],
    positions: [0, 1],
    layers: [
      [r([1, 2], [0.1, 0.5, 0.3, 0.1]), r([1, 2], [0.1, 0.5, 0.3, 0.1])],
      [r([0, 1], [0.45, 0.35, 0.1, 0.1]), r([0, 1], [0.5, 0.3, 0.1, 0.1])],
    ],
  },
};
