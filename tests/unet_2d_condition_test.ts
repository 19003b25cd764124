/**
 * UNet2DConditionModel on the test backend (WASM by default): both fixture
 * models (the block family of CompVis/ldm-text2im-large-256 and of Stable
 * Diffusion 1.x) against PyTorch's output, from .safetensors and .bin,
 * with every stored intermediate checked stage by stage (each stage fed
 * the reference input, so a failure points at one block); parameter counts
 * of the fixtures and of the full-size configs (checked against the Hub's
 * LFS file sizes); memory hygiene; the tensor-size bound of attention at
 * SD's 4096 tokens; config variants and config errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/backend.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import { loadConfig } from "../lib/config.ts";
import { type SafetensorsFile, toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { UNet2DConditionModel } from "../models/unet_2d_condition.ts";
import { Transformer2DModel } from "../models/transformer_2d.ts";
import { CrossAttnDownBlock2D } from "../models/unet_2d_condition_blocks.ts";
import { isReleased, setPackedWeightsLimit } from "../models/layers/weight_packing.ts";
import {
  assertThrowsTyped,
  FIXTURES_DIR,
  readJson,
  readTensors,
  relError,
  SHARED_DIR,
  TEST_BACKEND,
} from "./_helpers.ts";

const MODELS = `${FIXTURES_DIR}/models`;
const CONFIGS = `${SHARED_DIR}/configs`;

/** One fixture model: its folder, its io tensors and the model loaded from .safetensors. */
interface Fixture {
  dir: string;
  io: SafetensorsFile;
  unet: UNet2DConditionModel;
}

async function loadFixture(name: string): Promise<Fixture> {
  const dir = `${MODELS}/${name}`;
  return {
    dir,
    io: await readTensors(`${dir}/io.safetensors`),
    unet: await UNet2DConditionModel.fromPretrained(dir),
  };
}

const ldm = await loadFixture("unet2d_cond_ldm");
const sd = await loadFixture("unet2d_cond_sd");

/** A fixture tensor as stored (NCHW for feature maps). */
function stored(f: Fixture, name: string): tf.Tensor {
  const t = f.io.tensors.get(name);
  assert.ok(t, `fixture tensor ${name}`);
  return tf.tensor(toFloat32(t), t.shape as number[]);
}

/** A fixture feature map, NCHW → NHWC. */
function nhwc(f: Fixture, name: string): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(stored(f, name), [0, 2, 3, 1]) as tf.Tensor4D);
}

/**
 * Relative error of `actual` (NHWC, or any layout equal to the stored one)
 * against `name`; read back asynchronously (WebGPU has no dataSync in Deno).
 */
async function errorAgainst(f: Fixture, actual: tf.Tensor, name: string): Promise<number> {
  const stored = actual.rank === 4 ? tf.transpose(actual, [0, 3, 1, 2]) : tf.clone(actual);
  const values = await stored.data() as Float32Array;
  stored.dispose();
  return relError(values, toFloat32(f.io.tensors.get(name)!));
}

function inputs(f: Fixture): { sample: tf.Tensor4D; context: tf.Tensor3D } {
  return {
    sample: nhwc(f, "input.sample"),
    context: stored(f, "input.encoder_hidden_states") as tf.Tensor3D,
  };
}

async function outputError(
  f: Fixture,
  timestep: number | number[] | tf.Tensor,
  unet: UNet2DConditionModel = f.unet,
): Promise<number> {
  const { sample, context } = inputs(f);
  const y = unet.forward(sample, timestep, context);
  assert.deepEqual(y.shape, [2, 16, 16, 4]);
  const err = await errorAgainst(f, y, "output.sample");
  tf.dispose([sample, context, y]);
  return err;
}

Deno.test("UNet2DConditionModel ldm fixture: output matches diffusers for timesteps [10, 980]", async () => {
  const t = tf.tensor1d(toInt32(ldm.io.tensors.get("input.timestep")!), "int32");
  const errors = [await outputError(ldm, t), await outputError(ldm, [10, 980])];
  console.log(`ldm fixture output relative errors: ${errors.map((e) => e.toExponential(2))}`);
  errors.forEach((e) => assert.ok(e <= 1e-4, `relative error ${e}`));
  t.dispose();
});

