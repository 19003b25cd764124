/**
 * `UNet2DConditionModel`: diffusers' text-conditioned UNet (Stable
 * Diffusion 1.x / 2.x, CompVis/ldm-text2im-large-256), in NHWC on tfjs.
 *
 * conv_in → down blocks (resnets, each followed by a transformer that
 * cross-attends to the text embeddings, in the CrossAttn blocks) → mid
 * block → up blocks (consuming the skip states) → GroupNorm → act →
 * conv_out, with the timestep embedded (sinusoidal or Gaussian Fourier) and
 * passed through `time_embedding` into every resnet. The config keys are
 * those of diffusers 0.27.2 (see unet_2d_condition_config.ts); values this
 * port cannot build are {@link ConfigError}s naming the key.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { UNet2DConditionModel } from "./unet_2d_condition.ts";
 * const unet = await UNet2DConditionModel.fromPretrained("../shared/fixtures/pipelines/sd_tiny", {
 *   subfolder: "unet",
 * });
 * const eps = unet.forward(tf.zeros([2, 16, 16, 4]), 500, tf.zeros([2, 77, 32])); // [2, 16, 16, 4]
 * eps.dispose();
 * unet.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, loadConfig } from "../lib/config.ts";
import { ArgumentError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { loadPretrained } from "./pretrained.ts";
import { Conv2d } from "./layers/conv2d.ts";
import { GroupNorm } from "./layers/group_norm.ts";
import { type Activation, activation, silu } from "./layers/activations.ts";
import { BasicTransformerBlock } from "./layers/basic_transformer_block.ts";
import { GaussianFourierProjection, TimestepEmbedding, Timesteps } from "./layers/embeddings.ts";
import {
  type CondDownBlock,
  type CondUpBlock,
  createCrossAttnDownBlock,
  createCrossAttnUpBlock,
  UNetMidBlock2DCrossAttn,
} from "./unet_2d_condition_blocks.ts";
import {
  planUNet2DCondition,
  type UNet2DConditionModelConfig,
  UNET_2D_CONDITION_SPEC,
} from "./unet_2d_condition_config.ts";
import type { ModelSourceOptions } from "../lib/model_source.ts";

export type { UNet2DConditionModelConfig } from "./unet_2d_condition_config.ts";

/** Options of {@link UNet2DConditionModel.fromPretrained}: where the model is and which files. */
export interface UNet2DConditionLoadOptions extends ModelSourceOptions {
  /** Folder inside the model folder or repo holding the model (e.g. `"unet"`); default: its root. */
  subfolder?: string;
}

/** Options of {@link UNet2DConditionModel.fromConfig}. */
export interface UNet2DConditionFromConfigOptions {
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/**
 * The text-conditioned 2-D UNet; field names are the state-dict keys
 * (`conv_in`, `time_embedding`, `down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k`, ...).
 *
 * @example
 * ```ts
 * import { UNet2DConditionModel } from "./unet_2d_condition.ts";
 * const json = JSON.parse(await Deno.readTextFile("stable-diffusion-v1-5/unet/config.json"));
 * const unet = UNet2DConditionModel.fromConfig(json); // random weights
 * console.log(unet.parameterCount()); // 859520964
 * unet.dispose();
 * ```
 */
export class UNet2DConditionModel extends Module {
  /** Config keys, defaults (diffusers 0.27.2's) and kinds. */
  static readonly spec = UNET_2D_CONDITION_SPEC;

  /** The resolved, frozen config. */
  readonly config: Readonly<UNet2DConditionModelConfig>;
  /** Conv from the latents to the first level's channels. */
  readonly conv_in: Conv2d;
  /** Timestep features: sinusoidal (no weights) or Gaussian Fourier. */
  readonly time_proj: Timesteps | GaussianFourierProjection;
  /** MLP from the timestep features to the embedding every resnet receives. */
  readonly time_embedding: TimestepEmbedding;
  /** Down blocks, outermost first. */
  readonly down_blocks: CondDownBlock[];
  /** Bottleneck, or null (`mid_block_type` null). */
  readonly mid_block: UNetMidBlock2DCrossAttn | null;
  /** Up blocks, innermost first. */
  readonly up_blocks: CondUpBlock[];
  /** Final norm, followed by the `act_fn` activation. */
  readonly conv_norm_out: GroupNorm;
  /** Conv to the output channels. */
  readonly conv_out: Conv2d;
  readonly #act: Activation;
  readonly #timeEmbedAct: Activation | null;
  /** Text-embedding widths the cross-attention blocks expect. */
  readonly #contextDims: ReadonlySet<number>;

