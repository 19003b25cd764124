/**
 * The bundled default model (emoji-sd-tiny, float16 weights) reproduces
 * diffusers' reference run ("cat face", seed 0, guidance 5, 25 steps)
 * through the public API: token ids exact; text embeddings, latents and
 * image within 1e-3 from the float16 copy, and within 1e-4 from the float32
 * original in ../shared.
 */
import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { DEFAULT_MODEL, generate } from "../lib/generate.ts";
import { DiffusionPipeline, Generator, type StableDiffusionPipeline } from "../mod.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { assertClose, readTensors, SHARED_DIR } from "./_helpers.ts";

const REFERENCE = `${SHARED_DIR}/models/emoji-sd-tiny-samples/reference.safetensors`;

async function checkModel(dir: string, tol: number, label: string): Promise<void> {
  const before = tf.memory().numTensors;
  const ref = await readTensors(REFERENCE);
  const get = (key: string) => toFloat32(ref.tensors.get(key)!);
  const pipe = await DiffusionPipeline.fromPretrained(dir) as StableDiffusionPipeline;
  for (const [kind, text] of [["cond", "cat face"], ["uncond", ""]] as const) {
    const ids =
      pipe.tokenizer.encode(text, { padding: "max_length", maxLength: 77, truncation: true })
        .inputIds;
    assert.deepEqual(
      ids,
      [...toInt32(ref.tensors.get(`input_ids.${kind}`)!)],
      `${label}: ${kind} ids`,
    );
  }
  const { embeds } = pipe.encodePrompt({
    prompt: "cat face",
    negativePrompt: "",
    guidanceScale: 5,
  });
  const [uncond, cond] = tf.split(embeds, 2, 0);
  assertClose(await cond!.data(), get("prompt_embeds.cond"), tol, `${label}: cond embeddings`);
  assertClose(
    await uncond!.data(),
    get("prompt_embeds.uncond"),
    tol,
    `${label}: uncond embeddings`,
  );
  tf.dispose([embeds, uncond!, cond!]);

  let last: Float32Array | undefined;
  const out = await pipe.call({
    prompt: "cat face",
    negativePrompt: "",
    guidanceScale: 5,
    numInferenceSteps: 25,
    generator: new Generator().manualSeed(0),
    outputType: "tensor",
    onStep: async ({ latents }) => {
      const nchw = tf.transpose(latents, [0, 3, 1, 2]);
      last = (await nchw.data()) as Float32Array;
      nchw.dispose();
    },
  });
  assertClose(last!, get("latents.final"), tol, `${label}: final latents`);
  assertClose(await out.images.data(), get("image"), tol, `${label}: image`);
  out.images.dispose();
  pipe.dispose();
  assert.equal(tf.memory().numTensors, before, `${label}: tensors leaked`);
}

Deno.test("emoji-sd-tiny: the bundled float16 copy reproduces diffusers' reference (1e-3)", () =>
  checkModel(DEFAULT_MODEL, 1e-3, "fp16 copy"));

Deno.test("emoji-sd-tiny: the float32 original reproduces diffusers' reference (1e-4)", () =>
  checkModel(`${SHARED_DIR}/models/emoji-sd-tiny`, 1e-4, "fp32 original"));

Deno.test("generate(): with no model, draws the cat face from the bundled model", async () => {
  const ref = await readTensors(REFERENCE);
  const { images, seed } = await generate({
    prompt: "cat face",
    seed: 0,
    guidanceScale: 5,
    steps: 25,
  });
  assert.equal(seed, 0);
  assert.deepEqual([images[0]!.width, images[0]!.height], [32, 32]);
  const expected = toFloat32(ref.tensors.get("image")!);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(images[0]!.data[i]! - expected[i]! * 255));
  }
  assert(worst <= 2, `8-bit pixels differ by up to ${worst}`);
});
