// Small random models built in memory (no files), for CPU backend and run-layer tests.

import { fromFloat32 } from '../../src/engine/format/index.ts';
import { createRng } from '../../src/engine/run/index.ts';
import type { Architecture, FfnWeights, LayerWeights, ModelSpec, Tensor, WeightSet } from '../../src/engine/types.ts';

export interface RandomModelOptions {
  architecture?: Architecture;
  vocabSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  intermediateSize?: number;
  numExperts?: number; // 0 = dense
  topK?: number;
  normTopkProb?: boolean;
  sharedExpertIntermediateSize?: number;
  moeLayers?: boolean[];
  attentionBias?: boolean;
  qkNorm?: ModelSpec['qkNorm'];
  tieWordEmbeddings?: boolean;
  seed?: number;
}

export function randomModel(o: RandomModelOptions = {}): { spec: ModelSpec; weights: WeightSet } {
  const V = o.vocabSize ?? 64;
  const d = o.hiddenSize ?? 16;
  const L = o.numLayers ?? 2;
  const nH = o.numHeads ?? 4;
  const nKv = o.numKvHeads ?? 2;
  const hd = o.headDim ?? 8;
  const f = o.intermediateSize ?? 24;
  const E = o.numExperts ?? 4;
  const moeLayers = o.moeLayers ?? Array.from({ length: L }, () => E > 0);
  const fs = o.sharedExpertIntermediateSize ?? 0;
  const qkNorm = o.qkNorm ?? 'none';
  const rng = createRng(o.seed ?? 1);
  // Box–Muller normal samples, scaled like 1/sqrt(fan_in) so activations stay of order 1.
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const tensor = (shape: number[], std: number, mean = 0): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    return fromFloat32(
      Float32Array.from({ length: n }, () => mean + std * normal()),
      shape,
      'F32',
    );
  };
  const linear = (out: number, inp: number) => tensor([out, inp], 1 / Math.sqrt(inp));
  const norm = (n: number) => tensor([n], 0.1, 1);
  const ffn = (width: number): FfnWeights => ({ gate: linear(width, d), up: linear(width, d), down: linear(d, width) });

  const layers: LayerWeights[] = Array.from({ length: L }, (_, l) => {
    const layer: LayerWeights = {
      attnNorm: norm(d),
      q: linear(nH * hd, d),
      k: linear(nKv * hd, d),
      v: linear(nKv * hd, d),
      o: linear(d, nH * hd),
      ffnNorm: norm(d),
    };
    if (o.attentionBias) {
      layer.qBias = tensor([nH * hd], 0.2);
      layer.kBias = tensor([nKv * hd], 0.2);
      layer.vBias = tensor([nKv * hd], 0.2);
    }
    if (qkNorm === 'per_head') {
      layer.qNorm = norm(hd);
      layer.kNorm = norm(hd);
    } else if (qkNorm === 'full') {
      layer.qNorm = norm(nH * hd);
      layer.kNorm = norm(nKv * hd);
    }
    if (moeLayers[l]) {
      layer.moe = {
        router: tensor([E, d], 2 / Math.sqrt(d)),
        experts: Array.from({ length: E }, () => ffn(f)),
        ...(fs > 0 ? { sharedExpert: ffn(fs), sharedExpertGate: linear(1, d) } : {}),
      };
    } else {
      layer.mlp = ffn(f);
    }
    return layer;
  });
  const embed = tensor([V, d], 1);
  const tied = o.tieWordEmbeddings ?? false;
  const weights: WeightSet = { embed, layers, finalNorm: norm(d), lmHead: tied ? embed : linear(V, d) };
  const spec: ModelSpec = {
    architecture: o.architecture ?? (E > 0 ? 'mixtral' : 'llama'),
    vocabSize: V,
    hiddenSize: d,
    numLayers: L,
    numHeads: nH,
    numKvHeads: nKv,
    headDim: hd,
    intermediateSize: f,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositions: 128,
    slidingWindow: null,
    embeddingMultiplier: 1,
    attentionScale: 1 / Math.sqrt(hd),
    residualMultiplier: 1,
    logitsScaling: 1,
    tieWordEmbeddings: tied,
    attentionBias: o.attentionBias ?? false,
    qkNorm,
    dtype: 'F32',
    moe:
      E > 0
        ? {
            numExperts: E,
            topK: o.topK ?? 2,
            expertIntermediateSize: f,
            normTopkProb: o.normTopkProb ?? true,
            sharedExpertIntermediateSize: fs,
            moeLayers,
          }
        : null,
    config: {},
  };
  return { spec, weights };
}
