/**
 * The fused WebAssembly SIMD GroupNorm (+ SiLU) (models/layers/group_norm_simd.ts):
 * equals the composed tfjs ops and a float64 reference (batch 2, odd
 * heights and widths, G = 32 and 4, C = 128, 132 and 320, eps 1e-6 and
 * 1e-5, inputs far from zero mean, ranks 3 and 4, with and without SiLU);
 * really runs through GroupNorm.forward on wasm where C is a multiple of
 * 4, and not elsewhere; SiLU saturates cleanly at large |x|; no tensors
 * leak; the passes write only the buffers they are given, alike in a plain
 * and a shared memory.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/backend.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import {
  groupNormSimd,
  groupNormSimdRuns,
  setGroupNormSimd,
} from "../models/layers/group_norm_simd.ts";
import { simdTransformsFor } from "../models/layers/winograd_simd/simd_transforms.ts";
import { assertClose, relError, TEST_BACKEND } from "./_helpers.ts";

const onWasm = TEST_BACKEND === "wasm";

/** Runs `fn` with the fused kernel on or off, restoring the setting. */
function withSimd<T>(enabled: boolean, fn: () => T): T {
  const previous = setGroupNormSimd(enabled);
  try {
    return fn();
  } finally {
    setGroupNormSimd(previous);
  }
}

/** Deterministic pseudo-random values (uniform in [-1, 1)). */
function uniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** GroupNorm (+ SiLU) of NHWC-flattened `x` [b, pixels, c] in float64. */
function reference(
  x: Float32Array,
  [b, pixels, c]: [number, number, number],
  g: number,
  eps: number,
  gamma: Float32Array,
  beta: Float32Array,
  silu: boolean,
): Float64Array {
  const out = new Float64Array(x.length);
  const cg = c / g;
  for (let bi = 0; bi < b; bi++) {
    for (let gi = 0; gi < g; gi++) {
      let sum = 0;
      for (let p = 0; p < pixels; p++) {
        for (let ch = gi * cg; ch < (gi + 1) * cg; ch++) sum += x[(bi * pixels + p) * c + ch]!;
      }
      const mean = sum / (pixels * cg);
      let sq = 0;
      for (let p = 0; p < pixels; p++) {
        for (let ch = gi * cg; ch < (gi + 1) * cg; ch++) {
          sq += (x[(bi * pixels + p) * c + ch]! - mean) ** 2;
        }
      }
      const inv = 1 / Math.sqrt(sq / (pixels * cg) + eps);
      for (let p = 0; p < pixels; p++) {
        for (let ch = gi * cg; ch < (gi + 1) * cg; ch++) {
          const i = (bi * pixels + p) * c + ch;
          const y = (x[i]! - mean) * inv * gamma[ch]! + beta[ch]!;
          out[i] = silu ? y / (1 + Math.exp(-y)) : y;
        }
      }
    }
  }
  return out;
}

async function groupNorm(
  g: number,
  c: number,
  eps: number,
  gamma: Float32Array,
  beta: Float32Array,
): Promise<GroupNorm> {
  const norm = new GroupNorm(g, c, eps);
  await norm.loadStateDict(
    new Map([["weight", { shape: [c], data: gamma }], ["bias", { shape: [c], data: beta }]]),
  );
  return norm;
}

// [batch, height, width, channels, groups, eps]: odd maps, 33-channel
// groups (132 / 4), pixel counts that are not multiples of the 16-row
// blocks or the per-call row runs, and one 256-pixel-wide map.
const CASES: [number, number, number, number, number, number][] = [
  [2, 7, 9, 128, 32, 1e-6],
  [2, 13, 11, 132, 4, 1e-5],
  [2, 5, 3, 320, 32, 1e-6],
  [2, 63, 65, 128, 32, 1e-6],
  [1, 37, 41, 320, 32, 1e-5],
  [2, 3, 257, 132, 4, 1e-6],
];
// measured: fused vs float64 ≤ 1.6e-7 everywhere; the composed ops' own error vs
// float64 grows with the map (2.4e-7 at 7×9, 1.7e-6 at 63×65, 3.5e-6 at 256×256:
// XNNPACK's float32 pooling sums), so fused vs composed is bounded by that plus
// the fused kernel's own.
const VS_FLOAT64 = 5e-7;
const VS_COMPOSED_MARGIN = 5e-7;

