/**
 * `UNet2DModel`: diffusers' unconditional image UNet (google/ddpm-cat-256,
 * anton-l/ddpm-butterflies-128, ...), in NHWC on tfjs.
 *
 * conv_in → down blocks (each adding skip states) → mid block → up blocks
 * (each consuming skip states) → GroupNorm → SiLU → conv_out, with the
 * timestep embedded (sinusoidal, Gaussian-Fourier or learned) and passed
 * through `time_embedding` into every resnet. Every config key of
 * diffusers 0.27.2's `UNet2DModel` is read; a value it cannot build is a
 * {@link ConfigError} naming the key. `dropout` is ignored (inference).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { UNet2DModel } from "./unet_2d.ts";
 * const unet = await UNet2DModel.fromPretrained("../shared/fixtures/pipelines/ddpm_tiny", {
 *   subfolder: "unet",
 * });
 * const eps = unet.forward(tf.zeros([1, 32, 32, 3]), 500); // [1, 32, 32, 3]
 * eps.dispose();
 * unet.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { loadPretrained } from "./pretrained.ts";
import { Conv2d } from "./layers/conv2d.ts";
import { GroupNorm } from "./layers/group_norm.ts";
import {
  Embedding,
  GaussianFourierProjection,
  TimestepEmbedding,
  Timesteps,
} from "./layers/embeddings.ts";
import type { TimeEmbeddingNorm } from "./layers/resnet_block.ts";
import {
  createDownBlock,
  createUpBlock,
  type DownBlock,
  UNetMidBlock2D,
  type UpBlock,
} from "./unet_2d_blocks.ts";
import type { ModelSourceOptions } from "../lib/model_source.ts";

/** `config.json` of a `UNet2DModel`, keys exactly as diffusers writes them. */
export type UNet2DModelConfig = {
  /** Training resolution (informational). */
  sample_size: number | number[] | null;
  /** Image channels in. */
  in_channels: number;
  /** Image channels out. */
  out_channels: number;
  /** Map the input from [0, 1] to [-1, 1] first. */
  center_input_sample: boolean;
  /** `positional` (sinusoidal), `fourier` (Gaussian Fourier of log σ) or `learned`. */
  time_embedding_type: string;
  /** `downscale_freq_shift` of the sinusoidal embedding. */
  freq_shift: number;
  /** Cosines first in the sinusoidal embedding. */
  flip_sin_to_cos: boolean;
  /** Down block class names, outermost first. */
  down_block_types: string[];
  /** Up block class names, innermost first. */
  up_block_types: string[];
  /** Channels per resolution level. */
  block_out_channels: number[];
  /** Resnets per down block (up blocks have one more). */
  layers_per_block: number;
  /** Output scale factor of the mid block. */
  mid_block_scale_factor: number;
  /** Padding of the stride-2 downsampling convs (0 = asymmetric (0, 1, 0, 1)). */
  downsample_padding: number;
  /** `conv` or `resnet` (used by AttnDownBlock2D). */
  downsample_type: string;
  /** `conv` or `resnet` (used by AttnUpBlock2D). */
  upsample_type: string;
  /** Ignored at inference. */
  dropout: number;
  /** Resnet activation: silu / swish, mish, gelu, relu. */
  act_fn: string;
  /** Channels per attention head; null means one head over all channels. */
  attention_head_dim: number | null;
  /** GroupNorm groups. */
  norm_num_groups: number;
  /** GroupNorm groups of the mid-block attention (null: diffusers' default). */
  attn_norm_num_groups: number | null;
  /** GroupNorm epsilon. */
  norm_eps: number;
  /** `default` (add the time embedding) or `scale_shift`. */
  resnet_time_scale_shift: string;
  /** Whether the mid block has attention. */
  add_attention: boolean;
  /** null, `timestep` or `identity`. */
  class_embed_type: string | null;
  /** Number of classes of a class-label embedding (with `class_embed_type` null). */
  num_class_embeds: number | null;
  /** Table size of the `learned` time embedding. */
  num_train_timesteps: number | null;
};

/** Options of {@link UNet2DModel.fromPretrained}: where the model is (Hub options) and which files. */
export interface UNet2DModelLoadOptions extends ModelSourceOptions {
  /** Folder inside the model folder or repo holding the model (e.g. `"unet"`); default: its root. */
  subfolder?: string;
}

/** Options of {@link UNet2DModel.forward}. */
export interface UNet2DForwardOptions {
  /** Class labels [B] (ids, or timesteps for `class_embed_type` "timestep"), or [B, D] for "identity". */
  classLabels?: tf.Tensor | number[];
}

/** Options of {@link UNet2DModel.fromConfig}. */
export interface UNet2DFromConfigOptions {
  /** Seed of the random weights (default 0). */
  seed?: number;
}

