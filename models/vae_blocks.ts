/**
 * The blocks of diffusers' VAE encoder and decoder (`unet_2d_blocks.py`), in
 * NHWC, without a time embedding: {@link DownEncoderBlock2D} (resnets, then a
 * stride-2 conv), {@link UpDecoderBlock2D} (resnets, then nearest 2× + conv),
 * {@link VaeMidBlock2D} (resnet, single-head self-attention, resnet), and the
 * factories {@link createEncoderBlock} / {@link createDecoderBlock} that map
 * config block-type names to them.
 *
 * The down and up blocks also come as {@link StripStep}s (`steps`), which
 * run on row strips where a map's tensors would exceed a byte budget; see
 * strip_steps.ts.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { createDecoderBlock } from "./vae_blocks.ts";
 * const block = createDecoderBlock("UpDecoderBlock2D", {
 *   numLayers: 2, inChannels: 16, outChannels: 8, eps: 1e-6, actFn: "silu", groups: 4, addUpsample: true,
 * }).initialize(0);
 * const y = block.forward(tf.zeros([1, 4, 4, 16])); // [1, 8, 8, 8]
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { ResnetBlock2D } from "./layers/resnet_block.ts";
import { Attention } from "./layers/attention.ts";
import { Downsample2D } from "./layers/downsampling.ts";
import { Upsample2D } from "./layers/upsampling.ts";
import { type Activation, activation } from "./layers/activations.ts";
import {
  addStrips,
  convStrips,
  disposeStrips,
  DOWNSAMPLE_3X3,
  float32Bytes,
  groupNormStrips,
  POINTWISE,
  type RowStrips,
  SAME_3X3,
  upsampleStrips,
} from "./row_strips.ts";
import type { StripStep } from "./strip_steps.ts";

/** Arguments every VAE block takes (diffusers' `get_*_block` arguments, camelCase). */
export interface VaeBlockOptions {
  /** Resnets in the block. */
  numLayers: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** GroupNorm epsilon. */
  eps: number;
  /** Resnet activation name. */
  actFn: string;
  /** GroupNorm groups. */
  groups: number;
}

/** Arguments of {@link DownEncoderBlock2D}. */
export interface DownEncoderBlockOptions extends VaeBlockOptions {
  /** Whether the block halves the resolution (false for the last one). */
  addDownsample: boolean;
  /** Padding of the downsampling conv (0 = asymmetric (0, 1, 0, 1), the VAE's). */
  downsamplePadding: number;
}

/** Arguments of {@link UpDecoderBlock2D}. */
export interface UpDecoderBlockOptions extends VaeBlockOptions {
  /** Whether the block doubles the resolution (false for the last one). */
  addUpsample: boolean;
}

function vaeResnet(o: VaeBlockOptions, inChannels: number): ResnetBlock2D {
  return new ResnetBlock2D({
    inChannels,
    outChannels: o.outChannels,
    tembChannels: null,
    eps: o.eps,
    groups: o.groups,
    nonLinearity: o.actFn,
  });
}

function vaeResnets(o: VaeBlockOptions): ResnetBlock2D[] {
  return Array.from(
    { length: o.numLayers },
    (_, i) => vaeResnet(o, i === 0 ? o.inChannels : o.outChannels),
  );
}

/** `r.forward(x, null)` on row strips (a VAE resnet: no time embedding, output scale 1). */
function resnetStrips(r: ResnetBlock2D, act: Activation, x: RowStrips): tf.Tensor4D[] {
  const step = (input: tf.Tensor4D[], f: (s: RowStrips) => tf.Tensor4D[]): tf.Tensor4D[] => {
    const out = f(input);
    disposeStrips(input);
    return out;
  };
  let h = groupNormStrips(r.norm1, x, act);
  h = step(h, (s) => convStrips(r.conv1, s, SAME_3X3));
  h = step(h, (s) => groupNormStrips(r.norm2, s, act));
  h = step(h, (s) => convStrips(r.conv2, s, SAME_3X3));
  if (!r.conv_shortcut) return step(h, (s) => addStrips(x, s));
  const shortcut = convStrips(r.conv_shortcut, x, POINTWISE);
  const out = addStrips(shortcut, h);
  disposeStrips(shortcut);
  disposeStrips(h);
  return out;
}

