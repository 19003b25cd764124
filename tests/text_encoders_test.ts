/**
 * The text encoders on the WASM backend: transformers' CLIPTextModel and
 * diffusers' LDMBertModel fixtures (from `model.safetensors` and from
 * `pytorch_model.bin`) against PyTorch's outputs and intermediates, the
 * pipeline fixtures' prompt embeddings, full-size parameter counts
 * (checked against the Hub's LFS file sizes where known), memory hygiene,
 * the additive attention mask, and errors for bad configs, weights and ids.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { ArgumentError, ConfigError, NotFoundError, WeightsError } from "../lib/errors.ts";
import { type ConfigDict, loadConfig } from "../lib/config.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { loadStateDict } from "../lib/weights/state_dict.ts";
import { multiHeadAttention } from "../models/layers/attention.ts";
import { causalMask, FLOAT32_MIN } from "../models/layers/self_attention.ts";
import { CLIPTextModel } from "../models/clip_text.ts";
import { LDMBertModel } from "../models/ldm_bert.ts";
import {
  assertClose,
  assertThrowsTyped,
  FIXTURES_DIR,
  readJson,
  readTensors,
  SHARED_DIR,
} from "./_helpers.ts";

const TOL = 1e-4;
const CLIP_DIR = `${FIXTURES_DIR}/models/clip_text`;
const BERT_DIR = `${FIXTURES_DIR}/models/ldmbert`;
const SD15 = `${SHARED_DIR}/configs/runwayml__stable-diffusion-v1-5`;
const SD21 = `${SHARED_DIR}/configs/stabilityai__stable-diffusion-2-1-base`;
const LDM_BERT_CONFIG =
  `${SHARED_DIR}/configs/CompVis__ldm-text2im-large-256/bert/config.reconstructed.json`;

const clipIO = await readTensors(`${CLIP_DIR}/io.safetensors`);
const bertIO = await readTensors(`${BERT_DIR}/io.safetensors`);

function f32(file: typeof clipIO, name: string): Float32Array {
  return toFloat32(file.tensors.get(name)!);
}

/** An int64 id fixture [B, T] as rows of numbers. */
function idRows(file: typeof clipIO, name: string): number[][] {
  const t = file.tensors.get(name)!;
  const ids = Array.from(toInt32(t));
  const [b, n] = t.shape as [number, number];
  return Array.from({ length: b }, (_, i) => ids.slice(i * n, (i + 1) * n));
}

/** A temporary folder holding only `config.json` and the named weights file of `dir`. */
async function onlyWeightsFile(dir: string, file: string): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "text_encoder_" });
  await Deno.copyFile(`${dir}/config.json`, `${tmp}/config.json`);
  await Deno.copyFile(`${dir}/${file}`, `${tmp}/${file}`);
  return tmp;
}

/** Each weights file of a fixture folder, loaded in turn (the .bin from a folder without safetensors). */
async function eachFormat<M extends { dispose(): void }>(
  dir: string,
  load: (folder: string) => Promise<M>,
  check: (model: M, label: string) => Promise<void>,
): Promise<void> {
  for (const file of ["model.safetensors", "pytorch_model.bin"]) {
    const folder = await onlyWeightsFile(dir, file);
    const model = await load(folder);
    try {
      await check(model, file);
    } finally {
      model.dispose();
      await Deno.remove(folder, { recursive: true });
    }
  }
}

