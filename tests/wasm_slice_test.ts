/**
 * The WASM `Slice` kernel of models/layers/wasm_slice.ts gives exactly the
 * values of the CPU backend's slice, for every rank, dtype and kind of
 * slice (whole, contiguous, strided), and `tf.split` through it too.
 *
 * @module
 */

import assert from "node:assert/strict";
import "../models/layers/wasm_slice.ts";
import { ready, tf } from "../lib/backend.ts";

await ready("wasm");

/** Slices of `shape` to try: [begin, size] pairs, size -1 meaning "to the end". */
function cases(shape: number[]): [number[], number[]][] {
  const whole = shape.map(() => 0);
  const out: [number[], number[]][] = [[whole, shape.map(() => -1)]];
  out.push([shape.map((d) => Math.floor(d / 3)), shape.map((d) => Math.max(1, Math.floor(d / 2)))]);
  out.push([shape.map((_, i) => (i === 0 ? 1 : 0)), shape.map((d, i) => (i === 0 ? 1 : d))]);
  out.push([shape.map((d, i) => (i === shape.length - 1 ? d - 1 : 0)), shape.map(() => -1)]);
  return out;
}

Deno.test("wasm Slice kernel = cpu slice for ranks 1-5, float32 and int32", async () => {
  const kernel = tf.getKernel("Slice", "wasm")!.kernelFunc as { fast?: boolean };
  assert.equal(kernel.fast, true, "the fast kernel is installed");
  for (const shape of [[7], [4, 9], [3, 5, 6], [2, 3, 4, 5], [2, 2, 3, 2, 4]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (const dtype of ["float32", "int32"] as const) {
      const values = Array.from({ length: n }, (_, i) => (i * 7919) % 1000 - 500);
      for (const [begin, size] of cases(shape)) {
        await tf.setBackend("cpu");
        const ref = tf.slice(tf.tensor(values, shape, dtype), begin, size);
        const expected = { shape: ref.shape, values: Array.from(ref.dataSync()) };
        await tf.setBackend("wasm");
        const got = tf.slice(tf.tensor(values, shape, dtype), begin, size);
        assert.deepEqual(got.shape, expected.shape, `${shape} ${begin} ${size}`);
        assert.deepEqual(Array.from(got.dataSync()), expected.values, `${shape} ${begin} ${size}`);
      }
    }
  }
  const parts = tf.split(tf.reshape(tf.range(0, 24), [2, 12]), 3, 1);
  assert.deepEqual(Array.from(parts[1]!.dataSync()), [4, 5, 6, 7, 16, 17, 18, 19]);
});

Deno.test("wasm SplitV kernel = cpu split, even and uneven sizes, every axis", async () => {
  const kernel = tf.getKernel("SplitV", "wasm")!.kernelFunc as { fast?: boolean };
  assert.equal(kernel.fast, true, "the fast kernel is installed");
  const shape = [4, 6, 9];
  const values = Array.from({ length: 4 * 6 * 9 }, (_, i) => (i * 7919) % 1000 - 500);
  for (const [splits, axis] of [[2, 0], [3, 1], [[2, 3, 4], 2], [[1, -1], -1]] as const) {
    const run = () =>
      tf.split(tf.tensor(values, shape), splits as number | number[], axis).map((t) => ({
        shape: t.shape,
        values: Array.from(t.dataSync()),
      }));
    await tf.setBackend("cpu");
    const expected = run();
    await tf.setBackend("wasm");
    assert.deepEqual(run(), expected, `split ${splits} on axis ${axis}`);
  }
});
