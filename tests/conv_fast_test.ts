/**
 * The Winograd fast path of `Conv2d` (models/layers/winograd.ts) computes
 * the same values as the direct convolution on WASM: per layer shape for
 * F(2,3) and F(4,3), and through the fixture UNet; and it owns its memory
 * (no engine tensors left behind, transformed weights freed with the module).
 * No timings here: speed is measured by bench/cases/conv_variants.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ready, tf } from "../lib/backend.ts";
import { ArgumentError } from "../lib/errors.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { Conv2d } from "../models/layers/conv2d.ts";
import {
  type ConvAlgorithm,
  setConvAlgorithm,
  winogradTileFor,
} from "../models/layers/conv_algorithm.ts";
import { winogradLiveBytes } from "../models/layers/winograd.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { assertClose, FIXTURES_DIR, readTensors, relError } from "./_helpers.ts";

await ready("wasm");

/** Runs `fn` under `algorithm`, restoring the previous one. */
function using<T>(algorithm: ConvAlgorithm, fn: () => T): T {
  const previous = setConvAlgorithm(algorithm);
  try {
    return fn();
  } finally {
    setConvAlgorithm(previous);
  }
}

/** `conv(x)` under `algorithm`, as host values. */
function run(conv: Conv2d, x: tf.Tensor4D, algorithm: ConvAlgorithm): Float32Array {
  return using(algorithm, () => {
    const y = conv.forward(x);
    const values = y.dataSync() as Float32Array;
    y.dispose();
    return values;
  });
}

// [batch, height, width, in, out]: tile-aligned and ragged maps, thin and wide channels.
const SHAPES: [number, number, number, number, number][] = [
  [1, 32, 32, 64, 64],
  [2, 13, 18, 8, 24],
  [1, 33, 35, 128, 32],
  [1, 16, 16, 512, 512],
];

// Measured max relative errors vs direct: F(2,3) ≤ 4e-6, F(4,3) ≤ 1.1e-5 (float32).
const TOLERANCE = { winograd2: 1e-5, winograd4: 5e-5 } as const;

for (const [b, h, w, ci, co] of SHAPES) {
  Deno.test(`Winograd F(2,3) and F(4,3) = direct conv for [${b},${h},${w},${ci}] → ${co}`, () => {
    const conv = new Conv2d(ci, co, 3, { padding: 1 }).initialize(ci + co);
    const x = tf.randomNormal([b, h, w, ci], 0, 1, "float32", 7) as tf.Tensor4D;
    const direct = run(conv, x, "direct");
    for (const algorithm of ["winograd2", "winograd4"] as const) {
      assertClose(run(conv, x, algorithm), direct, TOLERANCE[algorithm], algorithm);
    }
    const noBias = new Conv2d(ci, co, 3, { padding: 1, bias: false }).initialize(1);
    assertClose(run(noBias, x, "winograd4"), run(noBias, x, "direct"), 5e-5, "without bias");
    tf.dispose([x]);
    conv.dispose();
    noBias.dispose();
  });
}

Deno.test("Winograd: only stride-1, padding-1 3×3 convs take the fast path", () => {
  const x = tf.randomNormal([1, 16, 16, 8], 0, 1, "float32", 3) as tf.Tensor4D;
  for (
    const conv of [
      new Conv2d(8, 8, 3, { stride: 2, padding: [0, 1, 0, 1] }),
      new Conv2d(8, 8, 1),
      new Conv2d(8, 8, 3),
    ]
  ) {
    conv.initialize(0);
    assert.deepEqual(run(conv, x, "winograd4"), run(conv, x, "direct"));
    assert.equal(conv.weight.hasWinograd(4), false);
    conv.dispose();
  }
  x.dispose();
});

Deno.test("Winograd: auto picks F(4,3) for large maps and channels on wasm only", () => {
  using("auto", () => {
    const big = { height: 64, width: 64, inChannels: 256, outChannels: 256 };
    assert.equal(winogradTileFor(big, true), 4);
    assert.equal(winogradTileFor({ ...big, height: 8, width: 8 }, true), null);
    assert.equal(winogradTileFor({ ...big, inChannels: 3 }, true), null);
  });
  using("direct", () => {
    assert.equal(
      winogradTileFor({ height: 64, width: 64, inChannels: 256, outChannels: 256 }, true),
      null,
    );
  });
  assert.throws(() => setConvAlgorithm("fast" as ConvAlgorithm), ArgumentError);
});

Deno.test("Winograd: no engine tensors left behind; weights freed on dispose and reload", async () => {
  const bytesBefore = winogradLiveBytes();
  const conv = new Conv2d(32, 32, 3, { padding: 1 }).initialize(0);
  const x = tf.randomNormal([1, 32, 32, 32], 0, 1, "float32", 5) as tf.Tensor4D;
  using("winograd4", () => conv.forward(x).dispose()); // builds the transformed weights
  assert.ok(winogradLiveBytes() > bytesBefore);
  const before = tf.memory().numTensors;
  const y = using("winograd4", () => conv.forward(x));
  assert.equal(tf.memory().numTensors, before + 1);
  y.dispose();
  // new weights: the transform is rebuilt from them, not reused
  const torchWeight = new Float32Array(32 * 32 * 9).fill(0.01);
  await conv.loadStateDict(
    new Map([["weight", { shape: [32, 32, 3, 3], data: torchWeight }], [
      "bias",
      { shape: [32], data: new Float32Array(32) },
    ]]),
  );
  assert.equal(conv.weight.hasWinograd(4), false);
  assertClose(run(conv, x, "winograd4"), run(conv, x, "direct"), 5e-5, "after reload");
  conv.dispose();
  assert.equal(winogradLiveBytes(), bytesBefore);
  x.dispose();
});

Deno.test("Winograd: fixture UNet output equals the direct path's and diffusers'", async () => {
  const tiny = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
  const io = await readTensors(`${tiny}/unet_io.safetensors`);
  const s = io.tensors.get("sample")!;
  const sample = tf.tidy(() =>
    tf.transpose(tf.tensor4d(toFloat32(s), s.shape as [number, number, number, number]), [
      0,
      2,
      3,
      1,
    ])
  ) as tf.Tensor4D;
  const t = toInt32(io.tensors.get("timestep")!);
  const unet = await UNet2DModel.fromPretrained(tiny, { subfolder: "unet" });
  const forward = (algorithm: ConvAlgorithm): Float32Array =>
    using(
      algorithm,
      () =>
        tf.tidy(() =>
          tf.transpose(unet.forward(sample, tf.tensor1d(t, "int32")), [0, 3, 1, 2])
            .dataSync() as Float32Array
        ),
    );
  const direct = forward("direct");
  const expected = toFloat32(io.tensors.get("output")!);
  // measured: F(4,3) everywhere 2.5e-6 and F(2,3) 7.7e-7 vs diffusers (direct: 7.7e-7)
  for (const algorithm of ["auto", "winograd2", "winograd4"] as const) {
    const y = forward(algorithm);
    assert.ok(relError(y, direct) <= 1e-5, `${algorithm} vs direct: ${relError(y, direct)}`);
    assertClose(y, expected, 1e-4, `${algorithm} vs diffusers`);
  }
  unet.dispose();
  sample.dispose();
});
