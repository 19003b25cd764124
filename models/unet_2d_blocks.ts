/**
 * The blocks of diffusers' `UNet2DModel` (`unet_2d_blocks.py`), in NHWC:
 * {@link DownBlock2D}, {@link AttnDownBlock2D}, {@link ResnetDownsampleBlock2D},
 * {@link UNetMidBlock2D}, {@link UpBlock2D}, {@link AttnUpBlock2D},
 * {@link ResnetUpsampleBlock2D}, and the factories {@link createDownBlock} /
 * {@link createUpBlock} that map config block-type names to them (diffusers'
 * `get_down_block` / `get_up_block`, with the same arguments passed on).
 *
 * Field names are the state-dict keys (`resnets.0.conv1.weight`,
 * `attentions.0.to_q.weight`, `downsamplers.0.conv.weight`, ...).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { createDownBlock } from "./unet_2d_blocks.ts";
 * const block = createDownBlock("DownBlock2D", {
 *   numLayers: 2, inChannels: 16, outChannels: 32, tembChannels: 64, eps: 1e-6, actFn: "silu",
 *   groups: 8, timeScaleShift: "default", addDownsample: true, downsamplePadding: 1,
 *   attentionHeadDim: 32, downsampleType: "conv",
 * }).initialize(0);
 * const { hidden, states } = block.forward(tf.zeros([1, 8, 8, 16]), tf.zeros([1, 64]));
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { ResnetBlock2D, type TimeEmbeddingNorm } from "./layers/resnet_block.ts";
import { Attention } from "./layers/attention.ts";
import { Downsample2D } from "./layers/downsampling.ts";
import { Upsample2D } from "./layers/upsampling.ts";

/** Arguments every block takes (diffusers' `get_*_block` arguments, camelCase). */
export interface BlockOptions {
  /** Resnets in the block. */
  numLayers: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Time-embedding width. */
  tembChannels: number;
  /** GroupNorm epsilon. */
  eps: number;
  /** Activation name. */
  actFn: string;
  /** GroupNorm groups. */
  groups: number;
  /** Resnet time-embedding mode. */
  timeScaleShift: TimeEmbeddingNorm;
  /** Channels per attention head (attention blocks only). */
  attentionHeadDim: number;
}

/** Arguments of the down blocks. */
export interface DownBlockOptions extends BlockOptions {
  /** Whether the block halves the resolution (false for the last one). */
  addDownsample: boolean;
  /** Padding of the downsampling conv (0 = asymmetric (0, 1, 0, 1)). */
  downsamplePadding: number;
  /** Downsampler of AttnDownBlock2D: stride-2 conv, or a resnet with average pooling. */
  downsampleType: "conv" | "resnet";
}

/** Arguments of the up blocks. */
export interface UpBlockOptions extends BlockOptions {
  /** Channels coming from the previous (deeper) up block. */
  prevOutputChannel: number;
  /** Whether the block doubles the resolution (false for the last one). */
  addUpsample: boolean;
  /** Upsampler of AttnUpBlock2D: nearest 2× + conv, or a resnet with nearest 2×. */
  upsampleType: "conv" | "resnet";
}

/** What a down block returns: its output and the skip states it adds for the up path. */
export interface DownBlockOutput {
  /** Output feature map. */
  hidden: tf.Tensor4D;
  /** Skip connections, in the order they were produced. */
  states: tf.Tensor4D[];
}

