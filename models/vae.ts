/**
 * diffusers' VAE `Encoder` and `Decoder` (`models/autoencoders/vae.py`),
 * shared by {@link AutoencoderKL} and {@link VQModel}, in NHWC.
 *
 * Encoder: conv_in → DownEncoderBlock2D × n (each but the last halves H and
 * W) → mid block (resnet, single-head attention, resnet) → GroupNorm → SiLU
 * → conv_out (2·latent channels with `doubleZ`: mean and log-variance).
 * Decoder: conv_in → mid block → UpDecoderBlock2D × n (each but the last
 * doubles H and W) → GroupNorm → SiLU → conv_out.
 *
 * Large images: each step (a block's resnets, its up/down sampler, the
 * decoder's output head) whose largest tensor would exceed `maxTensorBytes`
 * runs on row strips (strip_steps.ts, row_strips.ts), exactly (halo rows for
 * convs, GroupNorm statistics over the whole map), so no tensor exceeds the
 * budget while the result equals the one-tensor pass. The mid block (at the
 * lowest resolution, with the attention) always runs on one tensor; its
 * attention chunks its own score blocks (64 MiB).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Decoder } from "./vae.ts";
 * const decoder = new Decoder({ inChannels: 4, outChannels: 3, blockTypes: ["UpDecoderBlock2D", "UpDecoderBlock2D"],
 *   blockOutChannels: [8, 16], layersPerBlock: 1, normNumGroups: 4, actFn: "silu", midBlockAddAttention: true })
 *   .initialize(0);
 * const image = decoder.forward(tf.zeros([1, 8, 8, 4])); // [1, 16, 16, 3]
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { Conv2d } from "./layers/conv2d.ts";
import { GroupNorm } from "./layers/group_norm.ts";
import { silu } from "./layers/activations.ts";
import {
  convStrips,
  defaultMaxTensorBytes,
  disposeStrips,
  float32Bytes,
  groupNormStrips,
  SAME_3X3,
} from "./row_strips.ts";
import { runSteps, type StripStep } from "./strip_steps.ts";
import {
  createDecoderBlock,
  createEncoderBlock,
  type DownEncoderBlock2D,
  type UpDecoderBlock2D,
  VaeMidBlock2D,
} from "./vae_blocks.ts";

/** Arguments of {@link Encoder} and {@link Decoder} (diffusers' arguments, camelCase). */
export interface VaeCoderOptions {
  /** Channels in (image channels for the encoder, latent channels for the decoder). */
  inChannels: number;
  /** Channels out (latent channels for the encoder, image channels for the decoder). */
  outChannels: number;
  /** Block class names: encoder outermost first, decoder innermost first. */
  blockTypes: readonly string[];
  /** Channels per resolution level, outermost first. */
  blockOutChannels: readonly number[];
  /** Resnets per encoder block (decoder blocks have one more). */
  layersPerBlock: number;
  /** GroupNorm groups. */
  normNumGroups: number;
  /** Resnet activation name (the final activation is always SiLU, as in diffusers). */
  actFn: string;
  /** Whether the mid block has its attention. */
  midBlockAddAttention: boolean;
}

/** Options of {@link Encoder}: {@link VaeCoderOptions} plus `doubleZ`. */
export interface EncoderOptions extends VaeCoderOptions {
  /** Output 2·outChannels (mean and log-variance), as AutoencoderKL does. */
  doubleZ: boolean;
}

/** The VAE's fixed epsilon (diffusers hard-codes 1e-6 in Encoder and Decoder). */
const EPS = 1e-6;

function checkArchitecture(o: VaeCoderOptions, typesKey: string): void {
  const n = o.blockOutChannels.length;
  if (n === 0 || o.blockOutChannels.some((c) => !Number.isInteger(c) || c <= 0)) {
    throw new ConfigError("must list at least one positive channel count", {
      key: "block_out_channels",
    });
  }
  if (o.blockTypes.length !== n) {
    throw new ConfigError(
      `lists ${o.blockTypes.length} blocks but block_out_channels has ${n} levels`,
      { key: typesKey },
    );
  }
  if (!Number.isInteger(o.layersPerBlock) || o.layersPerBlock < 1) {
    throw new ConfigError(`must be a positive integer, got ${o.layersPerBlock}`, {
      key: "layers_per_block",
    });
  }
}

