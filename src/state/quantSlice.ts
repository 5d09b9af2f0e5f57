// The quantization slice: what quantization costs the running model on the eval texts (measured in
// the worker), the measurement under way, and the sentence of a refused choice. Plain data and
// setters only; the controller (controller/quant.ts) decides when they change.
import type { StateCreator } from 'zustand/vanilla';
import type { QuantCost } from '../engine/quant/cost.ts';

export interface QuantCostResult {
  /** The model and scheme the cost belongs to (a cost of another model or scheme is never shown). */
  modelId: string;
  cost: QuantCost;
  tokens: number;
  texts: number;
}

export interface QuantSlice {
  quantCost: QuantCostResult | null;
  /** A measurement under way: its scheme and how far it got (0..1). */
  quantMeasuring: { modelId: string; scheme: string; fraction: number } | null;
  /** "model:scheme" whose measurement the person cancelled: it does not restart by itself. */
  quantCancelled: string | null;
  /** Why the last choice of quantization was refused (the model loaded before stays); null when none was. */
  quantRefusal: string | null;
  setQuantCost(result: QuantCostResult | null): void;
  setQuantMeasuring(measuring: QuantSlice['quantMeasuring']): void;
  setQuantCancelled(key: string | null): void;
  setQuantRefusal(sentence: string | null): void;
}

export const createQuantSlice: StateCreator<QuantSlice, [], [], QuantSlice> = (set) => ({
  quantCost: null,
  quantMeasuring: null,
  quantCancelled: null,
  quantRefusal: null,
  setQuantCost: (quantCost) => set({ quantCost }),
  setQuantMeasuring: (quantMeasuring) => set({ quantMeasuring }),
  setQuantCancelled: (quantCancelled) => set({ quantCancelled }),
  setQuantRefusal: (quantRefusal) => set({ quantRefusal }),
});
