// Prefill product, same meaning and parameters as matvec.wgsl:
//   Y[t, r] (+)= bias[r] + Σ_k W[wOffset + r·K + k] · X[xOffset + t·xStride + k].
// Each workgroup (16×16 = 256 threads) computes a tile of 16 rows × 16 tokens; K is walked in slabs of 16
// staged through workgroup memory, so each weight is read from memory once per 16 tokens instead of once
// per token.
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

const TILE = 16u;
var<workgroup> xTile: array<array<f32, 16>, 16>; // [token][k]
var<workgroup> wTile: array<array<f32, 17>, 16>; // [row][k], padded against bank conflicts

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let r0 = wid.x * TILE;
  let t0 = wid.y * TILE;
  var acc = 0.0;
  for (var k0 = 0u; k0 < P.K; k0 += TILE) {
    // Thread (x, y) stages X[t0 + y, k0 + x] and W[r0 + y, k0 + x].
    let k = k0 + lid.x;
    let tl = t0 + lid.y;
    let rl = r0 + lid.y;
    var xv = 0.0;
    if (tl < P.tokens && k < P.K) { xv = X[P.xOffset + tl * P.xStride + k]; }
    var wv = 0.0;
    if (rl < P.rows && k < P.K) {
      let i = P.wOffset + rl * P.K + k;
      wv = weight_W(i);
    }
    xTile[lid.y][lid.x] = xv;
    wTile[lid.y][lid.x] = wv;
    workgroupBarrier();
    for (var j = 0u; j < TILE; j++) {
      acc += wTile[lid.x][j] * xTile[lid.y][j];
    }
    workgroupBarrier();
  }
  let row = r0 + lid.x;
  let t = t0 + lid.y;
  if (row < P.rows && t < P.tokens) {
    var v = acc;
    if (P.hasBias != 0u) { v += BIAS[row]; }
    let yi = P.yOffset + t * P.yStride + row;
    if (P.accumulate != 0u) { v += Y[yi]; }
    Y[yi] = v;
  }
}
