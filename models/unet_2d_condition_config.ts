/**
 * The config of diffusers 0.27.2's `UNet2DConditionModel`: every key with
 * its default ({@link UNET_2D_CONDITION_SPEC}), and {@link planUNet2DCondition},
 * which checks the values this port can build and expands the per-block
 * options (an int or a list per down block) into one list per option, as
 * diffusers' `__init__` does. Anything it cannot build is a
 * {@link ConfigError} naming the key and the value.
 *
 * The naming quirk of diffusers is kept: with `num_attention_heads` unset
 * (it must be, in 0.27), `attention_head_dim` is the number of heads of
 * the cross-attention blocks, so SD 1.x's 8 means 8 heads of 40, 80, 160
 * channels, and SD 2.x's [5, 10, 20, 20] means heads of 64.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { planUNet2DCondition, UNET_2D_CONDITION_SPEC } from "./unet_2d_condition_config.ts";
 * const plan = planUNet2DCondition(loadConfig(UNET_2D_CONDITION_SPEC, { attention_head_dim: [5, 10, 20, 20] }));
 * console.log(plan.numAttentionHeads); // [5, 10, 20, 20]
 * ```
 *
 * @module
 */

import { type ConfigSpec, type ConfigValue, defineConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import type { TimeEmbeddingNorm } from "./layers/resnet_block.ts";

/** `config.json` of a `UNet2DConditionModel`, keys exactly as diffusers writes them. */
export type UNet2DConditionModelConfig = {
  /** Training latent size (informational). */
  sample_size: number | number[] | null;
  /** Latent channels in. */
  in_channels: number;
  /** Channels out. */
  out_channels: number;
  /** Map the input from [0, 1] to [-1, 1] first. */
  center_input_sample: boolean;
  /** Cosines first in the sinusoidal time embedding. */
  flip_sin_to_cos: boolean;
  /** `downscale_freq_shift` of the sinusoidal time embedding. */
  freq_shift: number;
  /** Down block class names, outermost first. */
  down_block_types: string[];
  /** `UNetMidBlock2DCrossAttn`, or null for no mid block. */
  mid_block_type: string | null;
  /** Up block class names, innermost first. */
  up_block_types: string[];
  /** attn1 attends to the text too: one flag, or one per down block. */
  only_cross_attention: boolean | boolean[];
  /** Channels per resolution level. */
  block_out_channels: number[];
  /** Resnets per down block (up blocks have one more): one count, or one per block. */
  layers_per_block: number | number[];
  /** Padding of the stride-2 downsampling convs (0 = asymmetric (0, 1, 0, 1)). */
  downsample_padding: number;
  /** Output scale factor of the mid block's resnets. */
  mid_block_scale_factor: number;
  /** Ignored at inference. */
  dropout: number;
  /** Resnet and output activation: silu / swish, mish, gelu, relu. */
  act_fn: string;
  /** GroupNorm groups (null is not supported). */
  norm_num_groups: number | null;
  /** GroupNorm epsilon of the resnets and the output norm. */
  norm_eps: number;
  /** Channels of the text embeddings: one, or one per down block. */
  cross_attention_dim: number | number[];
  /** Transformer layers per Transformer2DModel: one count, or one per down block. */
  transformer_layers_per_block: number | ConfigValue[];
  /** Per-layer counts of the up path (not supported: must be null). */
  reverse_transformer_layers_per_block: ConfigValue[] | null;
  /** Projection of the text embeddings (not supported: must be null). */
  encoder_hid_dim: number | null;
  /** Kind of that projection (not supported: must be null). */
  encoder_hid_dim_type: string | null;
  /** Number of heads (sic) per cross-attention block: one, or one per down block. */
  attention_head_dim: number | number[];
  /** Must be null in diffusers 0.27 (it raises otherwise). */
  num_attention_heads: number | number[] | null;
  /** Not supported: must be false. */
  dual_cross_attention: boolean;
  /** Linear proj_in / proj_out in the transformers (SD 2.x) instead of 1×1 convs. */
  use_linear_projection: boolean;
  /** Class embedding (not supported: must be null). */
  class_embed_type: string | null;
  /** Additional embedding (not supported: must be null). */
  addition_embed_type: string | null;
  /** Used only with `addition_embed_type`. */
  addition_time_embed_dim: number | null;
  /** Class-label table size (not supported: must be null). */
  num_class_embeds: number | null;
  /** Attention in float32 under half precision: always the case here. */
  upcast_attention: boolean;
  /** `default` (add the time embedding) or `scale_shift`. */
  resnet_time_scale_shift: string;
  /** Used only by the SimpleCrossAttn / ResnetDownsample blocks (not supported). */
  resnet_skip_time_act: boolean;
  /** Used only by the SimpleCrossAttn / ResnetDownsample blocks (not supported). */
  resnet_out_scale_factor: number;
  /** `positional` (sinusoidal) or `fourier`. */
  time_embedding_type: string;
  /** Width of the time embedding (default 4·C₀, or 2·C₀ for fourier). */
  time_embedding_dim: number | null;
  /** Activation applied to the time embedding before the blocks, or null. */
  time_embedding_act_fn: string | null;
  /** Activation after time_embedding.linear_2 (not supported: must be null). */
  timestep_post_act: string | null;
  /** Extra timestep condition input (not supported: must be null). */
  time_cond_proj_dim: number | null;
  /** Kernel of conv_in (odd). */
  conv_in_kernel: number;
  /** Kernel of conv_out (odd). */
  conv_out_kernel: number;
  /** Used only with projection class embeddings. */
  projection_class_embeddings_input_dim: number | null;
  /** Only `default` (no GLIGEN). */
  attention_type: string;
  /** Not supported: must be false. */
  class_embeddings_concat: boolean;
  /** Used only by UNetMidBlock2DSimpleCrossAttn; ignored. */
  mid_block_only_cross_attention: boolean | null;
  /** Used only by the SimpleCrossAttn blocks; ignored. */
  cross_attention_norm: string | null;
  /** Used only with `addition_embed_type` "text"; ignored. */
  addition_embed_type_num_heads: number;
};

/**
 * Config keys, diffusers 0.27.2's defaults (those of SD 1.x / LDM text2im)
 * and kinds.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { UNET_2D_CONDITION_SPEC } from "./unet_2d_condition_config.ts";
 * const config = loadConfig(UNET_2D_CONDITION_SPEC, { cross_attention_dim: 768 });
 * ```
 */
export const UNET_2D_CONDITION_SPEC: ConfigSpec<UNet2DConditionModelConfig> = defineConfig<
  UNet2DConditionModelConfig
>(
  "UNet2DConditionModel",
  "config.json",
  {
    sample_size: null,
    in_channels: 4,
    out_channels: 4,
    center_input_sample: false,
    flip_sin_to_cos: true,
    freq_shift: 0,
    down_block_types: [
      "CrossAttnDownBlock2D",
      "CrossAttnDownBlock2D",
      "CrossAttnDownBlock2D",
      "DownBlock2D",
    ],
    mid_block_type: "UNetMidBlock2DCrossAttn",
    up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    only_cross_attention: false,
    block_out_channels: [320, 640, 1280, 1280],
    layers_per_block: 2,
    downsample_padding: 1,
    mid_block_scale_factor: 1,
    dropout: 0,
    act_fn: "silu",
    norm_num_groups: 32,
    norm_eps: 1e-5,
    cross_attention_dim: 1280,
    transformer_layers_per_block: 1,
    reverse_transformer_layers_per_block: null,
    encoder_hid_dim: null,
    encoder_hid_dim_type: null,
    attention_head_dim: 8,
    num_attention_heads: null,
    dual_cross_attention: false,
    use_linear_projection: false,
    class_embed_type: null,
    addition_embed_type: null,
    addition_time_embed_dim: null,
    num_class_embeds: null,
    upcast_attention: false,
    resnet_time_scale_shift: "default",
    resnet_skip_time_act: false,
    resnet_out_scale_factor: 1,
    time_embedding_type: "positional",
    time_embedding_dim: null,
    time_embedding_act_fn: null,
    timestep_post_act: null,
    time_cond_proj_dim: null,
    conv_in_kernel: 3,
    conv_out_kernel: 3,
    projection_class_embeddings_input_dim: null,
    attention_type: "default",
    class_embeddings_concat: false,
    mid_block_only_cross_attention: null,
    cross_attention_norm: null,
    addition_embed_type_num_heads: 64,
  },
  {
    sample_size: ["integer", "integer[]", "null"],
    in_channels: ["integer"],
    out_channels: ["integer"],
    mid_block_type: ["string", "null"],
    only_cross_attention: ["boolean", "array"],
    block_out_channels: ["integer[]"],
    layers_per_block: ["integer", "integer[]"],
    downsample_padding: ["integer"],
    norm_num_groups: ["integer", "null"],
    cross_attention_dim: ["integer", "integer[]"],
    transformer_layers_per_block: ["integer", "array"],
    reverse_transformer_layers_per_block: ["array", "null"],
    encoder_hid_dim: ["integer", "null"],
    encoder_hid_dim_type: ["string", "null"],
    attention_head_dim: ["integer", "integer[]"],
    num_attention_heads: ["integer", "integer[]", "null"],
    class_embed_type: ["string", "null"],
    addition_embed_type: ["string", "null"],
    addition_time_embed_dim: ["integer", "null"],
    num_class_embeds: ["integer", "null"],
    time_embedding_dim: ["integer", "null"],
    time_embedding_act_fn: ["string", "null"],
    timestep_post_act: ["string", "null"],
    time_cond_proj_dim: ["integer", "null"],
    conv_in_kernel: ["integer"],
    conv_out_kernel: ["integer"],
    projection_class_embeddings_input_dim: ["integer", "null"],
    mid_block_only_cross_attention: ["boolean", "null"],
    cross_attention_norm: ["string", "null"],
    addition_embed_type_num_heads: ["integer"],
  },
);

/** The architecture a config describes, one entry per down block (outermost first). */
export interface UNet2DConditionPlan {
  /** Channels per level. */
  channels: number[];
  /** Resnets per down block. */
  layersPerBlock: number[];
  /** Attention heads per block. */
  numAttentionHeads: number[];
  /** Text-embedding channels per block. */
  crossAttentionDim: number[];
  /** Transformer layers per block. */
  transformerLayers: number[];
  /** only_cross_attention per block. */
  onlyCrossAttention: boolean[];
  /** GroupNorm groups. */
  groups: number;
  /** Resnet time-embedding mode. */
  timeScaleShift: TimeEmbeddingNorm;
  /** Sinusoidal or Gaussian-Fourier timestep features. */
  timeEmbeddingType: "positional" | "fourier";
  /** Width of the time embedding every resnet receives. */
  timeEmbedDim: number;
}

function unsupported(key: string, value: ConfigValue, valid: string): ConfigError {
  return new ConfigError(`unsupported value ${JSON.stringify(value)}; supported: ${valid}`, {
    key,
  });
}

/** Requires `key` to hold its default (a feature this port does not build). */
function requireDefault(
  config: Readonly<UNet2DConditionModelConfig>,
  key: keyof UNet2DConditionModelConfig,
  expected: ConfigValue,
): void {
  if (config[key] !== expected) throw unsupported(key, config[key], JSON.stringify(expected));
}

/** One value per down block: a scalar repeated, or a list of exactly `n`. */
function perBlock<T>(
  value: T | T[],
  n: number,
  key: string,
  valid: (v: unknown) => v is T,
): T[] {
  const list = Array.isArray(value) ? value : Array.from({ length: n }, () => value);
  if (list.length !== n || !list.every(valid)) {
    throw new ConfigError(
      `must be one value or a list of ${n} (one per down block), got ${JSON.stringify(value)}`,
      { key },
    );
  }
  return list;
}

const positiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const bool = (v: unknown): v is boolean => typeof v === "boolean";

/**
 * Checks `config` and expands it into per-block lists; throws a
 * {@link ConfigError} naming the key for anything that cannot be built.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { planUNet2DCondition, UNET_2D_CONDITION_SPEC } from "./unet_2d_condition_config.ts";
 * const plan = planUNet2DCondition(loadConfig(UNET_2D_CONDITION_SPEC));
 * console.log(plan.timeEmbedDim); // 1280
 * ```
 */
export function planUNet2DCondition(
  config: Readonly<UNet2DConditionModelConfig>,
): UNet2DConditionPlan {
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
  if (c.num_attention_heads !== null) {
    throw unsupported(
      "num_attention_heads",
      c.num_attention_heads,
      "null (diffusers 0.27 rejects it; attention_head_dim gives the number of heads)",
    );
  }
  for (
    const [key, expected] of [
      ["dual_cross_attention", false],
      ["class_embed_type", null],
      ["num_class_embeds", null],
      ["class_embeddings_concat", false],
      ["addition_embed_type", null],
      ["encoder_hid_dim", null],
      ["encoder_hid_dim_type", null],
      ["timestep_post_act", null],
      ["time_cond_proj_dim", null],
      ["attention_type", "default"],
      ["reverse_transformer_layers_per_block", null],
    ] as const
  ) requireDefault(c, key, expected);
  if (c.norm_num_groups === null) throw unsupported("norm_num_groups", null, "an integer");
  if (c.mid_block_type !== null && c.mid_block_type !== "UNetMidBlock2DCrossAttn") {
    throw unsupported("mid_block_type", c.mid_block_type, "UNetMidBlock2DCrossAttn, null");
  }
  if (c.resnet_time_scale_shift !== "default" && c.resnet_time_scale_shift !== "scale_shift") {
    throw unsupported("resnet_time_scale_shift", c.resnet_time_scale_shift, "default, scale_shift");
  }
  if (c.time_embedding_type !== "positional" && c.time_embedding_type !== "fourier") {
    throw unsupported("time_embedding_type", c.time_embedding_type, "positional, fourier");
  }
  for (const key of ["conv_in_kernel", "conv_out_kernel"] as const) {
    if (c[key] < 1 || c[key] % 2 === 0) throw unsupported(key, c[key], "an odd kernel size");
  }
  const c0 = channels[0]!;
  const fourier = c.time_embedding_type === "fourier";
  const timeEmbedDim = c.time_embedding_dim ?? (fourier ? 2 : 4) * c0;
  if (fourier && timeEmbedDim % 2 !== 0) {
    throw new ConfigError(`must be even for fourier time embeddings, got ${timeEmbedDim}`, {
      key: "time_embedding_dim",
    });
  }
  const heads = perBlock(c.attention_head_dim, n, "attention_head_dim", positiveInt);
  channels.forEach((ch, i) => {
    if (ch % heads[i]! !== 0) {
      throw new ConfigError(
        `${
          heads[i]
        } heads (attention_head_dim is the number of heads) do not divide ${ch} channels`,
        { key: "attention_head_dim" },
      );
    }
  });
  return {
    channels,
    layersPerBlock: perBlock(c.layers_per_block, n, "layers_per_block", positiveInt),
    numAttentionHeads: heads,
    crossAttentionDim: perBlock(c.cross_attention_dim, n, "cross_attention_dim", positiveInt),
    transformerLayers: perBlock(
      c.transformer_layers_per_block as number | number[],
      n,
      "transformer_layers_per_block",
      positiveInt,
    ),
    onlyCrossAttention: perBlock(c.only_cross_attention, n, "only_cross_attention", bool),
    groups: c.norm_num_groups,
    timeScaleShift: c.resnet_time_scale_shift,
    timeEmbeddingType: c.time_embedding_type,
    timeEmbedDim,
  };
}
