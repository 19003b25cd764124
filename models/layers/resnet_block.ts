/**
 * diffusers' `ResnetBlock2D`: GroupNorm → act → (up/down) → conv1 →
 * (+ projected time embedding, or GroupNorm then scale/shift by it) →
 * GroupNorm → act → conv2, plus a shortcut (1×1 `conv_shortcut` when the
 * channel count changes), divided by `output_scale_factor`. Dropout is an
 * inference no-op and is left out.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { ResnetBlock2D } from "./resnet_block.ts";
 * const block = new ResnetBlock2D({ inChannels: 32, outChannels: 64, tembChannels: 128, groups: 8 })
 *   .initialize(0);
 * const y = block.forward(tf.zeros([1, 8, 8, 32]), tf.zeros([1, 128])); // [1, 8, 8, 64]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ArgumentError, ConfigError } from "../../lib/errors.ts";
import { Module } from "./module.ts";
import { Conv2d } from "./conv2d.ts";
import { Linear } from "./linear.ts";
import { GroupNorm } from "./group_norm.ts";
import { type Activation, activation, silu } from "./activations.ts";
import { Downsample2D } from "./downsampling.ts";
import { Upsample2D } from "./upsampling.ts";

/** How the time embedding enters: added before norm2, or scale/shift after it. */
export type TimeEmbeddingNorm = "default" | "scale_shift";

/** Options of {@link ResnetBlock2D}, named after diffusers' arguments. */
export interface ResnetBlock2DOptions {
  /** Input channels. */
  inChannels: number;
  /** Output channels (default: `inChannels`). */
  outChannels?: number;
  /** Time-embedding width, or null for a block without one (VAE) (default 512). */
  tembChannels?: number | null;
  /** GroupNorm groups (default 32). */
  groups?: number;
  /** GroupNorm epsilon (default 1e-6). */
  eps?: number;
  /** Activation name (default "swish"). */
  nonLinearity?: string;
  /** See {@link TimeEmbeddingNorm} (default "default"). */
  timeEmbeddingNorm?: TimeEmbeddingNorm;
  /** The output is divided by this (default 1). */
  outputScaleFactor?: number;
  /** Force (or forbid) the 1×1 shortcut conv (default: when channels change). */
  useInShortcut?: boolean;
  /** Nearest 2× upsample after the first activation (default false). */
  up?: boolean;
  /** 2×2 average-pool downsample after the first activation (default false). */
  down?: boolean;
}

/**
 * The UNet's residual block; keys `norm1`, `conv1`, `time_emb_proj`,
 * `norm2`, `conv2`, `conv_shortcut`.
 *
 * @example
 * ```ts
 * import { ResnetBlock2D } from "./resnet_block.ts";
 * const b = new ResnetBlock2D({ inChannels: 128, tembChannels: 512, timeEmbeddingNorm: "scale_shift" });
 * ```
 */
export class ResnetBlock2D extends Module {
  /** Norm of the input. */
  readonly norm1: GroupNorm;
  /** First 3×3 conv. */
  readonly conv1: Conv2d;
  /** Projects the (activated) time embedding to out (or 2·out for scale_shift) channels. */
  readonly time_emb_proj: Linear | null;
  /** Norm before the second conv. */
  readonly norm2: GroupNorm;
  /** Second 3×3 conv. */
  readonly conv2: Conv2d;
  /** 1×1 conv on the residual path, when channels change. */
  readonly conv_shortcut: Conv2d | null;
  readonly #act: Activation;
  readonly #timeEmbeddingNorm: TimeEmbeddingNorm;
  readonly #outputScaleFactor: number;
  readonly #resample: Upsample2D | Downsample2D | null;

  /** See {@link ResnetBlock2DOptions}. */
  constructor(options: ResnetBlock2DOptions) {
    super();
    const {
      inChannels,
      outChannels = inChannels,
      tembChannels = 512,
      groups = 32,
      eps = 1e-6,
      timeEmbeddingNorm = "default",
    } = options;
    if (timeEmbeddingNorm !== "default" && timeEmbeddingNorm !== "scale_shift") {
      throw new ConfigError(
        `unsupported time embedding norm ${
          JSON.stringify(timeEmbeddingNorm)
        }; valid: default, scale_shift`,
        { key: "resnet_time_scale_shift" },
      );
    }
    this.norm1 = new GroupNorm(groups, inChannels, eps);
    this.conv1 = new Conv2d(inChannels, outChannels, 3, { padding: 1 });
    this.time_emb_proj = tembChannels === null ? null : new Linear(
      tembChannels,
      timeEmbeddingNorm === "scale_shift" ? 2 * outChannels : outChannels,
    );
    this.norm2 = new GroupNorm(groups, outChannels, eps);
    this.conv2 = new Conv2d(outChannels, outChannels, 3, { padding: 1 });
    this.conv_shortcut = (options.useInShortcut ?? inChannels !== outChannels)
      ? new Conv2d(inChannels, outChannels, 1)
      : null;
    this.#act = activation(options.nonLinearity ?? "swish");
    this.#timeEmbeddingNorm = timeEmbeddingNorm;
    this.#outputScaleFactor = options.outputScaleFactor ?? 1;
    // Private, so not part of the state dict: neither resampler has weights here.
    this.#resample = options.up
      ? new Upsample2D(inChannels)
      : options.down
      ? new Downsample2D(inChannels)
      : null;
  }

  /** norm then activation, with GroupNorm's fused SiLU when the activation is SiLU. */
  #normAct(norm: GroupNorm, x: tf.Tensor4D): tf.Tensor4D {
    return this.#act === silu ? norm.forward(x, true) : this.#act(norm.forward(x)) as tf.Tensor4D;
  }

  /** `x` NHWC [B, H, W, in], `temb` [B, tembChannels] (or null) → [B, H', W', out]. */
  forward(x: tf.Tensor4D, temb: tf.Tensor2D | null): tf.Tensor4D {
    return tf.tidy(() => {
      let input = x;
      let h = this.#normAct(this.norm1, x);
      if (this.#resample) {
        input = this.#resample.forward(input);
        h = this.#resample.forward(h);
      }
      h = this.conv1.forward(h);
      let t: tf.Tensor | null = null;
      if (this.time_emb_proj) {
        if (!temb) throw new ArgumentError("ResnetBlock2D: this block needs a time embedding");
        t = this.time_emb_proj.forward(this.#act(temb));
        t = tf.reshape(t, [t.shape[0]!, 1, 1, t.shape[1]!]);
      }
      if (this.#timeEmbeddingNorm === "scale_shift" && t) {
        const [scale, shift] = tf.split(t, 2, 3);
        h = this.norm2.forward(h);
        h = this.#act(tf.add(tf.mul(h, tf.add(scale!, 1)), shift!)) as tf.Tensor4D;
      } else {
        h = this.#normAct(this.norm2, t ? tf.add(h, t) : h);
      }
      h = this.conv2.forward(h);
      if (this.conv_shortcut) input = this.conv_shortcut.forward(input);
      const out = tf.add(input, h);
      return (this.#outputScaleFactor === 1
        ? out
        : tf.div(out, this.#outputScaleFactor)) as tf.Tensor4D;
    });
  }
}
