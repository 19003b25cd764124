/**
 * `CLIPTextModel`: the text encoder of Stable Diffusion 1.x (OpenAI
 * CLIP ViT-L/14's text tower) and 2.x (OpenCLIP ViT-H/14's, 23 layers,
 * exact GELU), as transformers 4.26 computes it.
 *
 * Token + learned position embeddings → pre-LN encoder layers
 * (LayerNorm → causal self-attention → residual, LayerNorm → fc1 →
 * quick_gelu / gelu → fc2 → residual) → `final_layer_norm`. The pooled
 * output is the final state at `argmax(input_ids)` of each sequence (the
 * first `<|endoftext|>`, which has the largest id), as transformers 4.26
 * pools. No padding mask is applied, as StableDiffusionPipeline calls it.
 *
 * Field names are the checkpoint keys (`text_model.encoder.layers.3.mlp.fc1`
 * ...). The checkpoints' int64 buffer `text_model.embeddings.position_ids`
 * (always 0..76) is accepted and ignored: positions are 0..T-1.
 *
 * @example
 * ```ts
 * import { CLIPTextModel } from "./clip_text.ts";
 * const te = await CLIPTextModel.fromPretrained("../shared/fixtures/pipelines/sd_tiny", {
 *   subfolder: "text_encoder",
 * });
 * const { lastHiddenState, pooledOutput } = te.forward([[603, 320, 604]]); // [1, 3, 32], [1, 32]
 * lastHiddenState.dispose();
 * pooledOutput.dispose();
 * te.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { Module } from "./layers/module.ts";
import { Linear } from "./layers/linear.ts";
import { LayerNorm } from "./layers/layer_norm.ts";
import { Embedding } from "./layers/embeddings.ts";
import { type Activation, activation } from "./layers/activations.ts";
import { causalMask, SelfAttention } from "./layers/self_attention.ts";
import { embedWithPositions } from "./layers/token_embedding.ts";
import { tokenIdsTensor } from "./token_ids.ts";
import { checkModelType, checkPositive } from "./config_checks.ts";
import { loadPretrained, type PretrainedOptions } from "./pretrained.ts";

/** `config.json` of a `CLIPTextModel` (transformers' `CLIPTextConfig`), keys as written. */
export type CLIPTextConfig = {
  /** Must be `clip_text_model`. */
  model_type: string;
  /** Token table size. */
  vocab_size: number;
  /** Token width D. */
  hidden_size: number;
  /** Width of the MLP's hidden layer. */
  intermediate_size: number;
  /** Width of CLIPModel's joint space (unused by the text model). */
  projection_dim: number;
  /** Encoder layers. */
  num_hidden_layers: number;
  /** Attention heads (must divide hidden_size). */
  num_attention_heads: number;
  /** Position table size: the longest input. */
  max_position_embeddings: number;
  /** MLP activation: `quick_gelu` (SD 1.x) or `gelu` (exact, SD 2.x), or another known name. */
  hidden_act: string;
  /** LayerNorm epsilon. */
  layer_norm_eps: number;
  /** Ignored at inference. */
  dropout: number;
  /** Ignored at inference. */
  attention_dropout: number;
  /** Training init (unused). */
  initializer_range: number;
  /** Training init (unused). */
  initializer_factor: number;
  /** Tokenizer's padding id (informational). */
  pad_token_id: number;
  /** Tokenizer's start id (informational). */
  bos_token_id: number;
  /** Tokenizer's end id (informational: pooling uses argmax(input_ids), as transformers 4.26). */
  eos_token_id: number;
};

/** What {@link CLIPTextModel.forward} returns; the caller owns every tensor. */
export type CLIPTextOutput = {
  /** Final states after `final_layer_norm`, [B, T, D]. */
  lastHiddenState: tf.Tensor3D;
  /** The final state at each sequence's argmax(input_ids), [B, D]. */
  pooledOutput: tf.Tensor2D;
  /**
   * With `outputHiddenStates`: the embeddings, then every layer's output,
   * each [B, T, D], before the final norm (transformers' `hidden_states`).
   */
  hiddenStates?: tf.Tensor3D[];
};

/** Options of {@link CLIPTextModel.forward}. */
export interface CLIPTextForwardOptions {
  /** Also return every layer's states (default false). */
  outputHiddenStates?: boolean;
}

