import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/engine/types.ts';
import {
  CheckpointError,
  f16BitsToFloat,
  floatToBf16Bits,
  floatToF16Bits,
  fromFloat32,
  parseSafetensors,
  toFloat32,
  writeSafetensors,
} from '../../src/engine/format/index.ts';

const enc = new TextEncoder();

/** A safetensors file built by hand: header JSON, an explicit header length, then `dataBytes` bytes. */
function rawFile(header: unknown, dataBytes: number, headerLength?: number): Uint8Array {
  const json = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength ?? json.length, true);
  out.set(json, 8);
  return out;
}

function expectCheckpointError(fn: () => unknown, pattern: RegExp): CheckpointError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    const e = err as CheckpointError;
    expect(e.message).toMatch(pattern);
    expect(e.file).toBe('model.safetensors');
    expect(e.hint.length).toBeGreaterThan(10);
    return e;
  }
  throw new Error(`expected a CheckpointError matching ${pattern}`);
}

const f32 = (values: number[], shape = [values.length]): Tensor => fromFloat32(new Float32Array(values), shape, 'F32');

describe('parseSafetensors rejects broken files', () => {
  it('empty and truncated files', () => {
    expectCheckpointError(() => parseSafetensors(new Uint8Array(0), 'model.safetensors'), /only 0 bytes/);
    expectCheckpointError(() => parseSafetensors(new Uint8Array(5), 'model.safetensors'), /only 5 bytes/);
  });

  it('a header length beyond the end of the file, including a huge u64', () => {
    const file = rawFile({}, 0, 123456789);
    const e = expectCheckpointError(
      () => parseSafetensors(file, 'model.safetensors'),
      /header length 123456789 is beyond the end of the 10-byte file/,
    );
    expect(e.hint).toMatch(/truncated/);
    const huge = new Uint8Array(64);
    new DataView(huge.buffer).setUint32(4, 0xffffffff, true); // ~1.8e19: must not allocate
    expectCheckpointError(() => parseSafetensors(huge, 'model.safetensors'), /beyond the end of the 64-byte file/);
    // A valid file cut short loses its data, not only its header.
    const whole = writeSafetensors({ a: f32([1, 2, 3, 4]) });
    expectCheckpointError(
      () => parseSafetensors(whole.subarray(0, whole.length - 4), 'model.safetensors'),
      /beyond the 12 bytes/,
    );
  });

  it('a header that is not JSON, or not an object', () => {
    expectCheckpointError(() => parseSafetensors(rawFile('{"a": ', 0), 'model.safetensors'), /not valid JSON/);
    expectCheckpointError(() => parseSafetensors(rawFile('[1,2]', 0), 'model.safetensors'), /not a JSON object/);
    const badUtf8 = rawFile('{"a":1}', 0);
    badUtf8[10] = 0xff;
    expectCheckpointError(() => parseSafetensors(badUtf8, 'model.safetensors'), /not valid JSON/);
  });

  it('unsupported dtypes', () => {
    for (const dtype of ['I8', 'U8', 'F64', 'float32']) {
      const file = rawFile({ w: { dtype, shape: [2], data_offsets: [0, 2] } }, 2);
      expectCheckpointError(
        () => parseSafetensors(file, 'model.safetensors'),
        new RegExp(`tensor w has unsupported dtype ${dtype}`),
      );
    }
  });

  it('bad shapes and offsets', () => {
    const bad = (entry: unknown, data = 16) => rawFile({ w: entry }, data);
    expectCheckpointError(
      () => parseSafetensors(bad({ dtype: 'F32', shape: [-1], data_offsets: [0, 4] }), 'model.safetensors'),
      /non-negative integers/,
    );
    expectCheckpointError(
      () => parseSafetensors(bad({ dtype: 'F32', shape: [1.5], data_offsets: [0, 4] }), 'model.safetensors'),
      /non-negative integers/,
    );
    expectCheckpointError(
      () => parseSafetensors(bad({ dtype: 'F32', shape: [2], data_offsets: [8] }), 'model.safetensors'),
      /expected \[begin, end\]/,
    );
    expectCheckpointError(
      () => parseSafetensors(bad({ dtype: 'F32', shape: [2], data_offsets: [8, 0] }), 'model.safetensors'),
      /end before they begin/,
    );
    expectCheckpointError(
      () => parseSafetensors(bad({ dtype: 'F32', shape: [2], data_offsets: [12, 20] }), 'model.safetensors'),
      /beyond the 16 bytes/,
    );
    expectCheckpointError(
      () => parseSafetensors(bad({ dtype: 'F32', shape: [3], data_offsets: [0, 8] }), 'model.safetensors'),
      /needs 12 bytes\) but data_offsets span 8/,
    );
    // A shape claiming astronomically many elements is caught without computing its size in full.
    expectCheckpointError(
      () =>
        parseSafetensors(bad({ dtype: 'F16', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] }), 'model.safetensors'),
      /more than the file/,
    );
  });

  it('overlapping tensors', () => {
    const file = rawFile(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      12,
    );
    expectCheckpointError(() => parseSafetensors(file, 'model.safetensors'), /tensors a and b overlap/);
  });
});