  /** Builds the architecture with no weights; use {@link UNet2DConditionModel.fromConfig} or {@link UNet2DConditionModel.fromPretrained}. */
  constructor(config: Readonly<UNet2DConditionModelConfig>) {
    super();
    this.config = config;
    const c = config;
    const plan = planUNet2DCondition(c);
    const { channels, timeEmbedDim } = plan;
    const n = channels.length;
    const c0 = channels[0]!;
    this.#act = activation(c.act_fn);
    this.#timeEmbedAct = c.time_embedding_act_fn === null
      ? null
      : activation(c.time_embedding_act_fn, "time_embedding_act_fn");

    this.conv_in = new Conv2d(c.in_channels, c0, c.conv_in_kernel, {
      padding: (c.conv_in_kernel - 1) / 2,
    });
    this.time_proj = plan.timeEmbeddingType === "fourier"
      ? new GaussianFourierProjection(timeEmbedDim / 2, 1, false, c.flip_sin_to_cos)
      : new Timesteps(c0, c.flip_sin_to_cos, c.freq_shift);
    const timeInputDim = plan.timeEmbeddingType === "fourier" ? timeEmbedDim : c0;
    this.time_embedding = new TimestepEmbedding(timeInputDim, timeEmbedDim, c.act_fn);

    const shared = {
      tembChannels: timeEmbedDim,
      eps: c.norm_eps,
      actFn: c.act_fn,
      groups: plan.groups,
      timeScaleShift: plan.timeScaleShift,
      useLinearProjection: c.use_linear_projection,
    };
    /** The transformer options of block `i` (an index into the down-block lists). */
    const attn = (i: number) => ({
      transformerLayers: plan.transformerLayers[i]!,
      numAttentionHeads: plan.numAttentionHeads[i]!,
      crossAttentionDim: plan.crossAttentionDim[i]!,
      onlyCrossAttention: plan.onlyCrossAttention[i]!,
    });
    this.down_blocks = c.down_block_types.map((type, i) =>
      createCrossAttnDownBlock(type, {
        ...shared,
        ...attn(i),
        numLayers: plan.layersPerBlock[i]!,
        inChannels: i === 0 ? c0 : channels[i - 1]!,
        outChannels: channels[i]!,
        attentionHeadDim: channels[i]! / plan.numAttentionHeads[i]!,
        addDownsample: i < n - 1,
        downsamplePadding: c.downsample_padding,
        downsampleType: "conv",
      })
    );
    this.mid_block = c.mid_block_type === null ? null : new UNetMidBlock2DCrossAttn({
      ...shared,
      ...attn(n - 1),
      inChannels: channels[n - 1]!,
      outputScaleFactor: c.mid_block_scale_factor,
    });
    this.up_blocks = c.up_block_types.map((type, i) => {
      const j = n - 1 - i; // the matching down block: diffusers reverses every per-block list
      return createCrossAttnUpBlock(type, {
        ...shared,
        ...attn(j),
        numLayers: plan.layersPerBlock[j]! + 1,
        inChannels: channels[Math.max(j - 1, 0)]!,
        outChannels: channels[j]!,
        prevOutputChannel: channels[Math.min(j + 1, n - 1)]!,
        attentionHeadDim: channels[j]! / plan.numAttentionHeads[j]!,
        addUpsample: i < n - 1,
        upsampleType: "conv",
      }, "up_block_types");
    });
    this.conv_norm_out = new GroupNorm(plan.groups, c0, c.norm_eps);
    this.conv_out = new Conv2d(c0, c.out_channels, c.conv_out_kernel, {
      padding: (c.conv_out_kernel - 1) / 2,
    });
    this.#contextDims = new Set(
      this.namedModules().flatMap(([, m]) =>
        m instanceof BasicTransformerBlock && m.attn2 ? [m.attn2.contextDim] : []
      ),
    );
  }

  /**
   * Builds the model from `config.json` content plus overrides, with random
   * weights initialised like PyTorch's defaults (seeded; for benchmarks and
   * tests).
   *
   * @example
   * ```ts
   * import { UNet2DConditionModel } from "./unet_2d_condition.ts";
   * const json = JSON.parse(await Deno.readTextFile("unet/config.json"));
   * const unet = UNet2DConditionModel.fromConfig(json, { sample_size: 32 }, { seed: 1 });
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
    options: UNet2DConditionFromConfigOptions = {},
  ): UNet2DConditionModel {
    return new UNet2DConditionModel(loadConfig(UNET_2D_CONDITION_SPEC, json, overrides))
      .initialize(options.seed ?? 0);
  }

  /**
   * Loads a model from a local folder or a Hub id: `config.json` and the
   * weights, found as diffusers does (safetensors preferred, else PyTorch
   * `.bin`; shards; `variant`), read one tensor at a time. Every key must match.
   *
   * @example
   * ```ts
   * import { UNet2DConditionModel } from "./unet_2d_condition.ts";
   * const unet = await UNet2DConditionModel.fromPretrained("runwayml/stable-diffusion-v1-5", {
   *   subfolder: "unet",
   * });
   * ```
   */
  static async fromPretrained(
    idOrDir: string,
    options: UNet2DConditionLoadOptions = {},
  ): Promise<UNet2DConditionModel> {
    return await loadPretrained(
      idOrDir,
      options,
      UNET_2D_CONDITION_SPEC,
      (config) => new UNet2DConditionModel(config),
    );
  }

