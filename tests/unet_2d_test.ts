/**
 * UNet2DModel on the WASM backend: the diffusers fixture UNet (block types
 * of google/ddpm-cat-256) against PyTorch's output, parameter counts
 * (fixture and full-size, the latter checked against the Hub's LFS file
 * size), memory hygiene, weight-loading errors and config errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ready, tf } from "../lib/backend.ts";
import { ArgumentError, ConfigError, NotFoundError, WeightsError } from "../lib/errors.ts";
import { loadConfig } from "../lib/config.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { loadStateDict } from "../lib/weights/state_dict.ts";
import type { HostTensor } from "../models/layers/module.ts";
import {
  assertClose,
  assertThrowsTyped,
  FIXTURES_DIR,
  readJson,
  readTensors,
  SHARED_DIR,
} from "./_helpers.ts";

await ready("wasm");

const TINY = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
const CAT_CONFIG = `${SHARED_DIR}/configs/google__ddpm-cat-256/config.json`;
const BUTTERFLIES = `${SHARED_DIR}/configs/anton-l__ddpm-butterflies-128`;

const io = await readTensors(`${TINY}/unet_io.safetensors`);

/** A fixture tensor (NCHW) as an NHWC tfjs tensor. */
function fixtureNHWC(name: string): tf.Tensor4D {
  const t = io.tensors.get(name)!;
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(toFloat32(t), t.shape as [number, number, number, number]), [
      0,
      2,
      3,
      1,
    ])
  );
}

/** Every tensor of the fixture UNet's checkpoint, in memory. */
async function fixtureWeights(): Promise<Map<string, HostTensor>> {
  const sd = await loadStateDict(`${TINY}/unet`);
  try {
    const out = new Map<string, HostTensor>();
    for (const key of sd.entries.keys()) {
      const t = await sd.get(key);
      out.set(key, { shape: t.shape, data: t.data as Float32Array });
    }
    return out;
  } finally {
    sd.close();
  }
}

/** `y` NHWC → NCHW host values, disposing `y`. */
function toNCHW(y: tf.Tensor4D): Float32Array {
  const out = tf.tidy(() => tf.transpose(y, [0, 3, 1, 2]).dataSync() as Float32Array);
  y.dispose();
  return out;
}

const unet = await UNet2DModel.fromPretrained(TINY, { subfolder: "unet" });
const sample = fixtureNHWC("sample");

Deno.test("UNet2DModel fixture: output matches diffusers for timesteps [10, 500]", () => {
  const t = io.tensors.get("timestep")!;
  const y = unet.forward(sample, tf.tensor1d(toInt32(t), "int32"));
  assert.deepEqual(y.shape, [2, 32, 32, 3]);
  assertClose(toNCHW(y), toFloat32(io.tensors.get("output")!), 1e-4, "output");
  // plain numbers give the same result
  assertClose(
    toNCHW(unet.forward(sample, [10, 500])),
    toFloat32(io.tensors.get("output")!),
    1e-4,
    "number[] timesteps",
  );
});

Deno.test("UNet2DModel fixture: a 0-d timestep is broadcast to the batch", () => {
  const t = io.tensors.get("timestep_scalar")!;
  assert.deepEqual(t.shape, []);
  const expected = toFloat32(io.tensors.get("output_scalar_t")!);
  const scalar = tf.scalar(toInt32(t)[0]!, "int32");
  assertClose(toNCHW(unet.forward(sample, scalar)), expected, 1e-4, "0-d tensor");
  assertClose(toNCHW(unet.forward(sample, 999)), expected, 1e-4, "number");
  assertClose(toNCHW(unet.forward(sample, [999])), expected, 1e-4, "[number]");
  scalar.dispose();
});

Deno.test("UNet2DModel fixture: forward leaves tf.memory().numTensors unchanged", () => {
  const before = tf.memory().numTensors;
  const y = unet.forward(sample, [10, 500]);
  assert.equal(tf.memory().numTensors, before + 1);
  y.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => unet.forward(sample, [1, 2, 3]), ArgumentError);
  assert.equal(tf.memory().numTensors, before, "nothing leaks when forward throws");
});

