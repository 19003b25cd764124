/**
 * What {@link AutoencoderKL} and {@link VQModel} share: the mapping from
 * their config keys to the {@link Encoder} / {@link Decoder} arguments (as
 * diffusers passes them), the per-call options, and input checks.
 *
 * @example
 * ```ts
 * import { coderOptions } from "./vae_config.ts";
 * const { encoder, decoder } = coderOptions({
 *   in_channels: 3, out_channels: 3, down_block_types: ["DownEncoderBlock2D"],
 *   up_block_types: ["UpDecoderBlock2D"], block_out_channels: [64], layers_per_block: 1,
 *   act_fn: "silu", norm_num_groups: 32, mid_block_add_attention: true,
 * }, 4);
 * console.log(encoder.outChannels, decoder.inChannels); // 4 4
 * ```
 *
 * @module
 */

import type { tf } from "../lib/tf.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import type { VaeCoderOptions } from "./vae.ts";

/** The config keys that shape the encoder and decoder. */
export interface VaeArchitectureConfig {
  /** Image channels in. */
  readonly in_channels: number;
  /** Image channels out. */
  readonly out_channels: number;
  /** Encoder block class names. */
  readonly down_block_types: readonly string[];
  /** Decoder block class names. */
  readonly up_block_types: readonly string[];
  /** Channels per resolution level. */
  readonly block_out_channels: readonly number[];
  /** Resnets per encoder block. */
  readonly layers_per_block: number;
  /** Resnet activation. */
  readonly act_fn: string;
  /** GroupNorm groups. */
  readonly norm_num_groups: number;
  /** Whether the mid blocks have attention. */
  readonly mid_block_add_attention: boolean;
}

/** Per-call options of the VAE models' encode / decode. */
export interface VaeOptions {
  /** Largest tensor (bytes) a stage may create before it runs on row strips (default: the model's). */
  maxTensorBytes?: number;
}

/**
 * Encoder and decoder arguments for a config with `latent` channels
 * between them (the encoder's output before any doubling); groups that do
 * not divide every level's channels are a {@link ConfigError}.
 *
 * @example
 * ```ts
 * // const { encoder, decoder } = coderOptions(vae.config, vae.config.latent_channels);
 * ```
 */
export function coderOptions(
  c: VaeArchitectureConfig,
  latent: number,
): { encoder: VaeCoderOptions; decoder: VaeCoderOptions } {
  const bad = c.block_out_channels.find((ch) => ch % c.norm_num_groups !== 0);
  if (!(c.norm_num_groups > 0) || bad !== undefined) {
    throw new ConfigError(
      `${c.norm_num_groups} groups do not divide every level's channels (${c.block_out_channels})`,
      { key: "norm_num_groups" },
    );
  }
  const shared = {
    blockOutChannels: c.block_out_channels,
    layersPerBlock: c.layers_per_block,
    normNumGroups: c.norm_num_groups,
    actFn: c.act_fn,
    midBlockAddAttention: c.mid_block_add_attention,
  };
  return {
    encoder: {
      ...shared,
      inChannels: c.in_channels,
      outChannels: latent,
      blockTypes: c.down_block_types,
    },
    decoder: {
      ...shared,
      inChannels: latent,
      outChannels: c.out_channels,
      blockTypes: c.up_block_types,
    },
  };
}

function checkNHWC(where: string, x: tf.Tensor, channels: number, what: string): void {
  if (x.rank !== 4 || x.shape[3] !== channels) {
    throw new ArgumentError(
      `${where}: ${what} must be NHWC [B, H, W, ${channels}], got [${x.shape}]`,
    );
  }
}

/**
 * Throws an {@link ArgumentError} unless `image` is NHWC with `channels` channels.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { checkImage } from "./vae_config.ts";
 * checkImage("AutoencoderKL.encode", tf.zeros([1, 8, 8, 3]), 3); // ok
 * ```
 */
export function checkImage(where: string, image: tf.Tensor, channels: number): void {
  checkNHWC(where, image, channels, "images");
}

/**
 * Throws an {@link ArgumentError} unless `latents` is NHWC with `channels` channels.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { checkLatents } from "./vae_config.ts";
 * checkLatents("AutoencoderKL.decode", tf.zeros([1, 8, 8, 4]), 4); // ok
 * ```
 */
export function checkLatents(where: string, latents: tf.Tensor, channels: number): void {
  checkNHWC(where, latents, channels, "latents");
}
