// Rotary position embedding, "rotate half" convention, in place on X[t, head, headDim]:
//   x1' = x1·cos − x2·sin,  x2' = x2·cos + x1·sin,  for i < headDim/2.
// cos/sin come precomputed per (token, i) from the CPU: WGSL only promises cos/sin to 2^-11 absolute
// error, too coarse to match the reference's logits to 1e-3; the table is tiny (tokens × headDim/2).
struct Params { tokens: u32, heads: u32, headDim: u32, tableRow: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> COS: array<f32>;   // [tableRow + tokens, headDim/2]
@group(0) @binding(2) var<storage, read> SIN: array<f32>;   // [tokens, headDim/2]
@group(0) @binding(3) var<storage, read_write> X: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = P.headDim / 2u;
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= P.tokens * P.heads * half) { return; }
  let i = idx % half;
  let th = idx / half; // token * heads + head
  let t = th / P.heads;
  let base = th * P.headDim;
  let c = COS[(P.tableRow + t) * half + i];
  let s = SIN[(P.tableRow + t) * half + i];
  let x1 = X[base + i];
  let x2 = X[base + i + half];
  X[base + i] = x1 * c - x2 * s;
  X[base + i + half] = x2 * c + x1 * s;
}
