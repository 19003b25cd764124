/**
 * LDM text-to-image and Stable Diffusion pipelines end to end against what
 * the real diffusers computed (`pipelines/ldm_text2im_tiny`, `sd_tiny`):
 * token ids (exact), text embeddings, every step's latents and the final
 * image (relative error ≤ 1e-4), from the stored initial latents and from
 * the seed that drew them; and from `.bin` weights.
 */
import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { Generator } from "../lib/random.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import type { LDMTextToImagePipeline } from "../lib/pipelines/latent_diffusion.ts";
import type { StableDiffusionPipeline } from "../lib/pipelines/stable_diffusion.ts";
import { type SafetensorsFile, toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { assertClose, FIXTURES_DIR, readTensors } from "./_helpers.ts";
import { nhwc, recorder } from "./_pipeline_fixture.ts";

function checkSteps(ref: SafetensorsFile, steps: Float32Array[], label: string): void {
  const n = [...ref.tensors.keys()].filter((k) => /^step\.\d+\.latents_out$/.test(k)).length;
  assert.equal(steps.length, n, `${label}: number of steps`);
  steps.forEach((s, i) =>
    assertClose(s, toFloat32(ref.tensors.get(`step.${i}.latents_out`)!), 1e-4, `${label} step ${i}`)
  );
}

async function binOnlyCopy(src: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bin-only-" });
  for await (const entry of Deno.readDir(src)) {
    if (entry.isDirectory) {
      await Deno.mkdir(`${dir}/${entry.name}`);
      for await (const f of Deno.readDir(`${src}/${entry.name}`)) {
        if (!f.name.endsWith(".safetensors")) {
          await Deno.copyFile(`${src}/${entry.name}/${f.name}`, `${dir}/${entry.name}/${f.name}`);
        }
      }
    } else if (entry.name === "model_index.json") {
      await Deno.copyFile(`${src}/${entry.name}`, `${dir}/${entry.name}`);
    }
  }
  return dir;
}

Deno.test("LDMTextToImagePipeline: ids, embeddings, steps and image as diffusers, from latents and seed", async () => {
  const before = tf.memory().numTensors;
  const ref = await readTensors("pipelines/ldm_text2im_tiny/expected.safetensors");
  const pipe = await DiffusionPipeline.fromPretrained(
    `${FIXTURES_DIR}/pipelines/ldm_text2im_tiny`,
  ) as LDMTextToImagePipeline;
  assert.equal(pipe.className, "LDMTextToImagePipeline");
  const prompt = "a painting of a squirrel eating a banana";
  for (const [kind, text] of [["cond", prompt], ["uncond", ""]] as const) {
    const ids =
      pipe.tokenizer.encode(text, { padding: "max_length", maxLength: 77, truncation: true })
        .inputIds;
    assert.deepEqual(ids, [...toInt32(ref.tensors.get(`text.${kind}.input_ids`)!)], `${kind} ids`);
    const embeds = pipe.bert.encodeIds([ids]);
    assertClose(
      await embeds.data(),
      toFloat32(ref.tensors.get(`text.${kind}.embeddings`)!),
      1e-4,
      `${kind} embeddings`,
    );
    embeds.dispose();
  }
  const image = toFloat32(ref.tensors.get("image")!);
  const latents = nhwc(ref, "latents_init");
  const rec = recorder();
  const call = {
    prompt,
    height: 128,
    width: 128,
    numInferenceSteps: 5,
    guidanceScale: 6,
    eta: 0,
    outputType: "tensor",
  } as const;
  const out = await pipe.call({ ...call, latents, onStep: rec.onStep });
  checkSteps(ref, rec.steps, "ldm");
  assertClose(await out.images.data(), image, 1e-4, "ldm image from latents");
  out.images.dispose();
  latents.dispose();
  const seeded = await pipe.call({ ...call, generator: new Generator().manualSeed(8) });
  assertClose(await seeded.images.data(), image, 1e-4, "ldm image from seed 8");
  seeded.images.dispose();
  pipe.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});

Deno.test("StableDiffusionPipeline: ids, embeddings, steps and image as diffusers, from latents, seed and .bin", async () => {
  const before = tf.memory().numTensors;
  const ref = await readTensors("pipelines/sd_tiny/expected.safetensors");
  const src = `${FIXTURES_DIR}/pipelines/sd_tiny`;
  const pipe = await DiffusionPipeline.fromPretrained(src) as StableDiffusionPipeline;
  assert.equal(pipe.className, "StableDiffusionPipeline");
  const prompt = "a photo of an astronaut riding a horse";
  for (const [kind, text] of [["cond", prompt], ["uncond", "blurry"]] as const) {
    const ids =
      pipe.tokenizer.encode(text, { padding: "max_length", maxLength: 77, truncation: true })
        .inputIds;
    assert.deepEqual(ids, [...toInt32(ref.tensors.get(`text.${kind}.input_ids`)!)], `${kind} ids`);
  }
  const { embeds } = pipe.encodePrompt({ prompt, negativePrompt: "blurry", guidanceScale: 7.5 });
  const [uncond, cond] = tf.split(embeds, 2, 0);
  assertClose(
    await cond!.data(),
    toFloat32(ref.tensors.get("text.cond.embeddings")!),
    1e-4,
    "cond embeddings",
  );
  assertClose(
    await uncond!.data(),
    toFloat32(ref.tensors.get("text.uncond.embeddings")!),
    1e-4,
    "uncond embeddings",
  );
  tf.dispose([embeds, uncond!, cond!]);
  const image = toFloat32(ref.tensors.get("image")!);
  const call = {
    prompt,
    negativePrompt: "blurry",
    height: 32,
    width: 32,
    numInferenceSteps: 4,
    guidanceScale: 7.5,
    outputType: "tensor",
  } as const;
  const latents = nhwc(ref, "latents_init");
  const rec = recorder();
  const out = await pipe.call({ ...call, latents, onStep: rec.onStep });
  checkSteps(ref, rec.steps, "sd");
  assertClose(await out.images.data(), image, 1e-4, "sd image from latents");
  out.images.dispose();
  const seeded = await pipe.call({ ...call, generator: new Generator().manualSeed(9) });
  assertClose(await seeded.images.data(), image, 1e-4, "sd image from seed 9");
  seeded.images.dispose();
  pipe.dispose();

  const dir = await binOnlyCopy(src);
  try {
    const fromBin = await DiffusionPipeline.fromPretrained(dir) as StableDiffusionPipeline;
    const binOut = await fromBin.call({ ...call, latents });
    assertClose(await binOut.images.data(), image, 1e-4, "sd image from .bin");
    binOut.images.dispose();
    fromBin.dispose();
  } finally {
    latents.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
});
