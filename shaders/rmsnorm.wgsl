// RMSNorm over rows of length `len`: OUT[r] = X[r] · rsqrt(mean(X[r]²) + eps) · w.
// Used for the layer norms (rows = tokens, len = hidden size) and for q/k norms (per head: rows = tokens·heads,
// len = head_dim; over the full projection: rows = tokens, len = heads·head_dim). One workgroup of 64 threads
// per row.
struct Params { rows: u32, len: u32, inOffset: u32, outOffset: u32, eps: f32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> WEIGHT: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;


@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  if (row >= P.rows) { return; }
  let xb = P.inOffset + row * P.len;
  var ss = 0.0;
  for (var i = lid; i < P.len; i += WG) {
    let v = X[xb + i];
    ss += v * v;
  }
  let scale = inverseSqrt(workgroup_sum(lid, ss) / f32(P.len) + P.eps);
  let ob = P.outOffset + row * P.len;
  for (var i = lid; i < P.len; i += WG) {
    OUT[ob + i] = X[xb + i] * scale * WEIGHT[i];
  }
}
