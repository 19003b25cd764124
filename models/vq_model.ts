/**
 * `VQModel`: the VQ-VAE of CompVis/ldm-celebahq-256, in NHWC on tfjs
 * (diffusers 0.27.2's `models/vq_model.py`).
 *
 * encode: Encoder → quant_conv → h (before quantisation, as diffusers
 * returns it). decode: quantize (nearest codebook entries; skipped with
 * `forceNotQuantize`) → post_quant_conv → Decoder. Large outputs run on row
 * strips like {@link AutoencoderKL}'s. `norm_type: "spatial"` (MoVQ's
 * SpatialNorm decoder) is not supported and is a {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { VQModel } from "./vq_model.ts";
 * const vq = await VQModel.fromPretrained("../shared/fixtures/models/vq_model");
 * const h = vq.encode(tf.zeros([1, 32, 32, 3]) as tf.Tensor4D); // [1, 16, 16, 3]
 * const image = vq.decode(h); // quantised, then decoded: [1, 32, 32, 3]
 * tf.dispose([h, image]);
 * vq.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { Conv2d } from "./layers/conv2d.ts";
import { defaultMaxTensorBytes } from "./row_strips.ts";
import { Decoder, Encoder } from "./vae.ts";
import { VectorQuantizer } from "./vector_quantizer.ts";
import { checkImage, checkLatents, coderOptions, type VaeOptions } from "./vae_config.ts";
import { loadPretrained, type PretrainedOptions } from "./pretrained.ts";

/** `config.json` of a `VQModel`, keys exactly as diffusers writes them. */
export type VQModelConfig = {
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
  /** Channels of the encoder output and decoder input. */
  latent_channels: number;
  /** Training resolution (informational). */
  sample_size: number | number[];
  /** Codebook size. */
  num_vq_embeddings: number;
  /** GroupNorm groups. */
  norm_num_groups: number;
  /** Codebook vector width (null: latent_channels). */
  vq_embed_dim: number | null;
  /** Latents for the diffusion model are `h · scaling_factor`. */
  scaling_factor: number;
  /** `group` (supported) or `spatial` (MoVQ; not supported). */
  norm_type: string;
  /** Whether the mid blocks have attention. */
  mid_block_add_attention: boolean;
  /** diffusers decodes indices with `force_not_quantize` (here: {@link VQModel.decodeIndices}). */
  lookup_from_codebook: boolean;
  /** Informational: everything runs in float32 here. */
  force_upcast: boolean;
};

/** Options of {@link VQModel.fromConfig}. */
export interface VQModelFromConfigOptions {
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/** Options of {@link VQModel.decode}. */
export interface VQDecodeOptions extends VaeOptions {
  /** Decode `h` as given, without snapping it to the codebook (default false). */
  forceNotQuantize?: boolean;
}

/**
 * The VQ-VAE; field names are the state-dict keys (`encoder.*`,
 * `quant_conv`, `quantize.embedding.weight`, `post_quant_conv`, `decoder.*`).
 * `vq.quantize.forward(h)` is diffusers' `vq.quantize(h)`.
 *
 * @example
 * ```ts
 * import { VQModel } from "./vq_model.ts";
 * const celebahq = VQModel.fromConfig({ block_out_channels: [128, 256, 512], layers_per_block: 2,
 *   num_vq_embeddings: 8192, down_block_types: Array(3).fill("DownEncoderBlock2D"),
 *   up_block_types: Array(3).fill("UpDecoderBlock2D") });
 * celebahq.dispose();
 * ```
 */
export class VQModel extends Module {
  /** Config keys, defaults (diffusers 0.27.2's) and kinds. */
  static readonly spec: ConfigSpec<VQModelConfig> = defineConfig<VQModelConfig>(
    "VQModel",
    "config.json",
    {
      in_channels: 3,
      out_channels: 3,
      down_block_types: ["DownEncoderBlock2D"],
      up_block_types: ["UpDecoderBlock2D"],
      block_out_channels: [64],
      layers_per_block: 1,
      act_fn: "silu",
      latent_channels: 3,
      sample_size: 32,
      num_vq_embeddings: 256,
      norm_num_groups: 32,
      vq_embed_dim: null,
      scaling_factor: 0.18215,
      norm_type: "group",
      mid_block_add_attention: true,
      lookup_from_codebook: false,
      force_upcast: false,
    },
    {
      in_channels: ["integer"],
      out_channels: ["integer"],
      block_out_channels: ["integer[]"],
      layers_per_block: ["integer"],
      latent_channels: ["integer"],
      sample_size: ["integer", "integer[]"],
      num_vq_embeddings: ["integer"],
      norm_num_groups: ["integer"],
      vq_embed_dim: ["integer", "null"],
    },
  );

  /** The resolved, frozen config. */
  readonly config: Readonly<VQModelConfig>;
  /** Image → latent_channels. */
  readonly encoder: Encoder;
  /** 1×1 conv latent_channels → vq_embed_dim. */
  readonly quant_conv: Conv2d;
  /** The codebook. */
  readonly quantize: VectorQuantizer;
  /** 1×1 conv vq_embed_dim → latent_channels. */
  readonly post_quant_conv: Conv2d;
  /** Latent → image. */
  readonly decoder: Decoder;
  /**
   * Largest tensor (bytes) a step may create before it runs on row strips
   * (and the most the codebook distances take at once); null (the default)
   * picks it per backend (`defaultMaxTensorBytes`), a per-call
   * `maxTensorBytes` option overrides it.
   */
  maxTensorBytes: number | null = null;

