/**
 * The text-conditioned blocks of diffusers' `UNet2DConditionModel`
 * (`unet_2d_blocks.py`), in NHWC: {@link CrossAttnDownBlock2D},
 * {@link UNetMidBlock2DCrossAttn} and {@link CrossAttnUpBlock2D} (each
 * resnet followed by a {@link Transformer2DModel} that attends to the text
 * embeddings), and the factories {@link createCrossAttnDownBlock} /
 * {@link createCrossAttnUpBlock}, which also hand out the plain
 * `DownBlock2D` / `UpBlock2D` of unet_2d_blocks.ts (they ignore the context).
 *
 * Field names are the state-dict keys (`resnets.0.conv1.weight`,
 * `attentions.0.transformer_blocks.0.attn2.to_k.weight`,
 * `downsamplers.0.conv.weight`, ...).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { CrossAttnDownBlock2D } from "./unet_2d_condition_blocks.ts";
 * const block = new CrossAttnDownBlock2D({
 *   numLayers: 2, inChannels: 16, outChannels: 32, tembChannels: 64, eps: 1e-5, actFn: "silu",
 *   groups: 8, timeScaleShift: "default", attentionHeadDim: 4, addDownsample: true,
 *   downsamplePadding: 1, downsampleType: "conv", transformerLayers: 1, numAttentionHeads: 8,
 *   crossAttentionDim: 32, useLinearProjection: false, onlyCrossAttention: false,
 * }).initialize(0);
 * const { hidden, states } = block.forward(tf.zeros([2, 8, 8, 16]), tf.zeros([2, 64]),
 *   tf.zeros([2, 7, 32]));
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { ResnetBlock2D, type TimeEmbeddingNorm } from "./layers/resnet_block.ts";
import { Downsample2D } from "./layers/downsampling.ts";
import { Upsample2D } from "./layers/upsampling.ts";
import { Transformer2DModel } from "./transformer_2d.ts";
import {
  DownBlock2D,
  type DownBlockOptions,
  type DownBlockOutput,
  UpBlock2D,
  type UpBlockOptions,
} from "./unet_2d_blocks.ts";

/** How a block builds its transformers (diffusers' arguments, camelCase). */
export interface TransformerBlockOptions {
  /** Transformer layers in each Transformer2DModel. */
  transformerLayers: number;
  /** Attention heads (diffusers' `num_attention_heads`; head width is channels / heads). */
  numAttentionHeads: number;
  /** Channels of the text embeddings. */
  crossAttentionDim: number;
  /** Linear proj_in / proj_out (SD 2.x) instead of 1×1 convs. */
  useLinearProjection: boolean;
  /** attn1 attends to the text as well. */
  onlyCrossAttention: boolean;
}

/** Arguments of {@link CrossAttnDownBlock2D} (and of `DownBlock2D`, which ignores the extra ones). */
export interface CrossAttnDownBlockOptions extends DownBlockOptions, TransformerBlockOptions {}

/** Arguments of {@link CrossAttnUpBlock2D} (and of `UpBlock2D`, which ignores the extra ones). */
export interface CrossAttnUpBlockOptions extends UpBlockOptions, TransformerBlockOptions {}

/** Arguments of {@link UNetMidBlock2DCrossAttn} (diffusers never passes only_cross_attention to it). */
export interface CrossAttnMidBlockOptions
  extends Omit<TransformerBlockOptions, "onlyCrossAttention"> {
  /** Channels (in = out). */
  inChannels: number;
  /** Time-embedding width. */
  tembChannels: number;
  /** GroupNorm epsilon of the resnets. */
  eps: number;
  /** Activation name. */
  actFn: string;
  /** GroupNorm groups (resnets and transformers). */
  groups: number;
  /** Resnet time-embedding mode. */
  timeScaleShift: TimeEmbeddingNorm;
  /** The resnet outputs are divided by this (`mid_block_scale_factor`). */
  outputScaleFactor: number;
}

