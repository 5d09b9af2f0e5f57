;; The CPU backend's products as WebAssembly SIMD (128-bit): y[t, o] = Σ_i x[t, i] · W[o, i] with W decoded on
;; the fly from its stored format. Weights, inputs and outputs live in the imported memory; every pointer is a
;; byte offset. Compiled to kernels.wasm (base64 in kernelsWasm.ts) by scripts/build-wasm.mjs with wabt.
;;
;; Formats (`fmt`): 0 F32, 1 F16, 2 BF16, 3 Q8, 4 Q4 (codes − 8), 5 Q4 with per-group minimums.
;; Layouts are those of src/engine/types.ts (QuantTensor). Requirements, checked by the caller (wasm.ts):
;; cols % 8 == 0 (F32/F16/BF16); G % 16 == 0 (Q8); G % 32 == 0 (Q4). Sums are f32, in 2–4 lanes-wide
;; accumulators; f16 → f32 by bit arithmetic (finite values only: weights are never Inf/NaN).
(module
  (import "env" "memory" (memory 1 65536))

  ;; f16 bits → f32: move exponent+mantissa into place, rebias by multiplying by 2^112 (this also turns
  ;; subnormal halves into normal floats), then put the sign back.
  (func $h2f (param $h i32) (result f32)
    (f32.reinterpret_i32
      (i32.or
        (i32.reinterpret_f32
          (f32.mul (f32.reinterpret_i32 (i32.shl (i32.and (local.get $h) (i32.const 0x7fff)) (i32.const 13)))
                   (f32.const 0x1p112)))
        (i32.shl (i32.and (local.get $h) (i32.const 0x8000)) (i32.const 16)))))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

;; Σ w[i]·x[i], n values, F32 weights; sixteen values per step in four accumulators (latency hiding).
  (func $dot_f32 (param $w i32) (param $x i32) (param $n i32) (result f32)
    (local $end i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $w)) (v128.load (local.get $x)))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $w)) (v128.load offset=16 (local.get $x)))))
      ;; rows of 8 (not 16) values end here
      (if (i32.lt_u (i32.add (local.get $w) (i32.const 32)) (local.get $end)) (then
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $w)) (v128.load offset=32 (local.get $x)))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $w)) (v128.load offset=48 (local.get $x)))))))
      (local.set $w (i32.add (local.get $w) (i32.const 64)))
      (local.set $x (i32.add (local.get $x) (i32.const 64)))
      (br $next)))
    (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))))

  ;; F16 weights, eight per load. Half h placed in the top 16 bits of a lane (one interleave with zero),
  ;; arithmetic shift right by 3 (exponent and mantissa land where an f32 keeps them, the sign is copied
  ;; into bits 28–30), clear bits 28–30, and multiply by 2^112 to rebias the exponent (subnormal halves
  ;; become f32 subnormals and come out right).
  (func $dot_f16 (param $w i32) (param $x i32) (param $n i32) (result f32)
    (local $end i32) (local $h v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $zero v128) (local $mask v128) (local $magic v128)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $magic (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $h (v128.load (local.get $w)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $x))
        (f32x4.mul (v128.and (i32x4.shr_s (i8x16.shuffle 16 17 0 1 16 17 2 3 16 17 4 5 16 17 6 7 (local.get $h) (local.get $zero)) (i32.const 3)) (local.get $mask)) (local.get $magic)))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $x))
        (f32x4.mul (v128.and (i32x4.shr_s (i8x16.shuffle 16 17 8 9 16 17 10 11 16 17 12 13 16 17 14 15 (local.get $h) (local.get $zero)) (i32.const 3)) (local.get $mask)) (local.get $magic)))))
      (if (i32.lt_u (i32.add (local.get $w) (i32.const 16)) (local.get $end)) (then
        (local.set $h (v128.load offset=16 (local.get $w)))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $x))
          (f32x4.mul (v128.and (i32x4.shr_s (i8x16.shuffle 16 17 0 1 16 17 2 3 16 17 4 5 16 17 6 7 (local.get $h) (local.get $zero)) (i32.const 3)) (local.get $mask)) (local.get $magic)))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $x))
          (f32x4.mul (v128.and (i32x4.shr_s (i8x16.shuffle 16 17 8 9 16 17 10 11 16 17 12 13 16 17 14 15 (local.get $h) (local.get $zero)) (i32.const 3)) (local.get $mask)) (local.get $magic)))))))
      (local.set $w (i32.add (local.get $w) (i32.const 32)))
      (local.set $x (i32.add (local.get $x) (i32.const 64)))
      (br $next)))
    (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))))

  ;; BF16 weights: the top half of an f32, so one interleave with zero is the whole conversion.
  (func $dot_bf16 (param $w i32) (param $x i32) (param $n i32) (result f32)
    (local $end i32) (local $h v128) (local $a0 v128) (local $a1 v128) (local $zero v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $h (v128.load (local.get $w)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $x))
        (i8x16.shuffle 16 17 0 1 16 17 2 3 16 17 4 5 16 17 6 7 (local.get $h) (local.get $zero)))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $x))
        (i8x16.shuffle 16 17 8 9 16 17 10 11 16 17 12 13 16 17 14 15 (local.get $h) (local.get $zero)))))
      (local.set $w (i32.add (local.get $w) (i32.const 16)))
      (local.set $x (i32.add (local.get $x) (i32.const 32)))
      (br $next)))
    (call $hsum (f32x4.add (local.get $a0) (local.get $a1))))

  ;; Q8: groups of $g int8 codes, one f16 scale each at $s; sixteen codes per step, widened to four f32x4.
  (func $dot_q8 (param $w i32) (param $s i32) (param $x i32) (param $n i32) (param $g i32) (result f32)
    (local $end i32) (local $gend i32) (local $acc v128) (local $c v128) (local $a v128) (local $b v128)
    (local $g0 v128) (local $g1 v128) (local $g2 v128) (local $g3 v128)
    (local.set $end (i32.add (local.get $w) (local.get $n)))
    (block $done (loop $group
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $gend (i32.add (local.get $w) (local.get $g)))
      (local.set $g0 (v128.const i32x4 0 0 0 0))
      (local.set $g1 (v128.const i32x4 0 0 0 0))
      (local.set $g2 (v128.const i32x4 0 0 0 0))
      (local.set $g3 (v128.const i32x4 0 0 0 0))
      (block $gdone (loop $next
        (br_if $gdone (i32.ge_u (local.get $w) (local.get $gend)))
        (local.set $c (v128.load (local.get $w)))
        (local.set $a (i16x8.extend_low_i8x16_s (local.get $c)))
        (local.set $b (i16x8.extend_high_i8x16_s (local.get $c)))
        (local.set $g0 (f32x4.add (local.get $g0) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $a))) (v128.load (local.get $x)))))
        (local.set $g1 (f32x4.add (local.get $g1) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $a))) (v128.load offset=16 (local.get $x)))))
        (local.set $g2 (f32x4.add (local.get $g2) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $b))) (v128.load offset=32 (local.get $x)))))
        (local.set $g3 (f32x4.add (local.get $g3) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $b))) (v128.load offset=48 (local.get $x)))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 64)))
        (br $next)))
      (local.set $acc (f32x4.add (local.get $acc)
        (f32x4.mul (f32x4.add (f32x4.add (local.get $g0) (local.get $g1)) (f32x4.add (local.get $g2) (local.get $g3)))
                   (f32x4.splat (call $h2f (i32.load16_u (local.get $s)))))))
      (local.set $s (i32.add (local.get $s) (i32.const 2)))
      (br $group)))
    (call $hsum (local.get $acc)))

  ;; Q4: groups of $g 4-bit codes in $g/2 bytes; byte k holds code k (low nibble) and code k + g/2 (high).
  ;; $offsets = 0: value = (code − 8) · scale.  $offsets = 1: value = code · scale + min (mins at $m; the
  ;; group's Σ x is accumulated alongside).
  (func $dot_q4 (param $w i32) (param $s i32) (param $m i32) (param $x i32) (param $n i32) (param $g i32) (param $offsets i32) (result f32)
    (local $end i32) (local $gend i32) (local $xh i32) (local $half i32) (local $acc v128) (local $xs v128) (local $v v128)
    (local $bias v128) (local $low v128) (local $c v128) (local $a v128) (local $b v128)
    (local $g0 v128) (local $g1 v128) (local $g2 v128) (local $g3 v128)
    (local.set $half (i32.shr_u (local.get $g) (i32.const 1)))
    (local.set $end (i32.add (local.get $w) (i32.shr_u (local.get $n) (i32.const 1))))
    (local.set $bias (select (result v128) (v128.const i32x4 0 0 0 0) (i8x16.splat (i32.const 8)) (local.get $offsets)))
    (local.set $low (i8x16.splat (i32.const 15)))
    (block $done (loop $group
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $gend (i32.add (local.get $w) (local.get $half)))
      ;; inputs of the high nibbles start half a group later
      (local.set $xh (i32.add (local.get $x) (i32.shl (local.get $half) (i32.const 2))))
      (local.set $g0 (v128.const i32x4 0 0 0 0))
      (local.set $g1 (v128.const i32x4 0 0 0 0))
      (local.set $g2 (v128.const i32x4 0 0 0 0))
      (local.set $g3 (v128.const i32x4 0 0 0 0))
      (block $gdone (loop $next
        (br_if $gdone (i32.ge_u (local.get $w) (local.get $gend)))
        (local.set $v (v128.load (local.get $w)))
        ;; low nibbles: codes k .. k+15, inputs at $x
        (local.set $c (i8x16.sub (v128.and (local.get $v) (local.get $low)) (local.get $bias)))
        (local.set $a (i16x8.extend_low_i8x16_s (local.get $c)))
        (local.set $b (i16x8.extend_high_i8x16_s (local.get $c)))
        (local.set $g0 (f32x4.add (local.get $g0) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $a))) (v128.load (local.get $x)))))
        (local.set $g1 (f32x4.add (local.get $g1) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $a))) (v128.load offset=16 (local.get $x)))))
        (local.set $g2 (f32x4.add (local.get $g2) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $b))) (v128.load offset=32 (local.get $x)))))
        (local.set $g3 (f32x4.add (local.get $g3) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $b))) (v128.load offset=48 (local.get $x)))))
        ;; high nibbles: codes k+g/2 .. k+g/2+15, inputs at $xh
        (local.set $c (i8x16.sub (i8x16.shr_u (local.get $v) (i32.const 4)) (local.get $bias)))
        (local.set $a (i16x8.extend_low_i8x16_s (local.get $c)))
        (local.set $b (i16x8.extend_high_i8x16_s (local.get $c)))
        (local.set $g0 (f32x4.add (local.get $g0) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $a))) (v128.load (local.get $xh)))))
        (local.set $g1 (f32x4.add (local.get $g1) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $a))) (v128.load offset=16 (local.get $xh)))))
        (local.set $g2 (f32x4.add (local.get $g2) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $b))) (v128.load offset=32 (local.get $xh)))))
        (local.set $g3 (f32x4.add (local.get $g3) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $b))) (v128.load offset=48 (local.get $xh)))))
        (if (local.get $offsets) (then
          (local.set $xs (f32x4.add (local.get $xs) (f32x4.add
            (f32x4.add (f32x4.add (v128.load (local.get $x)) (v128.load offset=16 (local.get $x)))
                       (f32x4.add (v128.load offset=32 (local.get $x)) (v128.load offset=48 (local.get $x))))
            (f32x4.add (f32x4.add (v128.load (local.get $xh)) (v128.load offset=16 (local.get $xh)))
                       (f32x4.add (v128.load offset=32 (local.get $xh)) (v128.load offset=48 (local.get $xh)))))))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 64)))
        (local.set $xh (i32.add (local.get $xh) (i32.const 64)))
        (br $next)))
      (local.set $acc (f32x4.add (local.get $acc)
        (f32x4.mul (f32x4.add (f32x4.add (local.get $g0) (local.get $g1)) (f32x4.add (local.get $g2) (local.get $g3)))
                   (f32x4.splat (call $h2f (i32.load16_u (local.get $s)))))))
      (if (local.get $offsets) (then
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (local.get $xs) (f32x4.splat (call $h2f (i32.load16_u (local.get $m)))))))
        (local.set $xs (v128.const i32x4 0 0 0 0))
        (local.set $m (i32.add (local.get $m) (i32.const 2)))))
      (local.set $s (i32.add (local.get $s) (i32.const 2)))
      ;; the next group's inputs follow the high half of this one
      (local.set $x (local.get $xh))
      (br $group)))
    (call $hsum (local.get $acc)))

