/**
 * `AutoencoderKL`: the KL-regularised VAE of Stable Diffusion (`vae`) and of
 * CompVis/ldm-text2im-large-256 (whose `vqvae` is in fact this class), in
 * NHWC on tfjs (diffusers 0.27.2's `models/autoencoders/autoencoder_kl.py`).
 *
 * encode: Encoder → quant_conv → {@link DiagonalGaussianDistribution} (mean
 * and clamped log-variance). decode: post_quant_conv → Decoder. Latents for
 * a diffusion model are `sample · scaling_factor`; decode takes unscaled
 * latents, as diffusers' does.
 *
 * Large images: every step whose largest tensor would exceed
 * {@link AutoencoderKL.maxTensorBytes} runs on row strips with halos and
 * whole-map GroupNorm statistics, so the SD VAE decodes a 64×64 latent to
 * 512×512 with no tensor near lavapipe's 128 MiB WebGPU limit and the same
 * result as the one-tensor pass (diffusers' `enable_tiling` instead blends
 * independent tiles and changes the image). The default budget is half the
 * WebGPU device's binding limit on webgpu (up to 1 GiB), else 64 MiB.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Generator } from "../lib/random.ts";
 * import { AutoencoderKL } from "./autoencoder_kl.ts";
 * const vae = await AutoencoderKL.fromPretrained("../shared/fixtures/pipelines/sd_tiny", { subfolder: "vae" });
 * const posterior = vae.encode(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D);
 * const latents = posterior.sample(new Generator().manualSeed(0)); // [1, 16, 16, 4]
 * const image = vae.decode(latents); // [1, 32, 32, 3], about [-1, 1]
 * tf.dispose([latents, image]);
 * posterior.dispose();
 * vae.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import type { Generator } from "../lib/random.ts";
import { Module } from "./layers/module.ts";
import { Conv2d } from "./layers/conv2d.ts";
import { defaultMaxTensorBytes } from "./row_strips.ts";
import { Decoder, Encoder } from "./vae.ts";
import { DiagonalGaussianDistribution } from "./diagonal_gaussian.ts";
import { checkImage, checkLatents, coderOptions, type VaeOptions } from "./vae_config.ts";
import { loadPretrained, type PretrainedOptions } from "./pretrained.ts";

/** `config.json` of an `AutoencoderKL`, keys exactly as diffusers writes them. */
export type AutoencoderKLConfig = {
  /** Image channels in. */
  in_channels: number;
  /** Image channels out. */
  out_channels: number;
  /** Encoder block class names (DownEncoderBlock2D). */
  down_block_types: string[];
  /** Decoder block class names (UpDecoderBlock2D). */
  up_block_types: string[];
  /** Channels per resolution level. */
  block_out_channels: number[];
  /** Resnets per encoder block (decoder blocks have one more). */
  layers_per_block: number;
  /** Resnet activation. */
  act_fn: string;
  /** Latent channels. */
  latent_channels: number;
  /** GroupNorm groups. */
  norm_num_groups: number;
  /** Training resolution (informational). */
  sample_size: number | number[];
  /** Latents for the diffusion model are `sample · scaling_factor`. */
  scaling_factor: number;
  /** Per-channel latent means (SDXL-style configs; informational). */
  latents_mean: number[] | null;
  /** Per-channel latent standard deviations (informational). */
  latents_std: number[] | null;
  /** Run in float32 under fp16 pipelines (informational: everything is float32 here). */
  force_upcast: boolean;
  /** Whether quant_conv exists (newer diffusers; default true). */
  use_quant_conv: boolean;
  /** Whether post_quant_conv exists (newer diffusers; default true). */
  use_post_quant_conv: boolean;
  /** Whether the mid blocks have attention (newer diffusers; default true). */
  mid_block_add_attention: boolean;
};

