/**
 * What text-conditioned pipelines share: turning prompts into text
 * embeddings (tokenize to the model's length, run the text encoder), and
 * classifier-free guidance (Ho & Salimans 2022) with the optional rescale
 * of Lin et al. (2023, section 3.4), as diffusers does them.
 *
 * @example
 * ```ts
 * import { guide } from "./conditioning.ts";
 * import { tf } from "../tf.ts";
 * const pred = tf.concat([tf.zeros([1, 2, 2, 4]), tf.ones([1, 2, 2, 4])]);
 * const guided = guide(pred, 7.5, 0); // uncond + 7.5 (text - uncond) = 7.5
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { ArgumentError } from "../errors.ts";

/** The part of a tokenizer a pipeline uses. */
export interface PromptTokenizer {
  /** Maximum sequence length (77 for CLIP). */
  readonly modelMaxLength: number;
  /** Token ids of `text`, padded/truncated as asked. */
  encode(
    text: string,
    options: { padding: "max_length"; maxLength: number; truncation: true },
  ): { inputIds: number[] };
}

/** A text encoder as pipelines see it: token ids in, `[B, T, D]` hidden states out. */
export interface PromptEncoder {
  /** Last hidden states for a batch of id sequences of equal length. */
  encodeIds(ids: number[][]): tf.Tensor3D;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Tokenizes `texts` to `maxLength` (padded, truncated) and encodes them in
 * one batch.
 *
 * @example
 * ```ts
 * import { encodeTexts } from "./conditioning.ts";
 * // const embeds = encodeTexts(tokenizer, textEncoder, ["a cat"], 77);
 * ```
 */
export function encodeTexts(
  tokenizer: PromptTokenizer,
  encoder: PromptEncoder,
  texts: readonly string[],
  maxLength: number,
): tf.Tensor3D {
  const ids = texts.map((text) =>
    tokenizer.encode(text, { padding: "max_length", maxLength, truncation: true }).inputIds
  );
  return encoder.encodeIds(ids);
}

/**
 * Normalises a prompt argument (one string or a list) to a list, checking
 * a negative prompt list matches it.
 *
 * @example
 * ```ts
 * import { promptList } from "./conditioning.ts";
 * console.log(promptList("a cat")); // ["a cat"]
 * ```
 */
export function promptList(prompt: string | readonly string[], what = "prompt"): string[] {
  const list = typeof prompt === "string" ? [prompt] : [...prompt];
  if (list.length === 0 || list.some((p) => typeof p !== "string")) {
    throw new ArgumentError(`${what} must be a string or a non-empty list of strings`);
  }
  return list;
}

/**
 * Repeats each item of a `[B, ...]` tensor `n` times along the batch axis
 * (`[a, a, b, b]`), as diffusers' `repeat(1, n, 1).view(B * n, ...)`.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { repeatEach } from "./conditioning.ts";
 * repeatEach(tf.tensor3d([1, 2], [2, 1, 1]), 2); // [1, 1, 2, 2]
 * ```
 */
export function repeatEach<T extends tf.Tensor>(x: T, n: number): T {
  if (n === 1) return tf.clone(x);
  return tf.tidy(() => {
    const [b, ...rest] = x.shape;
    const expanded = tf.tile(tf.expandDims(x, 1), [1, n, ...rest.map(() => 1)]);
    return tf.reshape(expanded, [b! * n, ...rest]) as T;
  });
}

/**
 * Classifier-free guidance of a `[2B, ...]` prediction whose first half is
 * unconditional: `uncond + scale (text - uncond)`; with `rescale > 0`, the
 * result's standard deviation is pulled toward the text prediction's
 * (diffusers' `rescale_noise_cfg`, unbiased std per item).
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { guide } from "./conditioning.ts";
 * const g = guide(tf.randomNormal([2, 4, 4, 4]), 5, 0.7); // [1, 4, 4, 4]
 * ```
 */
export function guide(prediction: tf.Tensor, scale: number, rescale: number): tf.Tensor {
  return tf.tidy(() => {
    const [uncond, text] = tf.split(prediction, 2, 0) as [tf.Tensor, tf.Tensor];
    const guided = tf.add(uncond, tf.mul(tf.sub(text, uncond), scale));
    if (!(rescale > 0)) return guided;
    const axes = guided.shape.map((_, i) => i).slice(1);
    const std = (x: tf.Tensor) => {
      const n = x.size / x.shape[0]!;
      const { variance } = tf.moments(x, axes, true);
      return tf.sqrt(tf.mul(variance, n / (n - 1)));
    };
    const rescaled = tf.mul(guided, tf.div(std(text), std(guided)));
    return tf.add(tf.mul(rescaled, rescale), tf.mul(guided, 1 - rescale));
  });
}