for (const [b, h, w, c, g, eps] of CASES) {
  Deno.test({
    name: `GroupNorm SIMD = composed ops = float64 for [${b},${h},${w},${c}], G=${g}, eps ${eps}`,
    ignore: !onWasm,
    fn: async () => {
      // far from zero mean, per-channel offsets: the two-pass variance matters
      const x = uniform(b * h * w * c, c + h).map((v, i) => 2 * v + 3 + (i % c) / c);
      const gamma = uniform(c, 5).map((v) => 1 + v / 2);
      const beta = uniform(c, 6);
      const norm = await groupNorm(g, c, eps, gamma, beta);
      const before = tf.memory().numTensors;
      const xt = tf.tensor4d(x, [b, h, w, c]);
      for (const silu of [false, true]) {
        const runs = groupNormSimdRuns();
        const fused = norm.forward(xt, silu);
        assert.equal(groupNormSimdRuns(), runs + 1, "the SIMD kernel ran");
        const composed = withSimd(false, () => norm.forward(xt, silu));
        assert.equal(groupNormSimdRuns(), runs + 1, "the composed ops ran when off");
        assert.deepEqual(fused.shape, [b, h, w, c]);
        const ref = reference(x, [b, h * w, c], g, eps, gamma, beta, silu);
        const label = silu ? "+ SiLU" : "";
        const f = fused.dataSync();
        const c64 = composed.dataSync();
        assertClose(f, ref, VS_FLOAT64, `fused vs float64 ${label}`);
        const composedError = relError(c64, ref);
        assertClose(f, c64, composedError + VS_COMPOSED_MARGIN, `fused vs composed ${label}`);
        tf.dispose([fused, composed]);
      }
      xt.dispose();
      assert.equal(tf.memory().numTensors, before, "no tensors leak");
      norm.dispose();
    },
  });
}

Deno.test({
  name: "GroupNorm SIMD: rank 3 [B, L, C] input, inside tf.tidy, no leak",
  ignore: !onWasm,
  fn: async () => {
    const [b, l, c, g] = [2, 77, 64, 8];
    const x = uniform(b * l * c, 3);
    const gamma = uniform(c, 1);
    const beta = uniform(c, 2);
    const norm = await groupNorm(g, c, 1e-5, gamma, beta);
    const before = tf.memory().numTensors;
    const runs = groupNormSimdRuns();
    const y = tf.tidy(() => norm.forward(tf.tensor3d(x, [b, l, c]), true));
    assert.equal(groupNormSimdRuns(), runs + 1);
    assert.deepEqual(y.shape, [b, l, c]);
    assertClose(y.dataSync(), reference(x, [b, l, c], g, 1e-5, gamma, beta, true), 1e-6, "rank 3");
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
    norm.dispose();
  },
});

Deno.test({
  name: "GroupNorm SIMD: channels not a multiple of 4 take the composed ops",
  ignore: !onWasm,
  fn: async () => {
    const [c, g] = [6, 3];
    const x = uniform(2 * 5 * 7 * c, 4);
    const norm = await groupNorm(g, c, 1e-6, new Float32Array(c).fill(1), new Float32Array(c));
    const runs = groupNormSimdRuns();
    const xt = tf.tensor4d(x, [2, 5, 7, c]);
    const y = norm.forward(xt, true);
    assert.equal(groupNormSimdRuns(), runs, "no SIMD run");
    const gamma = new Float32Array(c).fill(1);
    const ref = reference(x, [2, 35, c], g, 1e-6, gamma, new Float32Array(c), true);
    assertClose(y.dataSync(), ref, 1e-6, "composed");
    assert.equal(groupNormSimd(xt, norm.weight.value, norm.bias.value, g, 1e-6), null);
    tf.dispose([xt, y]);
    norm.dispose();
  },
});