/** A down block as the UNet uses it. */
export interface DownBlock extends Module {
  /** `x` NHWC, `temb` [B, tembChannels]. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D): DownBlockOutput;
}

/** An up block as the UNet uses it. */
export interface UpBlock extends Module {
  /** Its resnets, one per skip state it consumes. */
  readonly resnets: ResnetBlock2D[];
  /** `skips` are consumed last-first, one per resnet. */
  forward(x: tf.Tensor4D, skips: readonly tf.Tensor4D[], temb: tf.Tensor2D): tf.Tensor4D;
}

function resnet(
  o: BlockOptions,
  inChannels: number,
  extra: { outputScaleFactor?: number; up?: boolean; down?: boolean } = {},
): ResnetBlock2D {
  return new ResnetBlock2D({
    inChannels,
    outChannels: o.outChannels,
    tembChannels: o.tembChannels,
    eps: o.eps,
    groups: o.groups,
    nonLinearity: o.actFn,
    timeEmbeddingNorm: o.timeScaleShift,
    ...extra,
  });
}

function attention(
  o: BlockOptions,
  channels: number,
  groups: number | null,
  rescale = 1,
): Attention {
  return new Attention({
    queryDim: channels,
    heads: Math.floor(channels / o.attentionHeadDim),
    dimHead: o.attentionHeadDim,
    rescaleOutputFactor: rescale,
    eps: o.eps,
    normNumGroups: groups,
    residualConnection: true,
    bias: true,
    fromDeprecatedAttnBlock: true,
  });
}

function downResnets(o: BlockOptions): ResnetBlock2D[] {
  return Array.from(
    { length: o.numLayers },
    (_, i) => resnet(o, i === 0 ? o.inChannels : o.outChannels),
  );
}

/** Up-path resnets take the previous output concatenated with one skip state. */
function upResnets(o: UpBlockOptions): ResnetBlock2D[] {
  return Array.from({ length: o.numLayers }, (_, i) => {
    const skip = i === o.numLayers - 1 ? o.inChannels : o.outChannels;
    return resnet(o, (i === 0 ? o.prevOutputChannel : o.outChannels) + skip);
  });
}

function downsampleConv(o: DownBlockOptions): [Downsample2D] {
  return [new Downsample2D(o.outChannels, { useConv: true, padding: o.downsamplePadding })];
}

/**
 * Resnets only, then an optional stride-2 conv; every resnet output is a skip state.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { DownBlock2D } from "./unet_2d_blocks.ts";
 * const block = new DownBlock2D({ numLayers: 2, inChannels: 16, outChannels: 32, tembChannels: 64,
 *   eps: 1e-6, actFn: "silu", groups: 8, timeScaleShift: "default", attentionHeadDim: 8,
 *   addDownsample: true, downsamplePadding: 1, downsampleType: "conv" }).initialize(0);
 * const { hidden, states } = block.forward(tf.zeros([1, 8, 8, 16]), tf.zeros([1, 64]));
 * // hidden [1, 4, 4, 32]; states: one per resnet, plus the downsampled map
 * ```
 */
export class DownBlock2D extends Module implements DownBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** `[Downsample2D]`, or null for the last block. */
  readonly downsamplers: [Downsample2D] | null;

  /** See {@link DownBlockOptions}. */
  constructor(o: DownBlockOptions) {
    super();
    this.resnets = downResnets(o);
    this.downsamplers = o.addDownsample ? downsampleConv(o) : null;
  }

  /** See {@link DownBlock.forward}. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D): DownBlockOutput {
    const states: tf.Tensor4D[] = [];
    for (const r of this.resnets) states.push(x = r.forward(x, temb));
    if (this.downsamplers) states.push(x = this.downsamplers[0].forward(x));
    return { hidden: x, states };
  }
}

/**
 * Resnet + self-attention pairs, then an optional conv or resnet downsampler.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { AttnDownBlock2D } from "./unet_2d_blocks.ts";
 * const block = new AttnDownBlock2D({ numLayers: 2, inChannels: 16, outChannels: 32, tembChannels: 64,
 *   eps: 1e-6, actFn: "silu", groups: 8, timeScaleShift: "default", attentionHeadDim: 8,
 *   addDownsample: true, downsamplePadding: 1, downsampleType: "conv" }).initialize(0);
 * const { hidden, states } = block.forward(tf.zeros([1, 8, 8, 16]), tf.zeros([1, 64]));
 * // hidden [1, 4, 4, 32]; states: one per resnet, plus the downsampled map
 * ```
 */
export class AttnDownBlock2D extends Module implements DownBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One attention after each resnet. */
  readonly attentions: Attention[];
  /** `[Downsample2D]` or `[ResnetBlock2D]` (downsample_type "resnet"), or null. */
  readonly downsamplers: [Downsample2D | ResnetBlock2D] | null;

