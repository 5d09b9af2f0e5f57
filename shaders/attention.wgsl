// Causal grouped-query attention against the KV cache, for `tokens` new queries at positions pos0.. .
// One workgroup (64 threads) per (head, token). Query t (position p = pos0+t) sees cache positions
// first..p, where first = 0, or p + 1 − window with a sliding window (window 0 = none). Scores go to a
// scratch row in storage (its length is unbounded, so it cannot live in workgroup memory):
//   pass 1: s_j = q·k_j · scale (threads stride over j), max-reduce;
//   pass 2: e_j = exp(s_j − max), sum-reduce;
//   pass 3: out[d] = outScale · Σ_j e_j · v_j[d] / sum (threads stride over d).
// scale is 1/√headDim (granitemoe: attention_multiplier); outScale is 1, or granitemoe's residual_multiplier
// (the o projection is linear, so scaling its input scales the sublayer's output).
struct Params {
  tokens: u32, heads: u32, kvHeads: u32, headDim: u32,
  pos0: u32, scoreStride: u32, scale: f32, window: u32,
  outScale: f32, _p0: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;        // [tokens, heads, headDim]
@group(0) @binding(2) var<storage, read> KC: array<f32>;       // [capacity, kvHeads, headDim]
@group(0) @binding(3) var<storage, read> VC: array<f32>;       // [capacity, kvHeads, headDim]
@group(0) @binding(4) var<storage, read_write> S: array<f32>;  // [tokens, heads, scoreStride]
@group(0) @binding(5) var<storage, read_write> O: array<f32>;  // [tokens, heads, headDim]


@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  let hd = P.headDim;
  let kvh = h / (P.heads / P.kvHeads);
  let n = P.pos0 + t + 1u;
  var first = 0u;
  if (P.window != 0u && n > P.window) { first = n - P.window; }
  let qb = (t * P.heads + h) * hd;
  let kvStride = P.kvHeads * hd;
  let sb = (t * P.heads + h) * P.scoreStride;

  var m = -3.4e38;
  for (var j = first + lid; j < n; j += WG) {
    let kb = j * kvStride + kvh * hd;
    var dot = 0.0;
    for (var d = 0u; d < hd; d++) { dot += Q[qb + d] * KC[kb + d]; }
    let s = dot * P.scale;
    S[sb + j] = s;
    m = max(m, s);
  }
  let mx = workgroup_max(lid, m);

  var sum = 0.0;
  for (var j = first + lid; j < n; j += WG) {
    let e = exp(S[sb + j] - mx);
    S[sb + j] = e;
    sum += e;
  }
  let total = workgroup_sum(lid, sum);
  // Pass 3 reads scores written by other threads of this workgroup.
  storageBarrier();

  for (var d = lid; d < hd; d += WG) {
    var acc = 0.0;
    for (var j = first; j < n; j++) {
      acc += S[sb + j] * VC[j * kvStride + kvh * hd + d];
    }
    O[qb + d] = acc / total * P.outScale;
  }
}
