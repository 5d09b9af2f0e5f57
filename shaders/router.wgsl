// Router decision for one MoE layer, one thread per token (E is small; the work is O(E·chosen)).
// Input: router logits [tokens, E]. Output: one record per token in ROUTE (u32 words, floats bitcast):
//   [0] count, [1 .. 1+E) chosen expert ids (descending p, ties → lower id), [1+E .. 1+2E) their weights,
//   [1+2E .. 1+3E) probabilities over all E experts.
// Semantics (the playground's contract): ablated experts get logit −∞ before the softmax; forced experts
// take slots first (topk) or join the set (threshold); dense takes all E with raw p; weights renormalise over
// the chosen set when `renorm` is set (never in dense mode). An ablated expert is never chosen (topk with
// fewer live experts than k takes the live ones; dense takes only the live ones) unless `literalAblation`
// is set: then, as the PyTorch reference does, it fills top-k slots no live expert can take and stays in
// dense, with weight 0 (RoutingPlan.ablation = 'zero-weight').
struct Params {
  tokens: u32, experts: u32, mode: u32, k: u32,   // mode: 0 = topk, 1 = threshold, 2 = dense
  threshold: f32, renorm: u32, layer: u32, logitsOffset: u32,
  recBase: u32, literalAblation: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> LOGITS: array<f32>;
@group(0) @binding(2) var<storage, read> FLAGS: array<u32>;   // [layers, E]: bit 0 ablate, bit 1 force
@group(0) @binding(3) var<storage, read_write> ROUTE: array<u32>;

const MAX_EXPERTS = 256u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x;
  if (t >= P.tokens) { return; }
  let E = P.experts;
  let lb = P.logitsOffset + t * E;
  let fb = P.layer * E;
  let rb = route_record(P.recBase, t, E);
  let pb = rb + 1u + 2u * E;

  var mx = -3.4e38;
  for (var i = 0u; i < E; i++) {
    if ((FLAGS[fb + i] & 1u) == 0u) { mx = max(mx, LOGITS[lb + i]); }
  }
  var sum = 0.0;
  for (var i = 0u; i < E; i++) {
    var e = 0.0;
    if ((FLAGS[fb + i] & 1u) == 0u) { e = exp(LOGITS[lb + i] - mx); }
    ROUTE[pb + i] = bitcast<u32>(e);
    sum += e;
  }
  var argmax = 0u;
  var best = -1.0;
  for (var i = 0u; i < E; i++) {
    let p = select(0.0, bitcast<f32>(ROUTE[pb + i]) / sum, sum > 0.0);
    ROUTE[pb + i] = bitcast<u32>(p);
    if (p > best) { best = p; argmax = i; }
  }

  // Chosen set as a bit mask.
  var chosen: array<u32, 8>;
  for (var w = 0u; w < 8u; w++) { chosen[w] = 0u; }
  var count = 0u;
  // Experts that may be chosen at all: every one, or only the un-ablated ones.
  let keepAblated = P.literalAblation != 0u;
  if (P.mode == 2u) {
    for (var i = 0u; i < E; i++) {
      if (keepAblated || (FLAGS[fb + i] & 1u) == 0u) { chosen[i >> 5u] |= 1u << (i & 31u); count++; }
    }
  } else if (P.mode == 1u) {
    for (var i = 0u; i < E; i++) {
      let p = bitcast<f32>(ROUTE[pb + i]);
      if ((FLAGS[fb + i] & 2u) != 0u || f32(E) * p > P.threshold) {
        chosen[i >> 5u] |= 1u << (i & 31u);
        count++;
      }
    }
    if (count == 0u) { chosen[argmax >> 5u] |= 1u << (argmax & 31u); count = 1u; }
  } else {
    for (var i = 0u; i < E; i++) {
      if ((FLAGS[fb + i] & 2u) != 0u) { chosen[i >> 5u] |= 1u << (i & 31u); count++; }
    }
    // Remaining slots: largest p among the rest, scanning upwards so ties go to the lower id.
    var remaining = select(0u, P.k - count, P.k > count);
    for (; remaining > 0u; remaining--) {
      var bi = E;
      var bp = -1.0;
      for (var i = 0u; i < E; i++) {
        let taken = (chosen[i >> 5u] >> (i & 31u)) & 1u;
        let eligible = keepAblated || (FLAGS[fb + i] & 1u) == 0u;
        let p = bitcast<f32>(ROUTE[pb + i]);
        if (taken == 0u && eligible && p > bp) { bp = p; bi = i; }
      }
      if (bi == E) { break; }
      chosen[bi >> 5u] |= 1u << (bi & 31u);
      count++;
    }
  }

  // Emit in descending p (ties → lower id) with a selection pass over the mask.
  var wsum = 0.0;
  for (var slot = 0u; slot < count; slot++) {
    var bi = 0u;
    var bp = -1.0;
    for (var i = 0u; i < E; i++) {
      let taken = (chosen[i >> 5u] >> (i & 31u)) & 1u;
      let p = bitcast<f32>(ROUTE[pb + i]);
      if (taken == 1u && p > bp) { bp = p; bi = i; }
    }
    chosen[bi >> 5u] &= ~(1u << (bi & 31u));
    ROUTE[rb + 1u + slot] = bi;
    ROUTE[rb + 1u + E + slot] = bitcast<u32>(bp);
    wsum += bp;
  }
  ROUTE[rb] = count;
  if (P.renorm != 0u && P.mode != 2u && wsum > 0.0) {
    for (var slot = 0u; slot < count; slot++) {
      let w = bitcast<f32>(ROUTE[rb + 1u + E + slot]);
      ROUTE[rb + 1u + E + slot] = bitcast<u32>(w / wsum);
    }
  }
}
