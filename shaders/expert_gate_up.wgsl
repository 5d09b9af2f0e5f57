// First half of a SwiGLU expert, computed only for chosen experts:
//   ACT[t, slot, j] = silu(Wg[e]·x_t)[j] · (Wu[e]·x_t)[j],  e = the expert in routing slot `slot` of token t.
// Dispatch (rows of f, slots × tokens); a workgroup whose slot is past the token's count exits before reading
// any weight, so in topk:2 only two experts' rows are ever loaded. Gate and up weights are stacked
// [E, f, d] in one buffer each. One workgroup of 64 threads per row (see matvec.wgsl).
struct Params {
  f: u32, d: u32, tokens: u32, slots: u32,          // slots: width of the ACT slot dimension
  recBase: u32, recExperts: u32, xOffset: u32, _p0: u32,  // routing record layout (router.wgsl) with E = recExperts
  eBase: u32, eCount: u32, _p1: u32, _p2: u32,      // this dispatch's experts (stacks larger than one buffer are split)
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> WG_GATE: array<u32>;
@group(0) @binding(2) var<storage, read> WG_UP: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read> ROUTE: array<u32>;
@group(0) @binding(5) var<storage, read_write> ACT: array<f32>;
@group(0) @binding(6) var<storage, read> WG_GATE_Q: array<u32>; // scales of quantized weights (weights.wgsl)
@group(0) @binding(7) var<storage, read> WG_UP_Q: array<u32>;

const WG = 64u;
const ROW_SPLIT = 32768u;
var<workgroup> gPart: array<f32, WG>;
var<workgroup> uPart: array<f32, WG>;
var<workgroup> countShared: u32;
var<workgroup> expertShared: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.z * ROW_SPLIT;
  // Slot-major: the first `tokens` workgroups in y are slot 0 of every token, then slot 1... so an indirect
  // dispatch of y = maxCount · tokens (expert_args.wgsl) covers exactly the slots some token uses.
  let slot = wid.y / P.tokens;
  let t = wid.y % P.tokens;
  let rb = P.recBase + t * (1u + 3u * P.recExperts);
  if (lid == 0u) {
    countShared = ROUTE[rb];
    expertShared = ROUTE[rb + 1u + min(slot, P.recExperts - 1u)];
  }
  let count = workgroupUniformLoad(&countShared);
  let expert = workgroupUniformLoad(&expertShared);
  if (row >= P.f || slot >= count || expert < P.eBase || expert - P.eBase >= P.eCount) { return; }

  let wb = (expert - P.eBase) * P.f * P.d + row * P.d;
  let xb = P.xOffset + t * P.d;
  var g = 0.0;
  var u = 0.0;
  for (var k = lid; k < P.d; k += WG) {
    let i = wb + k;
    let x = X[xb + k];
    g += weight_WG_GATE(i) * x;
    u += weight_WG_UP(i) * x;
  }
  gPart[lid] = g;
  uPart[lid] = u;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      gPart[lid] += gPart[lid + s];
      uPart[lid] += uPart[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let gv = gPart[0];
    ACT[(t * P.slots + slot) * P.f + row] = gv / (1.0 + exp(-gv)) * uPart[0];
  }
}