Deno.test({
  name:
    "GroupNorm SIMD: SiLU saturates (y for large y, -0 side for very negative y), NaN stays NaN",
  ignore: !onWasm,
  fn: () => {
    // two groups of 4 channels; γ spreads the normalised values to ±~300
    const c = 8;
    const values = [-3, -1, 0, 1, 3, -2, 2, 0.5];
    const x = tf.tensor4d(
      Float32Array.from({ length: 4 * c }, (_, i) => values[(i * 3) % 8]! + (i % c)),
      [1, 2, 2, c],
    );
    const gamma = tf.tensor1d([300, 100, 50, 20, 1, 5, 88, 90]);
    const beta = tf.tensor1d([0, 1, -1, 0, 0, 0, -0.5, 0.5]);
    const fused = groupNormSimd(x, gamma, beta, 2, 1e-6, true)!;
    const composed = withSimd(false, () =>
      tf.tidy(() => {
        const y = groupNormSimd(x, gamma, beta, 2, 1e-6, false);
        assert.equal(y, null, "off means off");
        // the composed formula, by hand
        const x4 = tf.reshape(x, [1, 4, 2, 4]);
        const { mean, variance } = tf.moments(x4, [1, 3], true);
        const normed = tf.reshape(tf.div(tf.sub(x4, mean), tf.sqrt(tf.add(variance, 1e-6))), [
          1,
          2,
          2,
          c,
        ]);
        const yy = tf.add(tf.mul(normed, gamma), beta);
        return tf.mul(yy, tf.sigmoid(yy));
      }));
    const f = fused.dataSync();
    assert.ok(f.every(Number.isFinite), "finite");
    assertClose(f, composed.dataSync(), 1e-6, "saturated SiLU");
    const nan = tf.tensor4d(Float32Array.from({ length: 4 * c }, (_, i) => i === 5 ? NaN : i), [
      1,
      2,
      2,
      c,
    ]);
    const ynt = groupNormSimd(nan, gamma, beta, 2, 1e-6, true)!;
    const yn = ynt.dataSync();
    assert.ok(Number.isNaN(yn[5]) && Number.isNaN(yn[12]), "NaN poisons its group");
    assert.ok(Number.isFinite(yn[0]) && Number.isFinite(yn[8]), "not the other group");
    tf.dispose([x, gamma, beta, fused, composed, nan, ynt]);
  },
});

Deno.test("GroupNorm SIMD passes: same bytes in a plain and a shared memory, nothing else written", () => {
  const run = (memory: WebAssembly.Memory): Uint8Array => {
    const simd = simdTransformsFor(memory)!;
    const [pixels, c] = [37, 12]; // 2 full 16-row blocks and a ragged one
    const f32 = new Float32Array(memory.buffer);
    f32.fill(NaN);
    const [x, y, acc, mean, scale, beta, total] = [64, 2048, 4096, 4160, 4224, 4288, 4352];
    for (let i = 0; i < pixels * c; i++) f32[x / 4 + i] = Math.sin(i) + 2;
    for (let i = 0; i < c; i++) {
      [f32[mean / 4 + i], f32[scale / 4 + i], f32[beta / 4 + i]] = [2, 3, i];
    }
    new Float64Array(memory.buffer, total, c).fill(0);
    simd.groupNormSums(x, pixels, c, 0, acc, total);
    const sums = Array.from(new Float64Array(memory.buffer, total, c));
    new Float64Array(memory.buffer, total, c).fill(0);
    simd.groupNormSums(x, pixels, c, mean, acc, total);
    const squares = Array.from(new Float64Array(memory.buffer, total, c));
    simd.groupNormApply(x, y, pixels, c, mean, scale, beta, 1);
    const xs = Array.from(
      { length: pixels },
      (_, p) => f32.subarray(x / 4 + p * c, x / 4 + p * c + c),
    );
    for (let ch = 0; ch < c; ch++) {
      const ref = xs.reduce((s, row) => s + row[ch]!, 0);
      assert.ok(Math.abs(sums[ch]! - ref) <= 1e-5 * Math.abs(ref), `sum ${ch}`);
      const refSq = xs.reduce((s, row) => s + (row[ch]! - 2) ** 2, 0);
      assert.ok(Math.abs(squares[ch]! - refSq) <= 1e-5 * refSq, `squares ${ch}`);
    }
    const ref = Float64Array.from({ length: pixels * c }, (_, i) => {
      const v = (f32[x / 4 + i]! - 2) * 3 + (i % c);
      return v / (1 + Math.exp(-v));
    });
    assertClose(f32.subarray(y / 4, y / 4 + pixels * c), ref, 1e-6, "apply + SiLU");
    // the gaps between the buffers given are still NaN
    const inside = new Uint8Array(f32.length);
    for (
      const [at, floats] of [[x, pixels * c], [y, pixels * c], [acc, c], [mean, c], [scale, c], [
        beta,
        c,
      ]]
    ) {
      inside.fill(1, at! / 4, at! / 4 + floats!);
    }
    inside.fill(1, total / 4, total / 4 + 2 * c);
    for (let i = 0; i < f32.length; i++) {
      if (!inside[i]) assert.ok(Number.isNaN(f32[i]), `float ${i} outside the buffers was written`);
    }
    return new Uint8Array(memory.buffer.slice(0));
  };
  const plain = new WebAssembly.Memory({ initial: 1 });
  const shared = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
  assert.deepEqual(run(plain), run(shared));
  assert.equal(plain.buffer.byteLength, 65536, "the module did not grow the memory");
});