Deno.test("CLIPTextModel fixture: outputs and every intermediate match transformers, from .safetensors and .bin", async () => {
  const ids = idRows(clipIO, "input.input_ids");
  await eachFormat(CLIP_DIR, (d) => CLIPTextModel.fromPretrained(d), async (te, file) => {
    assert.equal(te.parameterCount(), 35466);
    const out = te.forward(ids, { outputHiddenStates: true });
    try {
      assert.deepEqual(out.lastHiddenState.shape, [2, 77, 32]);
      assert.deepEqual(out.pooledOutput.shape, [2, 32]);
      assert.equal(out.hiddenStates!.length, 3);
      const [emb, l0, l1] = out.hiddenStates!;
      assertClose(await emb!.data(), f32(clipIO, "inter.embeddings"), TOL, `${file} embeddings`);
      assertClose(await l0!.data(), f32(clipIO, "inter.encoder.layers.0"), TOL, `${file} layer 0`);
      assertClose(await l1!.data(), f32(clipIO, "inter.encoder.layers.1"), TOL, `${file} layer 1`);
      assertClose(
        await out.lastHiddenState.data(),
        f32(clipIO, "output.last_hidden_state"),
        TOL,
        `${file} last_hidden_state`,
      );
      assertClose(
        await out.pooledOutput.data(),
        f32(clipIO, "output.pooler_output"),
        TOL,
        `${file} pooler_output`,
      );
    } finally {
      tf.dispose([out.lastHiddenState, out.pooledOutput, ...out.hiddenStates!]);
    }
  });
});

Deno.test("CLIPTextModel fixture: tensor ids (int32 or float32) give the same result as number[][]", async () => {
  const te = await CLIPTextModel.fromPretrained(CLIP_DIR);
  const t = clipIO.tensors.get("input.input_ids")!;
  const ids = tf.tensor2d(toInt32(t), [2, 77], "int32");
  const asFloat = tf.cast(ids, "float32") as tf.Tensor2D;
  try {
    for (const input of [ids, asFloat]) {
      const { lastHiddenState, pooledOutput } = te.forward(input);
      assertClose(await lastHiddenState.data(), f32(clipIO, "output.last_hidden_state"), TOL);
      assertClose(await pooledOutput.data(), f32(clipIO, "output.pooler_output"), TOL);
      tf.dispose([lastHiddenState, pooledOutput]);
    }
  } finally {
    tf.dispose([ids, asFloat]);
    te.dispose();
  }
});

Deno.test("LDMBertModel fixture: output and every intermediate match diffusers, from .safetensors and .bin", async () => {
  const ids = idRows(bertIO, "input.input_ids");
  await eachFormat(BERT_DIR, (d) => LDMBertModel.fromPretrained(d), async (bert, file) => {
    assert.equal(bert.parameterCount(), 27224);
    const enc = bert.model;
    const [tokens, positions, l0, l1, last] = tf.tidy(() => {
      const idsT = tf.tensor2d(ids.flat(), [2, 8], "int32");
      const tok = enc.embed_tokens.forward(tf.reshape(idsT, [16]));
      const pos = enc.embed_positions.forward(tf.range(0, 8, 1, "int32") as tf.Tensor1D);
      const h0 = enc.embed(idsT);
      const h1 = enc.layers[0]!.forward(h0, 2);
      return [tok, pos, h1, enc.layers[1]!.forward(h1, 2), bert.forward(ids)];
    });
    try {
      assertClose(await tokens.data(), f32(bertIO, "inter.embed_tokens"), TOL, `${file} tokens`);
      assertClose(await positions.data(), f32(bertIO, "inter.embed_positions"), TOL, file);
      assertClose(await l0.data(), f32(bertIO, "inter.layers.0"), TOL, `${file} layer 0`);
      assertClose(await l1.data(), f32(bertIO, "inter.layers.1"), TOL, `${file} layer 1`);
      assert.deepEqual(last.shape, [2, 8, 32]);
      assertClose(
        await last.data(),
        f32(bertIO, "output.last_hidden_state"),
        TOL,
        `${file} last_hidden_state`,
      );
    } finally {
      tf.dispose([tokens, positions, l0, l1, last]);
    }
  });
});

