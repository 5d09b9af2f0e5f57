// Embedding lookup: H[t, i] = E[ids[idOffset + t], i] · scale, one thread per output element
// (scale is 1, or granitemoe's embedding_multiplier). A table larger than one buffer is split by rows: this
// dispatch holds rows [row0, row0 + rowCount) and writes only the tokens whose id falls there (each token's
// row lives in exactly one part).
struct Params { tokens: u32, dim: u32, idOffset: u32, scale: f32, row0: u32, rowCount: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> EMB: array<u32>;
@group(0) @binding(2) var<storage, read> IDS: array<u32>;
@group(0) @binding(3) var<storage, read_write> H: array<f32>;
@group(0) @binding(4) var<storage, read> EMB_Q: array<u32>; // scales of quantized tables (weights.wgsl)

// 64 threads: a multiple of every common SIMD width (4, 16, 32, 64).
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= P.tokens * P.dim) { return; }
  let t = idx / P.dim;
  let i = idx % P.dim;
  let id = IDS[P.idOffset + t];
  if (id < P.row0 || id - P.row0 >= P.rowCount) { return; }
  let e = (id - P.row0) * P.dim + i;
  H[idx] = weight_EMB(e) * P.scale;
}