/** Options of {@link CLIPTextModel.fromConfig}. */
export interface CLIPTextFromConfigOptions {
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/**
 * Token and position embeddings; keys `token_embedding`, `position_embedding`.
 *
 * @example
 * ```ts
 * import { CLIPTextEmbeddings } from "./clip_text.ts";
 * const emb = new CLIPTextEmbeddings(49408, 77, 768);
 * ```
 */
export class CLIPTextEmbeddings extends Module {
  /** [vocab, D]. */
  readonly token_embedding: Embedding;
  /** [positions, D]. */
  readonly position_embedding: Embedding;

  /** Tables for `vocabSize` tokens and `maxPositions` positions of width `dim`. */
  constructor(vocabSize: number, maxPositions: number, dim: number) {
    super();
    this.token_embedding = new Embedding(vocabSize, dim);
    this.position_embedding = new Embedding(maxPositions, dim);
  }

  /** int32 ids [B, T] → tokens [B·T, D] (positions 0..T-1 added). */
  forward(ids: tf.Tensor2D): tf.Tensor2D {
    return embedWithPositions(this.token_embedding, this.position_embedding, ids);
  }
}

/**
 * The feed-forward block; keys `fc1`, `fc2`.
 *
 * @example
 * ```ts
 * import { CLIPMLP } from "./clip_text.ts";
 * const mlp = new CLIPMLP(768, 3072, "quick_gelu");
 * ```
 */
export class CLIPMLP extends Module {
  /** D → intermediate. */
  readonly fc1: Linear;
  /** intermediate → D. */
  readonly fc2: Linear;
  readonly #act: Activation;

  /** `dim` → `hidden` → `dim` with the activation called `act` between. */
  constructor(dim: number, hidden: number, act: string) {
    super();
    this.fc1 = new Linear(dim, hidden);
    this.fc2 = new Linear(hidden, dim);
    this.#act = activation(act, "hidden_act");
  }

  /** [N, D] → [N, D]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.fc2.forward(this.#act(this.fc1.forward(x))) as tf.Tensor2D);
  }
}

/**
 * One pre-LN encoder layer; keys `self_attn`, `layer_norm1`, `mlp`, `layer_norm2`.
 *
 * @example
 * ```ts
 * import { CLIPEncoderLayer } from "./clip_text.ts";
 * const layer = new CLIPEncoderLayer({ hidden_size: 768, num_attention_heads: 12,
 *   intermediate_size: 3072, hidden_act: "quick_gelu", layer_norm_eps: 1e-5 });
 * ```
 */
export class CLIPEncoderLayer extends Module {
  /** Causal self-attention. */
  readonly self_attn: SelfAttention;
  /** Norm before the attention. */
  readonly layer_norm1: LayerNorm;
  /** Feed-forward block. */
  readonly mlp: CLIPMLP;
  /** Norm before the MLP. */
  readonly layer_norm2: LayerNorm;

  /** The layer of a config with these sizes. */
  constructor(
    c: Pick<
      CLIPTextConfig,
      "hidden_size" | "num_attention_heads" | "intermediate_size" | "hidden_act" | "layer_norm_eps"
    >,
  ) {
    super();
    this.self_attn = new SelfAttention({
      embedDim: c.hidden_size,
      heads: c.num_attention_heads,
    });
    this.layer_norm1 = new LayerNorm(c.hidden_size, { eps: c.layer_norm_eps });
    this.mlp = new CLIPMLP(c.hidden_size, c.intermediate_size, c.hidden_act);
    this.layer_norm2 = new LayerNorm(c.hidden_size, { eps: c.layer_norm_eps });
  }

  /** Tokens [batch·T, D] → [batch·T, D]; `mask` [T, T] is added to the attention scores. */
  forward(x: tf.Tensor2D, batch: number, mask: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const attn = this.self_attn.forward(this.layer_norm1.forward(x) as tf.Tensor2D, batch, mask);
      const h = tf.add(x, attn) as tf.Tensor2D;
      return tf.add(h, this.mlp.forward(this.layer_norm2.forward(h) as tf.Tensor2D));
    });
  }
}

