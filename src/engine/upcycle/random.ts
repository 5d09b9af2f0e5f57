// A small seeded Gaussian source, so an upcycled checkpoint is a pure function of (parent, options).

/** mulberry32: 32-bit state, uniform in [0, 1). */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform samples in [0, 1) for one (seed, stream); streams of one seed are unrelated sequences. */
export function uniformStream(seed: number, stream: number): () => number {
  // Mix the stream into the seed so (seed, 0) and (seed, 1) are unrelated sequences.
  return uniform(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35));
}

/** `count` distinct integers from [0, n), uniformly (partial Fisher–Yates), in ascending order. */
export function sampleIndices(n: number, count: number, next: () => number): number[] {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (n - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count).sort((a, b) => a - b);
}

/** Standard normal samples (Box–Muller). `stream` separates independent uses of one user seed. */
export function gaussian(seed: number, stream: number): () => number {
  const next = uniformStream(seed, stream);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u1 = 1 - next(); // (0, 1]: log stays finite
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
}