function choice<T extends string>(value: string, key: string, valid: readonly T[]): T {
  if (!(valid as readonly string[]).includes(value)) {
    throw new ConfigError(
      `unsupported value ${JSON.stringify(value)}; valid: ${valid.join(", ")}`,
      { key },
    );
  }
  return value as T;
}

/**
 * The unconditional 2-D UNet; field names are the state-dict keys
 * (`conv_in`, `time_embedding`, `down_blocks.0.resnets.1.conv1`, ...).
 *
 * @example
 * ```ts
 * import { UNet2DModel } from "./unet_2d.ts";
 * const unet = UNet2DModel.fromConfig({ block_out_channels: [32, 64], norm_num_groups: 8,
 *   down_block_types: ["DownBlock2D", "AttnDownBlock2D"], up_block_types: ["AttnUpBlock2D", "UpBlock2D"] });
 * console.log(unet.parameterCount());
 * unet.dispose();
 * ```
 */
export class UNet2DModel extends Module {
  /** Config keys, defaults (diffusers 0.27.2's) and kinds. */
  static readonly spec: ConfigSpec<UNet2DModelConfig> = defineConfig<UNet2DModelConfig>(
    "UNet2DModel",
    "config.json",
    {
      sample_size: null,
      in_channels: 3,
      out_channels: 3,
      center_input_sample: false,
      time_embedding_type: "positional",
      freq_shift: 0,
      flip_sin_to_cos: true,
      down_block_types: ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
      up_block_types: ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
      block_out_channels: [224, 448, 672, 896],
      layers_per_block: 2,
      mid_block_scale_factor: 1,
      downsample_padding: 1,
      downsample_type: "conv",
      upsample_type: "conv",
      dropout: 0,
      act_fn: "silu",
      attention_head_dim: 8,
      norm_num_groups: 32,
      attn_norm_num_groups: null,
      norm_eps: 1e-5,
      resnet_time_scale_shift: "default",
      add_attention: true,
      class_embed_type: null,
      num_class_embeds: null,
      num_train_timesteps: null,
    },
    {
      sample_size: ["integer", "integer[]", "null"],
      in_channels: ["integer"],
      out_channels: ["integer"],
      block_out_channels: ["integer[]"],
      layers_per_block: ["integer"],
      downsample_padding: ["integer"],
      attention_head_dim: ["integer", "null"],
      norm_num_groups: ["integer"],
      attn_norm_num_groups: ["integer", "null"],
      class_embed_type: ["string", "null"],
      num_class_embeds: ["integer", "null"],
      num_train_timesteps: ["integer", "null"],
    },
  );

  /** The resolved, frozen config. */
  readonly config: Readonly<UNet2DModelConfig>;
  /** 3×3 conv from the image to the first level's channels. */
  readonly conv_in: Conv2d;
  /** Timestep features: sinusoidal (no weights), Fourier or learned table. */
  readonly time_proj: Timesteps | GaussianFourierProjection | Embedding;
  /** MLP from the timestep features to the 4·C₀ embedding every resnet receives. */
  readonly time_embedding: TimestepEmbedding;
  /** Class-label embedding added to the time embedding, or null. */
  readonly class_embedding: Embedding | TimestepEmbedding | null;
  /** Down blocks, outermost first. */
  readonly down_blocks: DownBlock[];
  /** Bottleneck. */
  readonly mid_block: UNetMidBlock2D;
  /** Up blocks, innermost first. */
  readonly up_blocks: UpBlock[];
  /** Final norm (followed by SiLU, whatever `act_fn` says, as in diffusers). */
  readonly conv_norm_out: GroupNorm;
  /** 3×3 conv to the output channels. */
  readonly conv_out: Conv2d;

