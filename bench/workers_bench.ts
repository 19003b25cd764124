/**
 * One batch-2 step of the google/ddpm-cat-256 UNet (random weights, 128×128
 * to keep a call near 5 s) in one Worker vs split across two Workers, each
 * with its own WASM backend: the two-core speedup of lib/workers/. The
 * outputs of both modes are compared before timing. Then one guided step
 * of the bundled emoji Stable Diffusion model through the pipeline API,
 * in-process vs `workers: 2` (timed from one `onStep` callback to the next;
 * a model this small gains nothing from Workers: the step is tens of ms,
 * and each step's transfers and messages cost about as much as the half it
 * saves; see bench/cases/workers.ts `pipeline sd` for an SD-size UNet).
 *
 * Run: `deno bench -A bench/workers_bench.ts`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { ParallelModel } from "../lib/workers/parallel_model.ts";
import type { ModelSpec } from "../lib/workers/protocol.ts";
import { initValues } from "../models/layers/init.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import type { StableDiffusionPipeline } from "../lib/pipelines/stable_diffusion.ts";
import { DEFAULT_MODEL } from "../lib/generate.ts";

await ready("wasm");

const CONFIG = new URL("../../shared/configs/google__ddpm-cat-256/config.json", import.meta.url);
const SIZE = 128;

const spec: ModelSpec = {
  module: new URL("../lib/workers/unet_2d_factory.ts", import.meta.url).href,
  factory: "createUNet2D",
  args: { config: JSON.parse(await Deno.readTextFile(CONFIG)), seed: 0 },
};
const sample = tf.tensor4d(initValues({ kind: "normal", std: 1 }, 2 * SIZE * SIZE * 3, 1), [
  2,
  SIZE,
  SIZE,
  3,
]);
const timesteps = tf.tensor1d([500, 500], "int32");
const models = new Map<number, ParallelModel>();

/** The pool with `workers` Workers, built and warmed up (first call packs weights) once. */
async function pool(workers: number): Promise<ParallelModel> {
  let model = models.get(workers);
  if (!model) {
    model = await ParallelModel.create(spec, { workers });
    (await model.forward([sample, timesteps])).dispose();
    models.set(workers, model);
  }
  return model;
}

/** Checks that one and two workers give identical outputs (once, untimed). */
async function checkIdentical(): Promise<void> {
  const [a, b] = [
    await (await pool(1)).forward([sample, timesteps]),
    await (await pool(2)).forward([sample, timesteps]),
  ];
  const [x, y] = [await a.data(), await b.data()];
  if (!x.every((v, i) => v === y[i])) throw new Error("one and two workers differ");
  tf.dispose([a, b]);
}

await checkIdentical();

for (const workers of [1, 2]) {
  Deno.bench({
    name: `UNet2DModel cat-256 @${SIZE}², batch 2, ${workers} worker${workers > 1 ? "s" : ""}`,
    group: "workers",
    baseline: workers === 1,
    n: 3,
    warmup: 0,
    async fn(b: Deno.BenchContext): Promise<void> {
      const model = await pool(workers);
      b.start();
      const y = await model.forward([sample, timesteps]);
      b.end();
      y.dispose();
    },
  });
}

const pipes = new Map<number, StableDiffusionPipeline>();
const latents = tf.tensor4d(initValues({ kind: "normal", std: 1 }, 8 * 8 * 4, 2), [1, 8, 8, 4]);

for (const workers of [1, 2]) {
  Deno.bench({
    name: `emoji SD pipeline, one guided step, ${workers === 1 ? "in-process" : "workers: 2"}`,
    group: "pipeline workers",
    baseline: workers === 1,
    async fn(b: Deno.BenchContext): Promise<void> {
      let pipe = pipes.get(workers);
      if (!pipe) {
        pipe = await DiffusionPipeline.fromPretrained(DEFAULT_MODEL, {
          workers,
        }) as StableDiffusionPipeline;
        pipes.set(workers, pipe);
      }
      // PNDM's 2 steps make 3 model calls: time the one between the first two callbacks.
      const out = await pipe.call({
        prompt: "cat face",
        latents,
        numInferenceSteps: 2,
        outputType: "tensor",
        onStep: ({ step }) => step === 0 ? b.start() : step === 1 ? b.end() : undefined,
      });
      out.images.dispose();
    },
  });
}

globalThis.addEventListener("unload", () => {
  for (const m of models.values()) m.close();
  for (const p of pipes.values()) p.dispose();
});
