// Second half of the chosen experts, weighted and added into the residual stream:
//   H[t, i] += outScale · Σ_{slot < count_t} w_slot · (Wd[e_slot] · ACT[t, slot])[i]
// (outScale is 1, or granitemoe's residual_multiplier).
// One workgroup (64 threads) per (row i, token t) loops over the token's chosen slots, so each H element has
// exactly one writer and unchosen experts' rows are never read. Down weights are stacked [E, d, f].
struct Params {
  f: u32, d: u32, tokens: u32, slots: u32,
  recBase: u32, recExperts: u32, hOffset: u32, outScale: f32,
  eBase: u32, eCount: u32, _p1: u32, _p2: u32,  // this dispatch's experts (stacks larger than one buffer are split)
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> WD: array<u32>;
@group(0) @binding(2) var<storage, read> ACT: array<f32>;
@group(0) @binding(3) var<storage, read> ROUTE: array<u32>;
@group(0) @binding(4) var<storage, read_write> H: array<f32>;
@group(0) @binding(5) var<storage, read> WD_Q: array<u32>; // scales of quantized weights (weights.wgsl)

const WG = 64u;
const ROW_SPLIT = 32768u;
var<workgroup> partial: array<f32, WG>;
var<workgroup> countShared: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.z * ROW_SPLIT;
  let t = wid.y;
  let E = P.recExperts;
  let rb = P.recBase + t * (1u + 3u * E);
  if (lid == 0u) { countShared = min(ROUTE[rb], P.slots); }
  let count = workgroupUniformLoad(&countShared);
  if (row >= P.d) { return; }

  var acc = 0.0;
  for (var slot = 0u; slot < count; slot++) {
    let expert = ROUTE[rb + 1u + slot];
    if (expert < P.eBase || expert - P.eBase >= P.eCount) { continue; }
    let w = bitcast<f32>(ROUTE[rb + 1u + E + slot]);
    let wb = (expert - P.eBase) * P.d * P.f + row * P.f;
    let ab = (t * P.slots + slot) * P.f;
    var dot = 0.0;
    for (var k = lid; k < P.f; k += WG) {
      let i = wb + k;
      dot += weight_WD(i) * ACT[ab + k];
    }
    acc += w * dot;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let hi = P.hOffset + t * P.d + row;
    H[hi] = H[hi] + partial[0] * P.outScale;
  }
}