Deno.test("UNet2DConditionModel sd fixture: a 0-d timestep 500 is broadcast to the batch", async () => {
  const raw = sd.io.tensors.get("input.timestep")!;
  assert.deepEqual(raw.shape, []);
  const t = tf.scalar(toInt32(raw)[0]!, "int32");
  const errors = [
    await outputError(sd, t),
    await outputError(sd, 500),
    await outputError(sd, [500, 500]),
  ];
  console.log(`sd fixture output relative errors: ${errors.map((e) => e.toExponential(2))}`);
  errors.forEach((e) => assert.ok(e <= 1e-4, `relative error ${e}`));
  t.dispose();
});

/**
 * Every intermediate diffusers stored, each computed from the reference
 * input of its stage; returns name → relative error.
 */
async function stageErrors(f: Fixture, timestep: tf.Tensor): Promise<Map<string, number>> {
  const { unet } = f;
  const outputs = tf.tidy(() => {
    const results: Record<string, tf.Tensor> = {};
    const check = (name: string, y: tf.Tensor): void => {
      results[name] = y;
    };
    const context = stored(f, "input.encoder_hidden_states") as tf.Tensor3D;
    const t = tf.tile(tf.reshape(tf.cast(timestep, "float32"), [-1]), [timestep.rank ? 1 : 2]);
    check("inter.time_proj", unet.time_proj.forward(t as tf.Tensor1D));
    const temb = unet.time_embedding.forward(stored(f, "inter.time_proj") as tf.Tensor2D);
    check("inter.time_embedding", temb);
    const emb = stored(f, "inter.time_embedding") as tf.Tensor2D;
    check("inter.conv_in", unet.conv_in.forward(nhwc(f, "input.sample")));
    const block0 = unet.down_blocks[0];
    assert.ok(block0 instanceof CrossAttnDownBlock2D);
    check(
      "inter.down_blocks.0.resnets.0",
      block0.resnets[0]!.forward(nhwc(f, "inter.conv_in"), emb),
    );
    check(
      "inter.down_blocks.0.attentions.0",
      block0.attentions[0]!.forward(nhwc(f, "inter.down_blocks.0.resnets.0"), context),
    );
    const skips: tf.Tensor4D[] = [nhwc(f, "inter.conv_in")];
    unet.down_blocks.forEach((block, i) => {
      const input = i === 0 ? "inter.conv_in" : `inter.down_blocks.${i - 1}`;
      const { hidden, states } = block.forward(nhwc(f, input), emb, context);
      check(`inter.down_blocks.${i}`, hidden);
      states.forEach((s, j) => {
        check(`inter.down_blocks.${i}.res.${j}`, s);
        skips.push(nhwc(f, `inter.down_blocks.${i}.res.${j}`));
      });
    });
    const last = `inter.down_blocks.${unet.down_blocks.length - 1}`;
    check("inter.mid_block", unet.mid_block!.forward(nhwc(f, last), emb, context));
    let rest = skips;
    unet.up_blocks.forEach((block, i) => {
      const k = block.resnets.length;
      const input = i === 0 ? "inter.mid_block" : `inter.up_blocks.${i - 1}`;
      check(`inter.up_blocks.${i}`, block.forward(nhwc(f, input), rest.slice(-k), emb, context));
      rest = rest.slice(0, -k);
    });
    const lastUp = `inter.up_blocks.${unet.up_blocks.length - 1}`;
    check("inter.conv_norm_out", unet.conv_norm_out.forward(nhwc(f, lastUp)));
    return results;
  });
  const errors = new Map<string, number>();
  for (const [name, y] of Object.entries(outputs)) errors.set(name, await errorAgainst(f, y, name));
  tf.dispose(outputs);
  return errors;
}

