/**
 * Decoding with the full-size Stable Diffusion v1.5 VAE (83.65M parameters,
 * random weights): a 1×64×64×4 latent to a 512×512 image, on the WASM
 * backend. `n: 1, warmup: 0` is the least Deno's harness allows: it still
 * calls the function three times (one warm-up call, then two timed ones),
 * at about a minute each on a free core. Each decode records the size of
 * every tensor it creates, and the bench fails if any but the image reaches
 * 120 MiB: at this size the row-strip path must keep every
 * tensor within the default 64 MiB budget (the one-tensor pass would create
 * 1×512×512×256 maps of 256 MiB). Reference point for the same decode:
 * PyTorch CPU 6.7 s; measured here (2 shared vCPUs, one busy with another
 * job): 72.4 s per decode, largest intermediate tensor 64.0 MiB.
 *
 * Run: `deno bench -A bench/vae_bench.ts`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { parseConfigJson } from "../lib/config.ts";
import { AutoencoderKL } from "../models/autoencoder_kl.ts";
import { initValues } from "../models/layers/init.ts";

await ready("wasm");

const CONFIG = new URL(
  "../../shared/configs/runwayml__stable-diffusion-v1-5/vae/config.json",
  import.meta.url,
);

/** WebGPU computes wrong results on buffers of 128 MiB or more; stay clearly below. */
const LIMIT_BYTES = 120 * 1024 * 1024;

/**
 * Runs `f` and returns its result with the largest tensor (bytes) created
 * meanwhile, other than that result. Every tensor a kernel or the WASM
 * Winograd conv makes goes through the engine's `makeTensorFromTensorInfo`,
 * which is watched for the call (`tf.profile` misses the Winograd path).
 */
function withLargestTensor(f: () => tf.Tensor): { out: tf.Tensor; largest: number } {
  type Info = { shape: number[] };
  const engine = tf.engine() as unknown as {
    makeTensorFromTensorInfo(info: Info, backend?: unknown): tf.Tensor;
  };
  const original = engine.makeTensorFromTensorInfo;
  const sizes: number[] = [];
  engine.makeTensorFromTensorInfo = function (info: Info, backend?: unknown): tf.Tensor {
    sizes.push(4 * info.shape.reduce((a, b) => a * b, 1));
    return original.call(this, info, backend);
  };
  try {
    const out = f();
    return { out, largest: Math.max(...sizes.slice(0, -1)) };
  } finally {
    engine.makeTensorFromTensorInfo = original;
  }
}

let model: AutoencoderKL | undefined;
let latents: tf.Tensor4D | undefined;

/** Builds the model (about 2 s of random init) and the latent once. */
async function setup(): Promise<[AutoencoderKL, tf.Tensor4D]> {
  if (!model || !latents) {
    model = AutoencoderKL.fromConfig(parseConfigJson(await Deno.readTextFile(CONFIG)));
    latents = tf.tensor4d(initValues({ kind: "normal", std: 1 }, 64 * 64 * 4, 1), [1, 64, 64, 4]);
  }
  return [model, latents];
}

Deno.bench({
  name: "AutoencoderKL SD v1.5 decode, 1x64x64x4 -> 512x512, wasm",
  n: 1,
  warmup: 0,
  async fn(b: Deno.BenchContext): Promise<void> {
    const [vae, z] = await setup();
    b.start();
    const { out: image, largest } = withLargestTensor(() => vae.decode(z));
    await image.data();
    b.end();
    console.log(
      `largest intermediate tensor: ${(largest / 2 ** 20).toFixed(1)} MiB; image [${image.shape}]`,
    );
    image.dispose();
    if (largest >= LIMIT_BYTES) {
      throw new Error(`a ${(largest / 2 ** 20).toFixed(1)} MiB tensor was created (limit 120 MiB)`);
    }
  },
});
