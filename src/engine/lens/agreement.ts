// Agreement between two runs on the same tokens: two models (upcycled-at-init vs trained, naive vs
// drop-upcycled, quantized vs not) or two routing modes of one model. Counts (layer, token) pairs
// with the same chosen set and the same first choice, and compares the next-token distributions.

import { argmax, klDivergence } from '../run/index.ts';
import { checkShape, checkWindow, type LensShape } from './check.ts';
import { LensError } from './errors.ts';
import { percent, type LogitWindow } from './types.ts';

export interface AgreementLayer {
  layer: number;
  /** Share of tokens whose chosen sets are equal (as sets). */
  sameSet: number;
  /** Share of tokens whose first-choice (highest-probability) expert is equal. */
  sameFirst: number;
}

export interface AgreementLens {
  moeLayers: number[];
  tokens: number;
  layers: AgreementLayer[];
  /** Over every (token, MoE layer) pair. */
  sameSet: number;
  sameFirst: number;
  /** Share of positions where both runs' top-1 next token is the same. */
  top1: number;
  /** Mean KL(A ‖ B) of the next-token distributions, nats. */
  meanKl: number;
  sentence: string;
}

export interface AgreementAccumulator {
  add(a: LogitWindow, b: LogitWindow): void;
  result(): AgreementLens;
}

export function createAgreementLens(
  shape: LensShape,
  labels: { a: string; b: string } = { a: 'A', b: 'B' },
): AgreementAccumulator {
  checkShape(shape);
  const M = shape.moeLayers.length;
  const sameSet = new Array<number>(M).fill(0);
  const sameFirst = new Array<number>(M).fill(0);
  let tokens = 0;
  let top1 = 0;
  let kl = 0;
  return {
    add(a: LogitWindow, b: LogitWindow) {
      checkWindow(a, shape);
      checkWindow(b, shape);
      if (a.tokens.length !== b.tokens.length || a.tokens.some((t, i) => t !== b.tokens[i])) {
        throw new LensError(
          'The two runs did not read the same tokens, so they cannot be compared.',
          'Compare two runs on the same text with the same tokenizer.',
        );
      }
      if (a.logits.length !== a.tokens.length || b.logits.length !== b.tokens.length) {
        throw new LensError(
          'A run has no next-token logits for every token.',
          'Score every position of the window (logits: all).',
        );
      }
      for (let m = 0; m < M; m++) {
        const ra = a.trace.layers[m];
        const rb = b.trace.layers[m];
        for (let t = 0; t < ra.length; t++) {
          const x = ra[t].experts;
          const y = rb[t].experts;
          if (x[0] === y[0]) sameFirst[m]++;
          if (x.length === y.length && x.every((e) => y.includes(e))) sameSet[m]++;
        }
      }
      for (let t = 0; t < a.tokens.length; t++) {
        if (a.logits[t].length !== b.logits[t].length) {
          throw new LensError(
            'The two runs predict over vocabularies of different sizes.',
            'Compare models that share a tokenizer.',
          );
        }
        if (argmax(a.logits[t]) === argmax(b.logits[t])) top1++;
        kl += klDivergence(a.logits[t], b.logits[t]);
      }
      tokens += a.tokens.length;
    },
    result() {
      const layers = shape.moeLayers.map((layer, m) => ({
        layer,
        sameSet: tokens > 0 ? sameSet[m] / tokens : NaN,
        sameFirst: tokens > 0 ? sameFirst[m] / tokens : NaN,
      }));
      const pairs = tokens * M;
      const out = {
        moeLayers: [...shape.moeLayers],
        tokens,
        layers,
        sameSet: pairs > 0 ? sameSet.reduce((x, y) => x + y, 0) / pairs : NaN,
        sameFirst: pairs > 0 ? sameFirst.reduce((x, y) => x + y, 0) / pairs : NaN,
        top1: tokens > 0 ? top1 / tokens : NaN,
        meanKl: tokens > 0 ? kl / tokens : NaN,
      };
      const sentence =
        tokens === 0
          ? 'The runs share no tokens yet.'
          : `${labels.a} and ${labels.b} choose the same experts for ${percent(out.sameSet)} of (token, layer) pairs and the same first choice for ${percent(out.sameFirst)}; ` +
            `they predict the same next token ${percent(out.top1)} of the time (mean KL ${out.meanKl.toFixed(4)} nats).`;
      return { ...out, sentence };
    },
  };
}

export function agreement(
  pairs: Iterable<[LogitWindow, LogitWindow]>,
  shape: LensShape,
  labels?: { a: string; b: string },
): AgreementLens {
  const acc = createAgreementLens(shape, labels);
  for (const [a, b] of pairs) acc.add(a, b);
  return acc.result();
}

/** The shape two runs share, or a LensError saying why their routing cannot be compared. */
export function agreementShape(a: LensShape, b: LensShape): LensShape {
  if (a.numExperts !== b.numExperts) {
    throw new LensError(
      `The two models have different numbers of experts (${a.numExperts} and ${b.numExperts}), so their choices cannot be compared.`,
      'Compare models with the same experts per layer.',
    );
  }
  if (a.moeLayers.length !== b.moeLayers.length || a.moeLayers.some((l, i) => l !== b.moeLayers[i])) {
    throw new LensError(
      `The two models route at different layers ([${a.moeLayers.join(', ')}] and [${b.moeLayers.join(', ')}]).`,
      'Compare models with the same MoE layers.',
    );
  }
  return a;
}