Deno.test("pipeline fixtures: sd_tiny text_encoder and ldm_text2im_tiny bert reproduce the prompt embeddings", async () => {
  const cases = [
    ["sd_tiny", (d: string) => CLIPTextModel.fromPretrained(d, { subfolder: "text_encoder" })],
    ["ldm_text2im_tiny", (d: string) => LDMBertModel.fromPretrained(d, { subfolder: "bert" })],
  ] as const;
  for (const [name, load] of cases) {
    const dir = `${FIXTURES_DIR}/pipelines/${name}`;
    const expected = await readTensors(`${dir}/expected.safetensors`);
    const model = await load(dir);
    try {
      for (const which of ["cond", "uncond"]) {
        const ids = idRows(expected, `text.${which}.input_ids`);
        const out = model instanceof CLIPTextModel
          ? model.forward(ids).lastHiddenState
          : (model as LDMBertModel).forward(ids);
        assertClose(
          await out.data(),
          f32(expected, `text.${which}.embeddings`),
          TOL,
          `${name} ${which}`,
        );
        out.dispose();
      }
    } finally {
      model.dispose();
    }
  }
});

Deno.test("text encoders: forward leaves tf.memory().numTensors unchanged (also when it throws)", async () => {
  const te = await CLIPTextModel.fromPretrained(CLIP_DIR);
  const bert = await LDMBertModel.fromPretrained(BERT_DIR);
  const tooLong = tf.zeros([1, 78]) as tf.Tensor2D;
  try {
    const before = tf.memory().numTensors;
    const out = te.forward([[603, 320, 604]], { outputHiddenStates: true });
    assert.equal(tf.memory().numTensors, before + 5);
    tf.dispose([out.lastHiddenState, out.pooledOutput, ...out.hiddenStates!]);
    const h = bert.forward([[1, 2, 3], [4, 5, 6]]);
    assert.equal(tf.memory().numTensors, before + 1);
    h.dispose();
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => te.forward([[603, 700]]), ArgumentError);
    assert.throws(() => bert.forward(tooLong), ArgumentError);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    tooLong.dispose();
    te.dispose();
    bert.dispose();
  }
});

/** Weight-file sizes from a config folder's `_lfs_files.tsv`. */
async function lfsSizes(folder: string): Promise<Map<string, number>> {
  const text = await Deno.readTextFile(`${folder}/_lfs_files.tsv`);
  return new Map(
    text.trim().split("\n").map((line) => {
      const [path, size] = line.split("\t");
      return [path!, Number(size)];
    }),
  );
}

/** The bytes a safetensors file spends on its header and on CLIP's int64 position_ids [1, 77]. */
const POSITION_IDS_BYTES = 77 * 8;
const MAX_HEADER_BYTES = 64 * 1024;

Deno.test("CLIPTextModel full size: SD 1.5 (CLIP ViT-L/14) builds with fromConfig, runs, and its count fits the Hub files", async () => {
  const json = await readJson(`${SD15}/text_encoder/config.json`);
  const te = CLIPTextModel.fromConfig(json);
  try {
    const count = te.parameterCount();
    assert.equal(count, 123_060_480);
    const sizes = await lfsSizes(SD15);
    const f32Size = sizes.get("text_encoder/model.safetensors")!;
    const f16Size = sizes.get("text_encoder/model.fp16.safetensors")!;
    const header = f32Size - 4 * count - POSITION_IDS_BYTES;
    assert(header > 0 && header < MAX_HEADER_BYTES, `header of ${header} bytes`);
    // fp32 and fp16 files differ by exactly 2 bytes per parameter, up to header digits.
    assert(Math.abs(f32Size - f16Size - 2 * count) < 1024);
    const { lastHiddenState, pooledOutput } = te.forward([[49406, 320, 1125, 49407]]);
    assert.deepEqual(lastHiddenState.shape, [1, 4, 768]);
    assert.deepEqual(pooledOutput.shape, [1, 768]);
    assert((await lastHiddenState.data()).every(Number.isFinite));
    tf.dispose([lastHiddenState, pooledOutput]);
  } finally {
    te.dispose();
  }
});

