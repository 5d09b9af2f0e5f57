// Weight storage, shared by every kernel that reads weights. Prepended to their source, followed by one
// accessor per weight array NAME of the kernel (context.ts writes it):
//   fn weight_NAME(i: u32) -> f32   element i of NAME as an f32 (NAME's aux array NAME_Q holds scales)
// Every weight buffer is array<u32>. W_FORMAT says how element i is stored:
//   0 f32 (one element per word); 1 f16, 2 bf16 (two per word, element 2n in the low half);
//   3 Q8: int8 codes, four per word (element 4n in the low byte), value = code · scale;
//   4 Q4: 4-bit codes; within a group of W_GROUP elements byte k holds code k (low nibble) and code
//     k + W_GROUP/2 (high nibble) (src/engine/types.ts QuantTensor); value = (code − 8) · scale;
//   5 Q4 with minimums: as 4, value = code · scale + min.
// Scales (f16) are in NAME_Q: formats 3–4 two per word (group g in half g & 1 of word g >> 1); format 5 one
// word per group (scale in the low half, minimum in the high half). Groups run on across stacked matrices.
// Arithmetic is f32 throughout, so no `shader-f16` feature is needed.
override W_FORMAT: u32 = 0u;
override W_GROUP: u32 = 32u;

// Byte holding Q4 element i.
fn q4Byte(i: u32) -> u32 {
  let half = W_GROUP / 2u;
  let g = i / W_GROUP;
  return g * half + (i - g * W_GROUP) % half;
}

fn wordIndex(i: u32) -> u32 {
  if (W_FORMAT == 0u) { return i; }
  if (W_FORMAT <= 2u) { return i >> 1u; }
  if (W_FORMAT == 3u) { return i >> 2u; }
  return q4Byte(i) >> 2u;
}

// The stored value (formats 0–2) or the code (3–5; Q4 without minimums already centred) of element i.
fn weightFromWord(word: u32, i: u32) -> f32 {
  if (W_FORMAT == 0u) { return bitcast<f32>(word); }
  if (W_FORMAT <= 2u) {
    let half = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
    if (W_FORMAT == 1u) { return unpack2x16float(half).x; }
    // bf16 is the top half of an f32.
    return bitcast<f32>(half << 16u);
  }
  if (W_FORMAT == 3u) { return f32(extractBits(bitcast<i32>(word), (i & 3u) * 8u, 8u)); }
  let high = (i % W_GROUP) >= W_GROUP / 2u;
  let code = f32(extractBits(word, (q4Byte(i) & 3u) * 8u + select(0u, 4u, high), 4u));
  if (W_FORMAT == 4u) { return code - 8.0; }
  return code;
}

fn auxIndex(i: u32) -> u32 {
  let g = i / W_GROUP;
  if (W_FORMAT == 5u) { return g; }
  return g >> 1u;
}

// A quantized element's value from its code and the aux word of its group.
fn dequant(code: f32, aux: u32, i: u32) -> f32 {
  let pair = unpack2x16float(aux);
  if (W_FORMAT == 5u) { return code * pair.x + pair.y; }
  return code * select(pair.x, pair.y, ((i / W_GROUP) & 1u) == 1u);
}
