/**
 * Activations by diffusers' and transformers' names (`get_activation`,
 * `ACT2FN`): `silu` / `swish`, `mish`, `gelu` (exact, erf-based),
 * `quick_gelu` (CLIP: x·sigmoid(1.702x)) and `relu`. tfjs-core has no `silu` or
 * `gelu` op, so they are composed.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { activation } from "./activations.ts";
 * const silu = activation("silu");
 * const y = silu(tf.tensor1d([0, 1])); // [0, 0.7311]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ConfigError } from "../../lib/errors.ts";

/** An elementwise activation. */
export type Activation = (x: tf.Tensor) => tf.Tensor;

/**
 * x · sigmoid(x).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { silu } from "./activations.ts";
 * silu(tf.scalar(1)); // 0.7311
 * ```
 */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

function mish(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.tanh(tf.softplus(x))));
}

function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));
}

const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  silu,
  swish: silu,
  mish,
  gelu,
  quick_gelu: quickGelu,
  relu: (x) => tf.relu(x),
};

/**
 * The activation called `name` (case-insensitive, as diffusers); an
 * unknown name is a {@link ConfigError} naming `key` (default `act_fn`).
 *
 * @example
 * ```ts
 * import { activation } from "./activations.ts";
 * const relu = activation("ReLU");
 * ```
 */
export function activation(name: string, key = "act_fn"): Activation {
  const fn = ACTIVATIONS[name.toLowerCase()];
  if (!fn) {
    throw new ConfigError(
      `unsupported activation ${JSON.stringify(name)}; valid: ${
        Object.keys(ACTIVATIONS).join(", ")
      }`,
      { key },
    );
  }
  return fn;
}