/** A down block of the conditional UNet: `context` is the text embeddings [B, M, D]. */
export interface CondDownBlock extends Module {
  /** `x` NHWC, `temb` [B, tembChannels], `context` [B, M, crossAttentionDim]. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D, context: tf.Tensor3D): DownBlockOutput;
}

/** An up block of the conditional UNet. */
export interface CondUpBlock extends Module {
  /** Its resnets, one per skip state it consumes. */
  readonly resnets: ResnetBlock2D[];
  /** `skips` are consumed last-first, one per resnet. */
  forward(
    x: tf.Tensor4D,
    skips: readonly tf.Tensor4D[],
    temb: tf.Tensor2D,
    context: tf.Tensor3D,
  ): tf.Tensor4D;
}

interface ResnetOptions {
  outChannels: number;
  tembChannels: number;
  eps: number;
  groups: number;
  actFn: string;
  timeScaleShift: TimeEmbeddingNorm;
}

function resnet(o: ResnetOptions, inChannels: number, outputScaleFactor = 1): ResnetBlock2D {
  return new ResnetBlock2D({
    inChannels,
    outChannels: o.outChannels,
    tembChannels: o.tembChannels,
    eps: o.eps,
    groups: o.groups,
    nonLinearity: o.actFn,
    timeEmbeddingNorm: o.timeScaleShift,
    outputScaleFactor,
  });
}

/** diffusers gives every transformer channels / heads channels per head and the resnet groups. */
function transformer(
  o: TransformerBlockOptions & { groups: number },
  channels: number,
): Transformer2DModel {
  return new Transformer2DModel({
    numAttentionHeads: o.numAttentionHeads,
    attentionHeadDim: Math.floor(channels / o.numAttentionHeads),
    inChannels: channels,
    numLayers: o.transformerLayers,
    normNumGroups: o.groups,
    crossAttentionDim: o.crossAttentionDim,
    useLinearProjection: o.useLinearProjection,
    onlyCrossAttention: o.onlyCrossAttention,
  });
}

/**
 * (resnet, transformer) pairs, then an optional stride-2 conv; every pair's
 * output and the downsampled map are skip states.
 *
 * @example
 * ```ts
 * import { CrossAttnDownBlock2D } from "./unet_2d_condition_blocks.ts";
 * const sd = new CrossAttnDownBlock2D({ numLayers: 2, inChannels: 320, outChannels: 320,
 *   tembChannels: 1280, eps: 1e-5, actFn: "silu", groups: 32, timeScaleShift: "default",
 *   attentionHeadDim: 8, addDownsample: true, downsamplePadding: 1, downsampleType: "conv",
 *   transformerLayers: 1, numAttentionHeads: 8, crossAttentionDim: 768,
 *   useLinearProjection: false, onlyCrossAttention: false });
 * ```
 */
export class CrossAttnDownBlock2D extends Module implements CondDownBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One transformer after each resnet. */
  readonly attentions: Transformer2DModel[];
  /** `[Downsample2D]`, or null for the last block. */
  readonly downsamplers: [Downsample2D] | null;

  /** See {@link CrossAttnDownBlockOptions}. */
  constructor(o: CrossAttnDownBlockOptions) {
    super();
    this.resnets = Array.from(
      { length: o.numLayers },
      (_, i) => resnet(o, i === 0 ? o.inChannels : o.outChannels),
    );
    this.attentions = this.resnets.map(() => transformer(o, o.outChannels));
    this.downsamplers = o.addDownsample
      ? [new Downsample2D(o.outChannels, { useConv: true, padding: o.downsamplePadding })]
      : null;
  }

  /** See {@link CondDownBlock.forward}. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D, context: tf.Tensor3D): DownBlockOutput {
    const states: tf.Tensor4D[] = [];
    this.resnets.forEach((r, i) => {
      states.push(x = this.attentions[i]!.forward(r.forward(x, temb), context));
    });
    if (this.downsamplers) states.push(x = this.downsamplers[0].forward(x));
    return { hidden: x, states };
  }
}

/**
 * resnet, then (transformer, resnet) once: the bottleneck.
 *
 * @example
 * ```ts
 * import { UNetMidBlock2DCrossAttn } from "./unet_2d_condition_blocks.ts";
 * const mid = new UNetMidBlock2DCrossAttn({ inChannels: 1280, tembChannels: 1280, eps: 1e-5,
 *   actFn: "silu", groups: 32, timeScaleShift: "default", outputScaleFactor: 1,
 *   transformerLayers: 1, numAttentionHeads: 8, crossAttentionDim: 768,
 *   useLinearProjection: false });
 * ```
 */
export class UNetMidBlock2DCrossAttn extends Module {
  /** Two resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One transformer between them. */
  readonly attentions: Transformer2DModel[];

  /** See {@link CrossAttnMidBlockOptions}. */
  constructor(o: CrossAttnMidBlockOptions) {
    super();
    const r = { ...o, outChannels: o.inChannels };
    this.resnets = [
      resnet(r, o.inChannels, o.outputScaleFactor),
      resnet(r, o.inChannels, o.outputScaleFactor),
    ];
    this.attentions = [transformer({ ...o, onlyCrossAttention: false }, o.inChannels)];
  }

