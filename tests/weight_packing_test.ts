/**
 * Packed-only weights on WASM (models/layers/weight_packing.ts): layers of
 * a model loaded above the limit (forced here with limit 0) free their
 * weights' heap copies as they load and keep computing the same values from
 * XNNPACK's packed copies, also after the freed memory has been reused;
 * 3×3, strided and 1×1 convs run as per-tap matmuls that agree with the
 * direct convolution.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/backend.ts";
import { Conv2d, type Conv2dOptions } from "../models/layers/conv2d.ts";
import { Linear } from "../models/layers/linear.ts";
import { isReleased, setPackedWeightsLimit } from "../models/layers/weight_packing.ts";
import { relError, TEST_BACKEND } from "./_helpers.ts";

const wasm = TEST_BACKEND === "wasm";

/** Runs `fn` (a model load) with every weight packed only. */
function packedOnly<T>(fn: () => T): T {
  const previous = setPackedWeightsLimit(0);
  try {
    return fn();
  } finally {
    setPackedWeightsLimit(previous);
  }
}

/** Allocates and fills heap blocks, so freed weight memory holds other values. */
function scribble(bytes: number): void {
  const blocks = Array.from({ length: 4 }, () => tf.fill([Math.ceil(bytes / 4)], 1e9));
  tf.dispose(blocks);
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = await t.data() as Float32Array;
  t.dispose();
  return v;
}

Deno.test({
  name: "packed-only Linear: weight released at load, same values after its memory is reused",
  ignore: !wasm,
  async fn() {
    const x = tf.randomNormal([6, 48], 0, 1, "float32", 1) as tf.Tensor2D;
    const plain = new Linear(48, 40).initialize(3);
    const packed = packedOnly(() => new Linear(48, 40).initialize(3));
    assert.ok(isReleased(packed.weight.value), "weight released");
    assert.ok(!isReleased(packed.bias!.value), "bias kept");
    const expected = await values(plain.forward(x));
    const before = tf.memory().numTensors;
    const first = await values(packed.forward(x));
    scribble(48 * 40 * 4);
    const second = await values(packed.forward(x));
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(first, expected);
    assert.deepEqual(second, expected);
    tf.dispose(x);
    plain.dispose();
    packed.dispose();
  },
});

const SMALL = [2, 9, 11];
const CONVS: [string, number[], number, number, number, Conv2dOptions][] = [
  ["3×3, stride 1, padding 1", SMALL, 12, 16, 3, { padding: 1 }],
  ["3×3, stride 2, padding (0, 1, 0, 1)", SMALL, 12, 8, 3, { stride: 2, padding: [0, 1, 0, 1] }],
  ["3×3, stride 2, padding 1, no bias", SMALL, 8, 12, 3, { stride: 2, padding: 1, bias: false }],
  ["1×1", SMALL, 16, 12, 1, {}],
  // Views over TAP_VIEW_BYTES: the output is made in row strips.
  ["3×3 in 2 row strips", [2, 128, 128], 384, 8, 3, { padding: 1 }],
  ["3×3, stride 2, in 2 row strips", [1, 512, 512], 128, 8, 3, { stride: 2, padding: 1 }],
];

for (const [label, [n, h, w], cin, cout, k, options] of CONVS) {
  Deno.test({
    name: `packed-only Conv2d ${label}: per-tap matmuls equal the direct conv, twice`,
    ignore: !wasm,
    async fn() {
      const x = tf.randomNormal([n!, h!, w!, cin], 0, 1, "float32", 2) as tf.Tensor4D;
      const plain = new Conv2d(cin, cout, k, options).initialize(5);
      const packed = packedOnly(() => new Conv2d(cin, cout, k, options).initialize(5));
      assert.ok(isReleased(packed.weight.value), "weight released");
      const expected = await values(plain.forward(x));
      const before = tf.memory().numTensors;
      const first = await values(packed.forward(x));
      scribble(k * k * cin * cout * 4);
      const second = await values(packed.forward(x));
      assert.equal(tf.memory().numTensors, before);
      const err = relError(first, expected);
      assert.ok(err <= 1e-5, `per-tap vs direct: ${err}`);
      assert.deepEqual(second, first);
      tf.dispose(x);
      plain.dispose();
      packed.dispose();
    },
  });
}