/**
 * The VAE encoder; keys `conv_in`, `down_blocks.i.*`, `mid_block.*`,
 * `conv_norm_out`, `conv_out`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Encoder } from "./vae.ts";
 * const encoder = new Encoder({ inChannels: 3, outChannels: 4, blockTypes: ["DownEncoderBlock2D", "DownEncoderBlock2D"],
 *   blockOutChannels: [8, 16], layersPerBlock: 1, normNumGroups: 4, actFn: "silu", midBlockAddAttention: true,
 *   doubleZ: true }).initialize(0);
 * const moments = encoder.forward(tf.zeros([1, 16, 16, 3])); // [1, 8, 8, 8]
 * ```
 */
export class Encoder extends Module {
  /** 3×3 conv from the image to the first level's channels. */
  readonly conv_in: Conv2d;
  /** Down blocks, outermost first. */
  readonly down_blocks: DownEncoderBlock2D[];
  /** Bottleneck with self-attention. */
  readonly mid_block: VaeMidBlock2D;
  /** Final norm (followed by SiLU). */
  readonly conv_norm_out: GroupNorm;
  /** 3×3 conv to the latent channels (doubled with `doubleZ`). */
  readonly conv_out: Conv2d;
  readonly #firstChannels: number;

  /** See {@link EncoderOptions}; an impossible architecture is a {@link ConfigError}. */
  constructor(o: EncoderOptions) {
    super();
    checkArchitecture(o, "down_block_types");
    const channels = o.blockOutChannels;
    const last = channels[channels.length - 1]!;
    const shared = { eps: EPS, actFn: o.actFn, groups: o.normNumGroups };
    this.conv_in = new Conv2d(o.inChannels, channels[0]!, 3, { padding: 1 });
    this.down_blocks = o.blockTypes.map((type, i) =>
      createEncoderBlock(type, {
        ...shared,
        numLayers: o.layersPerBlock,
        inChannels: channels[Math.max(i - 1, 0)]!,
        outChannels: channels[i]!,
        addDownsample: i < channels.length - 1,
        downsamplePadding: 0,
      })
    );
    this.mid_block = new VaeMidBlock2D({
      ...shared,
      channels: last,
      addAttention: o.midBlockAddAttention,
    });
    this.conv_norm_out = new GroupNorm(o.normNumGroups, last, EPS);
    this.conv_out = new Conv2d(last, o.doubleZ ? 2 * o.outChannels : o.outChannels, 3, {
      padding: 1,
    });
    this.#firstChannels = channels[0]!;
  }

