/**
 * DDPM / DDIM / PNDM pipelines end to end against the fixtures that the
 * real diffusers produced (`pipelines/{ddpm,ddim,pndm}_tiny`): from the
 * stored initial noise and from the seed, loading from the folder (from
 * `.safetensors` and from `.bin`) and through a local Hub server by id.
 */
import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { Generator } from "../lib/random.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import type { UnconditionalPipeline } from "../lib/pipelines/unconditional.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";
import { generate } from "../lib/generate.ts";
import { assertClose, FIXTURES_DIR, readJson, readTensors } from "./_helpers.ts";
import { startHubServer } from "./hub_server.ts";

const CASES = ["ddpm_tiny", "ddim_tiny", "pndm_tiny"] as const;

interface Case {
  pipeline_class: string;
  call: { num_inference_steps: number; batch_size: number; eta?: number };
}

async function expected(name: string) {
  const file = await readTensors(`pipelines/${name}/expected.safetensors`);
  const get = (key: string) => file.tensors.get(key)!;
  const noise = get("init_noise");
  const [b, c, h, w] = noise.shape as [number, number, number, number];
  const latents = tf.tidy(() =>
    tf.transpose(tf.tensor4d(toFloat32(noise), [b, c, h, w]), [0, 2, 3, 1])
  ) as tf.Tensor4D;
  return { latents, image: toFloat32(get("image")) };
}

/** A copy of a fixture pipeline folder without its `.safetensors`, so only the `.bin` can load. */
async function binOnlyCopy(name: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `${name}-bin-` });
  const src = `${FIXTURES_DIR}/pipelines/${name}`;
  for (
    const entry of [
      "model_index.json",
      "scheduler/scheduler_config.json",
      "unet/config.json",
      "unet/diffusion_pytorch_model.bin",
    ]
  ) {
    await Deno.mkdir(`${dir}/${entry}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.copyFile(`${src}/${entry}`, `${dir}/${entry}`);
  }
  return dir;
}

/**
 * Runs the pipeline as the fixture did with `torch.manual_seed(0)`. With `init`, the stored initial
 * noise is passed as latents and the generator is advanced past that draw, so the per-step noise
 * (DDPM) comes from the same place in the stream as in diffusers.
 */
async function run(pipe: UnconditionalPipeline, meta: Case, init?: tf.Tensor4D) {
  const generator = new Generator().manualSeed(0);
  if (init) generator.randn(init.size);
  const out = await pipe.call({
    numInferenceSteps: meta.call.num_inference_steps,
    batchSize: meta.call.batch_size,
    generator,
    ...(init ? { latents: init } : {}),
    outputType: "tensor",
  });
  const values = (await out.images.data()) as Float32Array;
  out.images.dispose();
  return values;
}

for (const name of CASES) {
  Deno.test(`pipeline ${name}: from folder (.safetensors), stored noise and seed`, async () => {
    const meta = await readJson<Case>(`pipelines/${name}/case.json`);
    const before = tf.memory().numTensors;
    const ref = await expected(name);
    const pipe = await DiffusionPipeline.fromPretrained(
      `${FIXTURES_DIR}/pipelines/${name}`,
    ) as UnconditionalPipeline;
    assert.equal(pipe.className, meta.pipeline_class);
    assertClose(
      await run(pipe, meta, ref.latents),
      ref.image,
      1e-4,
      `${name} image from stored noise`,
    );
    assertClose(await run(pipe, meta), ref.image, 1e-4, `${name} image from seed 0`);
    pipe.dispose();
    ref.latents.dispose();
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  });

  Deno.test(`pipeline ${name}: from .bin only`, async () => {
    const meta = await readJson<Case>(`pipelines/${name}/case.json`);
    const ref = await expected(name);
    const dir = await binOnlyCopy(name);
    try {
      const pipe = await DiffusionPipeline.fromPretrained(dir) as UnconditionalPipeline;
      assertClose(await run(pipe, meta, ref.latents), ref.image, 1e-4, `${name} image (.bin)`);
      pipe.dispose();
    } finally {
      ref.latents.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("pipeline: by Hub id through a local Hub server, then offline from the cache", async () => {
  const cache = await Deno.makeTempDir({ prefix: "hf-cache-" });
  const server = await startHubServer({
    repos: { "fixtures/ddim-tiny": `${FIXTURES_DIR}/pipelines/ddim_tiny` },
  });
  const oldEndpoint = Deno.env.get("HF_ENDPOINT");
  Deno.env.set("HF_ENDPOINT", server.url);
  try {
    const meta = await readJson<Case>("pipelines/ddim_tiny/case.json");
    const ref = await expected("ddim_tiny");
    const pipe = await DiffusionPipeline.fromPretrained("fixtures/ddim-tiny", {
      cacheDir: cache,
    }) as UnconditionalPipeline;
    assertClose(await run(pipe, meta), ref.image, 1e-4, "image via hub");
    pipe.dispose();
    ref.latents.dispose();
    // LFS files are resolved with HEAD and then fetched from the CDN redirect.
    const fetched = server.requests.filter((r) => r.path.includes("/resolve/")).map((r) => r.path);
    assert(
      fetched.some((p) => p.endsWith("unet/diffusion_pytorch_model.safetensors")),
      "safetensors fetched",
    );
    assert(!fetched.some((p) => p.endsWith(".bin")), "the .bin twin must not be downloaded");
    assert(
      !fetched.some((p) => /(case|unet_io)\.json$|expected\.safetensors$/.test(p)),
      "root extras must not be downloaded",
    );
    const count = server.requests.length;
    const again = await DiffusionPipeline.fromPretrained("fixtures/ddim-tiny", {
      cacheDir: cache,
      localFilesOnly: true,
    });
    again.dispose();
    assert.equal(server.requests.length, count, "offline load must not touch the network");
  } finally {
    if (oldEndpoint === undefined) Deno.env.delete("HF_ENDPOINT");
    else Deno.env.set("HF_ENDPOINT", oldEndpoint);
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("generate(): swaps the scheduler by name and reports the seed", async () => {
  const ref = await expected("ddim_tiny");
  // The DDPM fixture folder with its scheduler swapped to DDIM = the DDIM fixture run (same UNet, same betas).
  const { images, seed } = await generate({
    model: `${FIXTURES_DIR}/pipelines/ddpm_tiny`,
    scheduler: "DDIMScheduler",
    steps: 10,
    seed: 0,
  });
  ref.latents.dispose();
  assert.equal(seed, 0);
  assert.equal(images.length, 1);
  assert.deepEqual([images[0]!.width, images[0]!.height], [32, 32]);
  // 8-bit pixels within one level of the reference image (a 1e-4 difference can flip a rounding).
  const pixels = images[0]!.data;
  let worst = 0;
  for (let i = 0; i < pixels.length; i++) {
    worst = Math.max(worst, Math.abs(pixels[i]! - ref.image[i]! * 255));
  }
  assert(worst <= 1, `max pixel difference ${worst}`);
});
