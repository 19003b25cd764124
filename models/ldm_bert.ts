/**
 * `LDMBertModel`: the text encoder of CompVis/ldm-text2im-large-256, as
 * diffusers 0.27.2 defines it in `pipeline_latent_diffusion.py` (a BART
 * encoder with pre-LN layers).
 *
 * Token + learned position embeddings → pre-LN encoder layers
 * (`self_attn_layer_norm` → self-attention → residual, `final_layer_norm`
 * → fc1 → activation → fc2 → residual) → `layer_norm`. The attention's
 * inner width is heads · head_dim (512 for the real model), which need not
 * equal d_model (1280); q/k/v have no bias. No attention mask is applied,
 * as LDMTextToImagePipeline calls it.
 *
 * Field names are the checkpoint keys (`model.layers.0.self_attn.q_proj`
 * ...). `to_logits` (d_model → vocab) is in every checkpoint but unused by
 * the forward pass, as in diffusers; it is loaded (and counted) so strict
 * loading holds. `scale_embedding` is read but, as in diffusers, never
 * applied.
 *
 * @example
 * ```ts
 * import { LDMBertModel } from "./ldm_bert.ts";
 * const bert = await LDMBertModel.fromPretrained("../shared/fixtures/pipelines/ldm_text2im_tiny", {
 *   subfolder: "bert",
 * });
 * const h = bert.forward([[2, 40, 3]]); // [1, 3, 32]
 * h.dispose();
 * bert.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import { Module } from "./layers/module.ts";
import { Linear } from "./layers/linear.ts";
import { LayerNorm } from "./layers/layer_norm.ts";
import { Embedding } from "./layers/embeddings.ts";
import { type Activation, activation } from "./layers/activations.ts";
import { SelfAttention } from "./layers/self_attention.ts";
import { embedWithPositions } from "./layers/token_embedding.ts";
import { tokenIdsTensor } from "./token_ids.ts";
import { checkModelType, checkPositive } from "./config_checks.ts";
import { loadPretrained, type PretrainedOptions } from "./pretrained.ts";

/** `config.json` of an `LDMBertModel` (diffusers' `LDMBertConfig`), keys as written. */
export type LDMBertConfig = {
  /** Must be `ldmbert`. */
  model_type: string;
  /** Token table size (bert-base-uncased's 30522). */
  vocab_size: number;
  /** Position table size: the longest input. */
  max_position_embeddings: number;
  /** Encoder layers. */
  encoder_layers: number;
  /** Width of each layer's feed-forward hidden layer. */
  encoder_ffn_dim: number;
  /** Attention heads. */
  encoder_attention_heads: number;
  /** Channels per head (heads · head_dim is the attention's inner width). */
  head_dim: number;
  /** Ignored at inference. */
  encoder_layerdrop: number;
  /** Feed-forward activation (`gelu`: exact, erf-based). */
  activation_function: string;
  /** Token width. */
  d_model: number;
  /** Ignored at inference. */
  dropout: number;
  /** Ignored at inference. */
  attention_dropout: number;
  /** Ignored at inference. */
  activation_dropout: number;
  /** Training init (unused). */
  init_std: number;
  /** Ignored at inference. */
  classifier_dropout: number;
  /** Never applied by diffusers' LDMBert (kept for round-trips). */
  scale_embedding: boolean;
  /** Unused by the encoder. */
  use_cache: boolean;
  /** Tokenizer's padding id (informational). */
  pad_token_id: number;
};

/** Options of {@link LDMBertModel.fromConfig}. */
export interface LDMBertFromConfigOptions {
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/**
 * One pre-LN encoder layer; keys `self_attn`, `self_attn_layer_norm`,
 * `fc1`, `fc2`, `final_layer_norm`.
 *
 * @example
 * ```ts
 * import { LDMBertEncoderLayer } from "./ldm_bert.ts";
 * const layer = new LDMBertEncoderLayer({ d_model: 1280, encoder_attention_heads: 8, head_dim: 64,
 *   encoder_ffn_dim: 5120, activation_function: "gelu" });
 * ```
 */
export class LDMBertEncoderLayer extends Module {
  /** Self-attention, inner width heads · head_dim, no q/k/v bias. */
  readonly self_attn: SelfAttention;
  /** Norm before the attention. */
  readonly self_attn_layer_norm: LayerNorm;
  /** d_model → ffn. */
  readonly fc1: Linear;
  /** ffn → d_model. */
  readonly fc2: Linear;
  /** Norm before the feed-forward block. */
  readonly final_layer_norm: LayerNorm;
  readonly #act: Activation;