Deno.test("CLIPTextModel full size: SD 2.1 (OpenCLIP ViT-H/14, 23 layers, gelu) count fits the Hub file", async () => {
  const json = await readJson(`${SD21}/text_encoder/config.json`);
  const config = loadConfig(CLIPTextModel.spec, json);
  assert.equal(config.hidden_act, "gelu");
  assert.equal(config.num_hidden_layers, 23);
  // Architecture only: 1.36 GB of random weights would add nothing to the check.
  const count = new CLIPTextModel(config).parameterCount();
  assert.equal(count, 340_387_840);
  const size = (await lfsSizes(SD21)).get("text_encoder/model.safetensors")!;
  const header = size - 4 * count - POSITION_IDS_BYTES;
  assert(header > 0 && header < MAX_HEADER_BYTES, `header of ${header} bytes`);
});

Deno.test("LDMBertModel full size: the reconstructed ldm-text2im-large-256 config", async () => {
  const json = await readJson(LDM_BERT_CONFIG);
  const bert = new LDMBertModel(loadConfig(LDMBertModel.spec, json));
  // No LFS size is known for this repo: count it from the architecture instead.
  const [d, inner, ffn, vocab] = [1280, 8 * 64, 5120, 30522];
  const layer = 3 * d * inner + inner * d + d + 2 * (d * ffn) + ffn + d + 4 * d;
  const expected = vocab * d + 77 * d + 32 * layer + 2 * d + (d * vocab + vocab);
  assert.equal(bert.parameterCount(), expected);
  assert.equal(expected, 581_994_042);
  const small = LDMBertModel.fromConfig(json, { encoder_layers: 1 });
  try {
    const h = small.forward([[101, 7592, 102]]);
    assert.deepEqual(h.shape, [1, 3, 1280]);
    h.dispose();
  } finally {
    small.dispose();
  }
});

Deno.test("multiHeadAttention: an additive score bias masks like naive attention, chunked or not", async () => {
  const [batch, heads, n, d] = [2, 3, 5, 4];
  const q = tf.randomNormal([batch * n, heads * d], 0, 1, "float32", 1) as tf.Tensor2D;
  const k = tf.randomNormal([batch * n, heads * d], 0, 1, "float32", 2) as tf.Tensor2D;
  const v = tf.randomNormal([batch * n, heads * d], 0, 1, "float32", 3) as tf.Tensor2D;
  const mask = causalMask(n);
  const scale = 0.5;
  const [qa, ka, va] = await Promise.all([q.array(), k.array(), v.array()]);
  const expected: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < n; i++) {
      for (let h = 0; h < heads; h++) {
        // Naive causal softmax over keys 0..i of this batch element and head.
        const s = Array.from({ length: i + 1 }, (_, j) => {
          let dot = 0;
          for (let c = 0; c < d; c++) {
            dot += qa[b * n + i]![h * d + c]! * ka[b * n + j]![h * d + c]!;
          }
          return dot * scale;
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < d; c++) {
          expected.push(e.reduce((a, w, j) => a + w * va[b * n + j]![h * d + c]!, 0) / z);
        }
      }
    }
  }
  for (const maxBytes of [undefined, 2 * n * 4]) {
    const y = multiHeadAttention(q, k, v, batch, heads, scale, maxBytes, mask);
    assertClose(await y.data(), expected, 1e-5, `maxScoreBytes ${maxBytes}`);
    y.dispose();
  }
  const m3 = await causalMask(3).array();
  assert.deepEqual(
    m3,
    [[0, FLOAT32_MIN, FLOAT32_MIN], [0, 0, FLOAT32_MIN], [0, 0, 0]].map((r) => r.map(Math.fround)),
  );
  tf.dispose([q, k, v, mask]);
});

Deno.test("CLIPTextModel: the checkpoint's position_ids buffer is skipped by fromPretrained, not by the module", async () => {
  const config = loadConfig(CLIPTextModel.spec, await readJson(`${CLIP_DIR}/config.json`));
  const te = new CLIPTextModel(config);
  const sd = await loadStateDict(CLIP_DIR);
  try {
    await assertThrowsTyped(
      () => te.loadStateDict(sd),
      WeightsError,
      /1 unexpected key: text_model\.embeddings\.position_ids/,
    );
  } finally {
    sd.close();
    te.dispose();
  }
});