  /** See {@link DownBlockOptions}. */
  constructor(o: DownBlockOptions) {
    super();
    this.resnets = downResnets(o);
    this.attentions = this.resnets.map(() => attention(o, o.outChannels, o.groups));
    this.downsamplers = !o.addDownsample
      ? null
      : o.downsampleType === "resnet"
      ? [resnet(o, o.outChannels, { down: true })]
      : downsampleConv(o);
  }

  /** See {@link DownBlock.forward}. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D): DownBlockOutput {
    const states: tf.Tensor4D[] = [];
    this.resnets.forEach((r, i) => {
      states.push(x = this.attentions[i]!.forward(r.forward(x, temb)));
    });
    if (this.downsamplers) {
      const d = this.downsamplers[0];
      states.push(x = d instanceof ResnetBlock2D ? d.forward(x, temb) : d.forward(x));
    }
    return { hidden: x, states };
  }
}

/**
 * Resnets, then a resnet that average-pools as it goes (no conv downsampler).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { ResnetDownsampleBlock2D } from "./unet_2d_blocks.ts";
 * const block = new ResnetDownsampleBlock2D({ numLayers: 2, inChannels: 16, outChannels: 32, tembChannels: 64,
 *   eps: 1e-6, actFn: "silu", groups: 8, timeScaleShift: "default", attentionHeadDim: 8,
 *   addDownsample: true, downsamplePadding: 1, downsampleType: "conv" }).initialize(0);
 * const { hidden, states } = block.forward(tf.zeros([1, 8, 8, 16]), tf.zeros([1, 64]));
 * // hidden [1, 4, 4, 32]; states: one per resnet, plus the downsampled map
 * ```
 */
export class ResnetDownsampleBlock2D extends Module implements DownBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** `[ResnetBlock2D]` with `down`, or null. */
  readonly downsamplers: [ResnetBlock2D] | null;

  /** See {@link DownBlockOptions}. */
  constructor(o: DownBlockOptions) {
    super();
    this.resnets = downResnets(o);
    this.downsamplers = o.addDownsample ? [resnet(o, o.outChannels, { down: true })] : null;
  }

  /** See {@link DownBlock.forward}. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D): DownBlockOutput {
    const states: tf.Tensor4D[] = [];
    for (const r of this.resnets) states.push(x = r.forward(x, temb));
    if (this.downsamplers) states.push(x = this.downsamplers[0].forward(x, temb));
    return { hidden: x, states };
  }
}

/** Options of {@link UNetMidBlock2D}. */
export interface MidBlockOptions {
  /** Channels (in = out). */
  inChannels: number;
  /** Time-embedding width. */
  tembChannels: number;
  /** GroupNorm epsilon. */
  eps: number;
  /** Activation name. */
  actFn: string;
  /** GroupNorm groups of the resnets. */
  groups: number;
  /** GroupNorm groups of the attention, or null for diffusers' default. */
  attnGroups: number | null;
  /** Resnet time-embedding mode. */
  timeScaleShift: TimeEmbeddingNorm;
  /** Whether the attention layers exist. */
  addAttention: boolean;
  /** Channels per attention head. */
  attentionHeadDim: number;
  /** Resnet and attention outputs are divided by this (`mid_block_scale_factor`). */
  outputScaleFactor: number;
}

/**
 * resnet, then (attention, resnet) once; the attention's GroupNorm uses the
 * resnet groups unless `attnGroups` is set, and is absent in scale_shift
 * mode (diffusers' rule).
 *
 * @example
 * ```ts
 * import { UNetMidBlock2D } from "./unet_2d_blocks.ts";
 * const mid = new UNetMidBlock2D({ inChannels: 32, tembChannels: 64, eps: 1e-6, actFn: "silu",
 *   groups: 8, attnGroups: null, timeScaleShift: "default", addAttention: true,
 *   attentionHeadDim: 32, outputScaleFactor: 1 });
 * ```
 */
export class UNetMidBlock2D extends Module {
  /** Two resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One attention (null entry when `addAttention` is false). */
  readonly attentions: (Attention | null)[];