describe('safetensors round trip', () => {
  it('write → parse gives the same tensors as zero-copy views, header padded to 8 with spaces', () => {
    const tensors: Record<string, Tensor> = {
      half: fromFloat32(new Float32Array([1, -2, 0.5]), [3], 'F16'),
      wide: f32([1, 2, 3, 4, 5, 6], [2, 3]),
      brain: fromFloat32(new Float32Array([3.140625, -0]), [1, 2], 'BF16'),
      empty: f32([], [0, 4]),
    };
    const file = writeSafetensors(tensors, { format: 'pt' });
    const headerLength = new DataView(file.buffer).getUint32(0, true);
    expect(headerLength % 8).toBe(0);
    const headerText = new TextDecoder().decode(file.subarray(8, 8 + headerLength));
    expect(headerText).toMatch(/ *$/);
    expect(JSON.parse(headerText).__metadata__).toEqual({ format: 'pt' });

    const parsed = parseSafetensors(file, 'model.safetensors');
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect([...parsed.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const back = parsed.tensors.get(name)!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect([...back.bytes]).toEqual([...t.bytes]);
      expect(back.bytes.buffer).toBe(file.buffer); // a view, not a copy
    }
    // F32 data written first stays 4-byte aligned in the file.
    expect(parsed.tensors.get('wide')!.bytes.byteOffset % 4).toBe(0);
    expect(writeSafetensors(tensors, { format: 'pt' })).toEqual(file); // deterministic
  });
});

describe('F16 / BF16 conversion', () => {
  it('decodes and encodes known half bit patterns', () => {
    const known: Array<[number, number]> = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0001, 2 ** -24],
      [0x0400, 2 ** -14],
      [0x03ff, 1023 * 2 ** -24],
      [0x3555, 0.333251953125],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x8000, -0],
    ];
    for (const [bits, value] of known) {
      expect(f16BitsToFloat(bits)).toBe(value);
      expect(floatToF16Bits(value)).toBe(bits);
    }
    expect(Number.isNaN(f16BitsToFloat(0x7e00))).toBe(true);
    expect(floatToF16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(floatToF16Bits(NaN) & 0x3ff).not.toBe(0);
    expect(floatToF16Bits(0.1)).toBe(0x2e66);
    expect(floatToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(floatToF16Bits(65520)).toBe(0x7c00); // rounds past the largest half
    expect(floatToF16Bits(65519)).toBe(0x7bff);
    expect(floatToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal → 0
    expect(floatToF16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(floatToF16Bits(3 * 2 ** -25)).toBe(0x0002); // subnormal tie → even
    expect(floatToF16Bits(1e-10)).toBe(0);
  });

  it('every half round-trips through float32 exactly', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToFloat(h);
      if (Number.isNaN(v)) continue;
      if (floatToF16Bits(v) !== h)
        throw new Error(`half 0x${h.toString(16)} came back as 0x${floatToF16Bits(v).toString(16)}`);
    }
  });

  it('encodes known bfloat16 bit patterns with round-to-nearest-even', () => {
    expect(floatToBf16Bits(1)).toBe(0x3f80);
    expect(floatToBf16Bits(Math.PI)).toBe(0x4049);
    expect(floatToBf16Bits(-2)).toBe(0xc000);
    expect(floatToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(floatToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(floatToBf16Bits(Infinity)).toBe(0x7f80);
    expect(floatToBf16Bits(NaN)).toBe(0x7fc0);
  });

  it('toFloat32 decodes F16/BF16/F32 tensors, including unaligned views', () => {
    const half: Tensor = { dtype: 'F16', shape: [3], bytes: new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x66, 0x2e]) };
    expect([...toFloat32(half)]).toEqual([1, -2, Math.fround(0.0999755859375)]);
    const bf: Tensor = { dtype: 'BF16', shape: [2], bytes: new Uint8Array([0x80, 0x3f, 0x49, 0x40]) };
    expect([...toFloat32(bf)]).toEqual([1, 3.140625]);
    const backing = new Uint8Array(13);
    const values = new Float32Array([1.5, -7.25, 1e-3]);
    backing.set(new Uint8Array(values.buffer), 1);
    const unaligned: Tensor = { dtype: 'F32', shape: [3], bytes: backing.subarray(1) };
    const decoded = toFloat32(unaligned);
    expect([...decoded]).toEqual([...values]);
    decoded[0] = 99; // a copy: the file buffer is untouched
    expect(backing[1]).toBe(new Uint8Array(values.buffer)[0]);
  });

  it('fromFloat32 → toFloat32 is exact for representable values and rounds the rest', () => {
    const values = new Float32Array([0, 1, -0.5, 3.140625, 1024]);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      expect([...toFloat32(fromFloat32(values, [5], dtype))]).toEqual([...values]);
    }
    const x = new Float32Array([0.1]);
    expect(toFloat32(fromFloat32(x, [1], 'BF16'))[0]).toBe(0.10009765625);
    expect(() => fromFloat32(x, [2], 'F16')).toThrow(/do not fill/);
  });
});
