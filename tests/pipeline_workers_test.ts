/**
 * Pipelines with the UNet in Workers (`workers: 2`, lib/workers/worker_unet.ts):
 * the Stable Diffusion and DDPM fixtures give what diffusers computed
 * (relative error ≤ 1e-4, as tests/pipelines_*_test.ts), and exactly what
 * the in-process pipeline gives, step by step (LDM text-to-image too);
 * every call leaves
 * tf.memory().numTensors as the in-process call does; abort and a failing
 * Worker call free everything; `dispose()` stops the Workers (Deno's test
 * sanitizers do not see live Workers, but a `deno run` process with live
 * Workers never exits: a subprocess checks that one exits);
 * `generate({ workers })` and the CLI's `--workers` give the in-process
 * images. No timings here: the speedup is measured by
 * bench/cases/workers.ts (`pipeline`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { Generator } from "../lib/random.ts";
import { ArgumentError, DiffusersError } from "../lib/errors.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import type { StableDiffusionPipeline } from "../lib/pipelines/stable_diffusion.ts";
import type { DDPMPipeline } from "../lib/pipelines/ddpm.ts";
import type { LDMTextToImagePipeline } from "../lib/pipelines/latent_diffusion.ts";
import { WorkerUNet2D, WorkerUNet2DCondition } from "../lib/workers/worker_unet.ts";
import { generate } from "../lib/generate.ts";
import { decodeImage } from "../lib/image.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";
import { setPackedWeightsLimit } from "../models/layers/weight_packing.ts";
import { assertClose, FIXTURES_DIR, readTensors, TEST_BACKEND } from "./_helpers.ts";
import { nhwc, recorder } from "./_pipeline_fixture.ts";

const SD = `${FIXTURES_DIR}/pipelines/sd_tiny`;
const DDPM = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;

/** Largest |a - b| (0 for identical arrays). */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

const SD_CALL = {
  prompt: "a photo of an astronaut riding a horse",
  negativePrompt: "blurry",
  height: 32,
  width: 32,
  numInferenceSteps: 4,
  guidanceScale: 7.5,
  outputType: "tensor",
} as const;

/** What {@link runSd} saw: each call's output, the steps of the first, and tensors each call left. */
interface SdRun {
  outputs: Float32Array[];
  steps: Float32Array[];
  left: number[];
  workerShares: number[];
}

/**
 * Three calls on the SD fixture: from the stored latents as diffusers ran it; from the seed with
 * two images per prompt (batch 4 = [uncond, uncond, cond, cond], two items per Worker); and
 * unguided (batch 1: one Worker). Disposes the pipeline.
 */
async function runSd(pipe: StableDiffusionPipeline, latents: tf.Tensor4D): Promise<SdRun> {
  const run: SdRun = { outputs: [], steps: [], left: [], workerShares: [] };
  const rec = recorder();
  const calls = [
    { ...SD_CALL, latents, onStep: rec.onStep },
    {
      ...SD_CALL,
      numImagesPerPrompt: 2,
      numInferenceSteps: 2,
      generator: new Generator().manualSeed(9),
    },
    { ...SD_CALL, guidanceScale: 1, numInferenceSteps: 2, latents },
  ];
  try {
    for (const call of calls) {
      const start = tf.memory().numTensors;
      const out = await pipe.call(call);
      run.outputs.push((await out.images.data()) as Float32Array);
      out.images.dispose();
      run.left.push(tf.memory().numTensors - start);
      if (pipe.unet instanceof WorkerUNet2DCondition) {
        run.workerShares.push(pipe.unet.lastWorkerMs.length);
      }
    }
  } finally {
    pipe.dispose();
  }
  run.steps = rec.steps;
  return run;
}