  /** The layer of a config with these sizes. */
  constructor(
    c: Pick<
      LDMBertConfig,
      "d_model" | "encoder_attention_heads" | "head_dim" | "encoder_ffn_dim" | "activation_function"
    >,
  ) {
    super();
    this.self_attn = new SelfAttention({
      embedDim: c.d_model,
      heads: c.encoder_attention_heads,
      headDim: c.head_dim,
      qkvBias: false,
    });
    this.self_attn_layer_norm = new LayerNorm(c.d_model);
    this.fc1 = new Linear(c.d_model, c.encoder_ffn_dim);
    this.fc2 = new Linear(c.encoder_ffn_dim, c.d_model);
    this.final_layer_norm = new LayerNorm(c.d_model);
    this.#act = activation(c.activation_function, "activation_function");
  }

  /** Tokens [batch·T, d_model] → [batch·T, d_model]. */
  forward(x: tf.Tensor2D, batch: number): tf.Tensor2D {
    return tf.tidy(() => {
      const attn = this.self_attn.forward(
        this.self_attn_layer_norm.forward(x) as tf.Tensor2D,
        batch,
      );
      const h = tf.add(x, attn) as tf.Tensor2D;
      const ff = this.fc2.forward(this.#act(this.fc1.forward(this.final_layer_norm.forward(h))));
      return tf.add(h, ff);
    });
  }
}

/**
 * Embeddings, layers and final norm; keys `embed_tokens`,
 * `embed_positions`, `layers`, `layer_norm` (under `model` in
 * {@link LDMBertModel}).
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { LDMBertEncoder, LDMBertModel } from "./ldm_bert.ts";
 * const enc = new LDMBertEncoder(loadConfig(LDMBertModel.spec, { encoder_layers: 2 }));
 * ```
 */
export class LDMBertEncoder extends Module {
  /** [vocab, d_model]. */
  readonly embed_tokens: Embedding;
  /** [positions, d_model]. */
  readonly embed_positions: Embedding;
  /** `encoder_layers` layers. */
  readonly layers: LDMBertEncoderLayer[];
  /** Norm of the last layer's output. */
  readonly layer_norm: LayerNorm;

  /** The encoder of a resolved config. */
  constructor(c: Readonly<LDMBertConfig>) {
    super();
    this.embed_tokens = new Embedding(c.vocab_size, c.d_model);
    this.embed_positions = new Embedding(c.max_position_embeddings, c.d_model);
    this.layers = Array.from({ length: c.encoder_layers }, () => new LDMBertEncoderLayer(c));
    this.layer_norm = new LayerNorm(c.d_model);
  }

  /** int32 ids [B, T] → tokens [B·T, d_model] (token + position embeddings). */
  embed(ids: tf.Tensor2D): tf.Tensor2D {
    return embedWithPositions(this.embed_tokens, this.embed_positions, ids);
  }

  /** int32 ids [B, T] → last hidden state [B, T, d_model]. */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t] = ids.shape;
      let h = this.embed(ids);
      for (const layer of this.layers) h = layer.forward(h, b);
      return tf.reshape(this.layer_norm.forward(h), [b, t, h.shape[1]]);
    });
  }
}

/**
 * diffusers' `LDMBertModel`; keys `model.*` and `to_logits.*`.
 *
 * @example
 * ```ts
 * import { LDMBertModel } from "./ldm_bert.ts";
 * const bert = LDMBertModel.fromConfig({ encoder_layers: 2, d_model: 64, head_dim: 16,
 *   encoder_attention_heads: 4, encoder_ffn_dim: 128, vocab_size: 1000 });
 * const h = bert.forward([[101, 202, 102]]); // [1, 3, 64]
 * h.dispose();
 * bert.dispose();
 * ```
 */
