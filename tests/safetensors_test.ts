import assert from "node:assert/strict";
import {
  parseSafetensors,
  serializeSafetensors,
  toFloat32,
  toFloat64,
  toInt32,
} from "../lib/weights/safetensors.ts";
import { float16ToFloat32, float32ToFloat16 } from "../lib/weights/half.ts";
import { SafetensorsError } from "../lib/errors.ts";
import { assertThrowsTyped, readTensors } from "./_helpers.ts";

Deno.test("safetensors: reads a fixture written by the reference generator", async () => {
  const f = await readTensors("rng/torch_cpu.safetensors");
  assert(f.tensors.size > 10);
  assert.equal(f.metadata.format, "pt");
  for (const t of f.tensors.values()) {
    assert(t.dtype === "F32" || t.dtype === "F64");
    assert.equal(toFloat64(t).length, t.shape.reduce((a, b) => a * b, 1));
  }
});

Deno.test("safetensors: round trip of every dtype", () => {
  const bytes = serializeSafetensors({
    f64: { dtype: "F64", shape: [2], data: new Float64Array([0.1, -3]) },
    f32: { dtype: "F32", shape: [2, 1], data: new Float32Array([1.5, 2]) },
    f16: { dtype: "F16", shape: [3], data: new Float32Array([0.5, -65504, 1e-7]) },
    bf16: { dtype: "BF16", shape: [1], data: new Uint16Array([0x3fc0]) },
    i64: { dtype: "I64", shape: [], data: new BigInt64Array([-7n]) },
    i32: { dtype: "I32", shape: [1], data: new Int32Array([42]) },
    u8: { dtype: "U8", shape: [2], data: new Uint8Array([0, 255]) },
  }, { format: "pt" });
  const f = parseSafetensors(bytes);
  assert.deepEqual([...toFloat64(f.tensors.get("f64")!)], [0.1, -3]);
  assert.deepEqual([...toFloat32(f.tensors.get("f32")!)], [1.5, 2]);
  const f16 = toFloat32(f.tensors.get("f16")!);
  assert.equal(f16[0], 0.5);
  assert.equal(f16[1], -65504);
  assert(Math.abs(f16[2]! - 1e-7) < 3e-8, "subnormal half");
  assert.equal(toFloat32(f.tensors.get("bf16")!)[0], 1.5);
  assert.deepEqual([...toInt32(f.tensors.get("i64")!)], [-7]);
  assert.deepEqual(f.tensors.get("i64")!.shape, []);
  assert.deepEqual([...toInt32(f.tensors.get("i32")!)], [42]);
  assert.deepEqual([...toInt32(f.tensors.get("u8")!)], [0, 255]);
  assert.equal(f.metadata.format, "pt");
});

Deno.test("half: every float16 value survives float32 and back", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = float32ToFloat16(float16ToFloat32(all));
  for (let i = 0; i < 65536; i++) {
    const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
    if (!isNaN) assert.equal(back[i], i, `half 0x${i.toString(16)}`);
  }
  // Round to nearest even at the halfway point between 1 and the next half (1 + 2^-10).
  assert.equal(float32ToFloat16(new Float32Array([1 + 2 ** -11]))[0], 0x3c00);
  assert.equal(float32ToFloat16(new Float32Array([1 + 3 * 2 ** -11]))[0], 0x3c02);
  assert.equal(float32ToFloat16(new Float32Array([1e6]))[0], 0x7c00);
});

function withHeader(header: unknown, dataBytes = 0, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

Deno.test("safetensors: malformed headers give typed errors", async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["too short", new Uint8Array(4), /shorter than the 8-byte/],
    ["huge header length", withHeader({}, 0, 1n << 60n), /exceeds the 100 MB limit/],
    ["header past end", withHeader({}, 0, 1000n), /exceeds the file size/],
    [
      "not json",
      (() => {
        const b = withHeader({ a: 1 });
        b[9] = 0x7b;
        b[10] = 0x7b;
        return b;
      })(),
      /not valid UTF-8 JSON/,
    ],
    ["array header", withHeader([1, 2]), /not a JSON object/],
    [
      "bad dtype",
      withHeader({ a: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, 1),
      /unsupported dtype/,
    ],
    [
      "negative shape",
      withHeader({ a: { dtype: "U8", shape: [-1], data_offsets: [0, 1] } }, 1),
      /not a list of sizes/,
    ],
    [
      "size mismatch",
      withHeader({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 4),
      /needs 8 bytes/,
    ],
    [
      "huge shape",
      withHeader({ a: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4),
      /needs \d+ bytes/,
    ],
    [
      "offsets past end",
      withHeader({ a: { dtype: "U8", shape: [8], data_offsets: [0, 8] } }, 4),
      /do not fit/,
    ],
    [
      "overlap",
      withHeader({
        a: { dtype: "U8", shape: [4], data_offsets: [0, 4] },
        b: { dtype: "U8", shape: [4], data_offsets: [2, 6] },
      }, 6),
      /overlaps/,
    ],
    ["gap", withHeader({ a: { dtype: "U8", shape: [2], data_offsets: [2, 4] } }, 4), /gap/],
    [
      "trailing bytes",
      withHeader({ a: { dtype: "U8", shape: [2], data_offsets: [0, 2] } }, 4),
      /cover 2 data bytes/,
    ],
    ["metadata not strings", withHeader({ __metadata__: { a: 1 } }), /not a string/],
  ];
  for (const [label, bytes, pattern] of cases) {
    const e = await assertThrowsTyped(
      () => parseSafetensors(bytes, "bad.safetensors"),
      SafetensorsError,
      pattern,
    );
    assert.match(e.message, /^bad\.safetensors/, label);
  }
});

Deno.test("safetensors: I64 outside int32 names the tensor", async () => {
  const f = parseSafetensors(
    serializeSafetensors({
      big: { dtype: "I64", shape: [1], data: new BigInt64Array([1n << 40n]) },
    }),
    "x.safetensors",
  );
  await assertThrowsTyped(
    () => toInt32(f.tensors.get("big")!),
    SafetensorsError,
    /x\.safetensors: big: value/,
  );
});
