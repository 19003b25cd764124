/**
 * One forward pass of Stable Diffusion 1.5's text encoder (CLIP ViT-L/14's
 * text tower: 12 layers, width 768, 123.06M parameters, random weights) on
 * a batch of 2 × 77 tokens (prompt and negative prompt, as classifier-free
 * guidance encodes them) on the WASM backend. Building the model and the
 * first call happen before timing.
 *
 * Run: `deno bench -A bench/text_encoders_bench.ts`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { parseConfigJson } from "../lib/config.ts";
import { CLIPTextModel } from "../models/clip_text.ts";

await ready("wasm");

const CONFIG = new URL(
  "../../shared/configs/runwayml__stable-diffusion-v1-5/text_encoder/config.json",
  import.meta.url,
);

/** `<|startoftext|>`, a few word ids, then `<|endoftext|>` padding to 77, as the tokenizer pads. */
function paddedIds(words: number[]): number[] {
  return [49406, ...words, ...Array(76 - words.length).fill(49407)];
}

const IDS = [paddedIds([320, 1125, 539, 550, 18376, 6765, 320, 4558]), paddedIds([20886])];

let model: CLIPTextModel | undefined;

/** Builds the model once and runs the untimed first call. */
async function setup(): Promise<CLIPTextModel> {
  if (!model) {
    model = CLIPTextModel.fromConfig(parseConfigJson(await Deno.readTextFile(CONFIG)));
    const { lastHiddenState, pooledOutput } = model.forward(IDS);
    await lastHiddenState.data();
    tf.dispose([lastHiddenState, pooledOutput]);
  }
  return model;
}

Deno.bench({
  name: "CLIPTextModel SD 1.5 (ViT-L/14 text), batch 2 x 77 tokens, wasm",
  n: 5,
  warmup: 0,
  async fn(b: Deno.BenchContext): Promise<void> {
    const te = await setup();
    b.start();
    const { lastHiddenState, pooledOutput } = te.forward(IDS);
    await lastHiddenState.data();
    b.end();
    tf.dispose([lastHiddenState, pooledOutput]);
  },
});
