/**
 * ParallelModel (lib/workers/): the fixture UNet run in two Workers equals
 * the one-Worker run bit for bit and the in-process model within float32
 * rounding; errors from workers and bad options surface as typed errors.
 * No timings here: the speedup is measured by bench/workers_bench.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ready, tf } from "../lib/backend.ts";
import { ArgumentError, DiffusersError } from "../lib/errors.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";
import { ParallelModel } from "../lib/workers/parallel_model.ts";
import type { ModelSpec } from "../lib/workers/protocol.ts";
import { WorkerUNet2DCondition } from "../lib/workers/worker_unet.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { UNet2DConditionModel } from "../models/unet_2d_condition.ts";
import { assertClose, FIXTURES_DIR, readTensors } from "./_helpers.ts";

await ready("wasm");

const TINY = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
const SPEC: ModelSpec = {
  module: new URL("../lib/workers/unet_2d_factory.ts", import.meta.url).href,
  factory: "createUNet2D",
  args: { pretrained: TINY, subfolder: "unet" },
};

async function fixtureSample(): Promise<tf.Tensor4D> {
  const io = await readTensors(`${TINY}/unet_io.safetensors`);
  const s = io.tensors.get("sample")!;
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(toFloat32(s), s.shape as [number, number, number, number]), [
      0,
      2,
      3,
      1,
    ])
  ) as tf.Tensor4D;
}

Deno.test("ParallelModel: two workers = one worker (bitwise) = in-process UNet", async () => {
  const sample = await fixtureSample(); // batch 2
  const t = tf.tensor1d([10, 500], "int32");
  const two = await ParallelModel.create(SPEC, { workers: 2 });
  const one = await ParallelModel.create(SPEC, { workers: 1 });
  try {
    const y2 = await two.forward([sample, t]);
    const y1 = await one.forward([sample, t]);
    assert.deepEqual(y2.shape, [2, 32, 32, 3]);
    assert.equal(two.lastWorkerMs.length, 2);
    assert.equal(one.lastWorkerMs.length, 1);
    assert.deepEqual(await y2.data(), await y1.data());
    const unet = await UNet2DModel.fromPretrained(TINY, { subfolder: "unet" });
    const local = unet.forward(sample, t);
    assertClose(await y2.data(), await local.data(), 1e-6, "two workers vs in-process");
    // a batch of one runs on one worker only
    const single = tf.slice(sample, [1, 0, 0, 0], [1, 32, 32, 3]);
    const ys = await two.forward([single, tf.tensor1d([500], "int32")]);
    assert.equal(two.lastWorkerMs.length, 1);
    assertClose(await ys.data(), (await y2.data()).slice(32 * 32 * 3), 1e-6, "batch item 2");
    tf.dispose([y2, y1, local, single, ys]);
    unet.dispose();
  } finally {
    two.close();
    one.close();
    tf.dispose([sample, t]);
  }
});

Deno.test("ParallelModel: bad options and worker errors are typed", async () => {
  await assert.rejects(ParallelModel.create(SPEC, { workers: 0 }), ArgumentError);
  await assert.rejects(
    ParallelModel.create({ ...SPEC, factory: "noSuchFactory" }, { workers: 1 }),
    (e: Error) => e instanceof DiffusersError && /noSuchFactory/.test(e.message),
  );
  const pm = await ParallelModel.create(SPEC, { workers: 1 });
  try {
    const bad = tf.zeros([1, 32, 32, 5]); // wrong channel count
    await assert.rejects(pm.forward([bad, tf.tensor1d([1], "int32")]), DiffusersError);
    await assert.rejects(pm.forward([]), ArgumentError);
    bad.dispose();
  } finally {
    pm.close();
  }
});

Deno.test("ParallelModel: guided UNet2DConditionModel step, two workers = one worker (bitwise)", async () => {
  const spec: ModelSpec = {
    module: new URL("../lib/workers/unet_2d_condition_factory.ts", import.meta.url).href,
    factory: "createUNet2DCondition",
    args: { pretrained: `${FIXTURES_DIR}/pipelines/sd_tiny`, subfolder: "unet" },
  };
  // batch 2 = [unconditional; conditional], as classifier-free guidance runs it
  const latents = tf.randomNormal([2, 16, 16, 4], 0, 1, "float32", 1);
  const context = tf.randomNormal([2, 77, 32], 0, 1, "float32", 2);
  const t = tf.tensor1d([981, 981], "int32");
  const [two, one] = [
    await ParallelModel.create(spec, { workers: 2 }),
    await ParallelModel.create(spec, { workers: 1 }),
  ];
  try {
    const y2 = await two.forward([latents, t, context]);
    const y1 = await one.forward([latents, t, context]);
    assert.deepEqual(y2.shape, [2, 16, 16, 4]);
    assert.deepEqual(await y2.data(), await y1.data());
    tf.dispose([y2, y1]);
  } finally {
    two.close();
    one.close();
    tf.dispose([latents, context, t]);
  }
});

Deno.test("WorkerUNet2DCondition: the in-process UNet's prediction, from Workers", async () => {
  const dir = `${FIXTURES_DIR}/pipelines/sd_tiny`;
  const unet = await WorkerUNet2DCondition.fromPretrained(dir, { subfolder: "unet", workers: 2 });
  const local = await UNet2DConditionModel.fromPretrained(dir, { subfolder: "unet" });
  const latents = tf.randomNormal([2, 16, 16, 4], 0, 1, "float32", 3) as tf.Tensor4D;
  const context = tf.randomNormal([2, 77, 32], 0, 1, "float32", 4) as tf.Tensor3D;
  try {
    assert.equal(unet.config.in_channels, 4);
    assert.equal(unet.config.cross_attention_dim, 32);
    for (const t of [981, 500.25]) {
      const y = await unet.forward(latents, t, context);
      const expected = local.forward(latents, t, context);
      assertClose(await y.data(), await expected.data(), 1e-6, `t=${t}`);
      tf.dispose([y, expected]);
    }
  } finally {
    unet.dispose();
    local.dispose();
    tf.dispose([latents, context]);
  }
});