  /** Builds the architecture with no weights; use {@link UNet2DModel.fromConfig} or {@link UNet2DModel.fromPretrained}. */
  constructor(config: Readonly<UNet2DModelConfig>) {
    super();
    this.config = config;
    const c = config;
    const channels = c.block_out_channels;
    const n = channels.length;
    if (n === 0 || channels.some((ch) => ch <= 0)) {
      throw new ConfigError("must list at least one positive channel count", {
        key: "block_out_channels",
      });
    }
    if (c.down_block_types.length !== n || c.up_block_types.length !== n) {
      throw new ConfigError(
        `down_block_types (${c.down_block_types.length}), up_block_types (${c.up_block_types.length}) and block_out_channels (${n}) must have the same length`,
        { key: "down_block_types" },
      );
    }
    const timeShift = choice<TimeEmbeddingNorm>(
      c.resnet_time_scale_shift,
      "resnet_time_scale_shift",
      ["default", "scale_shift"],
    );
    const downsampleType = choice(c.downsample_type, "downsample_type", ["conv", "resnet"]);
    const upsampleType = choice(c.upsample_type, "upsample_type", ["conv", "resnet"]);
    const timeType = choice(c.time_embedding_type, "time_embedding_type", [
      "positional",
      "fourier",
      "learned",
    ]);
    const c0 = channels[0]!;
    const tembChannels = c0 * 4;

    this.conv_in = new Conv2d(c.in_channels, c0, 3, { padding: 1 });
    if (timeType === "fourier") {
      this.time_proj = new GaussianFourierProjection(c0, 16);
    } else if (timeType === "learned") {
      if (c.num_train_timesteps === null) {
        throw new ConfigError('is required with time_embedding_type "learned"', {
          key: "num_train_timesteps",
        });
      }
      this.time_proj = new Embedding(c.num_train_timesteps, c0);
    } else {
      this.time_proj = new Timesteps(c0, c.flip_sin_to_cos, c.freq_shift);
    }
    const timeInputDim = timeType === "fourier" ? 2 * c0 : c0;
    this.time_embedding = new TimestepEmbedding(timeInputDim, tembChannels);
    this.class_embedding = this.#classEmbedding(timeInputDim, tembChannels);

    const shared = {
      numLayers: c.layers_per_block,
      tembChannels,
      eps: c.norm_eps,
      actFn: c.act_fn,
      groups: c.norm_num_groups,
      timeScaleShift: timeShift,
    };
    this.down_blocks = c.down_block_types.map((type, i) =>
      createDownBlock(type, {
        ...shared,
        inChannels: i === 0 ? c0 : channels[i - 1]!,
        outChannels: channels[i]!,
        attentionHeadDim: c.attention_head_dim ?? channels[i]!,
        addDownsample: i < n - 1,
        downsamplePadding: c.downsample_padding,
        downsampleType,
      })
    );
    const last = channels[n - 1]!;
    this.mid_block = new UNetMidBlock2D({
      inChannels: last,
      tembChannels,
      eps: c.norm_eps,
      actFn: c.act_fn,
      groups: c.norm_num_groups,
      attnGroups: c.attn_norm_num_groups,
      timeScaleShift: timeShift,
      addAttention: c.add_attention,
      attentionHeadDim: c.attention_head_dim ?? last,
      outputScaleFactor: c.mid_block_scale_factor,
    });
    const reversed = [...channels].reverse();
    this.up_blocks = c.up_block_types.map((type, i) =>
      createUpBlock(type, {
        ...shared,
        numLayers: c.layers_per_block + 1,
        inChannels: reversed[Math.min(i + 1, n - 1)]!,
        outChannels: reversed[i]!,
        prevOutputChannel: reversed[Math.max(i - 1, 0)]!,
        attentionHeadDim: c.attention_head_dim ?? reversed[i]!,
        addUpsample: i < n - 1,
        upsampleType,
      })
    );
    this.conv_norm_out = new GroupNorm(c.norm_num_groups, c0, c.norm_eps);
    this.conv_out = new Conv2d(c0, c.out_channels, 3, { padding: 1 });
  }

