// Embedding lookup: H[t, i] = E[ids[idOffset + t], i], one thread per output element.
struct Params { tokens: u32, dim: u32, idOffset: u32, _pad: u32 }
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
  let e = IDS[P.idOffset + t] * P.dim + i;
  H[idx] = weight_EMB(e);
}
