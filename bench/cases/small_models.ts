/**
 * Report case: the cheap rows, in one process on WASM: one `step()` of
 * every scheduler at 1×4×64×64, the text encoders at their real sizes
 * (random weights, batch 2 × 77 tokens), safetensors weight loading (MB/s,
 * reading and decoding, then into a model), and whole pipelines on the
 * fixture models. Prints `{ section: rows }` as JSON on the last line (see
 * bench/report.ts).
 *
 * Run: `deno run -A bench/cases/small_models.ts [reps]`
 *
 * @module
 */

import { ready, tf } from "../../lib/backend.ts";
import { parseConfigJson } from "../../lib/config.ts";
import { Generator } from "../../lib/random.ts";
import { SCHEDULERS } from "../../schedulers/registry.ts";
import { CLIPTextModel } from "../../models/clip_text.ts";
import { LDMBertModel } from "../../models/ldm_bert.ts";
import { UNet2DModel } from "../../models/unet_2d.ts";
import { initValues } from "../../models/layers/init.ts";
import type { Module } from "../../models/layers/module.ts";
import { serializeSafetensors, type TensorToWrite } from "../../lib/weights/safetensors.ts";
import { loadStateDict } from "../../lib/weights/state_dict.ts";
import { DiffusionPipeline } from "../../lib/pipelines/diffusion_pipeline.ts";
import { countFlops, totalFlops } from "../flops.ts";
import { interleave, wasmHeapMiB } from "../measure.ts";
import type { Row } from "../results_md.ts";

await ready("wasm");
const reps = Number(Deno.args[0] ?? 5);
const CONFIGS = new URL("../../../shared/configs/", import.meta.url);
const FIXTURES = new URL("../../../shared/fixtures/pipelines/", import.meta.url);
const readConfig = async (path: string) =>
  parseConfigJson(await Deno.readTextFile(new URL(path, CONFIGS)));

/** One step() of every scheduler, walking a 25-step schedule. */
async function schedulers(): Promise<Row[]> {
  const shape = [1, 64, 64, 4];
  const sample = tf.randomNormal(shape, 0, 1, "float32", 1);
  const modelOutput = tf.randomNormal(shape, 0, 1, "float32", 2);
  const sd = {
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    num_train_timesteps: 1000,
  };
  const variants = [...SCHEDULERS].map(([name, cls]) => {
    const scheduler = cls.fromConfig(sd);
    const generator = new Generator().manualSeed(0);
    let i = scheduler.timesteps.length;
    return {
      name,
      run: async () => {
        if (i >= scheduler.timesteps.length) {
          scheduler.setTimesteps(25);
          i = 0;
        }
        const out = scheduler.step(modelOutput, scheduler.timesteps[i++]!, sample, { generator });
        await out.prevSample.data();
        tf.dispose([out.prevSample, out.predOriginalSample ?? []]);
      },
    };
  });
  const timings = await interleave(variants, reps * 10);
  return timings.map((t) => ({ ...t, note: "incl. readback of the new sample" }));
}

/** A text encoder at its real size, batch 2 × 77 tokens. */
async function encoder(name: string, model: Module, run: () => tf.Tensor): Promise<Row> {
  const { result, flops } = countFlops(model, run);
  result.dispose();
  const [t] = await interleave([{ name, run: () => run().dispose() }], reps);
  model.dispose();
  return { ...t!, flops: totalFlops(flops), heapMiB: wasmHeapMiB() };
}

async function textEncoders(): Promise<Row[]> {
  const ids = Array.from(
    { length: 2 },
    (_, b) => Array.from({ length: 77 }, (_, i) => (i * 31 + b) % 1000),
  );
  const clip = CLIPTextModel.fromConfig(
    await readConfig("runwayml__stable-diffusion-v1-5/text_encoder/config.json"),
  );
  const bert = LDMBertModel.fromConfig(
    await readConfig("CompVis__ldm-text2im-large-256/bert/config.reconstructed.json"),
  );
  return [
    await encoder(
      "CLIPTextModel (SD 1.5 text encoder, 123M), batch 2 × 77 tokens",
      clip,
      () => clip.forward(ids).lastHiddenState,
    ),
    await encoder(
      "LDMBertModel (ldm-text2im-large-256), batch 2 × 77 tokens",
      bert,
      () => bert.forward(ids),
    ),
  ];
}