  #classEmbedding(
    timeInputDim: number,
    tembChannels: number,
  ): Embedding | TimestepEmbedding | null {
    const { class_embed_type: type, num_class_embeds: num } = this.config;
    if (type === null) return num === null ? null : new Embedding(num, tembChannels);
    const kind = choice(type, "class_embed_type", ["timestep", "identity"]);
    return kind === "timestep" ? new TimestepEmbedding(timeInputDim, tembChannels) : null;
  }

  /**
   * Builds the model from `config.json` content plus overrides, with random
   * weights initialised like PyTorch's defaults (seeded; for benchmarks and
   * tests).
   *
   * @example
   * ```ts
   * import { UNet2DModel } from "./unet_2d.ts";
   * const json = JSON.parse(await Deno.readTextFile("config.json"));
   * const unet = UNet2DModel.fromConfig(json, { sample_size: 64 }, { seed: 1 });
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
    options: UNet2DFromConfigOptions = {},
  ): UNet2DModel {
    return new UNet2DModel(loadConfig(UNet2DModel.spec, json, overrides)).initialize(
      options.seed ?? 0,
    );
  }

  /**
   * Loads a model from a local folder or a Hub id: `config.json` and the
   * weights, found as diffusers does (safetensors preferred, else PyTorch
   * `.bin`; shards; `variant`), read one tensor at a time. Every key must
   * match (old attention key names are converted).
   *
   * @example
   * ```ts
   * import { UNet2DModel } from "./unet_2d.ts";
   * const cat = await UNet2DModel.fromPretrained("google/ddpm-cat-256");
   * const unet = await UNet2DModel.fromPretrained("/models/ddpm-ema-church", { subfolder: "unet" });
   * ```
   */
  static async fromPretrained(
    idOrDir: string,
    options: UNet2DModelLoadOptions = {},
  ): Promise<UNet2DModel> {
    return await loadPretrained(
      idOrDir,
      options,
      UNet2DModel.spec,
      (config) => new UNet2DModel(config),
    );
  }

  /**
   * Predicts the model output (noise, for DDPM models) for `sample` NHWC
   * [B, H, W, in_channels] at `timestep`: a number, one per batch element,
   * or a tensor of shape [] / [1] / [B]; a single value is broadcast to the
   * batch. Numbers are used as given (diffusers casts a bare Python number
   * to int64; pass integers for bit-parity). H and W must be divisible by
   * 2^(levels - 1). Runs in one `tf.tidy`; reads nothing back to the host.
   *
   * @example
   * ```ts
   * // const eps = unet.forward(x, [10, 500]);   // x: [2, 32, 32, 3]
   * ```
   */
  forward(
    sample: tf.Tensor4D,
    timestep: number | number[] | tf.Tensor,
    options: UNet2DForwardOptions = {},
  ): tf.Tensor4D {
    const c = this.config;
    const [batch, height, width, channels] = sample.shape;
    if (sample.rank !== 4 || channels !== c.in_channels) {
      throw new ArgumentError(
        `UNet2DModel.forward: sample must be NHWC [B, H, W, ${c.in_channels}], got [${sample.shape}]`,
      );
    }
    const factor = 2 ** (c.block_out_channels.length - 1);
    if (height % factor !== 0 || width % factor !== 0) {
      throw new ArgumentError(
        `UNet2DModel.forward: height and width must be multiples of ${factor}, got ${height}×${width}`,
      );
    }
    return tf.tidy(() => {
      const t = this.#timesteps(timestep, batch);
      let emb = this.time_embedding.forward(this.#timeFeatures(t));
      if (this.class_embedding || c.class_embed_type === "identity") {
        emb = tf.add(emb, this.#classEmbed(options.classLabels, batch));
      } else if (options.classLabels !== undefined) {
        throw new ArgumentError(
          "UNet2DModel.forward: classLabels given but the model has no class embedding",
        );
      }

      let x = c.center_input_sample ? tf.sub(tf.mul(sample, 2), 1) as tf.Tensor4D : sample;
      x = this.conv_in.forward(x);
      let skips: tf.Tensor4D[] = [x];
      for (const block of this.down_blocks) {
        const out = block.forward(x, emb);
        x = out.hidden;
        skips.push(...out.states);
      }
      x = this.mid_block.forward(x, emb);
      for (const block of this.up_blocks) {
        const k = block.resnets.length;
        x = block.forward(x, skips.slice(-k), emb);
        skips = skips.slice(0, -k);
      }
      x = this.conv_out.forward(this.conv_norm_out.forward(x, true));
      if (c.time_embedding_type === "fourier") {
        x = tf.div(x, tf.reshape(t, [batch, 1, 1, 1]));
      }
      return x;
    });
  }

  /** The timesteps as a float32 [B] tensor. */
  #timesteps(timestep: number | number[] | tf.Tensor, batch: number): tf.Tensor1D {
    const t = timestep instanceof tf.Tensor
      ? tf.reshape(tf.cast(timestep, "float32"), [-1])
      : tf.tensor1d(typeof timestep === "number" ? [timestep] : timestep, "float32");
    const n = t.shape[0];
    if (n !== 1 && n !== batch) {
      throw new ArgumentError(
        `UNet2DModel.forward: ${n} timesteps for a batch of ${batch} (give 1 or ${batch})`,
      );
    }
    return (n === batch ? t : tf.tile(t, [batch])) as tf.Tensor1D;
  }

  #timeFeatures(t: tf.Tensor1D): tf.Tensor2D {
    return this.time_proj.forward(t);
  }

  #classEmbed(labels: tf.Tensor | number[] | undefined, batch: number): tf.Tensor {
    if (labels === undefined) {
      throw new ArgumentError("UNet2DModel.forward: this model needs classLabels");
    }
    const y = labels instanceof tf.Tensor ? labels : tf.tensor(labels);
    if (y.shape[0] !== batch) {
      throw new ArgumentError(
        `UNet2DModel.forward: ${y.shape[0]} class labels for a batch of ${batch}`,
      );
    }
    const e = this.class_embedding;
    if (e instanceof Embedding) return e.forward(y as tf.Tensor1D);
    if (e instanceof TimestepEmbedding) {
      return e.forward(this.#timeFeatures(tf.cast(y, "float32") as tf.Tensor1D));
    }
    return tf.cast(y, "float32");
  }
}