/** A block's resnets as one {@link StripStep} (input channels → output channels, same size). */
function resnetsStep(
  resnets: readonly ResnetBlock2D[],
  act: Activation,
  batch: number,
  width: number,
  [inChannels, outChannels]: readonly [number, number],
): StripStep {
  return {
    rowBytes: float32Bytes([batch, 1, width, Math.max(inChannels, outChannels)]),
    scale: 1,
    outScale: 1,
    multiple: 1,
    plain: (x) =>
      tf.tidy(() => {
        for (const r of resnets) x = r.forward(x, null);
        return x;
      }),
    strips: (x) => {
      let s = resnetStrips(resnets[0]!, act, x);
      for (const r of resnets.slice(1)) {
        const next = resnetStrips(r, act, s);
        disposeStrips(s);
        s = next;
      }
      return s;
    },
  };
}

/**
 * Resnets without time embedding, then an optional stride-2 conv; keys
 * `resnets.i.*`, `downsamplers.0.conv.*`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { DownEncoderBlock2D } from "./vae_blocks.ts";
 * const block = new DownEncoderBlock2D({ numLayers: 2, inChannels: 8, outChannels: 16, eps: 1e-6,
 *   actFn: "silu", groups: 4, addDownsample: true, downsamplePadding: 0 }).initialize(0);
 * const y = block.forward(tf.zeros([1, 8, 8, 8])); // [1, 4, 4, 16]
 * ```
 */
export class DownEncoderBlock2D extends Module {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** `[Downsample2D]` (a stride-2 conv), or null for the last block. */
  readonly downsamplers: [Downsample2D] | null;
  readonly #act: Activation;
  readonly #channels: readonly [number, number];

  /** See {@link DownEncoderBlockOptions}. */
  constructor(o: DownEncoderBlockOptions) {
    super();
    this.resnets = vaeResnets(o);
    this.downsamplers = o.addDownsample
      ? [new Downsample2D(o.outChannels, { useConv: true, padding: o.downsamplePadding })]
      : null;
    this.#act = activation(o.actFn);
    this.#channels = [o.inChannels, o.outChannels];
  }

