// Decode product: Y[t, r] (+)= bias[r] + Σ_k W[wOffset + r·K + k] · X[xOffset + t·xStride + k].
// One workgroup of 64 threads per output row and token: each thread walks K with stride 64 (adjacent threads
// read adjacent weights, so loads coalesce), then a tree reduction in workgroup memory. 64 is two warps on
// NVIDIA, one wave on AMD, a good size on Apple and Intel; nothing depends on the subgroup width.
struct Params {
  rows: u32, K: u32, tokens: u32, wOffset: u32,
  xOffset: u32, xStride: u32, yOffset: u32, yStride: u32,
  hasBias: u32, accumulate: u32, _p0: u32, _p1: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> BIAS: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
@group(0) @binding(5) var<storage, read> W_Q: array<u32>; // scales of quantized weights (weights.wgsl)

const WG = 64u;
// Rows beyond 65535 workgroups per dimension spill into y (large vocabularies).
const ROW_SPLIT = 32768u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * ROW_SPLIT;
  let t = wid.z;
  if (row >= P.rows) { return; }
  let wBase = P.wOffset + row * P.K;
  let xBase = P.xOffset + t * P.xStride;
  var acc = 0.0;
  for (var k = lid; k < P.K; k += WG) {
    let i = wBase + k;
    acc += weight_W(i) * X[xBase + k];
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var v = partial[0];
    if (P.hasBias != 0u) { v += BIAS[row]; }
    let yi = P.yOffset + t * P.yStride + row;
    if (P.accumulate != 0u) { v += Y[yi]; }
    Y[yi] = v;
  }
}
