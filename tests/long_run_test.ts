/**
 * Long runs: consecutive pipeline calls on a fixture model leave no tensor
 * behind and keep the process's memory bounded (the 100-call version is
 * `bench/long_run_bench.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { callRepeatedly, drift } from "../bench/long_run.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import { UnconditionalPipeline } from "../lib/pipelines/unconditional.ts";
import { tf } from "../lib/tf.ts";
import { FIXTURES_DIR, TEST_BACKEND } from "./_helpers.ts";

Deno.test("long run: 20 DDIM calls keep live tensors and bytes flat and memory bounded", async () => {
  const before = tf.memory().numTensors;
  const pipe = await DiffusionPipeline.fromPretrained(`${FIXTURES_DIR}/pipelines/ddim_tiny`, {
    backend: TEST_BACKEND,
  });
  assert(pipe instanceof UnconditionalPipeline);
  try {
    const d = drift(await callRepeatedly(pipe, 20), 3);
    assert(d.flat, `tensors +${d.tensors}, bytes +${d.bytes} after warm-up`);
    assert.equal(d.tensors, 0);
    assert.equal(d.bytes, 0);
    // The images themselves are ~3 KB each; tens of MB would mean something is kept per call.
    // (This isolate's heaps, not RSS: other test files run in the same process.)
    const growth = (d.isolateGrowth / 2 ** 20).toFixed(1);
    assert(d.isolateGrowth < 64 * 2 ** 20, `V8 + WASM heaps grew ${growth} MiB`);
  } finally {
    pipe.dispose();
  }
  assert.equal(tf.memory().numTensors, before, "dispose() frees every tensor the pipeline held");
});