/** Options of {@link AutoencoderKL.fromConfig}. */
export interface AutoencoderKLFromConfigOptions {
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/** Options of {@link AutoencoderKL.forward}. */
export interface AutoencoderKLForwardOptions extends VaeOptions {
  /** Decode a sample of the posterior instead of its mean (default false). */
  samplePosterior?: boolean;
  /** Generator for that sample. */
  generator?: Generator;
}

/**
 * The KL VAE; field names are the state-dict keys (`encoder.*`, `decoder.*`,
 * `quant_conv`, `post_quant_conv`).
 *
 * @example
 * ```ts
 * import { AutoencoderKL } from "./autoencoder_kl.ts";
 * const sd = AutoencoderKL.fromConfig({ block_out_channels: [128, 256, 512, 512], layers_per_block: 2,
 *   down_block_types: Array(4).fill("DownEncoderBlock2D"), up_block_types: Array(4).fill("UpDecoderBlock2D") });
 * console.log(sd.parameterCount()); // 83,653,863
 * sd.dispose();
 * ```
 */
export class AutoencoderKL extends Module {
  /** Config keys, defaults (diffusers 0.27.2's, plus newer optional keys) and kinds. */
  static readonly spec: ConfigSpec<AutoencoderKLConfig> = defineConfig<AutoencoderKLConfig>(
    "AutoencoderKL",
    "config.json",
    {
      in_channels: 3,
      out_channels: 3,
      down_block_types: ["DownEncoderBlock2D"],
      up_block_types: ["UpDecoderBlock2D"],
      block_out_channels: [64],
      layers_per_block: 1,
      act_fn: "silu",
      latent_channels: 4,
      norm_num_groups: 32,
      sample_size: 32,
      scaling_factor: 0.18215,
      latents_mean: null,
      latents_std: null,
      force_upcast: true,
      use_quant_conv: true,
      use_post_quant_conv: true,
      mid_block_add_attention: true,
    },
    {
      in_channels: ["integer"],
      out_channels: ["integer"],
      block_out_channels: ["integer[]"],
      layers_per_block: ["integer"],
      latent_channels: ["integer"],
      norm_num_groups: ["integer"],
      sample_size: ["integer", "integer[]"],
      latents_mean: ["number[]", "null"],
      latents_std: ["number[]", "null"],
    },
  );

  /** The resolved, frozen config. */
  readonly config: Readonly<AutoencoderKLConfig>;
  /** Image → 2·latent channels (mean, log-variance). */
  readonly encoder: Encoder;
  /** Latent → image. */
  readonly decoder: Decoder;
  /** 1×1 conv on the moments, or null (`use_quant_conv` false). */
  readonly quant_conv: Conv2d | null;
  /** 1×1 conv on the latents before decoding, or null (`use_post_quant_conv` false). */
  readonly post_quant_conv: Conv2d | null;
  /**
   * Largest tensor (bytes) a step may create before it runs on row strips;
   * null (the default) picks it per backend (`defaultMaxTensorBytes`), a
   * per-call `maxTensorBytes` option overrides it, Infinity never splits.
   */
  maxTensorBytes: number | null = null;

  /** Builds the architecture with no weights; use {@link AutoencoderKL.fromConfig} or {@link AutoencoderKL.fromPretrained}. */
  constructor(config: Readonly<AutoencoderKLConfig>) {
    super();
    this.config = config;
    const c = config;
    const latent = c.latent_channels;
    const { encoder, decoder } = coderOptions(c, latent);
    this.encoder = new Encoder({ ...encoder, doubleZ: true });
    this.decoder = new Decoder(decoder);
    this.quant_conv = c.use_quant_conv ? new Conv2d(2 * latent, 2 * latent, 1) : null;
    this.post_quant_conv = c.use_post_quant_conv ? new Conv2d(latent, latent, 1) : null;
  }