export class LDMBertModel extends Module {
  /** Config keys, defaults (diffusers 0.27.2's `LDMBertConfig`) and kinds. */
  static readonly spec: ConfigSpec<LDMBertConfig> = defineConfig<LDMBertConfig>(
    "LDMBertModel",
    "config.json",
    {
      model_type: "ldmbert",
      vocab_size: 30522,
      max_position_embeddings: 77,
      encoder_layers: 32,
      encoder_ffn_dim: 5120,
      encoder_attention_heads: 8,
      head_dim: 64,
      encoder_layerdrop: 0,
      activation_function: "gelu",
      d_model: 1280,
      dropout: 0.1,
      attention_dropout: 0,
      activation_dropout: 0,
      init_std: 0.02,
      classifier_dropout: 0,
      scale_embedding: false,
      use_cache: true,
      pad_token_id: 0,
    },
    {
      vocab_size: ["integer"],
      max_position_embeddings: ["integer"],
      encoder_layers: ["integer"],
      encoder_ffn_dim: ["integer"],
      encoder_attention_heads: ["integer"],
      head_dim: ["integer"],
      d_model: ["integer"],
      pad_token_id: ["integer"],
    },
  );

  /** The resolved, frozen config. */
  readonly config: Readonly<LDMBertConfig>;
  /** The encoder. */
  readonly model: LDMBertEncoder;
  /** LM head d_model → vocab: in the checkpoints, unused by {@link LDMBertModel.forward}. */
  readonly to_logits: Linear;

  /** Builds the architecture with no weights; use {@link LDMBertModel.fromConfig} or {@link LDMBertModel.fromPretrained}. */
  constructor(config: Readonly<LDMBertConfig>) {
    super();
    checkModelType(config, "ldmbert", "LDMBertModel");
    checkPositive(config, [
      "vocab_size",
      "max_position_embeddings",
      "encoder_layers",
      "encoder_ffn_dim",
      "encoder_attention_heads",
      "head_dim",
      "d_model",
    ]);
    this.config = config;
    this.model = new LDMBertEncoder(config);
    this.to_logits = new Linear(config.d_model, config.vocab_size);
  }

  /**
   * Builds the model from `config.json` content plus overrides, with
   * seeded random weights (for benchmarks and tests).
   *
   * @example
   * ```ts
   * import { LDMBertModel } from "./ldm_bert.ts";
   * const bert = LDMBertModel.fromConfig({}, { encoder_layers: 1 }, { seed: 3 });
   * bert.dispose();
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
    options: LDMBertFromConfigOptions = {},
  ): LDMBertModel {
    return new LDMBertModel(loadConfig(LDMBertModel.spec, json, overrides)).initialize(
      options.seed ?? 0,
    );
  }

  /**
   * Loads `config.json` and the weights (`model.safetensors`,
   * `diffusion_pytorch_model.*` or `pytorch_model.bin`) from a local folder
   * or a Hub id; every weight key must match.
   *
   * @example
   * ```ts
   * import { LDMBertModel } from "./ldm_bert.ts";
   * const bert = await LDMBertModel.fromPretrained("CompVis/ldm-text2im-large-256", {
   *   subfolder: "bert",
   * });
   * ```
   */
  static fromPretrained(idOrDir: string, options: PretrainedOptions = {}): Promise<LDMBertModel> {
    return loadPretrained(
      idOrDir,
      options,
      LDMBertModel.spec,
      (config) => new LDMBertModel(config),
    );
  }

  /**
   * Encodes token ids [B, T] (T ≤ max_position_embeddings), as
   * `number[][]` or a 2-D tensor, to the last hidden state [B, T, d_model],
   * in one `tf.tidy` with no host readback.
   *
   * @example
   * ```ts
   * // const context = bert.forward(tokenizer(prompts).inputIds); // [B, 77, 1280]
   * ```
   */
  forward(inputIds: number[][] | tf.Tensor2D): tf.Tensor3D {
    const c = this.config;
    return tf.tidy(() =>
      this.model.forward(tokenIdsTensor(inputIds, {
        model: "LDMBertModel",
        vocabSize: c.vocab_size,
        maxLength: c.max_position_embeddings,
      }))
    );
  }
}