  /** See {@link MidBlockOptions}. */
  constructor(o: MidBlockOptions) {
    super();
    const b: BlockOptions = { ...o, numLayers: 1, outChannels: o.inChannels };
    const extra = { outputScaleFactor: o.outputScaleFactor };
    const groups = o.attnGroups ?? (o.timeScaleShift === "default" ? o.groups : null);
    this.resnets = [resnet(b, o.inChannels, extra), resnet(b, o.inChannels, extra)];
    this.attentions = [
      o.addAttention ? attention(b, o.inChannels, groups, o.outputScaleFactor) : null,
    ];
  }

  /** `x` NHWC, `temb` [B, tembChannels]. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D): tf.Tensor4D {
    x = this.resnets[0]!.forward(x, temb);
    this.attentions.forEach((a, i) => {
      if (a) x = a.forward(x);
      x = this.resnets[i + 1]!.forward(x, temb);
    });
    return x;
  }
}

/** Concatenates the next skip state (taken from the end) on channels. */
function withSkip(x: tf.Tensor4D, skips: readonly tf.Tensor4D[], used: number): tf.Tensor4D {
  return tf.concat([x, skips[skips.length - 1 - used]!], 3);
}

/**
 * Resnets over [x, skip] concatenations, then an optional nearest 2× + conv.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { UpBlock2D } from "./unet_2d_blocks.ts";
 * const block = new UpBlock2D({ numLayers: 2, inChannels: 16, outChannels: 16, prevOutputChannel: 32,
 *   tembChannels: 64, eps: 1e-6, actFn: "silu", groups: 8, timeScaleShift: "default",
 *   attentionHeadDim: 8, addUpsample: true, upsampleType: "conv" }).initialize(0);
 * const skips = [tf.zeros([1, 4, 4, 16]), tf.zeros([1, 4, 4, 16])] as tf.Tensor4D[];
 * const y = block.forward(tf.zeros([1, 4, 4, 32]), skips, tf.zeros([1, 64])); // [1, 8, 8, 16]
 * ```
 */
export class UpBlock2D extends Module implements UpBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** `[Upsample2D]`, or null for the last block. */
  readonly upsamplers: [Upsample2D] | null;

  /** See {@link UpBlockOptions}. */
  constructor(o: UpBlockOptions) {
    super();
    this.resnets = upResnets(o);
    this.upsamplers = o.addUpsample ? [new Upsample2D(o.outChannels, { useConv: true })] : null;
  }

  /** See {@link UpBlock.forward}. */
  forward(x: tf.Tensor4D, skips: readonly tf.Tensor4D[], temb: tf.Tensor2D): tf.Tensor4D {
    this.resnets.forEach((r, i) => {
      x = r.forward(withSkip(x, skips, i), temb);
    });
    return this.upsamplers ? this.upsamplers[0].forward(x) : x;
  }
}

/**
 * (resnet over [x, skip], attention) pairs, then an optional conv or resnet upsampler.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { AttnUpBlock2D } from "./unet_2d_blocks.ts";
 * const block = new AttnUpBlock2D({ numLayers: 2, inChannels: 16, outChannels: 16, prevOutputChannel: 32,
 *   tembChannels: 64, eps: 1e-6, actFn: "silu", groups: 8, timeScaleShift: "default",
 *   attentionHeadDim: 8, addUpsample: true, upsampleType: "conv" }).initialize(0);
 * const skips = [tf.zeros([1, 4, 4, 16]), tf.zeros([1, 4, 4, 16])] as tf.Tensor4D[];
 * const y = block.forward(tf.zeros([1, 4, 4, 32]), skips, tf.zeros([1, 64])); // [1, 8, 8, 16]
 * ```
 */
export class AttnUpBlock2D extends Module implements UpBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One attention after each resnet. */
  readonly attentions: Attention[];
  /** `[Upsample2D]` or `[ResnetBlock2D]` (upsample_type "resnet"), or null. */
  readonly upsamplers: [Upsample2D | ResnetBlock2D] | null;

