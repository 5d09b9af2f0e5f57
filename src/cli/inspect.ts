// `moe inspect DIR`: what a checkpoint is, without running it.
import type { Llama3RopeScaling, ModelSpec, RoutingMode } from '../engine/types.ts';
import { countParameters } from '../engine/format/index.ts';
import { formatRoutingMode } from '../engine/routing/index.ts';
import { formatBytes, formatCount, openCheckpoint } from './common.ts';
import { memoryNeeded } from '../engine/source/memory.ts';
import { loadStored } from '../engine/source/download.ts';
import { hubCacheStore } from './hubCache.ts';
import { previewSource, resolveSource } from './sources.ts';
import { formatSourceRef } from '../engine/source/ref.ts';

/** The routing modes worth comparing for a model: dense, top-1, top-2 and what it was built for. */
export function modesOfInterest(spec: ModelSpec): RoutingMode[] {
  if (!spec.moe) return [{ kind: 'native' }];
  const modes: RoutingMode[] = [{ kind: 'dense' }, { kind: 'topk', k: 1 }];
  if (spec.moe.numExperts >= 2) modes.push({ kind: 'topk', k: 2 });
  modes.push({ kind: 'native' });
  return modes;
}

export interface InspectReport {
  architecture: string;
  dtype: string;
  layers: number;
  moeLayers: number[];
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  experts: number | null;
  topK: number | null;
  expertIntermediateSize: number | null;
  sharedExpertIntermediateSize: number | null;
  normTopkProb: boolean | null;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  slidingWindow: number | null;
  /** granitemoe's multipliers; absent when they are the plain 1, 1/√headDim, 1, 1. */
  multipliers?: { embedding: number; attention: number; residual: number; logitsDivisor: number };
  parameters: { total: number; nonExpert: number; perExpert: number; active: Record<string, number> };
  bytesOnDisk: number;
  /** Bytes each backend needs (weights as held + files while loading + KV cache at 2048 tokens). */
  memory: { cpu: number; webgpu: number };
  /** For a remote source that is not stored yet: what a download would fetch (nothing was downloaded). */
  download?: { bytes: number; files: number; commit?: string };
  upcycling?: unknown;
}

export function inspectReport(spec: ModelSpec, bytesOnDisk: number): InspectReport {
  const counts = countParameters(spec);
  const weightBytes = counts.bytes;
  const active: Record<string, number> = {};
  for (const mode of modesOfInterest(spec)) active[formatRoutingMode(mode)] = counts.activeFor(mode);
  const moe = spec.moe;
  return {
    architecture: spec.architecture,
    dtype: spec.dtype,
    layers: spec.numLayers,
    moeLayers: moe ? moe.moeLayers.flatMap((m, i) => (m ? [i] : [])) : [],
    hiddenSize: spec.hiddenSize,
    heads: spec.numHeads,
    kvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    vocabSize: spec.vocabSize,
    experts: moe?.numExperts ?? null,
    topK: moe?.topK ?? null,
    expertIntermediateSize: moe?.expertIntermediateSize ?? null,
    sharedExpertIntermediateSize: moe ? moe.sharedExpertIntermediateSize : null,
    normTopkProb: moe?.normTopkProb ?? null,
    ropeTheta: spec.ropeTheta,
    ropeScaling: spec.ropeScaling,
    slidingWindow: spec.slidingWindow,
    ...(spec.architecture === 'granitemoe'
      ? {
          multipliers: {
            embedding: spec.embeddingMultiplier,
            attention: spec.attentionScale,
            residual: spec.residualMultiplier,
            logitsDivisor: spec.logitsScaling,
          },
        }
      : {}),
    parameters: { total: counts.total, nonExpert: counts.nonExpert, perExpert: counts.perExpert, active },
    bytesOnDisk,
    memory: {
      cpu: memoryNeeded(spec, weightBytes, 'cpu').total,
      webgpu: memoryNeeded(spec, weightBytes, 'webgpu').total,
    },
    ...(spec.config.upcycling !== undefined ? { upcycling: spec.config.upcycling } : {}),
  };
}

