/**
 * The WebAssembly SIMD Winograd transforms (models/layers/winograd_simd/):
 * a conv through them equals the one through the JavaScript transforms and
 * the direct convolution (F(2,3) and F(4,3), ragged maps, batch 2, channel
 * counts 4, 8, 132 and 256, with and without bias); they are really taken
 * where channels are a multiple of 4 and the JavaScript ones elsewhere; and
 * the module owns no memory: it imports tfjs-wasm's, has no data segment,
 * and writes only the buffers it is given, in a plain or a shared memory.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/backend.ts";
import {
  setWinogradSimd,
  winogradConv2d,
  type WinogradTile,
  winogradTransformCounts,
  WinogradWeights,
} from "../models/layers/winograd.ts";
import { jsInputTransform, jsOutputTransform, range } from "../models/layers/winograd_js.ts";
import {
  backendMemory,
  SIMD_SCRATCH_BYTES,
  SIMD_TABLE_BYTES,
  simdTransformsFor,
} from "../models/layers/winograd_simd/simd_transforms.ts";
import {
  WINOGRAD_WASM_BASE64,
  WINOGRAD_WASM_SHARED_BASE64,
} from "../models/layers/winograd_simd/wasm_bytes.ts";
import { assertClose, TEST_BACKEND } from "./_helpers.ts";

const onWasm = TEST_BACKEND === "wasm";

/** Runs `fn` with the SIMD transforms on or off, restoring the setting. */
function withSimd<T>(enabled: boolean, fn: () => T): T {
  const previous = setWinogradSimd(enabled);
  try {
    return fn();
  } finally {
    setWinogradSimd(previous);
  }
}

/** Winograd conv of `x` (F(m,3)) and the transform counts it added. */
function conv(
  x: tf.Tensor4D,
  weights: WinogradWeights,
  bias: tf.Tensor | null,
): { y: Float32Array; simd: number; js: number } {
  const before = winogradTransformCounts();
  const out = winogradConv2d(x, weights, bias);
  const y = out.dataSync() as Float32Array;
  out.dispose();
  const after = winogradTransformCounts();
  return { y, simd: after.simd - before.simd, js: after.js - before.js };
}

// [batch, height, width, in, out]: odd sizes (not multiples of 2 or 4), one
// channel block (4, 8, 132 = 33 vectors) or full 128-channel blocks (256).
const SHAPES: [number, number, number, number, number][] = [
  [2, 7, 9, 4, 8],
  [1, 13, 11, 8, 4],
  [2, 10, 15, 132, 8],
  [1, 9, 6, 8, 132],
  [1, 17, 21, 256, 128],
];
// measured: SIMD vs JS transforms ≤ 3.2e-7 (F(2,3)) and ≤ 5.7e-6 (F(4,3)); SIMD vs direct
// ≤ 1.8e-6 and ≤ 1.1e-5 (JS vs direct: ≤ 1.8e-6 and ≤ 1.4e-5)
const VS_JS = { 2: 2e-6, 4: 2e-5 } as const;
const VS_DIRECT = { 2: 1e-5, 4: 5e-5 } as const;

for (const [n, h, w, ci, co] of SHAPES) {
  Deno.test({
    name:
      `Winograd SIMD transforms = JS transforms = direct conv for [${n},${h},${w},${ci}] → ${co}`,
    ignore: !onWasm,
    fn: () => {
      const x = tf.randomNormal([n, h, w, ci], 0, 1, "float32", 11) as tf.Tensor4D;
      const kernel = tf.randomNormal([3, 3, ci, co], 0, 1 / Math.sqrt(9 * ci), "float32", 12);
      const bias = tf.randomNormal([co], 0, 1, "float32", 13);
      for (const withBias of [true, false]) {
        const b = withBias ? bias : null;
        const direct = tf.tidy(() => {
          const y = tf.conv2d(x, kernel as tf.Tensor4D, 1, "same");
          return (b ? tf.add(y, b) : y).dataSync() as Float32Array;
        });
        for (const tile of [2, 4] as WinogradTile[]) {
          const weights = WinogradWeights.fromKernel(kernel as tf.Tensor4D, tile);
          const simd = withSimd(true, () => conv(x, weights, b));
          const js = withSimd(false, () => conv(x, weights, b));
          weights.dispose();
          const label = `F(${tile},3)${withBias ? "" : " without bias"}`;
          assert.deepEqual([simd.simd, simd.js], [2, 0], `${label}: SIMD transforms taken`);
          assert.deepEqual([js.simd, js.js], [0, 2], `${label}: JS transforms taken when off`);
          assertClose(simd.y, js.y, VS_JS[tile], `${label} SIMD vs JS`);
          assertClose(simd.y, direct, VS_DIRECT[tile], `${label} SIMD vs direct`);
        }
      }
      tf.dispose([x, kernel, bias]);
    },
  });
}

