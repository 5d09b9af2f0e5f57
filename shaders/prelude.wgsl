// The prelude every kernel starts with (src/engine/backends/webgpu/context.ts prepends it; WGSL has no
// includes): the workgroup size of the reducing kernels, their tree reductions, and the layout of the
// routing record that router.wgsl writes and the expert kernels read.

const WG = 64u;
var<workgroup> wg_scratch: array<f32, WG>;

// Sum of `value` over the WG threads of the workgroup; every thread gets the total. Call it from
// uniform control flow (it holds barriers); the scratch is free again when it returns.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
  wg_scratch[lid] = value;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { wg_scratch[lid] += wg_scratch[lid + s]; }
    workgroupBarrier();
  }
  let total = wg_scratch[0];
  workgroupBarrier();
  return total;
}

// Maximum of `value` over the workgroup, like workgroup_sum.
fn workgroup_max(lid: u32, value: f32) -> f32 {
  wg_scratch[lid] = value;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { wg_scratch[lid] = max(wg_scratch[lid], wg_scratch[lid + s]); }
    workgroupBarrier();
  }
  let top = wg_scratch[0];
  workgroupBarrier();
  return top;
}

// Routing record of one token, E = experts: [count, ids[E], weights[E] (f32 bits), probs[E] (f32 bits)].
fn route_record_words(experts: u32) -> u32 {
  return 1u + 3u * experts;
}

// Word offset of token t's record in a buffer whose token 0 starts at recBase.
fn route_record(recBase: u32, t: u32, experts: u32) -> u32 {
  return recBase + t * route_record_words(experts);
}