  /**
   * Builds the model from `config.json` content plus overrides, with random
   * weights initialised like PyTorch's defaults (seeded; for benchmarks and
   * tests).
   *
   * @example
   * ```ts
   * import { AutoencoderKL } from "./autoencoder_kl.ts";
   * const json = JSON.parse(await Deno.readTextFile("vae/config.json"));
   * const vae = AutoencoderKL.fromConfig(json, {}, { seed: 1 });
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
    options: AutoencoderKLFromConfigOptions = {},
  ): AutoencoderKL {
    return new AutoencoderKL(loadConfig(AutoencoderKL.spec, json, overrides)).initialize(
      options.seed ?? 0,
    );
  }

  /**
   * Loads a model from a local folder or a Hub id: `config.json` and the
   * weights (safetensors preferred, else PyTorch `.bin`; shards; `variant`),
   * one tensor at a time. Every key must match (old attention key names are
   * converted).
   *
   * @example
   * ```ts
   * import { AutoencoderKL } from "./autoencoder_kl.ts";
   * const vae = await AutoencoderKL.fromPretrained("runwayml/stable-diffusion-v1-5", { subfolder: "vae" });
   * ```
   */
  static fromPretrained(idOrDir: string, options: PretrainedOptions = {}): Promise<AutoencoderKL> {
    return loadPretrained(idOrDir, options, AutoencoderKL.spec, (c) => new AutoencoderKL(c));
  }

  /** The byte budget of one call. */
  #budget(options: VaeOptions): number {
    return options.maxTensorBytes ?? this.maxTensorBytes ?? defaultMaxTensorBytes();
  }

  /**
   * Encodes NHWC images [B, H, W, in_channels] (in [-1, 1]) to the latent
   * posterior [B, H/f, W/f, latent_channels] (f = 2^(levels-1)). The caller
   * disposes the returned distribution. Reads nothing back to the host.
   *
   * @example
   * ```ts
   * // const posterior = vae.encode(image);
   * // const latents = tf.mul(posterior.sample(generator), vae.config.scaling_factor);
   * ```
   */
  encode(image: tf.Tensor4D, options: VaeOptions = {}): DiagonalGaussianDistribution {
    checkImage("AutoencoderKL.encode", image, this.config.in_channels);
    const moments = tf.tidy(() => {
      const h = this.encoder.forward(image, this.#budget(options));
      return this.quant_conv ? this.quant_conv.forward(h) : h;
    });
    try {
      return new DiagonalGaussianDistribution(moments);
    } finally {
      moments.dispose();
    }
  }

  /**
   * Decodes NHWC latents [B, h, w, latent_channels] (unscaled: divide a
   * diffusion model's latents by `scaling_factor` first) to images
   * [B, h·f, w·f, out_channels], about [-1, 1]. Large outputs run on row
   * strips automatically (see the module doc). Reads nothing back to the host.
   *
   * @example
   * ```ts
   * // const image = vae.decode(tf.div(latents, vae.config.scaling_factor));
   * ```
   */
  decode(latents: tf.Tensor4D, options: VaeOptions = {}): tf.Tensor4D {
    checkLatents("AutoencoderKL.decode", latents, this.config.latent_channels);
    return tf.tidy(() => {
      const z = this.post_quant_conv ? this.post_quant_conv.forward(latents) : latents;
      return this.decoder.forward(z, this.#budget(options));
    });
  }

  /**
   * Encodes and decodes (diffusers' `forward`): the posterior's mean, or a
   * sample of it with `samplePosterior`, is decoded.
   *
   * @example
   * ```ts
   * // const reconstruction = vae.forward(image);
   * ```
   */
  forward(image: tf.Tensor4D, options: AutoencoderKLForwardOptions = {}): tf.Tensor4D {
    const posterior = this.encode(image, options);
    try {
      const z = options.samplePosterior ? posterior.sample(options.generator) : posterior.mode();
      try {
        return this.decode(z, options);
      } finally {
        z.dispose();
      }
    } finally {
      posterior.dispose();
    }
  }
}
