/**
 * One UNet2DConditionModel step (random weights) at the real latent sizes
 * on the WASM backend, one timed call each:
 * CompVis/ldm-text2im-large-256 (872M parameters; batch 2 = CFG, 32×32
 * latents, 77 tokens × 1280) and Stable Diffusion 1.5 (860M; batch 2,
 * 64×64, 77 × 768). Reference points for the same forward: PyTorch CPU
 * 3.73 s and 12.7 s.
 *
 * Each model holds 3.4 GB of weights in the 4 GiB WASM heap, so the two
 * run one after the other (the second bench frees the first model), and
 * XNNPACK re-packs each weight per call (see models/layers/weight_packing.ts):
 * that cost is part of the timed step. Building the model and one warm-up
 * call are not timed (their times are printed). Deno may call a bench
 * function more than once even with `n: 1`; the model is built once.
 *
 * Run: `deno bench -A bench/unet_2d_condition_bench.ts`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { parseConfigJson } from "../lib/config.ts";
import { UNet2DConditionModel } from "../models/unet_2d_condition.ts";
import { initValues } from "../models/layers/init.ts";

await ready("wasm");

const CONFIGS = new URL("../../shared/configs/", import.meta.url);

/** A random normal tensor of `shape` (plain JS draws: fast and seeded). */
function randn(shape: number[], seed: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(initValues({ kind: "normal", std: 1 }, size, seed), shape);
}

/** The model under test and its inputs; one at a time, as both fill the WASM heap. */
interface Loaded {
  name: string;
  unet: UNet2DConditionModel;
  sample: tf.Tensor4D;
  context: tf.Tensor3D;
}

let loaded: Loaded | null = null;

/** Builds `name`'s model and inputs (freeing the previous model) and runs the untimed warm-up. */
async function setup(
  name: string,
  config: string,
  latent: number,
  contextDim: number,
): Promise<Loaded> {
  if (loaded?.name === name) return loaded;
  if (loaded) tf.dispose([loaded.sample, loaded.context]);
  loaded?.unet.dispose();
  const json = parseConfigJson(await Deno.readTextFile(new URL(config, CONFIGS)));
  const start = performance.now();
  const unet = UNet2DConditionModel.fromConfig(json);
  const built = performance.now();
  const sample = randn([2, latent, latent, 4], 1) as tf.Tensor4D;
  const context = randn([2, 77, contextDim], 2) as tf.Tensor3D;
  const warm = unet.forward(sample, 981, context);
  await warm.data();
  warm.dispose();
  console.log(
    `${name}: ${(unet.parameterCount() / 1e6).toFixed(1)}M parameters built in ${
      ((built - start) / 1000).toFixed(1)
    } s, warm-up call ${((performance.now() - built) / 1000).toFixed(1)} s`,
  );
  return loaded = { name, unet, sample, context };
}

/** Benchmarks one step of the UNet in `config` at batch 2 with `latent`² latents. */
function unetStep(name: string, config: string, latent: number, contextDim: number): void {
  Deno.bench({
    name,
    n: 1,
    warmup: 0,
    async fn(b: Deno.BenchContext): Promise<void> {
      const { unet, sample, context } = await setup(name, config, latent, contextDim);
      b.start();
      const y = unet.forward(sample, 981, context);
      await y.data();
      b.end();
      y.dispose();
    },
  });
}

unetStep(
  "UNet2DConditionModel ldm-text2im-large-256, batch 2, 32x32 latents, 77x1280, wasm",
  "CompVis__ldm-text2im-large-256/unet/config.reconstructed.json",
  32,
  1280,
);
unetStep(
  "UNet2DConditionModel stable-diffusion-v1-5, batch 2, 64x64 latents, 77x768, wasm",
  "runwayml__stable-diffusion-v1-5/unet/config.json",
  64,
  768,
);