;; ---- Row decoders (prefill): a weight row as f32 values at $out, so that several tokens share one decode.

  (func $decode_f16 (param $w i32) (param $out i32) (param $n i32)
    (local $end i32) (local $h v128) (local $zero v128) (local $mask v128) (local $magic v128)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $magic (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $h (v128.load (local.get $w)))
      (v128.store (local.get $out)
        (f32x4.mul (v128.and (i32x4.shr_s (i8x16.shuffle 16 17 0 1 16 17 2 3 16 17 4 5 16 17 6 7 (local.get $h) (local.get $zero)) (i32.const 3)) (local.get $mask)) (local.get $magic)))
      (v128.store offset=16 (local.get $out)
        (f32x4.mul (v128.and (i32x4.shr_s (i8x16.shuffle 16 17 8 9 16 17 10 11 16 17 12 13 16 17 14 15 (local.get $h) (local.get $zero)) (i32.const 3)) (local.get $mask)) (local.get $magic)))
      (local.set $w (i32.add (local.get $w) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 32)))
      (br $next))))

  (func $decode_bf16 (param $w i32) (param $out i32) (param $n i32)
    (local $end i32) (local $h v128) (local $zero v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $h (v128.load (local.get $w)))
      (v128.store (local.get $out) (i8x16.shuffle 16 17 0 1 16 17 2 3 16 17 4 5 16 17 6 7 (local.get $h) (local.get $zero)))
      (v128.store offset=16 (local.get $out) (i8x16.shuffle 16 17 8 9 16 17 10 11 16 17 12 13 16 17 14 15 (local.get $h) (local.get $zero)))
      (local.set $w (i32.add (local.get $w) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 32)))
      (br $next))))

  ;; Sixteen signed 8-bit codes → sixteen f32 at $out, each times $scale plus $min.
  (func $store16 (param $c v128) (param $out i32) (param $scale v128) (param $min v128)
    (local $a v128) (local $b v128)
    (local.set $a (i16x8.extend_low_i8x16_s (local.get $c)))
    (local.set $b (i16x8.extend_high_i8x16_s (local.get $c)))
    (v128.store (local.get $out) (f32x4.add (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $a))) (local.get $scale)) (local.get $min)))
    (v128.store offset=16 (local.get $out) (f32x4.add (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $a))) (local.get $scale)) (local.get $min)))
    (v128.store offset=32 (local.get $out) (f32x4.add (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $b))) (local.get $scale)) (local.get $min)))
    (v128.store offset=48 (local.get $out) (f32x4.add (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $b))) (local.get $scale)) (local.get $min))))

  (func $decode_q8 (param $w i32) (param $s i32) (param $out i32) (param $n i32) (param $g i32)
    (local $end i32) (local $gend i32) (local $scale v128)
    (local.set $end (i32.add (local.get $w) (local.get $n)))
    (block $done (loop $group
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $gend (i32.add (local.get $w) (local.get $g)))
      (local.set $scale (f32x4.splat (call $h2f (i32.load16_u (local.get $s)))))
      (block $gdone (loop $next
        (br_if $gdone (i32.ge_u (local.get $w) (local.get $gend)))
        (call $store16 (v128.load (local.get $w)) (local.get $out) (local.get $scale) (v128.const i32x4 0 0 0 0))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 64)))
        (br $next)))
      (local.set $s (i32.add (local.get $s) (i32.const 2)))
      (br $group))))

  (func $decode_q4 (param $w i32) (param $s i32) (param $m i32) (param $out i32) (param $n i32) (param $g i32) (param $offsets i32)
    (local $end i32) (local $gend i32) (local $half i32) (local $oh i32) (local $v v128) (local $scale v128) (local $min v128) (local $bias v128)
    (local.set $half (i32.shr_u (local.get $g) (i32.const 1)))
    (local.set $end (i32.add (local.get $w) (i32.shr_u (local.get $n) (i32.const 1))))
    (local.set $bias (select (result v128) (v128.const i32x4 0 0 0 0) (i8x16.splat (i32.const 8)) (local.get $offsets)))
    (block $done (loop $group
      (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
      (local.set $gend (i32.add (local.get $w) (local.get $half)))
      (local.set $oh (i32.add (local.get $out) (i32.shl (local.get $half) (i32.const 2))))
      (local.set $scale (f32x4.splat (call $h2f (i32.load16_u (local.get $s)))))
      (local.set $min (v128.const i32x4 0 0 0 0))
      (if (local.get $offsets) (then
        (local.set $min (f32x4.splat (call $h2f (i32.load16_u (local.get $m)))))
        (local.set $m (i32.add (local.get $m) (i32.const 2)))))
      (block $gdone (loop $next
        (br_if $gdone (i32.ge_u (local.get $w) (local.get $gend)))
        (local.set $v (v128.load (local.get $w)))
        (call $store16 (i8x16.sub (v128.and (local.get $v) (i8x16.splat (i32.const 15))) (local.get $bias)) (local.get $out) (local.get $scale) (local.get $min))
        (call $store16 (i8x16.sub (i8x16.shr_u (local.get $v) (i32.const 4)) (local.get $bias)) (local.get $oh) (local.get $scale) (local.get $min))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 64)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 64)))
        (br $next)))
      (local.set $s (i32.add (local.get $s) (i32.const 2)))
      (local.set $out (local.get $oh))
      (br $group))))

  ;; y[t·rows + o] = Σ_i x[t·cols + i] · W[o, i] for o < rows, t < tokens. Each weight row is read once
  ;; and stays in cache while it meets every token: one token (decode) dots the stored row directly; several
  ;; (prefill) first decode it into $rowbuf (cols f32) and dot that with each token. $s / $m: scales /
  ;; minimums (quantized formats only).
  (func (export "matvec") (param $fmt i32) (param $w i32) (param $s i32) (param $m i32) (param $x i32) (param $y i32)
        (param $rows i32) (param $cols i32) (param $tokens i32) (param $g i32) (param $rowbuf i32)
    (local $o i32) (local $t i32) (local $wRow i32) (local $sRow i32) (local $wr i32) (local $sr i32) (local $mr i32) (local $xr i32)
    (local $decoded i32)
    (local.set $wRow
      (if (result i32) (i32.eqz (local.get $fmt)) (then (i32.shl (local.get $cols) (i32.const 2)))
        (else (if (result i32) (i32.le_u (local.get $fmt) (i32.const 2)) (then (i32.shl (local.get $cols) (i32.const 1)))
          (else (if (result i32) (i32.eq (local.get $fmt) (i32.const 3)) (then (local.get $cols))
            (else (i32.shr_u (local.get $cols) (i32.const 1)))))))))
    (if (i32.ge_u (local.get $fmt) (i32.const 3))
      (then (local.set $sRow (i32.shl (i32.div_u (local.get $cols) (local.get $g)) (i32.const 1)))))
    (local.set $decoded (i32.and (i32.gt_u (local.get $tokens) (i32.const 1)) (i32.ne (local.get $fmt) (i32.const 0))))
    (block $done_o (loop $next_o
      (br_if $done_o (i32.ge_u (local.get $o) (local.get $rows)))
      (local.set $wr (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $wRow))))
      (local.set $sr (i32.add (local.get $s) (i32.mul (local.get $o) (local.get $sRow))))
      (local.set $mr (i32.add (local.get $m) (i32.mul (local.get $o) (local.get $sRow))))
      (if (local.get $decoded) (then
        (if (i32.eq (local.get $fmt) (i32.const 1)) (then (call $decode_f16 (local.get $wr) (local.get $rowbuf) (local.get $cols)))
          (else (if (i32.eq (local.get $fmt) (i32.const 2)) (then (call $decode_bf16 (local.get $wr) (local.get $rowbuf) (local.get $cols)))
            (else (if (i32.eq (local.get $fmt) (i32.const 3))
              (then (call $decode_q8 (local.get $wr) (local.get $sr) (local.get $rowbuf) (local.get $cols) (local.get $g)))
              (else (call $decode_q4 (local.get $wr) (local.get $sr) (local.get $mr) (local.get $rowbuf) (local.get $cols) (local.get $g)
                (i32.eq (local.get $fmt) (i32.const 5)))))))))))
      (local.set $t (i32.const 0))
      (block $done_t (loop $next_t
        (br_if $done_t (i32.ge_u (local.get $t) (local.get $tokens)))
        (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $t) (local.get $cols)) (i32.const 2))))
        (f32.store
          (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $t) (local.get $rows)) (local.get $o)) (i32.const 2)))
          (if (result f32) (local.get $decoded) (then (call $dot_f32 (local.get $rowbuf) (local.get $xr) (local.get $cols)))
          (else (if (result f32) (i32.eqz (local.get $fmt)) (then (call $dot_f32 (local.get $wr) (local.get $xr) (local.get $cols)))
            (else (if (result f32) (i32.eq (local.get $fmt) (i32.const 1)) (then (call $dot_f16 (local.get $wr) (local.get $xr) (local.get $cols)))
              (else (if (result f32) (i32.eq (local.get $fmt) (i32.const 2)) (then (call $dot_bf16 (local.get $wr) (local.get $xr) (local.get $cols)))
                (else (if (result f32) (i32.eq (local.get $fmt) (i32.const 3))
                  (then (call $dot_q8 (local.get $wr) (local.get $sr) (local.get $xr) (local.get $cols) (local.get $g)))
                  (else (call $dot_q4 (local.get $wr) (local.get $sr) (local.get $mr) (local.get $xr) (local.get $cols) (local.get $g)
                    (i32.eq (local.get $fmt) (i32.const 5))))))))))))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $next_t)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $next_o)))
  )
)
