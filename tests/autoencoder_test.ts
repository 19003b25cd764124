/**
 * AutoencoderKL and VQModel on the WASM backend: the diffusers fixture
 * models (from .safetensors and .bin) against PyTorch's outputs, the VAEs of
 * the ldm_text2im_tiny and sd_tiny pipelines, row-strip execution against
 * the one-tensor pass (with the largest tensor measured), full-size
 * parameter counts checked against the Hub's LFS file sizes, memory
 * hygiene, and config / argument errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/backend.ts";
import { ArgumentError, ConfigError, DiffusersError } from "../lib/errors.ts";
import { Conv2d } from "../models/layers/conv2d.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import { silu } from "../models/layers/activations.ts";
import {
  addStrips,
  concatStrips,
  convStrips,
  defaultMaxTensorBytes,
  disposeStrips,
  DOWNSAMPLE_3X3,
  groupNormStrips,
  POINTWISE,
  SAME_3X3,
  splitRows,
  upsampleStrips,
} from "../models/row_strips.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { Generator, randnTensor } from "../lib/random.ts";
import { AutoencoderKL } from "../models/autoencoder_kl.ts";
import { VQModel } from "../models/vq_model.ts";
import type { HostTensor, Module } from "../models/layers/module.ts";
import { loadStateDict } from "../lib/weights/state_dict.ts";
import {
  assertClose,
  assertThrowsTyped,
  FIXTURES_DIR,
  readJson,
  readTensors,
  SHARED_DIR,
} from "./_helpers.ts";

const KL_DIR = `${FIXTURES_DIR}/models/autoencoder_kl`;
const VQ_DIR = `${FIXTURES_DIR}/models/vq_model`;
const LDM_DIR = `${FIXTURES_DIR}/pipelines/ldm_text2im_tiny`;
const SD_TINY_DIR = `${FIXTURES_DIR}/pipelines/sd_tiny`;
const CONFIGS = `${SHARED_DIR}/configs`;

const klIo = await readTensors(`${KL_DIR}/io.safetensors`);
const vqIo = await readTensors(`${VQ_DIR}/io.safetensors`);

type Io = typeof klIo;

/** A fixture tensor (NCHW) as an NHWC tfjs tensor. */
function nhwc(io: Io, name: string): tf.Tensor4D {
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

/** `y` NHWC → NCHW host values, disposing `y`. */
function nchw(y: tf.Tensor4D): Float32Array {
  const out = tf.tidy(() => tf.transpose(y, [0, 3, 1, 2]).dataSync() as Float32Array);
  y.dispose();
  return out;
}

/** A copy of a fixture model folder holding only its config and `.bin` weights. */
async function binOnlyCopy(dir: string): Promise<string> {
  const tmp = await Deno.makeTempDir();
  for (const name of ["config.json", "diffusion_pytorch_model.bin"]) {
    await Deno.copyFile(`${dir}/${name}`, `${tmp}/${name}`);
  }
  return tmp;
}

/** Loads a fixture model once from safetensors and once from `.bin`, and runs `check` on each. */
async function bothFormats<M extends Module>(
  dir: string,
  load: (dir: string) => Promise<M>,
  check: (model: M, format: string) => void,
): Promise<void> {
  const fromSafetensors = await load(dir);
  check(fromSafetensors, "safetensors");
  fromSafetensors.dispose();
  const tmp = await binOnlyCopy(dir);
  try {
    const fromBin = await load(tmp);
    check(fromBin, ".bin");
    fromBin.dispose();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Relative error bound of every numeric comparison (max|a-b| / max|ref|). */
const TOL = 1e-4;

Deno.test("AutoencoderKL fixture: encode, decode and reconstruction match diffusers (.safetensors and .bin)", async () => {
  const image = nhwc(klIo, "input.image");
  const latent = nhwc(klIo, "input.latent");
  const expect = (name: string) => toFloat32(klIo.tensors.get(name)!);
  await bothFormats(KL_DIR, (d) => AutoencoderKL.fromPretrained(d), (vae, format) => {
    const posterior = vae.encode(image);
    for (const key of ["moments", "mean", "logvar", "std"] as const) {
      assertClose(
        nchw(tf.clone(posterior[key])),
        expect(`output.encode.${key}`),
        TOL,
        `${format} ${key}`,
      );
    }
    posterior.dispose();
    assertClose(nchw(vae.decode(latent)), expect("output.decode.sample"), TOL, `${format} decode`);
    assertClose(nchw(vae.forward(image)), expect("output.recon.sample"), TOL, `${format} recon`);
    assert.equal(vae.config.scaling_factor, 0.18215);
  });
  tf.dispose([image, latent]);
});

Deno.test("VQModel: its safetensors file, whose header length starts with byte 0x80, is not taken for a pickle", async () => {
  const file = await Deno.open(`${VQ_DIR}/diffusion_pytorch_model.safetensors`);
  const head = new Uint8Array(9);
  await file.read(head);
  file.close();
  assert.deepEqual([head[0], head[8]], [0x80, 0x7b]); // u64 length 0x3280, then "{"
  const vq = await VQModel.fromPretrained(VQ_DIR);
  assert.ok(vq.namedParameters().every(([, p]) => p.loaded));
  vq.dispose();
});

Deno.test("AutoencoderKL: posterior sample is mean + std · torch.randn(seed), in NCHW draw order", async () => {
  const vae = await AutoencoderKL.fromPretrained(KL_DIR);
  const image = nhwc(klIo, "input.image");
  const posterior = vae.encode(image);
  const z = posterior.sample(new Generator().manualSeed(7));
  const noise = randnTensor([1, 16, 16, 4], { generator: new Generator().manualSeed(7) });
  const expected = tf.tidy(() => tf.add(posterior.mean, tf.mul(posterior.std, noise)));
  assertClose(z.dataSync(), expected.dataSync(), 0, "sample");
  const sampled = vae.forward(image, {
    samplePosterior: true,
    generator: new Generator().manualSeed(7),
  });
  const decoded = vae.decode(z);
  assertClose(sampled.dataSync(), decoded.dataSync(), 1e-6, "forward(samplePosterior)");
  tf.dispose([image, z, noise, expected, sampled, decoded]);
  posterior.dispose();
  vae.dispose();
});

Deno.test("VQModel fixture: encode, quantize (exact indices), decode match diffusers (.safetensors and .bin)", async () => {
  const image = nhwc(vqIo, "input.image");
  const expect = (name: string) => toFloat32(vqIo.tensors.get(name)!);
  const indicesRef = Array.from(toInt32(vqIo.tensors.get("output.quantize.indices_i32")!));
  await bothFormats(VQ_DIR, (d) => VQModel.fromPretrained(d), (vq, format) => {
    const h = vq.encode(image);
    assertClose(nchw(tf.clone(h)), expect("output.encode.h"), TOL, `${format} h`);
    const { quant, embLoss, indices } = vq.quantize.forward(h);
    assert.deepEqual(Array.from(indices.dataSync()), indicesRef, `${format} indices`);
    assertClose(embLoss.dataSync(), expect("output.quantize.emb_loss"), TOL, `${format} emb_loss`);
    assertClose(nchw(tf.clone(quant)), expect("output.quantize.quant"), TOL, `${format} quant`);
    assertClose(nchw(vq.decode(h)), expect("output.decode.sample"), TOL, `${format} decode`);
    assertClose(
      nchw(vq.decode(quant, { forceNotQuantize: true })),
      expect("output.decode_quant_no_requant.sample"),
      TOL,
      `${format} decode(force_not_quantize)`,
    );
    assertClose(
      nchw(vq.decodeIndices(indices, [1, 16, 16, 3])),
      expect("output.decode_quant_no_requant.sample"),
      TOL,
      `${format} decodeIndices`,
    );
    assertClose(nchw(vq.forward(image)), expect("output.decode.sample"), TOL, `${format} forward`);
    tf.dispose([h, quant, embLoss, indices]);
  });
  image.dispose();
});

Deno.test("AutoencoderKL: the ldm_text2im_tiny vqvae (x8) and sd_tiny vae decode the pipelines' latents", async () => {
  for (const [dir, sub] of [[LDM_DIR, "vqvae"], [SD_TINY_DIR, "vae"]]) {
    const expected = await readTensors(`${dir}/expected.safetensors`);
    const vae = await AutoencoderKL.fromPretrained(dir!, { subfolder: sub });
    const z = nhwc(expected, "vae_decode_input");
    const y = vae.decode(z);
    const ref = expected.tensors.get("vae_decode_output")!;
    assert.deepEqual([y.shape[0], y.shape[3], y.shape[1], y.shape[2]], ref.shape);
    assertClose(nchw(y), toFloat32(ref), TOL, `${sub} decode`);
    z.dispose();
    vae.dispose();
  }
});

/**
 * The largest tensor (bytes) created while `f` runs, other than the one it
 * returns (a decoded image is one tensor whatever its size). Every tensor a
 * kernel or the WASM Winograd conv makes goes through the engine's
 * `makeTensorFromTensorInfo`, which is watched for the call (`tf.profile`
 * does not see the Winograd path, which writes the heap directly).
 */
function largestTensorBytes(f: () => tf.Tensor): { bytes: number; out: tf.Tensor } {
  type Info = { shape: number[] };
  const engine = tf.engine() as unknown as {
    makeTensorFromTensorInfo(info: Info, backend?: unknown): tf.Tensor;
  };
  const original = engine.makeTensorFromTensorInfo;
  const shapes: number[][] = [];
  engine.makeTensorFromTensorInfo = function (info: Info, backend?: unknown): tf.Tensor {
    shapes.push(info.shape);
    return original.call(this, info, backend);
  };
  let out: tf.Tensor;
  try {
    out = f();
  } finally {
    engine.makeTensorFromTensorInfo = original;
  }
  const last = shapes.findLastIndex((s) => s.join() === out.shape.join());
  const bytes = Math.max(
    ...shapes.filter((_, i) => i !== last).map((s) => 4 * s.reduce((a, b) => a * b, 1)),
  );
  return { bytes, out };
}

Deno.test("AutoencoderKL: row-strip decode and encode equal the one-tensor pass and stay under the budget", async () => {
  const vae = await AutoencoderKL.fromPretrained(LDM_DIR, { subfolder: "vqvae" });
  const z = randnTensor([2, 8, 6, 4], { generator: new Generator().manualSeed(3) }) as tf.Tensor4D;
  const budget = 40 * 1024; // full-resolution maps are 2x64x48x8 floats = 192 KiB
  const plain = vae.decode(z, { maxTensorBytes: Infinity });
  const plainPeak = largestTensorBytes(() => vae.decode(z, { maxTensorBytes: Infinity }));
  plainPeak.out.dispose();
  assert.ok(plainPeak.bytes > 4 * budget, `one-tensor pass peaks at ${plainPeak.bytes} bytes`);
  const before = tf.memory().numTensors;
  const { bytes, out: strips } = largestTensorBytes(() =>
    vae.decode(z, { maxTensorBytes: budget })
  );
  assert.ok(bytes <= budget, `largest tensor ${bytes} bytes > budget ${budget}`);
  assert.equal(tf.memory().numTensors, before + 1);
  assertClose(strips.dataSync(), plain.dataSync(), TOL, "decode in strips");

  const image = tf.clipByValue(plain, -1, 1) as tf.Tensor4D;
  const one = vae.encode(image, { maxTensorBytes: Infinity });
  const encoded = largestTensorBytes(() => {
    const posterior = vae.encode(image, { maxTensorBytes: budget });
    const mean = tf.clone(posterior.mean);
    posterior.dispose();
    return mean;
  });
  assert.ok(encoded.bytes <= budget, `encode: largest tensor ${encoded.bytes} bytes`);
  assertClose(encoded.out.dataSync(), one.mean.dataSync(), TOL, "encode in strips");

  assert.equal(defaultMaxTensorBytes(), 64 * 2 ** 20, "the default budget off WebGPU");
  assert.equal(vae.maxTensorBytes, null);
  // The model-level budget applies when no option is given.
  vae.maxTensorBytes = budget;
  const byDefault = vae.decode(z);
  assertClose(byDefault.dataSync(), plain.dataSync(), TOL, "maxTensorBytes property");
  tf.dispose([z, plain, strips, image, encoded.out, byDefault]);
  one.dispose();
  vae.dispose();
});

/** The row-strip ops against the one-tensor ops, on the backend that is active. */
function checkRowStrips(): void {
  const x = randnTensor([2, 13, 5, 8], {
    generator: new Generator().manualSeed(11),
  }) as tf.Tensor4D;
  const parts = tf.split(x, [4, 2, 6, 1], 1) as tf.Tensor4D[];
  const same = new Conv2d(8, 6, 3, { padding: 1 }).initialize(1);
  const down = new Conv2d(8, 6, 3, { stride: 2, padding: [0, 1, 0, 1] }).initialize(2);
  const point = new Conv2d(8, 6, 1).initialize(4);
  const norm = new GroupNorm(4, 8, 1e-6).initialize(3);
  norm.bias.assign(tf.fill([8], 0.25));
  const backend = tf.getBackend();
  const check = (strips: tf.Tensor4D[], expected: tf.Tensor, label: string) => {
    const y = concatStrips(strips);
    assert.deepEqual(y.shape, expected.shape, label);
    assertClose(y.dataSync(), expected.dataSync(), 1e-5, `${backend}: ${label}`);
    tf.dispose([y, expected]);
    disposeStrips(strips);
  };
  check(convStrips(same, parts, SAME_3X3), same.forward(x), "3x3 conv");
  check(convStrips(down, parts, DOWNSAMPLE_3X3), down.forward(x), "stride-2 conv");
  check(convStrips(down, splitRows(x, 4), DOWNSAMPLE_3X3), down.forward(x), "stride-2, splitRows");
  check(convStrips(point, parts, POINTWISE), point.forward(x), "1x1 conv");
  check(groupNormStrips(norm, parts, silu), norm.forward(x, true), "GroupNorm + SiLU");
  const ones = splitRows(x, 1); // 13 strips: more than tfjs-webgpu's AddN would sum
  check(groupNormStrips(norm, ones, silu), norm.forward(x, true), "GroupNorm, 1-row strips");
  check(upsampleStrips(parts), tf.image.resizeNearestNeighbor(x, [26, 10]), "nearest 2x");
  assert.throws(() => addStrips(parts, splitRows(x, 4)), DiffusersError);
  // 32+ channels and rows: on WASM each strip takes the Winograd path, the halo probes do not.
  const wide = new Conv2d(32, 32, 3, { padding: 1 }).initialize(5);
  const big = randnTensor([1, 96, 40, 32], { generator: new Generator().manualSeed(12) });
  const bigParts = splitRows(big as tf.Tensor4D, 32);
  check(convStrips(wide, bigParts, SAME_3X3), wide.forward(big as tf.Tensor4D), "32-row strips");
  tf.dispose([x, big, ...parts, ...ones, ...bigParts]);
  for (const m of [same, down, point, norm, wide]) m.dispose();
}

Deno.test("row strips: convs (stride 1 and 2, odd heights, 1-row strips), GroupNorm and upsampling equal the one-tensor ops (WASM and CPU paths)", async () => {
  checkRowStrips();
  await tf.setBackend("cpu"); // the non-WASM conv path: halo rows attached to each strip
  try {
    checkRowStrips();
  } finally {
    await tf.setBackend("wasm");
  }
});

Deno.test("VQModel: row-strip decode (and chunked codebook distances) equal the one-tensor pass", async () => {
  const vq = await VQModel.fromPretrained(VQ_DIR);
  // An 8x8 corner of h keeps the mid-block attention scores (64x64 floats) under the budget.
  const h = tf.tidy(() => tf.slice(nhwc(vqIo, "output.encode.h"), [0, 0, 0, 0], [1, 8, 8, 3]));
  const plain = vq.decode(h, { maxTensorBytes: Infinity });
  const budget = 20 * 1024; // full-resolution maps: 16x16x32 floats = 32 KiB
  const plainPeak = largestTensorBytes(() => vq.decode(h, { maxTensorBytes: Infinity }));
  plainPeak.out.dispose();
  assert.ok(plainPeak.bytes > budget, `one-tensor pass peaks at ${plainPeak.bytes} bytes`);
  const { bytes, out } = largestTensorBytes(() => vq.decode(h, { maxTensorBytes: budget }));
  assert.ok(bytes <= budget, `largest tensor ${bytes} bytes`);
  assertClose(out.dataSync(), plain.dataSync(), TOL, "decode in strips");
  const whole = nhwc(vqIo, "output.encode.h");
  const chunked = vq.quantize.forward(whole, 1024); // 4 latents x 64 entries per distance block
  const ref = toInt32(vqIo.tensors.get("output.quantize.indices_i32")!);
  assert.deepEqual(Array.from(chunked.indices.dataSync()), Array.from(ref));
  tf.dispose([h, plain, out, whole, chunked.quant, chunked.embLoss, chunked.indices]);
  vq.dispose();
});

Deno.test("AutoencoderKL / VQModel: calls leave tf.memory().numTensors unchanged", async () => {
  const vae = await AutoencoderKL.fromPretrained(KL_DIR);
  const vq = await VQModel.fromPretrained(VQ_DIR);
  const image = nhwc(klIo, "input.image");
  const latent = nhwc(klIo, "input.latent");
  const before = tf.memory().numTensors;
  const posterior = vae.encode(image);
  assert.equal(tf.memory().numTensors, before + 4); // moments, mean, logvar, std
  posterior.dispose();
  tf.dispose([
    vae.decode(latent),
    vae.forward(image),
    vae.decode(latent, { maxTensorBytes: 4096 }),
  ]);
  const h = vq.encode(image);
  const q = vq.quantize.forward(h);
  tf.dispose([h, q.quant, q.embLoss, q.indices, vq.forward(image)]);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => vae.decode(image), ArgumentError);
  assert.throws(() => vq.decode(latent), ArgumentError);
  assert.equal(tf.memory().numTensors, before, "nothing leaks when a call throws");
  tf.dispose([image, latent]);
  vae.dispose();
  vq.dispose();
});

Deno.test("AutoencoderKL / VQModel fixtures: parameter counts and keys equal the checkpoints'", async () => {
  for (
    const [dir, load] of [
      [KL_DIR, (d: string) => AutoencoderKL.fromPretrained(d)],
      [VQ_DIR, (d: string) => VQModel.fromPretrained(d)],
    ] as const
  ) {
    const fixture = await readJson<{ num_params: number }>(`${dir}/fixture.json`);
    const model = await load(dir);
    assert.equal(model.parameterCount(), fixture.num_params, dir);
    const keys = [
      ...(await readTensors(`${dir}/diffusion_pytorch_model.safetensors`)).tensors.keys(),
    ];
    assert.deepEqual(model.namedParameters().map(([k]) => k).sort(), keys.sort());
    model.dispose();
  }
});

/** Size of a safetensors file holding these float32 tensors (header as the Hub's files write it). */
function safetensorsSize(entries: [string, readonly number[]][]): number {
  let offset = 0;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  for (const [key, shape] of [...entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[key] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return 8 + Math.ceil(JSON.stringify(header).length / 8) * 8 + offset;
}

/** The old attention names (query/key/value/proj_attn) of checkpoints converted before diffusers 0.14. */
function legacyName(key: string): string {
  return key.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
    .replace(".to_out.0.", ".proj_attn.");
}

Deno.test("AutoencoderKL.fromConfig: SD 1.5 / SD 2.1 VAEs have 83,653,863 parameters, = the Hub file size", async () => {
  for (
    const repo of ["runwayml__stable-diffusion-v1-5", "stabilityai__stable-diffusion-2-1-base"]
  ) {
    const json = await readJson(`${CONFIGS}/${repo}/vae/config.json`);
    const before = tf.memory().numTensors;
    const vae = AutoencoderKL.fromConfig(json);
    assert.equal(vae.parameterCount(), 83_653_863);
    assert.equal(vae.config.scaling_factor, 0.18215, "default when the config lacks it");
    const lfs = (await Deno.readTextFile(`${CONFIGS}/${repo}/_lfs_files.tsv`)).split("\n")
      .map((l) => l.split("\t")).find(([p]) => p === "vae/diffusion_pytorch_model.safetensors");
    const entries = vae.namedParameters().map(([k, p]): [string, readonly number[]] => [
      legacyName(k),
      p.torchShape,
    ]);
    assert.equal(safetensorsSize(entries), Number(lfs![1]), repo);
    vae.dispose();
    assert.equal(tf.memory().numTensors, before);
  }
});

Deno.test("AutoencoderKL / VQModel.fromConfig: ldm-text2im-large-256 vqvae and ldm-celebahq-256 vqvae build", async () => {
  const kl = AutoencoderKL.fromConfig(
    await readJson(`${CONFIGS}/CompVis__ldm-text2im-large-256/vqvae/config.reconstructed.json`),
  );
  assert.equal(kl.parameterCount(), 83_653_863);
  kl.dispose();
  const vq = VQModel.fromConfig(
    await readJson(`${CONFIGS}/CompVis__ldm-celebahq-256/vqvae/config.json`),
  );
  assert.equal(vq.parameterCount(), 55_322_782);
  assert.deepEqual(vq.quantize.embedding.weight.torchShape, [8192, 3]);
  vq.dispose();
});

Deno.test("AutoencoderKL: old attention keys (query/key/value/proj_attn, as in SD 1.5's file) load like diffusers", async () => {
  const sd = await loadStateDict(KL_DIR);
  const legacy = new Map<string, HostTensor>();
  try {
    for (const key of sd.entries.keys()) {
      const t = await sd.get(key);
      legacy.set(legacyName(key), { shape: t.shape, data: t.data as Float32Array });
    }
  } finally {
    sd.close();
  }
  assert.ok(legacy.has("decoder.mid_block.attentions.0.proj_attn.weight"));
  const reference = await AutoencoderKL.fromPretrained(KL_DIR);
  const vae = new AutoencoderKL(reference.config);
  reference.dispose();
  await vae.loadStateDict(legacy);
  const latent = nhwc(klIo, "input.latent");
  assertClose(
    nchw(vae.decode(latent)),
    toFloat32(klIo.tensors.get("output.decode.sample")!),
    TOL,
    "legacy keys",
  );
  latent.dispose();
  vae.dispose();
});

Deno.test("AutoencoderKL: use_quant_conv / use_post_quant_conv / mid_block_add_attention false drop those weights", () => {
  const config = {
    block_out_channels: [8, 16],
    norm_num_groups: 4,
    down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    use_quant_conv: false,
    use_post_quant_conv: false,
    mid_block_add_attention: false,
  };
  const vae = AutoencoderKL.fromConfig(config, {}, { seed: 5 });
  const keys = vae.namedParameters().map(([k]) => k);
  assert.ok(!keys.some((k) => /quant_conv|attentions/.test(k)), keys.join(", "));
  const image = tf.zeros([1, 8, 8, 3]) as tf.Tensor4D;
  const posterior = vae.encode(image);
  assert.deepEqual(posterior.mean.shape, [1, 4, 4, 4]);
  const y = vae.decode(posterior.mean);
  assert.deepEqual(y.shape, [1, 8, 8, 3]);
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  tf.dispose([image, y]);
  posterior.dispose();
  vae.dispose();
});

Deno.test("AutoencoderKL / VQModel: unsupported or impossible configs are ConfigErrors naming the key", async () => {
  const base = { block_out_channels: [8, 16], norm_num_groups: 4, layers_per_block: 1 };
  const two = (t: string) => [t, t];
  const cases: [Record<string, unknown>, string][] = [
    [{
      ...base,
      down_block_types: two("AttnDownEncoderBlock2D"),
      up_block_types: two("UpDecoderBlock2D"),
    }, "down_block_types"],
    [{
      ...base,
      down_block_types: two("DownEncoderBlock2D"),
      up_block_types: two("AttnUpDecoderBlock2D"),
    }, "up_block_types"],
    [
      {
        ...base,
        down_block_types: ["DownEncoderBlock2D"],
        up_block_types: two("UpDecoderBlock2D"),
      },
      "down_block_types",
    ],
    [{
      ...base,
      down_block_types: two("DownEncoderBlock2D"),
      up_block_types: two("UpDecoderBlock2D"),
      norm_num_groups: 3,
    }, "norm_num_groups"],
    [{
      ...base,
      down_block_types: two("DownEncoderBlock2D"),
      up_block_types: two("UpDecoderBlock2D"),
      act_fn: "tanh",
    }, "act_fn"],
    [
      { ...base, block_out_channels: [], down_block_types: [], up_block_types: [] },
      "block_out_channels",
    ],
    [{ ...base, layers_per_block: 1.5 }, "layers_per_block"],
  ];
  for (const [config, key] of cases) {
    const err = await assertThrowsTyped(
      () => AutoencoderKL.fromConfig(config as Record<string, never>),
      ConfigError,
    );
    assert.equal((err as ConfigError).key, key, err.message);
  }
  const spatial = await assertThrowsTyped(
    () => VQModel.fromConfig({ norm_type: "spatial" }),
    ConfigError,
    /norm_type/,
  );
  assert.equal((spatial as ConfigError).key, "norm_type");
});