/** Inspect needs no weights: a remote source that is not stored is described from its headers only. */
async function reportFor(source: string): Promise<{ r: InspectReport; ffnWidth: number }> {
  const ref = resolveSource(source);
  if (ref.kind === 'hf' || ref.kind === 'url') {
    const store = hubCacheStore(process.env.HF_HUB_CACHE || undefined);
    const stored = await loadStored(store, formatSourceRef(ref));
    if (!stored) {
      const preview = (await previewSource(source))!;
      const r = inspectReport(preview.spec, preview.downloadBytes);
      r.download = { bytes: preview.downloadBytes, files: preview.files.length, commit: preview.commit };
      return { r, ffnWidth: preview.spec.intermediateSize };
    }
    return { r: inspectReport(stored.spec, stored.bytesOnDisk), ffnWidth: stored.spec.intermediateSize };
  }
  const ckpt = await openCheckpoint(source);
  return { r: inspectReport(ckpt.spec, ckpt.bytesOnDisk), ffnWidth: ckpt.spec.intermediateSize };
}

export async function inspectCommand(dir: string, json: boolean): Promise<void> {
  const { r, ffnWidth } = await reportFor(dir);
  if (json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const lines = [
    `${dir}`,
    `  architecture   ${r.architecture} (${r.dtype})`,
    `  layers         ${r.layers}` +
      (r.experts !== null
        ? `, MoE layers: ${r.moeLayers.length === r.layers ? 'all' : r.moeLayers.join(', ') || 'none'}`
        : ' (dense)'),
    `  hidden         ${r.hiddenSize}, ${r.heads} heads (${r.kvHeads} kv) × ${r.headDim}, vocab ${r.vocabSize}`,
  ];
  const rope = r.ropeScaling
    ? `RoPE θ ${r.ropeTheta}, llama3 scaling ×${r.ropeScaling.factor} beyond ${r.ropeScaling.originalMaxPositions} positions`
    : `RoPE θ ${r.ropeTheta}`;
  lines.push(
    `  attention      ${rope}, ${r.slidingWindow === null ? 'full context' : `sliding window ${r.slidingWindow}`}`,
  );
  if (r.multipliers) {
    const m = r.multipliers;
    lines.push(
      `  multipliers    embedding ×${m.embedding}, scores ×${m.attention}, residual ×${m.residual}, logits ÷${m.logitsDivisor}`,
    );
  }
  if (r.experts !== null) {
    lines.push(
      `  experts        ${r.experts} per layer, top-${r.topK} native, ${r.normTopkProb ? 'renormalised' : 'raw'} weights, width ${r.expertIntermediateSize}`,
    );
    if (r.sharedExpertIntermediateSize) lines.push(`  shared expert  width ${r.sharedExpertIntermediateSize}`);
  } else {
    lines.push(`  ffn            width ${ffnWidth}`);
  }
  lines.push(`  parameters     ${formatCount(r.parameters.total)} total`);
  for (const [mode, n] of Object.entries(r.parameters.active)) {
    lines.push(`    active ${mode.padEnd(8)} ${formatCount(n)} (${((100 * n) / r.parameters.total).toFixed(1)}%)`);
  }
  if (r.download) {
    lines.push(
      `  download       ${formatBytes(r.download.bytes)} in ${r.download.files} files (not downloaded yet${r.download.commit ? `; commit ${r.download.commit.slice(0, 12)}` : ''})`,
    );
  } else {
    lines.push(`  size on disk   ${formatBytes(r.bytesOnDisk)}`);
  }
  lines.push(
    `  memory needed  CPU backend ${formatBytes(r.memory.cpu)}, WebGPU backend ${formatBytes(r.memory.webgpu)}`,
  );
  if (r.upcycling !== undefined) lines.push(`  upcycled       ${JSON.stringify(r.upcycling)}`);
  process.stdout.write(lines.join('\n') + '\n');
}