  /**
   * Predicts the model output (noise, for SD) for the latents `sample` NHWC
   * [B, H, W, in_channels] at `timestep`, conditioned on
   * `encoderHiddenStates` [B, M, cross_attention_dim] (the text encoder's
   * last hidden state). `timestep` is a number, one per batch element, or a
   * tensor of shape [] / [1] / [B]; a single value is broadcast to the
   * batch. H and W must be divisible by 2^(levels - 1). Runs in one
   * `tf.tidy`; reads nothing back to the host.
   *
   * @example
   * ```ts
   * // const eps = unet.forward(latents, 981, textEmbeddings); // [2, 64, 64, 4]
   * ```
   */
  forward(
    sample: tf.Tensor4D,
    timestep: number | number[] | tf.Tensor,
    encoderHiddenStates: tf.Tensor3D,
  ): tf.Tensor4D {
    this.#checkInputs(sample, encoderHiddenStates);
    return tf.tidy(() => {
      const batch = sample.shape[0];
      let emb = this.time_embedding.forward(this.time_proj.forward(timesteps(timestep, batch)));
      if (this.#timeEmbedAct) emb = this.#timeEmbedAct(emb) as tf.Tensor2D;
      const context = encoderHiddenStates;

      let x = this.config.center_input_sample
        ? tf.sub(tf.mul(sample, 2), 1) as tf.Tensor4D
        : sample;
      x = this.conv_in.forward(x);
      let skips: tf.Tensor4D[] = [x];
      for (const block of this.down_blocks) {
        const out = block.forward(x, emb, context);
        x = out.hidden;
        skips.push(...out.states);
      }
      if (this.mid_block) x = this.mid_block.forward(x, emb, context);
      for (const block of this.up_blocks) {
        const k = block.resnets.length;
        x = block.forward(x, skips.slice(-k), emb, context);
        skips = skips.slice(0, -k);
      }
      const normed = this.#act === silu
        ? this.conv_norm_out.forward(x, true)
        : this.#act(this.conv_norm_out.forward(x)) as tf.Tensor4D;
      return this.conv_out.forward(normed);
    });
  }

  #checkInputs(sample: tf.Tensor4D, context: tf.Tensor3D): void {
    const c = this.config;
    const [batch, height, width, channels] = sample.shape;
    if (sample.rank !== 4 || channels !== c.in_channels) {
      throw new ArgumentError(
        `UNet2DConditionModel.forward: sample must be NHWC [B, H, W, ${c.in_channels}], got [${sample.shape}]`,
      );
    }
    const factor = 2 ** (c.block_out_channels.length - 1);
    if (height % factor !== 0 || width % factor !== 0) {
      throw new ArgumentError(
        `UNet2DConditionModel.forward: height and width must be multiples of ${factor}, got ${height}×${width}`,
      );
    }
    const dims = [...this.#contextDims];
    if (
      context.rank !== 3 || context.shape[0] !== batch ||
      (dims.length > 0 && !dims.every((d) => d === context.shape[2]))
    ) {
      throw new ArgumentError(
        `UNet2DConditionModel.forward: encoderHiddenStates must be [${batch}, M, ${
          dims.join(" | ") || "D"
        }], got [${context.shape}]`,
      );
    }
  }
}

/** The timesteps as a float32 [batch] tensor (one value is broadcast). */
function timesteps(timestep: number | number[] | tf.Tensor, batch: number): tf.Tensor1D {
  const t = timestep instanceof tf.Tensor
    ? tf.reshape(tf.cast(timestep, "float32"), [-1])
    : tf.tensor1d(typeof timestep === "number" ? [timestep] : timestep, "float32");
  const n = t.shape[0];
  if (n !== 1 && n !== batch) {
    throw new ArgumentError(
      `UNet2DConditionModel.forward: ${n} timesteps for a batch of ${batch} (give 1 or ${batch})`,
    );
  }
  return (n === batch ? t : tf.tile(t, [batch])) as tf.Tensor1D;
}