Deno.test("UNet2DModel fixture: 253,123 parameters, keys equal the checkpoint's", async () => {
  const meta = await readJson<{ num_parameters: number }>(`${TINY}/unet_io.json`);
  assert.equal(unet.parameterCount(), 253_123);
  assert.equal(unet.parameterCount(), meta.num_parameters);
  const weights = await fixtureWeights();
  assert.deepEqual(unet.namedParameters().map(([k]) => k).sort(), [...weights.keys()].sort());
  assert.equal(unet.config.norm_num_groups, 8);
  assert.equal(unet.config.attention_head_dim, null);
});

Deno.test("UNet2DModel: bad timesteps and samples are ArgumentErrors", async () => {
  await assertThrowsTyped(() => unet.forward(sample, [1, 2, 3]), ArgumentError, /3 timesteps/);
  const odd = tf.zeros([1, 31, 31, 3]) as tf.Tensor4D;
  await assertThrowsTyped(() => unet.forward(odd, 1), ArgumentError, /multiples of 2/);
  const wrong = tf.zeros([1, 32, 32, 4]) as tf.Tensor4D;
  await assertThrowsTyped(() => unet.forward(wrong, 1), ArgumentError, /NHWC/);
  await assertThrowsTyped(
    () => unet.forward(sample, 1, { classLabels: [0, 1] }),
    ArgumentError,
    /no class embedding/,
  );
  tf.dispose([odd, wrong]);
});

Deno.test("UNet2DModel: legacy attention keys (query/key/value/proj_attn) load like diffusers", async () => {
  const legacy = new Map<string, HostTensor>();
  for (const [key, t] of await fixtureWeights()) {
    legacy.set(
      key.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
        .replace(".to_out.0.", ".proj_attn."),
      t,
    );
  }
  assert.ok([...legacy.keys()].some((k) => k.endsWith("attentions.0.proj_attn.weight")));
  const old = new UNet2DModel(unet.config);
  await old.loadStateDict(legacy);
  const y = old.forward(sample, [10, 500]);
  assertClose(toNCHW(y), toFloat32(io.tensors.get("output")!), 1e-4, "legacy keys");
  old.dispose();
});

Deno.test("UNet2DModel.loadStateDict: missing, unexpected and mis-shaped keys in one WeightsError", async () => {
  const file = `${TINY}/unet/diffusion_pytorch_model.safetensors`;
  const bad = await fixtureWeights();
  bad.delete("mid_block.attentions.0.to_k.bias");
  bad.set("mid_block.attentions.0.extra.weight", { shape: [1], data: new Float32Array(1) });
  bad.set("conv_in.weight", { shape: [16, 3, 5, 5], data: new Float32Array(16 * 3 * 25) });
  const model = new UNet2DModel(unet.config);
  const err = await assertThrowsTyped(() => model.loadStateDict(bad, { file }), WeightsError);
  assert.match(err.message, /diffusion_pytorch_model\.safetensors: /);
  assert.match(err.message, /1 missing key: mid_block\.attentions\.0\.to_k\.bias/);
  assert.match(err.message, /1 unexpected key: mid_block\.attentions\.0\.extra\.weight/);
  assert.match(err.message, /conv_in\.weight: expected shape \[16,3,3,3\], got \[16,3,5,5\]/);
  assert.ok(model.namedParameters().every(([, p]) => !p.loaded), "nothing assigned");
});