  /** See {@link UpBlockOptions}. */
  constructor(o: UpBlockOptions) {
    super();
    this.resnets = upResnets(o);
    this.attentions = this.resnets.map(() => attention(o, o.outChannels, o.groups));
    this.upsamplers = !o.addUpsample
      ? null
      : o.upsampleType === "resnet"
      ? [resnet(o, o.outChannels, { up: true })]
      : [new Upsample2D(o.outChannels, { useConv: true })];
  }

  /** See {@link UpBlock.forward}. */
  forward(x: tf.Tensor4D, skips: readonly tf.Tensor4D[], temb: tf.Tensor2D): tf.Tensor4D {
    this.resnets.forEach((r, i) => {
      x = this.attentions[i]!.forward(r.forward(withSkip(x, skips, i), temb));
    });
    if (!this.upsamplers) return x;
    const u = this.upsamplers[0];
    return u instanceof ResnetBlock2D ? u.forward(x, temb) : u.forward(x);
  }
}

/**
 * Resnets over [x, skip], then a resnet that upsamples (nearest 2×) as it goes.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { ResnetUpsampleBlock2D } from "./unet_2d_blocks.ts";
 * const block = new ResnetUpsampleBlock2D({ numLayers: 2, inChannels: 16, outChannels: 16, prevOutputChannel: 32,
 *   tembChannels: 64, eps: 1e-6, actFn: "silu", groups: 8, timeScaleShift: "default",
 *   attentionHeadDim: 8, addUpsample: true, upsampleType: "conv" }).initialize(0);
 * const skips = [tf.zeros([1, 4, 4, 16]), tf.zeros([1, 4, 4, 16])] as tf.Tensor4D[];
 * const y = block.forward(tf.zeros([1, 4, 4, 32]), skips, tf.zeros([1, 64])); // [1, 8, 8, 16]
 * ```
 */
export class ResnetUpsampleBlock2D extends Module implements UpBlock {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** `[ResnetBlock2D]` with `up`, or null. */
  readonly upsamplers: [ResnetBlock2D] | null;

  /** See {@link UpBlockOptions}. */
  constructor(o: UpBlockOptions) {
    super();
    this.resnets = upResnets(o);
    this.upsamplers = o.addUpsample ? [resnet(o, o.outChannels, { up: true })] : null;
  }

  /** See {@link UpBlock.forward}. */
  forward(x: tf.Tensor4D, skips: readonly tf.Tensor4D[], temb: tf.Tensor2D): tf.Tensor4D {
    this.resnets.forEach((r, i) => {
      x = r.forward(withSkip(x, skips, i), temb);
    });
    return this.upsamplers ? this.upsamplers[0].forward(x, temb) : x;
  }
}

const DOWN_BLOCKS: Readonly<Record<string, new (o: DownBlockOptions) => DownBlock>> = {
  DownBlock2D,
  AttnDownBlock2D,
  ResnetDownsampleBlock2D,
};

const UP_BLOCKS: Readonly<Record<string, new (o: UpBlockOptions) => UpBlock>> = {
  UpBlock2D,
  AttnUpBlock2D,
  ResnetUpsampleBlock2D,
};

/** diffusers accepts an optional "UNetRes" prefix on block names. */
function blockClass<T>(
  table: Readonly<Record<string, T>>,
  type: string,
  key: string,
): T {
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
 * The down block named `type` (diffusers' `get_down_block`); an unknown
 * name is a {@link ConfigError} naming `key`.
 *
 * @example
 * ```ts
 * // createDownBlock("AttnDownBlock2D", options, "down_block_types")
 * ```
 */
export function createDownBlock(
  type: string,
  options: DownBlockOptions,
  key = "down_block_types",
): DownBlock {
  return new (blockClass(DOWN_BLOCKS, type, key))(options);
}

/**
 * The up block named `type` (diffusers' `get_up_block`); an unknown name is
 * a {@link ConfigError} naming `key`.
 *
 * @example
 * ```ts
 * // createUpBlock("UpBlock2D", options, "up_block_types")
 * ```
 */
export function createUpBlock(
  type: string,
  options: UpBlockOptions,
  key = "up_block_types",
): UpBlock {
  return new (blockClass(UP_BLOCKS, type, key))(options);
}