Deno.test("text encoders: clear errors for unsupported configs", async () => {
  const clip = (overrides: ConfigDict) => () => CLIPTextModel.fromConfig({}, overrides);
  await assertThrowsTyped(clip({ hidden_act: "gelu_new" }), ConfigError, /hidden_act.*gelu_new/);
  await assertThrowsTyped(
    clip({ hidden_size: 30, num_attention_heads: 4 }),
    ConfigError,
    /num_attention_heads.*do not divide hidden_size 30/,
  );
  await assertThrowsTyped(clip({ model_type: "clip" }), ConfigError, /model_type.*clip_text_model/);
  await assertThrowsTyped(clip({ num_hidden_layers: 0 }), ConfigError, /num_hidden_layers/);
  await assertThrowsTyped(clip({ vocab_size: 10.5 }), ConfigError, /vocab_size.*integer/);
  const bert = (overrides: ConfigDict) => () => LDMBertModel.fromConfig({}, overrides);
  await assertThrowsTyped(
    bert({ activation_function: "swiglu" }),
    ConfigError,
    /activation_function/,
  );
  await assertThrowsTyped(bert({ head_dim: 0 }), ConfigError, /head_dim: must be positive/);
  await assertThrowsTyped(bert({ encoder_layers: "two" }), ConfigError, /encoder_layers/);
  await assertThrowsTyped(bert({ model_type: "bert" }), ConfigError, /model_type/);
});

Deno.test("text encoders: clear errors for bad weights, missing files and bad ids", async () => {
  const wrongSize = await Deno.makeTempDir({ prefix: "text_encoder_" });
  try {
    const json = await readJson(`${CLIP_DIR}/config.json`);
    await Deno.writeTextFile(
      `${wrongSize}/config.json`,
      JSON.stringify({ ...json, intermediate_size: 40 }),
    );
    await Deno.copyFile(`${CLIP_DIR}/model.safetensors`, `${wrongSize}/model.safetensors`);
    const before = tf.memory().numTensors;
    await assertThrowsTyped(
      () => CLIPTextModel.fromPretrained(wrongSize),
      WeightsError,
      /shape mismatch.*: text_model\.encoder\.layers\.0\.mlp\.fc1\.weight: expected shape \[40,32\]/,
    );
    assert.equal(tf.memory().numTensors, before, "a failed load keeps no tensors");
    await assertThrowsTyped(
      () => LDMBertModel.fromPretrained(CLIP_DIR),
      ConfigError,
      /model_type/,
    );
    await assertThrowsTyped(
      () => LDMBertModel.fromPretrained(`${FIXTURES_DIR}/pipelines/ldm_text2im_tiny`),
      NotFoundError,
      /config\.json/,
    );
  } finally {
    await Deno.remove(wrongSize, { recursive: true });
  }
  const te = CLIPTextModel.fromConfig({
    vocab_size: 50,
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    max_position_embeddings: 6,
  });
  try {
    for (
      const [ids, pattern] of [
        [[[1, 2], [3]], /same length/],
        [[[1, 50]], /\[0\]\[1\] = 50 is not an id in \[0, 50\)/],
        [[[1, 2.5]], /is not an id/],
        [[], /non-empty/],
        [[[]], /must not be empty/],
        [[[1, 2, 3, 4, 5, 6, 7]], /hold 7 tokens; the model has 6 positions/],
      ] as const
    ) {
      assert.throws(() => te.forward(ids as unknown as number[][]), (e: Error) => {
        assert(e instanceof ArgumentError, String(e));
        assert.match(e.message, pattern);
        return true;
      });
    }
    const cube = tf.zeros([1, 2, 3]);
    assert.throws(() => te.forward(cube as tf.Tensor2D), /must be 2-D/);
    cube.dispose();
  } finally {
    te.dispose();
  }
});
