/**
 * Where a forward pass spends its time, by tfjs kernel: runs one model of
 * bench/cases/latent_models.ts (or the cat-256 UNet) at its real size with
 * random weights under `tf.profile` on WASM, after one warm-up call, and
 * prints the kernels' wall time grouped by kernel name and by name + input
 * shapes.
 *
 * Run: `deno run -A bench/profile.ts cat-unet|ldm-unet|sd-unet|sd-vae [top]`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { parseConfigJson } from "../lib/config.ts";
import type { ConfigDict } from "../lib/config.ts";
import { UNet2DConditionModel } from "../models/unet_2d_condition.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { AutoencoderKL } from "../models/autoencoder_kl.ts";

await ready("wasm");
const which = Deno.args[0] ?? "ldm-unet";
const top = Number(Deno.args[1] ?? 25);
const CONFIGS = new URL("../../shared/configs/", import.meta.url);

async function config(path: string): Promise<ConfigDict> {
  return parseConfigJson(await Deno.readTextFile(new URL(path, CONFIGS)));
}

function conditional(path: string, size: number): Promise<() => tf.Tensor> {
  return config(path).then((json) => {
    const unet = UNet2DConditionModel.fromConfig(json);
    const sample = tf.randomNormal([2, size, size, 4], 0, 1, "float32", 1) as tf.Tensor4D;
    const context = tf.randomNormal(
      [2, 77, Number(json.cross_attention_dim)],
      0,
      1,
      "float32",
      2,
    ) as tf.Tensor3D;
    return () => unet.forward(sample, 500, context);
  });
}

const CASES: Record<string, () => Promise<() => tf.Tensor>> = {
  "cat-unet": async () => {
    const unet = UNet2DModel.fromConfig(await config("google__ddpm-cat-256/config.json"));
    const sample = tf.randomNormal([1, 256, 256, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    return () => unet.forward(sample, 500);
  },
  "ldm-unet": () =>
    conditional("CompVis__ldm-text2im-large-256/unet/config.reconstructed.json", 32),
  "sd-unet": () => conditional("runwayml__stable-diffusion-v1-5/unet/config.json", 64),
  "sd-vae": async () => {
    const vae = AutoencoderKL.fromConfig(
      await config("runwayml__stable-diffusion-v1-5/vae/config.json"),
    );
    const z = tf.randomNormal([1, 64, 64, 4], 0, 1, "float32", 3) as tf.Tensor4D;
    return () => vae.decode(z);
  },
};

const build = CASES[which];
if (!build) throw new Error(`unknown case ${which}; valid: ${Object.keys(CASES).join(", ")}`);
const run = await build();
const warm = run();
await warm.data();
warm.dispose();
const t0 = performance.now();
const info = await tf.profile(async () => {
  const y = run();
  await y.data();
  y.dispose();
});
const wall = performance.now() - t0;
const byName = new Map<string, { ms: number; n: number }>();
const byShape = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const ms = Number(k.kernelTimeMs);
  const shape = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(" ")}`;
  for (const [map, key] of [[byName, k.name], [byShape, shape]] as const) {
    const e = map.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    map.set(key, e);
  }
}
const total = [...byName.values()].reduce((a, e) => a + e.ms, 0);
const print = (title: string, map: Map<string, { ms: number; n: number }>) => {
  console.log(`\n${title}`);
  for (const [key, e] of [...map].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(
      `${(e.ms / 1000).toFixed(2).padStart(7)} s ${(100 * e.ms / total).toFixed(1).padStart(5)}% ` +
        `x${e.n} ${key}`,
    );
  }
};
console.log(
  `${which}: wall ${(wall / 1000).toFixed(2)} s under the profiler, kernels ${
    (total / 1000).toFixed(2)
  } s`,
);
print("by kernel", byName);
print("by kernel and input shapes", byShape);