/**
 * The stack of encoder layers; key `layers`.
 *
 * @example
 * ```ts
 * import { CLIPEncoder } from "./clip_text.ts";
 * const enc = new CLIPEncoder({ hidden_size: 32, num_attention_heads: 4, intermediate_size: 37,
 *   hidden_act: "quick_gelu", layer_norm_eps: 1e-5, num_hidden_layers: 2 });
 * ```
 */
export class CLIPEncoder extends Module {
  /** `num_hidden_layers` layers. */
  readonly layers: CLIPEncoderLayer[];

  /** `num_hidden_layers` layers of the given sizes. */
  constructor(
    c:
      & ConstructorParameters<typeof CLIPEncoderLayer>[0]
      & Pick<CLIPTextConfig, "num_hidden_layers">,
  ) {
    super();
    this.layers = Array.from({ length: c.num_hidden_layers }, () => new CLIPEncoderLayer(c));
  }
}

/**
 * Embeddings, encoder and final norm; keys `embeddings`, `encoder`,
 * `final_layer_norm` (under `text_model` in {@link CLIPTextModel}).
 *
 * @example
 * ```ts
 * import { loadConfig } from "../lib/config.ts";
 * import { CLIPTextModel, CLIPTextTransformer } from "./clip_text.ts";
 * const t = new CLIPTextTransformer(loadConfig(CLIPTextModel.spec, { num_hidden_layers: 1 }));
 * ```
 */
export class CLIPTextTransformer extends Module {
  /** Token + position embeddings. */
  readonly embeddings: CLIPTextEmbeddings;
  /** Encoder layers. */
  readonly encoder: CLIPEncoder;
  /** Norm of the last layer's output. */
  readonly final_layer_norm: LayerNorm;

  /** The transformer of a resolved config. */
  constructor(c: Readonly<CLIPTextConfig>) {
    super();
    this.embeddings = new CLIPTextEmbeddings(
      c.vocab_size,
      c.max_position_embeddings,
      c.hidden_size,
    );
    this.encoder = new CLIPEncoder(c);
    this.final_layer_norm = new LayerNorm(c.hidden_size, { eps: c.layer_norm_eps });
  }

  /** int32 ids [B, T] → {@link CLIPTextOutput}. */
  forward(ids: tf.Tensor2D, outputHiddenStates: boolean): CLIPTextOutput {
    return tf.tidy(() => {
      const [b, t] = ids.shape;
      const mask = causalMask(t);
      let h = this.embeddings.forward(ids);
      const states = [h];
      for (const layer of this.encoder.layers) {
        h = layer.forward(h, b, mask);
        states.push(h);
      }
      const last = this.final_layer_norm.forward(h) as tf.Tensor2D;
      const d = last.shape[1];
      const pooledOutput = tf.gather(
        last,
        tf.add(firstArgMax(ids), tf.range(0, b * t, t, "int32")),
      );
      const out: CLIPTextOutput = {
        lastHiddenState: tf.reshape(last, [b, t, d]),
        pooledOutput,
      };
      if (outputHiddenStates) out.hiddenStates = states.map((s) => tf.reshape(s, [b, t, d]));
      return out;
    });
  }
}

/**
 * Index of the first maximum of each row of int32 [B, T], as PyTorch's
 * argmax. Not `tf.argMax`: tfjs-webgpu's picks an arbitrary one of tied
 * maxima, and CLIP's padding repeats the largest id. Each maximum at
 * position j scores T - j, so the largest score is the first maximum.
 */
function firstArgMax(ids: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const t = ids.shape[1];
    const isMax = tf.cast(tf.equal(ids, tf.max(ids, 1, true)), "int32");
    const score = tf.max(tf.mul(isMax, tf.range(t, 0, -1, "int32")), 1);
    return tf.sub(tf.scalar(t, "int32"), score) as tf.Tensor1D;
  });
}

/**
 * transformers' `CLIPTextModel`; keys under `text_model.`.
 *
 * @example
 * ```ts
 * import { CLIPTextModel } from "./clip_text.ts";
 * const json = JSON.parse(
 *   await Deno.readTextFile("../shared/configs/runwayml__stable-diffusion-v1-5/text_encoder/config.json"),
 * );
 * const te = CLIPTextModel.fromConfig(json); // random weights
 * console.log(te.parameterCount()); // 123060480
 * te.dispose();
 * ```
 */