  /** NHWC [B, H, W, in] → [B, H/2, W/2, out] (or [B, H, W, out] for the last block). */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      for (const step of this.steps(x.shape[0], x.shape[2])) x = step.plain(x);
      return x;
    });
  }

  /**
   * The block as {@link StripStep}s for inputs `batch` × `width` wide: the
   * resnets, then the downsampler (which needs even strips).
   */
  steps(batch: number, width: number): StripStep[] {
    const resnets = resnetsStep(this.resnets, this.#act, batch, width, this.#channels);
    const down = this.downsamplers?.[0].conv;
    if (!down) return [resnets];
    return [resnets, {
      rowBytes: float32Bytes([batch, 1, width, this.#channels[1]]),
      scale: 1,
      outScale: 0.5,
      multiple: 2,
      plain: (x) => down.forward(x),
      strips: (x) => convStrips(down, x, DOWNSAMPLE_3X3),
    }];
  }
}

/**
 * Resnets without time embedding, then an optional nearest 2× + conv; keys
 * `resnets.i.*`, `upsamplers.0.conv.*`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { UpDecoderBlock2D } from "./vae_blocks.ts";
 * const block = new UpDecoderBlock2D({ numLayers: 3, inChannels: 16, outChannels: 8, eps: 1e-6,
 *   actFn: "silu", groups: 4, addUpsample: true }).initialize(0);
 * const y = block.forward(tf.zeros([1, 4, 4, 16])); // [1, 8, 8, 8]
 * ```
 */
export class UpDecoderBlock2D extends Module {
  /** The resnets. */
  readonly resnets: ResnetBlock2D[];
  /** `[Upsample2D]` (nearest 2× then a 3×3 conv), or null for the last block. */
  readonly upsamplers: [Upsample2D] | null;
  readonly #act: Activation;
  readonly #channels: readonly [number, number];

  /** See {@link UpDecoderBlockOptions}. */
  constructor(o: UpDecoderBlockOptions) {
    super();
    this.resnets = vaeResnets(o);
    this.upsamplers = o.addUpsample ? [new Upsample2D(o.outChannels, { useConv: true })] : null;
    this.#act = activation(o.actFn);
    this.#channels = [o.inChannels, o.outChannels];
  }

  /** NHWC [B, H, W, in] → [B, 2H, 2W, out] (or [B, H, W, out] for the last block). */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      for (const step of this.steps(x.shape[0], x.shape[2])) x = step.plain(x);
      return x;
    });
  }

  /**
   * The block as {@link StripStep}s for inputs `batch` × `width` wide: the
   * resnets, then the upsampler (nearest 2× and a conv).
   */
  steps(batch: number, width: number): StripStep[] {
    const resnets = resnetsStep(this.resnets, this.#act, batch, width, this.#channels);
    const up = this.upsamplers?.[0];
    if (!up) return [resnets];
    return [resnets, {
      rowBytes: float32Bytes([batch, 1, 2 * width, this.#channels[1]]),
      scale: 2,
      outScale: 2,
      multiple: 1,
      plain: (x) => up.forward(x),
      strips: (x) => {
        const doubled = upsampleStrips(x);
        const out = convStrips(up.conv!, doubled, SAME_3X3);
        disposeStrips(doubled);
        return out;
      },
    }];
  }
}

/** Arguments of {@link VaeMidBlock2D}. */
export interface VaeMidBlockOptions {
  /** Channels (in = out). */
  channels: number;
  /** GroupNorm epsilon (resnets and attention). */
  eps: number;
  /** Resnet activation name. */
  actFn: string;
  /** GroupNorm groups (resnets and attention). */
  groups: number;
  /** Whether the attention exists (`mid_block_add_attention`). */
  addAttention: boolean;
}

/**
 * diffusers' `UNetMidBlock2D` as the VAE builds it: resnet, single-head
 * self-attention over all pixels (GroupNorm first, residual), resnet, with
 * no time embedding; keys `resnets.{0,1}.*`, `attentions.0.*` (old
 * `query` / `key` / `value` / `proj_attn` names are converted on load).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { VaeMidBlock2D } from "./vae_blocks.ts";
 * const mid = new VaeMidBlock2D({ channels: 16, eps: 1e-6, actFn: "silu", groups: 4, addAttention: true })
 *   .initialize(0);
 * const y = mid.forward(tf.zeros([1, 4, 4, 16])); // [1, 4, 4, 16]
 * ```
 */
export class VaeMidBlock2D extends Module {
  /** Two resnets. */
  readonly resnets: ResnetBlock2D[];
  /** One attention (a null entry when `addAttention` is false). */
  readonly attentions: (Attention | null)[];

  /** See {@link VaeMidBlockOptions}. */
  constructor(o: VaeMidBlockOptions) {
    super();
    const r: VaeBlockOptions = {
      ...o,
      numLayers: 1,
      inChannels: o.channels,
      outChannels: o.channels,
    };
    this.resnets = [vaeResnet(r, o.channels), vaeResnet(r, o.channels)];
    this.attentions = [
      o.addAttention
        ? new Attention({
          queryDim: o.channels,
          heads: 1,
          dimHead: o.channels,
          eps: o.eps,
          normNumGroups: o.groups,
          residualConnection: true,
          bias: true,
          fromDeprecatedAttnBlock: true,
        })
        : null,
    ];
  }

  /** NHWC → NHWC, same shape. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      x = this.resnets[0]!.forward(x, null);
      const attention = this.attentions[0];
      if (attention) x = attention.forward(x);
      return this.resnets[1]!.forward(x, null);
    });
  }
}

const ENCODER_BLOCKS = ["DownEncoderBlock2D"] as const;
const DECODER_BLOCKS = ["UpDecoderBlock2D"] as const;

function unsupported(type: string, valid: readonly string[], key: string): ConfigError {
  return new ConfigError(
    `unsupported block type ${JSON.stringify(type)}; valid: ${valid.join(", ")}`,
    { key },
  );
}

/**
 * The encoder block called `type` (diffusers' `get_down_block` for the
 * VAE); an unsupported name is a {@link ConfigError} naming `down_block_types`.
 *
 * @example
 * ```ts
 * import { createEncoderBlock } from "./vae_blocks.ts";
 * const block = createEncoderBlock("DownEncoderBlock2D", { numLayers: 2, inChannels: 128,
 *   outChannels: 128, eps: 1e-6, actFn: "silu", groups: 32, addDownsample: true, downsamplePadding: 0 });
 * ```
 */
export function createEncoderBlock(
  type: string,
  options: DownEncoderBlockOptions,
): DownEncoderBlock2D {
  if (type !== "DownEncoderBlock2D") throw unsupported(type, ENCODER_BLOCKS, "down_block_types");
  return new DownEncoderBlock2D(options);
}

/**
 * The decoder block called `type` (diffusers' `get_up_block` for the VAE);
 * an unsupported name is a {@link ConfigError} naming `up_block_types`.
 *
 * @example
 * ```ts
 * import { createDecoderBlock } from "./vae_blocks.ts";
 * const block = createDecoderBlock("UpDecoderBlock2D", { numLayers: 3, inChannels: 512,
 *   outChannels: 256, eps: 1e-6, actFn: "silu", groups: 32, addUpsample: true });
 * ```
 */
export function createDecoderBlock(
  type: string,
  options: UpDecoderBlockOptions,
): UpDecoderBlock2D {
  if (type !== "UpDecoderBlock2D") throw unsupported(type, DECODER_BLOCKS, "up_block_types");
  return new UpDecoderBlock2D(options);
}
