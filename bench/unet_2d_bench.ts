/**
 * One forward pass of the full-size google/ddpm-cat-256 UNet (113.7M
 * parameters, random weights) at batch 1, 256×256, on the WASM backend.
 * Building the model and the first call (XNNPACK packs every conv kernel
 * then) happen before timing. Reference points for the same forward:
 * PyTorch CPU 2.25 s, onnxruntime-web 7.3 s.
 *
 * Run: `deno bench -A bench/unet_2d_bench.ts`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { parseConfigJson } from "../lib/config.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { initValues } from "../models/layers/init.ts";

await ready("wasm");

const CONFIG = new URL("../../shared/configs/google__ddpm-cat-256/config.json", import.meta.url);

let model: UNet2DModel | undefined;
let sample: tf.Tensor4D | undefined;

/** Builds the model and input once, and runs the untimed first call. */
async function setup(): Promise<[UNet2DModel, tf.Tensor4D]> {
  if (!model || !sample) {
    model = UNet2DModel.fromConfig(parseConfigJson(await Deno.readTextFile(CONFIG)));
    sample = tf.tensor4d(initValues({ kind: "normal", std: 1 }, 256 * 256 * 3, 1), [
      1,
      256,
      256,
      3,
    ]);
    const y = model.forward(sample, 500);
    await y.data();
    y.dispose();
  }
  return [model, sample];
}

Deno.bench({
  name: "UNet2DModel google/ddpm-cat-256, batch 1, 256x256, wasm",
  n: 3,
  warmup: 0,
  async fn(b: Deno.BenchContext): Promise<void> {
    const [unet, x] = await setup();
    b.start();
    const y = unet.forward(x, 500);
    await y.data();
    b.end();
    y.dispose();
  },
});
