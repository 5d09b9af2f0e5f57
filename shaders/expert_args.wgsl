// Indirect dispatch arguments for expert_gate_up.wgsl, computed on the GPU from the routing records:
//   ARGS[argsOffset ..+3] = (row groups x, maxCount · tokens, row groups z),  maxCount = max over tokens of count.
// Threshold routing can choose anywhere from 1 to E experts; without this the gate/up kernel is dispatched for
// all E slots and the workgroups of unused slots, although they exit early, still cost a launch each.
struct Params {
  tokens: u32, recBase: u32, recExperts: u32, slots: u32,
  groupsX: u32, groupsZ: u32, argsOffset: u32, _p0: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> ROUTE: array<u32>;
@group(0) @binding(2) var<storage, read_write> ARGS: array<u32>;

@compute @workgroup_size(1)
fn main() {
  var maxCount = 0u;
  for (var t = 0u; t < P.tokens; t++) {
    maxCount = max(maxCount, ROUTE[route_record(P.recBase, t, P.recExperts)]);
  }
  ARGS[P.argsOffset] = P.groupsX;
  ARGS[P.argsOffset + 1u] = min(maxCount, P.slots) * P.tokens;
  ARGS[P.argsOffset + 2u] = P.groupsZ;
}