Deno.test({
  name: "Winograd: channels not a multiple of 4 take the JS transform, the other side SIMD",
  ignore: !onWasm,
  fn: () => {
    for (const [ci, co, expected] of [[6, 8, [1, 1]], [8, 6, [1, 1]], [3, 5, [0, 2]]] as const) {
      const x = tf.randomNormal([1, 10, 9, ci], 0, 1, "float32", 3) as tf.Tensor4D;
      const kernel = tf.randomNormal([3, 3, ci, co], 0, 0.2, "float32", 4) as tf.Tensor4D;
      const bias = tf.randomNormal([co], 0, 1, "float32", 5);
      const weights = WinogradWeights.fromKernel(kernel, 4);
      const mixed = conv(x, weights, bias);
      assert.deepEqual([mixed.simd, mixed.js], expected, `${ci} → ${co} channels`);
      const js = withSimd(false, () => conv(x, weights, bias));
      assertClose(mixed.y, js.y, VS_JS[4], `${ci} → ${co}`);
      weights.dispose();
      tf.dispose([x, kernel, bias]);
    }
  },
});

/** The sections of a wasm binary: id and contents. */
function sections(bytes: Uint8Array): { id: number; body: Uint8Array }[] {
  const out: { id: number; body: Uint8Array }[] = [];
  let p = 8; // magic and version
  const leb = (): number => {
    let value = 0;
    for (let shift = 0;; shift += 7) {
      const b = bytes[p++]!;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) return value >>> 0;
    }
  };
  while (p < bytes.length) {
    const id = bytes[p++]!;
    const size = leb();
    out.push({ id, body: bytes.subarray(p, p + size) });
    p += size;
  }
  return out;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
}

// the 4 transforms and the GroupNorm passes (tests/group_norm_simd_test.ts)
const EXPORTS = [
  "groupNormApply",
  "groupNormSums",
  "inputRow2",
  "inputRow4",
  "outputRow2",
  "outputRow4",
];

Deno.test("Winograd SIMD module: imports env.memory, exports only its 6 functions, holds no data", () => {
  for (
    const [base64, shared] of [[WINOGRAD_WASM_BASE64, false], [
      WINOGRAD_WASM_SHARED_BASE64,
      true,
    ]] as const
  ) {
    const bytes = decode(base64);
    assert.ok(WebAssembly.validate(bytes), "validates (this engine has WebAssembly SIMD)");
    const module = new WebAssembly.Module(bytes);
    assert.deepEqual(WebAssembly.Module.imports(module), [
      { module: "env", name: "memory", kind: "memory" },
    ]);
    assert.deepEqual(
      WebAssembly.Module.exports(module).map((e) => `${e.kind} ${e.name}`).sort(),
      EXPORTS.map((name) => `function ${name}`),
    );
    const ids = sections(bytes).map((s) => s.id);
    // 5 memory, 6 global, 8 start, 11 data, 12 data count: none of them
    for (const id of [5, 6, 8, 11, 12]) {
      assert.ok(!ids.includes(id), `no section ${id} (${shared})`);
    }
    // the memory import's limits: flags 0 (plain, minimum only) or 3 (shared, with a maximum)
    const imports = sections(bytes).find((s) => s.id === 2)!.body;
    const limitsFlag = imports[imports.length - (shared ? 5 : 2)];
    assert.equal(limitsFlag, shared ? 3 : 0, `memory import limits flag (${shared})`);
  }
});

/**
 * Lays out an F(m,3) problem at fixed addresses in `memory`, runs the SIMD
 * input and output transforms, and returns every byte of the memory.
 */