  /** Builds the architecture with no weights; use {@link VQModel.fromConfig} or {@link VQModel.fromPretrained}. */
  constructor(config: Readonly<VQModelConfig>) {
    super();
    this.config = config;
    const c = config;
    if (c.norm_type !== "group") {
      throw new ConfigError(
        `unsupported norm_type ${
          JSON.stringify(c.norm_type)
        } (MoVQ's SpatialNorm decoder); valid: group`,
        { key: "norm_type" },
      );
    }
    const latent = c.latent_channels;
    const dim = c.vq_embed_dim ?? latent;
    const { encoder, decoder } = coderOptions(c, latent);
    this.encoder = new Encoder({ ...encoder, doubleZ: false });
    this.quant_conv = new Conv2d(latent, dim, 1);
    this.quantize = new VectorQuantizer(c.num_vq_embeddings, dim, 0.25);
    this.post_quant_conv = new Conv2d(dim, latent, 1);
    this.decoder = new Decoder(decoder);
  }

  /**
   * Builds the model from `config.json` content plus overrides, with random
   * weights (seeded; the codebook uniform(±1/n) as diffusers).
   *
   * @example
   * ```ts
   * import { VQModel } from "./vq_model.ts";
   * const vq = VQModel.fromConfig({ num_vq_embeddings: 64 }, {}, { seed: 1 });
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
    options: VQModelFromConfigOptions = {},
  ): VQModel {
    return new VQModel(loadConfig(VQModel.spec, json, overrides)).initialize(options.seed ?? 0);
  }

  /**
   * Loads a model from a local folder or a Hub id (config and weights, as
   * {@link AutoencoderKL.fromPretrained}; old attention key names are converted).
   *
   * @example
   * ```ts
   * import { VQModel } from "./vq_model.ts";
   * const vq = await VQModel.fromPretrained("CompVis/ldm-celebahq-256", { subfolder: "vqvae" });
   * ```
   */
  static fromPretrained(idOrDir: string, options: PretrainedOptions = {}): Promise<VQModel> {
    return loadPretrained(idOrDir, options, VQModel.spec, (c) => new VQModel(c));
  }

  /** The byte budget of one call. */
  #budget(options: VaeOptions): number {
    return options.maxTensorBytes ?? this.maxTensorBytes ?? defaultMaxTensorBytes();
  }

  /**
   * NHWC images [B, H, W, in_channels] → h [B, H/f, W/f, vq_embed_dim], the
   * quant_conv output before quantisation (diffusers' `encode(x).latents`).
   *
   * @example
   * ```ts
   * // const h = vq.encode(image);
   * ```
   */
  encode(image: tf.Tensor4D, options: VaeOptions = {}): tf.Tensor4D {
    checkImage("VQModel.encode", image, this.config.in_channels);
    return tf.tidy(() =>
      this.quant_conv.forward(
        this.encoder.forward(image, this.#budget(options)),
      )
    );
  }

  /**
   * Quantises `h` [B, h, w, vq_embed_dim] (unless `forceNotQuantize`), then
   * decodes it to images [B, h·f, w·f, out_channels]. Reads nothing back to
   * the host.
   *
   * @example
   * ```ts
   * // const image = vq.decode(tf.div(latents, vq.config.scaling_factor));
   * ```
   */
  decode(h: tf.Tensor4D, options: VQDecodeOptions = {}): tf.Tensor4D {
    checkLatents("VQModel.decode", h, this.quantize.embedding.weight.torchShape[1]!);
    const maxBytes = this.#budget(options);
    return tf.tidy(() => {
      const quant = options.forceNotQuantize ? h : this.quantize.forward(h, maxBytes).quant;
      return this.decoder.forward(this.post_quant_conv.forward(quant), maxBytes);
    });
  }

  /**
   * Decodes codebook indices (as {@link VectorQuantizer.forward} returns
   * them) laid out as `shape` [B, h, w, vq_embed_dim]: diffusers' `decode`
   * with `lookup_from_codebook` and `force_not_quantize`.
   *
   * @example
   * ```ts
   * // const { indices } = vq.quantize.forward(h);
   * // const image = vq.decodeIndices(indices, h.shape);
   * ```
   */
  decodeIndices(
    indices: tf.Tensor1D | readonly number[],
    shape: readonly [number, number, number, number],
    options: VaeOptions = {},
  ): tf.Tensor4D {
    return tf.tidy(() =>
      this.decode(this.quantize.codebookEntry(indices, shape), {
        ...options,
        forceNotQuantize: true,
      })
    );
  }

  /**
   * Encodes and decodes (re-quantising), diffusers' `forward`.
   *
   * @example
   * ```ts
   * // const reconstruction = vq.forward(image);
   * ```
   */
  forward(image: tf.Tensor4D, options: VaeOptions = {}): tf.Tensor4D {
    return tf.tidy(() => this.decode(this.encode(image, options), options));
  }
}