/** safetensors → host (read + decode), and → a UNet2DModel on WASM (upload + layout). */
async function weightLoading(): Promise<Row[]> {
  const config = await readConfig("google__ddpm-cat-256/config.json");
  const unet = new UNet2DModel(UNet2DModel.fromConfig(config, {}, { seed: 0 }).config);
  const tensors: Record<string, TensorToWrite> = {};
  unet.namedParameters().forEach(([key, p], i) => {
    tensors[key] = { dtype: "F32", shape: p.torchShape, data: initValues(p.init, p.size, i + 1) };
  });
  const dir = await Deno.makeTempDir({ prefix: "bench-weights-" });
  const file = `${dir}/diffusion_pytorch_model.safetensors`;
  await Deno.writeFile(file, serializeSafetensors(tensors));
  const mb = (await Deno.stat(file)).size / 1e6;
  const [read, load] = await interleave([
    {
      name: `read + decode ${mb.toFixed(0)} MB safetensors (cat-256 UNet, F32)`,
      run: async () => {
        const sd = await loadStateDict(dir);
        try {
          for (const key of sd.entries.keys()) await sd.get(key);
        } finally {
          sd.close();
        }
      },
    },
    {
      name: `UNet2DModel.loadStateDict from that file (to WASM, HWIO / [in, out] layouts)`,
      run: async () => {
        const sd = await loadStateDict(dir);
        try {
          await unet.loadStateDict(sd);
        } finally {
          sd.close();
        }
      },
    },
  ], Math.max(2, Math.floor(reps / 2)));
  unet.dispose();
  await Deno.remove(dir, { recursive: true });
  return [read!, load!].map((t) => ({ ...t, note: `${(mb / (t.wallMs / 1000)).toFixed(0)} MB/s` }));
}

/** Whole pipelines on the fixture models, as the fixtures call them. */
async function pipelines(): Promise<Row[]> {
  const calls: Record<string, Record<string, unknown>> = {
    ddpm_tiny: { numInferenceSteps: 10 },
    ddim_tiny: { numInferenceSteps: 10 },
    pndm_tiny: { numInferenceSteps: 10 },
    ldm_text2im_tiny: {
      prompt: "a painting of a squirrel eating a banana",
      numInferenceSteps: 5,
      guidanceScale: 6,
      height: 128,
      width: 128,
    },
    sd_tiny: {
      prompt: "a photo of an astronaut riding a horse",
      negativePrompt: "blurry",
      numInferenceSteps: 4,
      guidanceScale: 7.5,
      height: 32,
      width: 32,
    },
  };
  const rows: Row[] = [];
  for (const [name, options] of Object.entries(calls)) {
    const label = `${name} pipeline, ${options.numInferenceSteps} steps${
      options.prompt ? ", guided" : ""
    }`;
    try {
      const pipe = await DiffusionPipeline.fromPretrained(
        new URL(name, FIXTURES).pathname,
      ) as unknown as {
        call(o: Record<string, unknown>): Promise<{ images: tf.Tensor }>;
      };
      const [t] = await interleave([{
        name: label,
        run: async () => {
          const out = await pipe.call({
            ...options,
            generator: new Generator().manualSeed(0),
            outputType: "tensor",
          });
          await out.images.data();
          out.images.dispose();
        },
      }], reps);
      rows.push({ ...t!, heapMiB: wasmHeapMiB() });
    } catch (e) {
      rows.push({
        name: label,
        note: `skipped: ${String((e as Error).message ?? e).split("\n")[0]}`,
      });
    }
  }
  return rows;
}

/** Runs a section, turning a failure into one "skipped" row. */
async function section(name: string, fn: () => Promise<Row[]>): Promise<Row[]> {
  try {
    return await fn();
  } catch (e) {
    return [{ name, note: `skipped: ${String((e as Error).message ?? e).split("\n")[0]}` }];
  }
}

console.log(JSON.stringify({
  schedulers: await section("schedulers", schedulers),
  textEncoders: await section("text encoders", textEncoders),
  weights: await section("weight loading", weightLoading),
  pipelines: await section("pipelines", pipelines),
}));