Deno.test("StableDiffusionPipeline, workers: 2: diffusers' steps and image, identical to in-process", async () => {
  const before = tf.memory().numTensors;
  const ref = await readTensors(`${SD}/expected.safetensors`);
  const latents = nhwc(ref, "latents_init");
  try {
    const local = await DiffusionPipeline.fromPretrained(SD) as StableDiffusionPipeline;
    assert(!(local.unet instanceof WorkerUNet2DCondition));
    const inProcess = await runSd(local, latents);

    const pipe = await DiffusionPipeline.fromPretrained(SD, {
      workers: 2,
    }) as StableDiffusionPipeline;
    assert(pipe.unet instanceof WorkerUNet2DCondition);
    assert.equal(pipe.unet.workers, 2);
    assert.equal(pipe.unet.config.in_channels, 4);
    assert.equal(pipe.unet.config.sample_size, 16);
    const inWorkers = await runSd(pipe, latents);

    assert.deepEqual(inWorkers.workerShares, [2, 2, 1], "the batch split across the Workers");
    // Calls change what the VAE caches (its Winograd kernels), in-process too; none leaves more.
    assert.deepEqual(inWorkers.left, inProcess.left, "tensors left by each call");

    // diffusers' reference, with the in-process test's tolerance
    assert.equal(inWorkers.steps.length, 5);
    inWorkers.steps.forEach((s, i) =>
      assertClose(s, toFloat32(ref.tensors.get(`step.${i}.latents_out`)!), 1e-4, `step ${i}`)
    );
    assertClose(inWorkers.outputs[0]!, toFloat32(ref.tensors.get("image")!), 1e-4, "image");
    // the in-process pipeline, bit for bit: same WASM kernels, same per-item arithmetic
    inWorkers.steps.forEach((s, i) =>
      assert.equal(maxAbsDiff(s, inProcess.steps[i]!), 0, `step ${i} vs in-process`)
    );
    inWorkers.outputs.forEach((o, i) =>
      assert.equal(maxAbsDiff(o, inProcess.outputs[i]!), 0, `call ${i} vs in-process`)
    );
  } finally {
    latents.dispose();
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});

Deno.test("workers: abort between steps, a failing Worker call and dispose() free everything and stop the Workers", async () => {
  const before = tf.memory().numTensors;
  const pipe = await DiffusionPipeline.fromPretrained(SD, {
    workers: 2,
  }) as StableDiffusionPipeline;
  const unet = pipe.unet as WorkerUNet2DCondition;
  const closed = await WorkerUNet2DCondition.fromPretrained(SD, { subfolder: "unet", workers: 1 });
  closed.dispose();
  try {
    // Each is run twice: the first may leave pipeline state (PNDM's past predictions); a call
    // that leaked would leave more tensors every time.
    const left: number[] = [];
    for (let k = 0; k < 2; k++) {
      const start = tf.memory().numTensors;
      const controller = new AbortController();
      const steps: number[] = [];
      await assert.rejects(
        pipe.call({
          ...SD_CALL,
          generator: new Generator().manualSeed(0),
          signal: controller.signal,
          onStep: ({ step }) => {
            steps.push(step);
            if (step === 1) controller.abort(new DiffusersError("stop"));
          },
        }),
        /stop/,
      );
      assert.deepEqual(steps, [0, 1], "stopped between steps, as in-process");
      // a Worker call that fails (here: its Workers are gone) rejects the call and frees the step
      pipe.unet = closed;
      try {
        await assert.rejects(
          pipe.call({ ...SD_CALL, generator: new Generator().manualSeed(0) }),
          /worker closed/,
        );
      } finally {
        pipe.unet = unet;
      }
      left.push(tf.memory().numTensors - start);
    }
    assert.equal(left[1], 0, `aborted and failed calls left tensors: ${left}`);
  } finally {
    pipe.dispose();
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  // dispose() terminated the Workers: a call now rejects at once instead of waiting forever
  const x = tf.zeros([2, 16, 16, 4]) as tf.Tensor4D;
  const c = tf.zeros([2, 77, 32]) as tf.Tensor3D;
  await assert.rejects(unet.forward(x, 1, c), /worker closed/);
  tf.dispose([x, c]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("workers: a script that disposes its pipeline exits by itself (live Workers would keep it running)", async () => {
  const lib = new URL("../lib/", import.meta.url).href;
  const code = `
    import { DiffusionPipeline } from "${lib}pipelines/diffusion_pipeline.ts";
    const pipe = await DiffusionPipeline.fromPretrained(${JSON.stringify(DDPM)}, { workers: 2 });
    await pipe.call({ numInferenceSteps: 2, batchSize: 2 });
    pipe.dispose();
    console.log("disposed");
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decoder = new TextDecoder();
  assert.equal(out.code, 0, decoder.decode(out.stderr));
  assert.equal(decoder.decode(out.stdout).trim(), "disposed");
});

Deno.test("workers: bad counts are ArgumentErrors, before anything loads", async () => {
  for (const workers of [0, -1, 1.5, NaN]) {
    await assert.rejects(DiffusionPipeline.fromPretrained(SD, { workers }), ArgumentError);
  }
});

Deno.test("DDPMPipeline, workers: 2: diffusers' image, identical to in-process for a batch of 2", async () => {
  const before = tf.memory().numTensors;
  const ref = await readTensors(`${DDPM}/expected.safetensors`);
  const local = await DiffusionPipeline.fromPretrained(DDPM) as DDPMPipeline;
  const pipe = await DiffusionPipeline.fromPretrained(DDPM, { workers: 2 }) as DDPMPipeline;
  try {
    assert(pipe.unet instanceof WorkerUNet2D);
    const one = await pipe.call({
      numInferenceSteps: 10,
      generator: new Generator().manualSeed(0),
      outputType: "tensor",
    });
    assertClose(await one.images.data(), toFloat32(ref.tensors.get("image")!), 1e-4, "image");
    one.images.dispose();
    const call = { numInferenceSteps: 3, batchSize: 2, outputType: "tensor" } as const;
    const a = await local.call({ ...call, generator: new Generator().manualSeed(1) });
    const b = await pipe.call({ ...call, generator: new Generator().manualSeed(1) });
    assert.equal(pipe.unet.lastWorkerMs.length, 2);
    assert.equal(maxAbsDiff(await b.images.data(), await a.images.data()), 0, "batch of 2");
    tf.dispose([a.images, b.images]);
  } finally {
    local.dispose();
    pipe.dispose();
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});

Deno.test("LDMTextToImagePipeline, workers: 2: the in-process image, bit for bit", async () => {
  const dir = `${FIXTURES_DIR}/pipelines/ldm_text2im_tiny`;
  const call = {
    prompt: ["a squirrel", "a banana"],
    numInferenceSteps: 2,
    guidanceScale: 6,
    outputType: "tensor",
  } as const;
  const outputs: Float32Array[] = [];
  for (const workers of [1, 2]) {
    const pipe = await DiffusionPipeline.fromPretrained(dir, { workers }) as LDMTextToImagePipeline;
    try {
      assert.equal(pipe.unet instanceof WorkerUNet2DCondition, workers === 2);
      const out = await pipe.call({ ...call, generator: new Generator().manualSeed(4) });
      outputs.push((await out.images.data()) as Float32Array);
      out.images.dispose();
    } finally {
      pipe.dispose();
    }
  }
  assert.equal(maxAbsDiff(outputs[1]!, outputs[0]!), 0);
});

Deno.test({
  name:
    "workers left out: 2 Workers for a UNet over the packed-only limit on WASM, else in-process",
  ignore: TEST_BACKEND !== "wasm",
  async fn() {
    const dir = `${FIXTURES_DIR}/pipelines/ldm_text2im_tiny`;
    const call = { prompt: "a squirrel", numInferenceSteps: 2, outputType: "tensor" } as const;
    const run = async (workers: number | undefined, expectWorkers: boolean) => {
      const pipe = await DiffusionPipeline.fromPretrained(dir, {
        workers,
      }) as LDMTextToImagePipeline;
      try {
        assert.equal(
          pipe.unet instanceof WorkerUNet2DCondition,
          expectWorkers,
          `workers ${workers}`,
        );
        const out = await pipe.call({ ...call, generator: new Generator().manualSeed(4) });
        const values = (await out.images.data()) as Float32Array;
        out.images.dispose();
        return values;
      } finally {
        pipe.dispose();
      }
    };
    const previous = setPackedWeightsLimit(0); // every model counts as too large
    let auto: Float32Array, two: Float32Array, one: Float32Array;
    try {
      auto = await run(undefined, true);
      two = await run(2, true);
      one = await run(1, false);
    } finally {
      setPackedWeightsLimit(previous);
    }
    assert.equal(maxAbsDiff(auto, two), 0, "left out = workers: 2");
    // In this thread the UNet itself ran packed-only (im2col convs): float rounding apart.
    assertClose(one, two, 1e-5, "workers: 1");
    await run(undefined, false);
  },
});

Deno.test("generate({ workers: 2 }) gives the in-process images", async () => {
  const options = { model: SD, prompt: "a cat", steps: 2, seed: 3, width: 32, height: 32 };
  const local = await generate(options);
  const workers = await generate({ ...options, workers: 2 });
  assert.deepEqual(workers.images[0]!.data, local.images[0]!.data);
});

Deno.test("cli: --workers 2 writes the in-process PNG; --help documents it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-workers-" });
  const mod = new URL("../mod.ts", import.meta.url).pathname;
  const cli = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", mod, ...args],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    const args = ["a cat", "--model", SD, "--steps", "2", "--seed", "3", "--upscale", "1"];
    const [a, b] = await Promise.all([
      cli([...args, "--out", `${dir}/local.png`]),
      cli([...args, "--workers", "2", "--out", `${dir}/workers.png`]),
    ]);
    const decoder = new TextDecoder();
    assert.equal(a.code, 0, decoder.decode(a.stderr));
    assert.equal(b.code, 0, decoder.decode(b.stderr));
    assert.deepEqual(
      decodeImage(await Deno.readFile(`${dir}/workers.png`)).data,
      decodeImage(await Deno.readFile(`${dir}/local.png`)).data,
    );
    const bad = await cli(["--model", SD, "--workers", "0", "--out", `${dir}/x.png`]);
    assert.equal(bad.code, 1);
    assert.match(decoder.decode(bad.stderr), /workers must be a positive integer/);
    const help = await cli(["--help"]);
    assert.match(decoder.decode(help.stdout), /--workers N/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