Deno.test("UNet2DModel.fromPretrained: the PyTorch .bin checkpoint gives the same output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["config.json", "diffusion_pytorch_model.bin"]) {
      await Deno.copyFile(`${TINY}/unet/${name}`, `${dir}/${name}`);
    }
    const fromBin = await UNet2DModel.fromPretrained(dir);
    const y = fromBin.forward(sample, [10, 500]);
    assertClose(toNCHW(y), toFloat32(io.tensors.get("output")!), 1e-4, ".bin weights");
    fromBin.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UNet2DModel.fromPretrained: missing files are NotFoundErrors naming the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertThrowsTyped(() => UNet2DModel.fromPretrained(dir), NotFoundError, /config\.json/);
    await Deno.copyFile(`${TINY}/unet/config.json`, `${dir}/config.json`);
    await assertThrowsTyped(
      () => UNet2DModel.fromPretrained(dir),
      NotFoundError,
      /diffusion_pytorch_model\.safetensors/,
    );
    await Deno.copyFile(
      `${TINY}/unet/diffusion_pytorch_model.safetensors`,
      `${dir}/diffusion_pytorch_model.safetensors`,
    );
    await assertThrowsTyped(
      () => UNet2DModel.fromPretrained(dir, { variant: "fp16" }),
      NotFoundError,
      /diffusion_pytorch_model\.fp16\.safetensors/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Bytes of the safetensors file PyTorch's exporter writes for these keys and shapes. */
function safetensorsSize(entries: [string, readonly number[]][]): number {
  let offset = 0;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  for (const [key, shape] of [...entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[key] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header).length;
  return 8 + Math.ceil(json / 8) * 8 + offset; // header padded to 8 bytes
}

Deno.test("UNet2DModel.fromConfig(google/ddpm-cat-256): 113,673,219 parameters, = the Hub file size", async () => {
  const json = JSON.parse(await Deno.readTextFile(CAT_CONFIG));
  const before = tf.memory().numTensors;
  const cat = UNet2DModel.fromConfig(json);
  assert.equal(cat.parameterCount(), 113_673_219);
  const params = cat.namedParameters();
  assert.equal(tf.memory().numTensors, before + params.length);
  assert.ok(params.every(([, p]) => p.loaded));
  assert.equal(cat.config.downsample_padding, 0);
  assert.equal(cat.config.freq_shift, 1);
  cat.dispose();
  assert.equal(tf.memory().numTensors, before);

  // anton-l/ddpm-butterflies-128 has the same architecture (only attention_head_dim
  // differs, which does not change shapes). Its F32 safetensors holds the old
  // attention names; rebuilding that file's header from our keys and shapes
  // must give the exact LFS size.
  const bJson = JSON.parse(await Deno.readTextFile(`${BUTTERFLIES}/unet/config.json`));
  const butterflies = new UNet2DModel(loadConfig(UNet2DModel.spec, bJson));
  assert.equal(butterflies.parameterCount(), 113_673_219);
  const lfs = (await Deno.readTextFile(`${BUTTERFLIES}/_lfs_files.tsv`)).split("\n")
    .map((l) => l.split("\t")).find(([p]) => p === "unet/diffusion_pytorch_model.safetensors");
  const legacyNames: [string, readonly number[]][] = butterflies.namedParameters().map((
    [k, p],
  ) => [
    k.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
      .replace(".to_out.0.", ".proj_attn."),
    p.torchShape,
  ]);
  assert.equal(safetensorsSize(legacyNames), Number(lfs![1]));
});

const TINY_CONFIG = {
  block_out_channels: [8, 16],
  norm_num_groups: 4,
  layers_per_block: 1,
  sample_size: 8,
  down_block_types: ["DownBlock2D", "AttnDownBlock2D"],
  up_block_types: ["AttnUpBlock2D", "UpBlock2D"],
};

Deno.test("UNet2DModel: config variants build, run, and have diffusers' keys", () => {
  const x = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
  const run = (overrides: Record<string, unknown>, forward: { classLabels?: number[] } = {}) => {
    const m = UNet2DModel.fromConfig(TINY_CONFIG, overrides as Record<string, never>, { seed: 3 });
    const y = m.forward(x, [3, 7], forward);
    assert.deepEqual(y.shape, [2, 8, 8, 3]);
    assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
    y.dispose();
    const keys = new Map(m.namedParameters().map(([k, p]) => [k, p.torchShape]));
    m.dispose();
    return keys;
  };
  // scale_shift: doubled time projection, mid-block attention without group norm
  let keys = run({ resnet_time_scale_shift: "scale_shift", attention_head_dim: 4 });
  assert.deepEqual(keys.get("down_blocks.0.resnets.0.time_emb_proj.weight"), [16, 32]);
  assert.ok(!keys.has("mid_block.attentions.0.group_norm.weight"));
  assert.deepEqual(keys.get("up_blocks.0.attentions.0.group_norm.weight"), [16]);
  keys = run({ resnet_time_scale_shift: "scale_shift", attn_norm_num_groups: 2 });
  assert.ok(keys.has("mid_block.attentions.0.group_norm.weight"));
  // fourier time embedding: 2·C₀ inputs to time_embedding
  keys = run({ time_embedding_type: "fourier" });
  assert.deepEqual(keys.get("time_proj.weight"), [8]);
  assert.deepEqual(keys.get("time_embedding.linear_1.weight"), [32, 16]);
  keys = run({ time_embedding_type: "learned", num_train_timesteps: 10 });
  assert.deepEqual(keys.get("time_proj.weight"), [10, 8]);
  // resnet down/up samplers in the attention blocks; DownBlock2D keeps its conv
  keys = run({
    down_block_types: ["AttnDownBlock2D", "DownBlock2D"],
    up_block_types: ["UpBlock2D", "AttnUpBlock2D"],
    downsample_type: "resnet",
    upsample_type: "resnet",
  });
  assert.ok(keys.has("down_blocks.0.downsamplers.0.conv1.weight"));
  assert.ok(keys.has("up_blocks.0.upsamplers.0.conv.weight"));
  keys = run({
    down_block_types: ["ResnetDownsampleBlock2D", "UNetResDownBlock2D"],
    up_block_types: ["UpBlock2D", "ResnetUpsampleBlock2D"],
  });
  assert.ok(keys.has("down_blocks.0.downsamplers.0.norm1.weight"));
  assert.ok(keys.has("up_blocks.0.upsamplers.0.conv.weight"));
  // class embeddings, no mid attention, other activations, centred input
  keys = run({ num_class_embeds: 5, add_attention: false, act_fn: "mish" }, {
    classLabels: [1, 4],
  });
  assert.deepEqual(keys.get("class_embedding.weight"), [5, 32]);
  assert.ok(![...keys.keys()].some((k) => k.startsWith("mid_block.attentions")));
  keys = run({ class_embed_type: "timestep", center_input_sample: true }, { classLabels: [2, 9] });
  assert.deepEqual(keys.get("class_embedding.linear_1.weight"), [32, 8]);
  x.dispose();
});

Deno.test("UNet2DModel: unsupported config values are ConfigErrors naming key and value", async () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [
      { down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D"] },
      /down_block_types: .*"CrossAttnDownBlock2D"/,
    ],
    [{ up_block_types: ["SkipUpBlock2D", "UpBlock2D"] }, /up_block_types: .*"SkipUpBlock2D"/],
    [{ up_block_types: ["UpBlock2D"] }, /same length/],
    [{ time_embedding_type: "sinusoid" }, /time_embedding_type: .*"sinusoid"/],
    [{ time_embedding_type: "learned" }, /num_train_timesteps/],
    [{ resnet_time_scale_shift: "spatial" }, /resnet_time_scale_shift: .*"spatial"/],
    [{ downsample_type: "fir" }, /downsample_type: .*"fir"/],
    [{ upsample_type: "fir" }, /upsample_type: .*"fir"/],
    [{ act_fn: "tanh" }, /act_fn: .*"tanh"/],
    [{ class_embed_type: "projection" }, /class_embed_type: .*"projection"/],
    [{ norm_num_groups: 3 }, /cannot be split/],
    [{ attention_head_dim: "8" }, /attention_head_dim/],
  ];
  for (const [overrides, pattern] of bad) {
    await assertThrowsTyped(
      () => UNet2DModel.fromConfig(TINY_CONFIG, overrides as Record<string, never>),
      ConfigError,
      pattern,
    );
  }
});
