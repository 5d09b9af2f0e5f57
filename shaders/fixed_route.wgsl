// Routing records for feed-forward blocks that are not routed, in the same format as router.wgsl with E = 1:
// [count = 1, id = 0, weight, prob]. Dense FFN layers use weight 1; qwen2_moe's shared expert uses
// sigmoid(shared_expert_gate · x), whose logits arrive in GATE_LOGITS.
struct Params { tokens: u32, useGate: u32, gateOffset: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> GATE_LOGITS: array<f32>;
@group(0) @binding(2) var<storage, read_write> ROUTE: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x;
  if (t >= P.tokens) { return; }
  var w = 1.0;
  if (P.useGate != 0u) { w = 1.0 / (1.0 + exp(-GATE_LOGITS[P.gateOffset + t])); }
  let rb = t * 4u;
  ROUTE[rb] = 1u;
  ROUTE[rb + 1u] = 0u;
  ROUTE[rb + 2u] = bitcast<u32>(w);
  ROUTE[rb + 3u] = bitcast<u32>(w);
}