function runInMemory(memory: WebAssembly.Memory, m: WinogradTile): Uint8Array {
  const simd = simdTransformsFor(memory);
  assert.ok(simd, "SIMD transforms instantiate on this memory");
  const [n, h, w, c] = [2, 7, 5, 8];
  const s = m + 2;
  const tilesH = Math.ceil(h / m);
  const tilesW = Math.ceil(w / m);
  const tiles = n * tilesH * tilesW;
  const f32 = new Float32Array(memory.buffer);
  f32.fill(NaN); // any read of an unset value would show in the outputs
  let next = 64;
  const alloc = (floats: number): number => {
    const at = next;
    next += floats * 4 + 64;
    return at;
  };
  const x = alloc(n * h * w * c);
  const v = range(s * s).map(() => alloc(tiles * c));
  const work = alloc(SIMD_SCRATCH_BYTES / 4);
  const y = alloc(n * h * w * c);
  const bias = alloc(c);
  for (let i = 0; i < n * h * w * c; i++) f32[x / 4 + i] = Math.sin(i);
  for (let i = 0; i < c; i++) f32[bias / 4 + i] = i;
  new Uint32Array(memory.buffer).set(v, work / 4);
  const inputRow = m === 4 ? simd.inputRow4 : simd.inputRow2;
  const outputRow = m === 4 ? simd.outputRow4 : simd.outputRow2;
  for (let b = 0; b < n; b++) {
    for (let ty = 0; ty < tilesH; ty++) {
      const t0 = (b * tilesH + ty) * tilesW;
      inputRow(x, h, w, c, tilesW, b, ty, t0, work, work + SIMD_TABLE_BYTES);
    }
  }
  // the JS input transform on the padded input gives the same V
  const padded = new Float32Array(n * (tilesH * m + 2) * (tilesW * m + 2) * c);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const from = x / 4 + ((b * h + i) * w + j) * c;
        const to = ((b * (tilesH * m + 2) + i + 1) * (tilesW * m + 2) + j + 1) * c;
        padded.set(f32.subarray(from, from + c), to);
      }
    }
  }
  const vJs = v.map(() => new Float32Array(tiles * c));
  jsInputTransform(m)(padded, vJs, n, tilesH * m + 2, tilesW * m + 2, c, tilesH, tilesW);
  v.forEach((at, k) =>
    assertClose(f32.subarray(at / 4, at / 4 + tiles * c), vJs[k]!, 1e-6, `V_${k}`)
  );
  // V as M (the GEMM skipped) through the output transform
  for (let b = 0; b < n; b++) {
    for (let ty = 0; ty < tilesH; ty++) {
      const t0 = (b * tilesH + ty) * tilesW;
      outputRow(y, bias, h, w, c, tilesW, b, ty, t0, work, work + SIMD_TABLE_BYTES);
    }
  }
  const yJs = new Float32Array(n * h * w * c);
  jsOutputTransform(m)(vJs, yJs, f32.subarray(bias / 4, bias / 4 + c), n, h, w, c, tilesH, tilesW);
  assertClose(f32.subarray(y / 4, y / 4 + n * h * w * c), yJs, 1e-6, "y");
  // nothing outside the buffers given was written: the gaps between them are still NaN
  const written = [...v.map((at) => [at, tiles * c]), [work, SIMD_SCRATCH_BYTES / 4], [
    y,
    n * h * w * c,
  ]];
  const inside = new Uint8Array(f32.length);
  for (const [at, floats] of written) inside.fill(1, at! / 4, at! / 4 + floats!);
  for (const [at, floats] of [[x, n * h * w * c], [bias, c]]) {
    inside.fill(1, at! / 4, at! / 4 + floats!);
  }
  for (let i = 0; i < f32.length; i++) {
    if (!inside[i]) assert.ok(Number.isNaN(f32[i]), `float ${i} outside the buffers was written`);
  }
  return new Uint8Array(memory.buffer.slice(0));
}

Deno.test("Winograd SIMD module: same bytes in a plain and in a shared memory, nothing else written", () => {
  for (const m of [2, 4] as const) {
    const plain = new WebAssembly.Memory({ initial: 2 });
    const shared = new WebAssembly.Memory({ initial: 2, maximum: 16, shared: true });
    const a = runInMemory(plain, m);
    const b = runInMemory(shared, m);
    assert.ok(shared.buffer instanceof SharedArrayBuffer);
    assert.equal(plain.buffer.byteLength, 2 * 65536, "the module did not grow the memory");
    assert.deepEqual(a, b, `F(${m},3): shared and plain memory give the same bytes`);
  }
});

Deno.test({
  name: "Winograd SIMD module: runs on tfjs-wasm's own memory (one instance per memory)",
  ignore: !onWasm,
  fn: () => {
    const memory = backendMemory(tf.backend());
    assert.ok(memory instanceof WebAssembly.Memory);
    assert.equal(simdTransformsFor(memory), simdTransformsFor(memory));
    assert.equal(backendMemory({}), null);
  },
});
