/**
 * Report case: the latent-diffusion models at their real sizes with random
 * weights on WASM: the UNet2DConditionModel of CompVis/ldm-text2im-large-256
 * (batch 2, 32² latents) or of SD 1.5 (batch 2, 64²), or SD 1.5's VAE
 * decode (64² → 512²). The models are imported at run time, so a model
 * that is missing or fails gives a "skipped" row with the reason. Prints its
 * rows as JSON on the last line (see bench/report.ts).
 *
 * Run: `deno run -A bench/cases/latent_models.ts ldm-unet|sd-unet|sd-vae [reps]`
 *
 * @module
 */

import { ready, tf } from "../../lib/backend.ts";
import { parseConfigJson } from "../../lib/config.ts";
import type { ConfigDict } from "../../lib/config.ts";
import type { Module } from "../../models/layers/module.ts";
import { countFlops, totalFlops } from "../flops.ts";
import { interleave, wasmHeapMiB } from "../measure.ts";
import type { Row } from "../results_md.ts";

await ready("wasm");
const which = Deno.args[0] ?? "ldm-unet";
const reps = Number(Deno.args[1] ?? 1);
const CONFIGS = new URL("../../../shared/configs/", import.meta.url);

interface Case {
  name: string;
  module: string;
  className: string;
  config: string;
  torchMs: number;
  /** Builds the inputs and the call, given the model. */
  call(model: Record<string, (...a: unknown[]) => tf.Tensor>, config: ConfigDict): () => tf.Tensor;
}

const unetCall = (size: number): Case["call"] => (model, config) => {
  const sample = tf.randomNormal([2, size, size, 4], 0, 1, "float32", 1);
  const context = tf.randomNormal([2, 77, Number(config.cross_attention_dim)], 0, 1, "float32", 2);
  return () => model.forward!.call(model, sample, 500, context);
};

const CASES: Record<string, Case> = {
  "ldm-unet": {
    name: "UNet2DConditionModel CompVis/ldm-text2im-large-256, batch 2, 32² latents",
    module: "../../models/unet_2d_condition.ts",
    className: "UNet2DConditionModel",
    config: "CompVis__ldm-text2im-large-256/unet/config.reconstructed.json",
    torchMs: 3730,
    call: unetCall(32),
  },
  "sd-unet": {
    name: "UNet2DConditionModel SD 1.5, batch 2, 64² latents",
    module: "../../models/unet_2d_condition.ts",
    className: "UNet2DConditionModel",
    config: "runwayml__stable-diffusion-v1-5/unet/config.json",
    torchMs: 12700,
    call: unetCall(64),
  },
  "sd-vae": {
    name: "AutoencoderKL SD 1.5 decode, 64² → 512²",
    module: "../../models/autoencoder_kl.ts",
    className: "AutoencoderKL",
    config: "runwayml__stable-diffusion-v1-5/vae/config.json",
    torchMs: 6700,
    call: (model) => {
      const z = tf.randomNormal([1, 64, 64, 4], 0, 1, "float32", 3);
      return () => model.decode!.call(model, z);
    },
  },
};

const c = CASES[which];
if (!c) throw new Error(`unknown case ${which}; valid: ${Object.keys(CASES).join(", ")}`);
let rows: Row[];
try {
  const mod = await import(new URL(c.module, import.meta.url).href) as Record<string, unknown>;
  const cls = mod[c.className] as { fromConfig(json: ConfigDict): Module } | undefined;
  if (!cls) throw new Error(`${c.module} has no ${c.className}`);
  const config = parseConfigJson(await Deno.readTextFile(new URL(c.config, CONFIGS)));
  const model = cls.fromConfig(config);
  const run = c.call(model as unknown as Record<string, (...a: unknown[]) => tf.Tensor>, config);
  const { result, flops } = countFlops(model, run);
  await result.data();
  result.dispose();
  const [t] = await interleave([{
    name: c.name,
    run: async () => {
      const y = run();
      await y.data();
      y.dispose();
    },
  }], reps);
  rows = [{
    ...t!,
    name: c.name,
    flops: totalFlops(flops),
    torchMs: c.torchMs,
    heapMiB: wasmHeapMiB(),
  }];
} catch (e) {
  rows = [{
    name: c.name,
    torchMs: c.torchMs,
    note: `skipped: ${String((e as Error).message ?? e).split("\n")[0]}`,
  }];
}
console.log(JSON.stringify(rows));