export class CLIPTextModel extends Module {
  /** Config keys, defaults (transformers 4.26's `CLIPTextConfig`) and kinds. */
  static readonly spec: ConfigSpec<CLIPTextConfig> = defineConfig<CLIPTextConfig>(
    "CLIPTextModel",
    "config.json",
    {
      model_type: "clip_text_model",
      vocab_size: 49408,
      hidden_size: 512,
      intermediate_size: 2048,
      projection_dim: 512,
      num_hidden_layers: 12,
      num_attention_heads: 8,
      max_position_embeddings: 77,
      hidden_act: "quick_gelu",
      layer_norm_eps: 1e-5,
      dropout: 0,
      attention_dropout: 0,
      initializer_range: 0.02,
      initializer_factor: 1,
      pad_token_id: 1,
      bos_token_id: 0,
      eos_token_id: 2,
    },
    {
      vocab_size: ["integer"],
      hidden_size: ["integer"],
      intermediate_size: ["integer"],
      projection_dim: ["integer"],
      num_hidden_layers: ["integer"],
      num_attention_heads: ["integer"],
      max_position_embeddings: ["integer"],
      pad_token_id: ["integer"],
      bos_token_id: ["integer"],
      eos_token_id: ["integer"],
    },
  );

  /** The resolved, frozen config. */
  readonly config: Readonly<CLIPTextConfig>;
  /** The transformer. */
  readonly text_model: CLIPTextTransformer;

  /** Builds the architecture with no weights; use {@link CLIPTextModel.fromConfig} or {@link CLIPTextModel.fromPretrained}. */
  constructor(config: Readonly<CLIPTextConfig>) {
    super();
    checkModelType(config, "clip_text_model", "CLIPTextModel");
    checkPositive(config, [
      "vocab_size",
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "num_attention_heads",
      "max_position_embeddings",
      "layer_norm_eps",
    ]);
    if (config.hidden_size % config.num_attention_heads !== 0) {
      throw new ConfigError(
        `${config.num_attention_heads} heads do not divide hidden_size ${config.hidden_size}`,
        { key: "num_attention_heads" },
      );
    }
    this.config = config;
    this.text_model = new CLIPTextTransformer(config);
  }

  /**
   * Builds the model from `config.json` content plus overrides, with
   * seeded random weights (for benchmarks and tests).
   *
   * @example
   * ```ts
   * import { CLIPTextModel } from "./clip_text.ts";
   * const te = CLIPTextModel.fromConfig({ hidden_size: 64, num_attention_heads: 4 }, {}, { seed: 1 });
   * te.dispose();
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
    options: CLIPTextFromConfigOptions = {},
  ): CLIPTextModel {
    return new CLIPTextModel(loadConfig(CLIPTextModel.spec, json, overrides)).initialize(
      options.seed ?? 0,
    );
  }

  /**
   * Loads `config.json` and the weights (`model.safetensors` or
   * `pytorch_model.bin`, also sharded or as a `variant`) from a local folder
   * or a Hub id; every weight key must match.
   *
   * @example
   * ```ts
   * import { CLIPTextModel } from "./clip_text.ts";
   * const te = await CLIPTextModel.fromPretrained("runwayml/stable-diffusion-v1-5", {
   *   subfolder: "text_encoder",
   * });
   * ```
   */
  static fromPretrained(idOrDir: string, options: PretrainedOptions = {}): Promise<CLIPTextModel> {
    return loadPretrained(
      idOrDir,
      options,
      CLIPTextModel.spec,
      (config) => new CLIPTextModel(config),
      (key) => key === "text_model.embeddings.position_ids",
    );
  }

  /**
   * Encodes token ids [B, T] (T ≤ max_position_embeddings), as
   * `number[][]` or a 2-D tensor, in one `tf.tidy` with no host readback.
   *
   * @example
   * ```ts
   * // const { lastHiddenState } = te.forward(tokenizer(prompts).inputIds); // [B, 77, 768]
   * ```
   */
  forward(
    inputIds: number[][] | tf.Tensor2D,
    options: CLIPTextForwardOptions = {},
  ): CLIPTextOutput {
    const c = this.config;
    return tf.tidy(() => {
      const ids = tokenIdsTensor(inputIds, {
        model: "CLIPTextModel",
        vocabSize: c.vocab_size,
        maxLength: c.max_position_embeddings,
      });
      return this.text_model.forward(ids, options.outputHiddenStates ?? false);
    });
  }
}