  /** `x` NHWC, `temb` [B, tembChannels], `context` [B, M, crossAttentionDim]. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D, context: tf.Tensor3D): tf.Tensor4D {
    x = this.resnets[0]!.forward(x, temb);
    this.attentions.forEach((a, i) => {
      x = this.resnets[i + 1]!.forward(a.forward(x, context), temb);
    });
    return x;
  }
}

/**
 * (resnet over [x, skip], transformer) pairs, then an optional nearest 2× + conv.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { CrossAttnUpBlock2D } from "./unet_2d_condition_blocks.ts";
 * const block = new CrossAttnUpBlock2D({ numLayers: 3, inChannels: 16, outChannels: 16,
 *   prevOutputChannel: 32, tembChannels: 64, eps: 1e-5, actFn: "silu", groups: 8,
 *   timeScaleShift: "default", attentionHeadDim: 8, addUpsample: false, upsampleType: "conv",
 *   transformerLayers: 1, numAttentionHeads: 8, crossAttentionDim: 32,
 *   useLinearProjection: false, onlyCrossAttention: false }).initialize(0);
 * const skips = [16, 16, 16].map((c) => tf.zeros([2, 8, 8, c])) as tf.Tensor4D[];
 * const y = block.forward(tf.zeros([2, 8, 8, 32]), skips, tf.zeros([2, 64]), tf.zeros([2, 7, 32]));
 * ```
 */
export class CrossAttnUpBlock2D extends Module implements CondUpBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One transformer after each resnet. */
  readonly attentions: Transformer2DModel[];
  /** `[Upsample2D]`, or null for the last block. */
  readonly upsamplers: [Upsample2D] | null;

  /** See {@link CrossAttnUpBlockOptions}. */
  constructor(o: CrossAttnUpBlockOptions) {
    super();
    this.resnets = Array.from({ length: o.numLayers }, (_, i) => {
      const skip = i === o.numLayers - 1 ? o.inChannels : o.outChannels;
      return resnet(o, (i === 0 ? o.prevOutputChannel : o.outChannels) + skip);
    });
    this.attentions = this.resnets.map(() => transformer(o, o.outChannels));
    this.upsamplers = o.addUpsample ? [new Upsample2D(o.outChannels, { useConv: true })] : null;
  }

  /** See {@link CondUpBlock.forward}. */
  forward(
    x: tf.Tensor4D,
    skips: readonly tf.Tensor4D[],
    temb: tf.Tensor2D,
    context: tf.Tensor3D,
  ): tf.Tensor4D {
    this.resnets.forEach((r, i) => {
      const withSkip = tf.concat([x, skips[skips.length - 1 - i]!], 3);
      x = this.attentions[i]!.forward(r.forward(withSkip, temb), context);
    });
    return this.upsamplers ? this.upsamplers[0].forward(x) : x;
  }
}

const DOWN_BLOCKS: Readonly<Record<string, new (o: CrossAttnDownBlockOptions) => CondDownBlock>> = {
  CrossAttnDownBlock2D,
  DownBlock2D,
};

const UP_BLOCKS: Readonly<Record<string, new (o: CrossAttnUpBlockOptions) => CondUpBlock>> = {
  CrossAttnUpBlock2D,
  UpBlock2D,
};

/** diffusers accepts an optional "UNetRes" prefix on block names. */
function blockClass<T>(table: Readonly<Record<string, T>>, type: string, key: string): T {
  const name = type.startsWith("UNetRes") ? type.slice(7) : type;
  const cls = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!cls) {
    throw new ConfigError(
      `unsupported block type ${JSON.stringify(type)}; supported: ${Object.keys(table).join(", ")}`,
      { key },
    );
  }
  return cls;
}

/**
 * The down block named `type` (`CrossAttnDownBlock2D` or `DownBlock2D`, as
 * diffusers' `get_down_block`); another name is a {@link ConfigError} naming `key`.
 *
 * @example
 * ```ts
 * // createCrossAttnDownBlock("CrossAttnDownBlock2D", options, "down_block_types")
 * ```
 */
export function createCrossAttnDownBlock(
  type: string,
  options: CrossAttnDownBlockOptions,
  key = "down_block_types",
): CondDownBlock {
  return new (blockClass(DOWN_BLOCKS, type, key))(options);
}

/**
 * The up block named `type` (`CrossAttnUpBlock2D` or `UpBlock2D`, as
 * diffusers' `get_up_block`); another name is a {@link ConfigError} naming `key`.
 *
 * @example
 * ```ts
 * // createCrossAttnUpBlock("UpBlock2D", options, "up_block_types")
 * ```
 */
export function createCrossAttnUpBlock(
  type: string,
  options: CrossAttnUpBlockOptions,
  key = "up_block_types",
): CondUpBlock {
  return new (blockClass(UP_BLOCKS, type, key))(options);
}