  /**
   * NHWC image [B, H, W, in] → [B, H/f, W/f, out or 2·out] (f = 2^(levels-1)).
   * Steps whose largest tensor exceeds `maxTensorBytes` run on row strips.
   * Runs in one `tf.tidy`; reads nothing back to the host.
   */
  forward(x: tf.Tensor4D, maxTensorBytes: number = defaultMaxTensorBytes()): tf.Tensor4D {
    return tf.tidy(() => {
      const h = runSteps(x, this.#steps(x.shape[0], x.shape[2]), maxTensorBytes);
      const mid = this.mid_block.forward(h);
      return this.conv_out.forward(this.conv_norm_out.forward(mid, true));
    });
  }

  /** conv_in and the down blocks as strip steps, for images `batch` × `width`. */
  #steps(batch: number, width: number): StripStep[] {
    const convIn: StripStep = {
      rowBytes: float32Bytes([batch, 1, width, this.#firstChannels]),
      scale: 1,
      outScale: 1,
      multiple: 1,
      plain: (x) => this.conv_in.forward(x),
      strips: (x) => convStrips(this.conv_in, x, SAME_3X3),
    };
    return [
      convIn,
      ...this.down_blocks.flatMap((block, l) => block.steps(batch, Math.ceil(width / 2 ** l))),
    ];
  }
}

/**
 * The VAE decoder; keys `conv_in`, `mid_block.*`, `up_blocks.i.*`,
 * `conv_norm_out`, `conv_out`.
 *
 * @example
 * ```ts
 * import { Decoder } from "./vae.ts";
 * const sd = new Decoder({ inChannels: 4, outChannels: 3, blockTypes: Array(4).fill("UpDecoderBlock2D"),
 *   blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, normNumGroups: 32, actFn: "silu",
 *   midBlockAddAttention: true });
 * console.log(sd.parameterCount()); // 49,490,179
 * ```
 */
export class Decoder extends Module {
  /** 3×3 conv from the latent to the last level's channels. */
  readonly conv_in: Conv2d;
  /** Bottleneck with self-attention. */
  readonly mid_block: VaeMidBlock2D;
  /** Up blocks, innermost first. */
  readonly up_blocks: UpDecoderBlock2D[];
  /** Final norm (followed by SiLU). */
  readonly conv_norm_out: GroupNorm;
  /** 3×3 conv to the image channels. */
  readonly conv_out: Conv2d;
  readonly #firstChannels: number;

  /** See {@link VaeCoderOptions}; an impossible architecture is a {@link ConfigError}. */
  constructor(o: VaeCoderOptions) {
    super();
    checkArchitecture(o, "up_block_types");
    const reversed = [...o.blockOutChannels].reverse();
    const shared = { eps: EPS, actFn: o.actFn, groups: o.normNumGroups };
    this.conv_in = new Conv2d(o.inChannels, reversed[0]!, 3, { padding: 1 });
    this.mid_block = new VaeMidBlock2D({
      ...shared,
      channels: reversed[0]!,
      addAttention: o.midBlockAddAttention,
    });
    this.up_blocks = o.blockTypes.map((type, i) =>
      createDecoderBlock(type, {
        ...shared,
        numLayers: o.layersPerBlock + 1,
        inChannels: reversed[Math.max(i - 1, 0)]!,
        outChannels: reversed[i]!,
        addUpsample: i < reversed.length - 1,
      })
    );
    const first = o.blockOutChannels[0]!;
    this.conv_norm_out = new GroupNorm(o.normNumGroups, first, EPS);
    this.conv_out = new Conv2d(first, o.outChannels, 3, { padding: 1 });
    this.#firstChannels = first;
  }

  /**
   * NHWC latent [B, h, w, in] → image [B, h·f, w·f, out] (f = 2^(levels-1)).
   * Steps whose largest tensor exceeds `maxTensorBytes` run on row strips,
   * exactly; only the returned image is one tensor whatever its size. Runs
   * in one `tf.tidy`; reads nothing back to the host.
   */
  forward(z: tf.Tensor4D, maxTensorBytes: number = defaultMaxTensorBytes()): tf.Tensor4D {
    return tf.tidy(() => {
      const h = this.mid_block.forward(this.conv_in.forward(z));
      return runSteps(h, this.#steps(h.shape[0], h.shape[2]), maxTensorBytes);
    });
  }

  /** The up blocks and the output head as strip steps, for latent maps `batch` × `width`. */
  #steps(batch: number, width: number): StripStep[] {
    const levels = this.up_blocks.length;
    const outputWidth = width * 2 ** (levels - 1);
    const head: StripStep = {
      rowBytes: float32Bytes([batch, 1, outputWidth, this.#firstChannels]),
      scale: 1,
      outScale: 1,
      multiple: 1,
      plain: (x) => this.conv_out.forward(this.conv_norm_out.forward(x, true)),
      strips: (x) => {
        const normed = groupNormStrips(this.conv_norm_out, x, silu);
        const out = convStrips(this.conv_out, normed, SAME_3X3);
        disposeStrips(normed);
        return out;
      },
    };
    return [
      ...this.up_blocks.flatMap((block, i) => block.steps(batch, width * 2 ** i)),
      head,
    ];
  }
}
