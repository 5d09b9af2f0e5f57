// Weight storage, shared by every kernel that reads weights (prepended to their source).
// Every weight buffer is array<u32>. W_DTYPE says how element i is stored:
//   0 = f32 (one element per word), 1 = f16, 2 = bf16 (two elements per word, element 2n in the low half).
// Arithmetic is always f32, so no `shader-f16` feature is needed.
override W_DTYPE: u32 = 0u;

fn wordIndex(i: u32) -> u32 {
  if (W_DTYPE == 0u) { return i; }
  return i >> 1u;
}

fn weightFromWord(word: u32, i: u32) -> f32 {
  if (W_DTYPE == 0u) { return bitcast<f32>(word); }
  let half = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
  if (W_DTYPE == 1u) { return unpack2x16float(half).x; }
  // bf16 is the top half of an f32.
  return bitcast<f32>(half << 16u);
}