Deno.test("UNet2DConditionModel fixtures: every stored intermediate matches, stage by stage", async () => {
  const before = tf.memory().numTensors;
  for (const f of [ldm, sd]) {
    const raw = f.io.tensors.get("input.timestep_i32")!;
    const t = tf.tensor(toInt32(raw), [...raw.shape], "int32");
    const errors = await stageErrors(f, t);
    t.dispose();
    const stages = [...f.io.tensors.keys()].filter((k) => k.startsWith("inter."));
    assert.deepEqual([...errors.keys()].sort(), stages.sort(), "every intermediate is checked");
    const worst = Math.max(...errors.values());
    console.log(
      `${f.dir.split("/").pop()}: ${errors.size} intermediates, worst ${worst.toExponential(2)}`,
    );
    for (const [stage, err] of errors) assert.ok(err <= 1e-4, `${stage}: relative error ${err}`);
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("UNet2DConditionModel.fromPretrained: the PyTorch .bin checkpoints give the same output", async () => {
  for (const f of [ldm, sd]) {
    const dir = await Deno.makeTempDir();
    try {
      for (const name of ["config.json", "diffusion_pytorch_model.bin"]) {
        await Deno.copyFile(`${f.dir}/${name}`, `${dir}/${name}`);
      }
      const fromBin = await UNet2DConditionModel.fromPretrained(dir);
      const err = await outputError(f, f === ldm ? [10, 980] : 500, fromBin);
      assert.ok(err <= 1e-4, `${f.dir} from .bin: relative error ${err}`);
      fromBin.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("UNet2DConditionModel fixtures: parameter counts and keys equal diffusers'", async () => {
  for (const [f, count] of [[ldm, 399_284], [sd, 629_732]] as const) {
    const meta = await readJson<{ num_params: number }>(`${f.dir}/fixture.json`);
    assert.equal(f.unet.parameterCount(), count);
    assert.equal(f.unet.parameterCount(), meta.num_params);
    const keys = (await readTensors(`${f.dir}/diffusion_pytorch_model.safetensors`)).tensors.keys();
    assert.deepEqual(f.unet.namedParameters().map(([k]) => k).sort(), [...keys].sort());
  }
  // attention_head_dim 8 is the number of heads: 8 heads of 2 channels at 16 channels
  const attn = sd.unet.namedParameters().find(([k]) =>
    k === "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
  )!;
  assert.deepEqual(attn[1].torchShape, [16, 32]);
});

Deno.test("UNet2DConditionModel: forward leaves tf.memory().numTensors unchanged", () => {
  const { sample, context } = inputs(sd);
  const before = tf.memory().numTensors;
  const y = sd.unet.forward(sample, 500, context);
  assert.equal(tf.memory().numTensors, before + 1);
  y.dispose();
  assert.throws(() => sd.unet.forward(sample, [1, 2, 3], context), ArgumentError);
  assert.equal(tf.memory().numTensors, before, "nothing leaks when forward throws");
  tf.dispose([sample, context]);
});

Deno.test("UNet2DConditionModel: bad inputs are ArgumentErrors", async () => {
  const { sample, context } = inputs(sd);
  const unet = sd.unet;
  await assertThrowsTyped(
    () => unet.forward(sample, [1, 2, 3], context),
    ArgumentError,
    /3 timesteps/,
  );
  const odd = tf.zeros([2, 12, 12, 4]) as tf.Tensor4D;
  await assertThrowsTyped(() => unet.forward(odd, 1, context), ArgumentError, /multiples of 8/);
  const nchw = tf.zeros([2, 4, 16, 16]) as tf.Tensor4D;
  await assertThrowsTyped(() => unet.forward(nchw, 1, context), ArgumentError, /NHWC/);
  const wide = tf.zeros([2, 77, 768]) as tf.Tensor3D;
  await assertThrowsTyped(() => unet.forward(sample, 1, wide), ArgumentError, /\[2, M, 32\]/);
  const single = tf.zeros([1, 77, 32]) as tf.Tensor3D;
  await assertThrowsTyped(() => unet.forward(sample, 1, single), ArgumentError, /\[2, M, 32\]/);
  tf.dispose([sample, context, odd, nchw, wide, single]);
});

/** F32 safetensors header JSON for these keys and shapes, as PyTorch's exporters write it. */
function headerJsonBytes(params: [string, readonly number[]][]): number {
  let offset = 0;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  for (const [key, shape] of [...params].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[key] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return JSON.stringify(header).length;
}

async function lfsSize(repo: string, path: string): Promise<number> {
  const rows = (await Deno.readTextFile(`${CONFIGS}/${repo}/_lfs_files.tsv`)).split("\n");
  const row = rows.map((l) => l.split("\t")).find(([p]) => p === path);
  assert.ok(row, `${repo}/${path} in _lfs_files.tsv`);
  return Number(row[1]);
}

async function fullSize(path: string): Promise<UNet2DConditionModel> {
  const json = JSON.parse(await Deno.readTextFile(`${CONFIGS}/${path}`));
  // The architecture without weights: fromConfig would allocate 3.4 GB (the bench does that).
  return new UNet2DConditionModel(loadConfig(UNet2DConditionModel.spec, json));
}

Deno.test("UNet2DConditionModel full-size configs: parameter counts match the Hub's file sizes", async () => {
  const sd15 = await fullSize("runwayml__stable-diffusion-v1-5/unet/config.json");
  const sd21 = await fullSize("stabilityai__stable-diffusion-2-1-base/unet/config.json");
  const ldm256 = await fullSize("CompVis__ldm-text2im-large-256/unet/config.reconstructed.json");
  assert.equal(sd15.parameterCount(), 859_520_964);
  assert.equal(sd21.parameterCount(), 865_910_724);
  assert.equal(ldm256.parameterCount(), 872_300_484);
  const entries = (m: UNet2DConditionModel): [string, readonly number[]][] =>
    m.namedParameters().map(([k, p]) => [k, p.torchShape]);
  // size = 8 + header + 4 · parameters. The header is our keys' JSON, padded
  // with spaces to a multiple of 8 by current writers (SD 1.5's non_ema file,
  // written in 2023), unpadded by the 2022 writer of SD 2.1-base's file.
  const sd15Header = headerJsonBytes(entries(sd15));
  assert.equal(
    await lfsSize(
      "runwayml__stable-diffusion-v1-5",
      "unet/diffusion_pytorch_model.non_ema.safetensors",
    ),
    8 + Math.ceil(sd15Header / 8) * 8 + 4 * sd15.parameterCount(),
  );
  assert.equal(
    await lfsSize(
      "stabilityai__stable-diffusion-2-1-base",
      "unet/diffusion_pytorch_model.safetensors",
    ),
    8 + headerJsonBytes(entries(sd21)) + 4 * sd21.parameterCount(),
  );
  // SD 1.5's main file has 6 more header bytes than our JSON (its exact
  // padding or metadata is unknown): still fewer than one parameter's worth.
  const main = await lfsSize(
    "runwayml__stable-diffusion-v1-5",
    "unet/diffusion_pytorch_model.safetensors",
  );
  const spare = main - 8 - sd15Header - 4 * sd15.parameterCount();
  assert.ok(spare >= 0 && spare < 8, `SD 1.5 header slack ${spare}`);
  // ldm-text2im-large-256 has no published file size here; its only difference
  // from SD 1.5 is cross_attention_dim 1280 instead of 768 in the bias-free
  // attn2.to_k / to_v of its 16 transformers (inner widths 320·5, 640·5, 1280·6).
  const inner = 320 * 5 + 640 * 5 + 1280 * 6;
  assert.equal(ldm256.parameterCount() - sd15.parameterCount(), 2 * (1280 - 768) * inner);
  // SD 2.x: heads of 64 channels ([5, 10, 20, 20] heads), Linear proj_in / proj_out
  const shape = (m: UNet2DConditionModel, key: string): readonly number[] =>
    m.namedParameters().find(([k]) => k === key)![1].torchShape;
  assert.deepEqual(shape(sd21, "down_blocks.0.attentions.0.proj_in.weight"), [320, 320]);
  assert.deepEqual(shape(sd15, "down_blocks.0.attentions.0.proj_in.weight"), [320, 320, 1, 1]);
  assert.deepEqual(
    shape(sd21, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"),
    [1280, 1024],
  );
  assert.deepEqual(
    shape(ldm256, "up_blocks.3.attentions.2.transformer_blocks.0.ff.net.0.proj.weight"),
    [2560, 320],
  );
});

Deno.test("Transformer2DModel at SD 1.5's 64x64 level: no tensor reaches 120 MiB", async () => {
  const t = new Transformer2DModel({
    numAttentionHeads: 8,
    attentionHeadDim: 40,
    inChannels: 320,
    crossAttentionDim: 768,
  }).initialize(1);
  const x = tf.randomNormal([2, 64, 64, 320], 0, 1, "float32", 1) as tf.Tensor4D;
  const context = tf.randomNormal([2, 77, 768], 0, 1, "float32", 2) as tf.Tensor3D;
  const check = tf.env().getBool("CHECK_COMPUTATION_FOR_ERRORS");
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false); // the profiler would read every output back
  try {
    const profile = await tf.profile(() => t.forward(x, context));
    const bytes = (shape: number[]): number => shape.reduce((a, b) => a * b, 4);
    const largest = Math.max(...profile.kernels.flatMap((k) => k.outputShapes.map(bytes)));
    const name = profile.kernels.find((k) => k.outputShapes.some((s) => bytes(s) === largest))!;
    console.log(`largest tensor: ${(largest / 2 ** 20).toFixed(1)} MiB (${name.name})`);
    assert.ok(largest < 120 * 2 ** 20, `${largest} bytes`);
    assert.equal(largest, 4096 * 4096 * 4, "one head's 4096 x 4096 score block");
    (profile.result as tf.Tensor).dispose();
  } finally {
    tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", check);
    tf.dispose([x, context]);
    t.dispose();
  }
});

Deno.test({
  name: "UNet2DConditionModel fixtures with packed-only weights: diffusers' output, twice",
  ignore: TEST_BACKEND !== "wasm",
  async fn() {
    for (const name of ["unet2d_cond_ldm", "unet2d_cond_sd"]) {
      const previous = setPackedWeightsLimit(0);
      let f: Fixture;
      try {
        f = await loadFixture(name);
      } finally {
        setPackedWeightsLimit(previous);
      }
      const released = f.unet.namedParameters().filter(([, p]) => isReleased(p.value));
      // Every Linear and Conv2d weight: 2-D and 4-D parameters.
      assert.equal(
        released.length,
        f.unet.namedParameters().filter(([, p]) => p.torchShape.length >= 2).length,
      );
      const t = [...toInt32(f.io.tensors.get("input.timestep")!)];
      const errors = [await outputError(f, t), await outputError(f, t)];
      // And the heap is intact for a model loaded afterwards.
      const fresh = (await loadFixture(name)).unet;
      errors.push(await outputError(f, t, fresh));
      fresh.dispose();
      console.log(`${name} packed-only: ${errors.map((e) => e.toExponential(2))}`);
      assert.ok(errors.every((e) => e <= 1e-4), `relative errors ${errors}`);
      assert.equal(errors[1], errors[0]);
      f.unet.dispose();
    }
  },
});

const TINY = {
  block_out_channels: [8, 16],
  layers_per_block: 1,
  norm_num_groups: 4,
  cross_attention_dim: 12,
  attention_head_dim: 2,
  down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"],
};

Deno.test("UNet2DConditionModel: config variants build, run, and have diffusers' keys", async () => {
  const x = tf.randomNormal([2, 8, 8, 4], 0, 1, "float32", 5) as tf.Tensor4D;
  const context = tf.randomNormal([2, 5, 12], 0, 1, "float32", 6) as tf.Tensor3D;
  const run = async (
    overrides: Record<string, unknown>,
  ): Promise<Map<string, readonly number[]>> => {
    const m = UNet2DConditionModel.fromConfig(TINY, overrides as Record<string, never>, {
      seed: 3,
    });
    const before = tf.memory().numTensors;
    const y = m.forward(x, [3, 700], context);
    assert.deepEqual(y.shape, [2, 8, 8, m.config.out_channels]);
    assert.ok(Array.from(await y.data()).every(Number.isFinite));
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
    const keys = new Map(m.namedParameters().map(([k, p]) => [k, p.torchShape]));
    m.dispose();
    return keys;
  };
  const tb = "transformer_blocks.0";
  // SD 2.x style: Linear projections, per-block heads
  let keys = await run({ use_linear_projection: true, attention_head_dim: [2, 4] });
  assert.deepEqual(keys.get("down_blocks.0.attentions.0.proj_in.weight"), [8, 8]);
  assert.deepEqual(keys.get(`mid_block.attentions.0.${tb}.attn2.to_k.weight`), [16, 12]);
  // only_cross_attention: attn1 projects keys from the text (the mid block ignores it)
  keys = await run({ only_cross_attention: [true, false] });
  assert.deepEqual(keys.get(`down_blocks.0.attentions.0.${tb}.attn1.to_k.weight`), [8, 12]);
  assert.deepEqual(keys.get(`mid_block.attentions.0.${tb}.attn1.to_k.weight`), [16, 16]);
  keys = await run({ only_cross_attention: true, upcast_attention: true });
  assert.deepEqual(keys.get(`up_blocks.1.attentions.0.${tb}.attn1.to_v.weight`), [8, 12]);
  // per-block layer counts (up blocks reversed), two transformer layers, no mid block
  keys = await run({
    layers_per_block: [1, 2],
    transformer_layers_per_block: [2, 1],
    mid_block_type: null,
  });
  assert.ok(keys.has("down_blocks.0.attentions.0.transformer_blocks.1.norm3.weight"));
  assert.ok(keys.has("up_blocks.0.resnets.2.conv1.weight"));
  assert.ok(!keys.has("up_blocks.1.resnets.2.conv1.weight"));
  assert.ok(![...keys.keys()].some((k) => k.startsWith("mid_block")));
  // time embedding variants, kernels, activations, scale_shift resnets, centred input
  keys = await run({
    time_embedding_type: "fourier",
    time_embedding_act_fn: "silu",
    flip_sin_to_cos: false,
  });
  assert.deepEqual(keys.get("time_proj.weight"), [8]);
  assert.deepEqual(keys.get("time_embedding.linear_1.weight"), [16, 16]);
  keys = await run({
    time_embedding_dim: 24,
    conv_in_kernel: 1,
    conv_out_kernel: 5,
    out_channels: 3,
  });
  assert.deepEqual(keys.get("conv_in.weight"), [8, 4, 1, 1]);
  assert.deepEqual(keys.get("conv_out.weight"), [3, 8, 5, 5]);
  assert.deepEqual(keys.get("down_blocks.0.resnets.0.time_emb_proj.weight"), [8, 24]);
  keys = await run({
    resnet_time_scale_shift: "scale_shift",
    act_fn: "mish",
    center_input_sample: true,
  });
  assert.deepEqual(keys.get("down_blocks.0.resnets.0.time_emb_proj.weight"), [16, 32]);
  keys = await run({ cross_attention_dim: [12, 12], downsample_padding: 0, freq_shift: 1 });
  assert.ok(keys.has("down_blocks.0.downsamplers.0.conv.weight"));
  tf.dispose([x, context]);
});

Deno.test("UNet2DConditionModel: unsupported config values are ConfigErrors naming key and value", async () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [
      { down_block_types: ["SimpleCrossAttnDownBlock2D", "DownBlock2D"] },
      /down_block_types: .*"SimpleCrossAttnDownBlock2D"/,
    ],
    [
      { up_block_types: ["AttnUpBlock2D", "CrossAttnUpBlock2D"] },
      /up_block_types: .*"AttnUpBlock2D"/,
    ],
    [{ up_block_types: ["UpBlock2D"] }, /same length/],
    [
      { mid_block_type: "UNetMidBlock2DSimpleCrossAttn" },
      /mid_block_type: .*"UNetMidBlock2DSimpleCrossAttn"/,
    ],
    [{ num_attention_heads: 8 }, /num_attention_heads: .*8/],
    [{ attention_head_dim: [2, 2, 2] }, /attention_head_dim: .*list of 2/],
    [{ attention_head_dim: 3 }, /attention_head_dim: 3 heads/],
    [{ layers_per_block: [1] }, /layers_per_block/],
    [{ only_cross_attention: [true, 1] }, /only_cross_attention/],
    [{ transformer_layers_per_block: [[1], [1]] }, /transformer_layers_per_block/],
    [{ reverse_transformer_layers_per_block: [[1], [1]] }, /reverse_transformer_layers_per_block/],
    [{ dual_cross_attention: true }, /dual_cross_attention: .*true/],
    [{ class_embed_type: "timestep" }, /class_embed_type: .*"timestep"/],
    [{ num_class_embeds: 10 }, /num_class_embeds: .*10/],
    [{ class_embeddings_concat: true }, /class_embeddings_concat/],
    [{ addition_embed_type: "text_time" }, /addition_embed_type: .*"text_time"/],
    [{ encoder_hid_dim: 64 }, /encoder_hid_dim: .*64/],
    [{ encoder_hid_dim_type: "text_proj" }, /encoder_hid_dim_type/],
    [{ timestep_post_act: "silu" }, /timestep_post_act/],
    [{ time_cond_proj_dim: 4 }, /time_cond_proj_dim/],
    [{ attention_type: "gated" }, /attention_type: .*"gated"/],
    [{ norm_num_groups: null }, /norm_num_groups/],
    [{ norm_num_groups: 3 }, /cannot be split/],
    [{ resnet_time_scale_shift: "spatial" }, /resnet_time_scale_shift: .*"spatial"/],
    [{ time_embedding_type: "learned" }, /time_embedding_type: .*"learned"/],
    [{ time_embedding_type: "fourier", time_embedding_dim: 7 }, /time_embedding_dim: .*even/],
    [{ conv_in_kernel: 2 }, /conv_in_kernel: .*2/],
    [{ act_fn: "tanh" }, /act_fn: .*"tanh"/],
    [{ time_embedding_act_fn: "tanh" }, /time_embedding_act_fn: .*"tanh"/],
    [{ cross_attention_dim: "768" }, /cross_attention_dim/],
  ];
  for (const [overrides, pattern] of bad) {
    await assertThrowsTyped(
      () => UNet2DConditionModel.fromConfig(TINY, overrides as Record<string, never>),
      ConfigError,
      pattern,
    );
  }
});
