/**
 * diffusers' `FeedForward` with the `geglu` activation (the MLP of every
 * Stable Diffusion / LDM transformer block): `net.0` is {@link GEGLU}
 * (one Linear to 2·inner, split in value and gate, value · gelu(gate)),
 * `net.1` is dropout (a no-op, no weights), `net.2` is Linear(inner, dim).
 *
 * The GEGLU product is 8× wider than the tokens (inner = 4·dim, doubled),
 * which is 80 MiB for SD at 512² and batch 2, so tokens are processed in
 * row blocks that keep it below {@link FF_CHUNK_BYTES} (WebGPU breaks on
 * buffers ≥ 128 MiB, and the WASM heap is tight with SD's weights;
 * diffusers' `_chunked_feed_forward` does the same).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { FeedForward } from "./feed_forward.ts";
 * const ff = new FeedForward(32).initialize(0);
 * const y = ff.forward(tf.zeros([2, 64, 32])); // [2, 64, 32]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module } from "./module.ts";
import { Linear } from "./linear.ts";
import { activation } from "./activations.ts";

/** Largest GEGLU projection (rows × 2·inner × 4 bytes) computed at once: 32 MiB. */
export const FF_CHUNK_BYTES = 32 * 1024 * 1024;

const gelu = activation("gelu");

/**
 * Gated GELU: `proj` maps to 2·dimOut channels; the first half is scaled
 * by the exact (erf) GELU of the second; key `proj`.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { GEGLU } from "./feed_forward.ts";
 * const act = new GEGLU(8, 32).initialize(0);
 * const y = act.forward(tf.ones([3, 8]) as tf.Tensor2D); // [3, 32]
 * ```
 */
export class GEGLU extends Module {
  /** dimIn → 2·dimOut. */
  readonly proj: Linear;

  /** Same arguments as diffusers' `GEGLU(dim_in, dim_out)`. */
  constructor(dimIn: number, dimOut: number) {
    super();
    this.proj = new Linear(dimIn, 2 * dimOut);
  }

  /** [N, dimIn] → [N, dimOut]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const projected = this.proj.forward(x);
      const [value, gate] = tf.split(projected, 2, 1);
      projected.dispose(); // the widest tensor of the MLP: free it before gelu's temporaries
      return tf.mul(value!, gelu(gate!)) as tf.Tensor2D;
    });
  }
}

/**
 * The transformer MLP; keys `net.0.proj`, `net.2`.
 *
 * @example
 * ```ts
 * import { FeedForward } from "./feed_forward.ts";
 * const ff = new FeedForward(320); // inner width 1280, net.0.proj: 320 → 2560
 * ```
 */
export class FeedForward extends Module {
  /** [GEGLU, dropout (no weights), output Linear]. */
  readonly net: [GEGLU, null, Linear];
  readonly #inner: number;
  readonly #maxBytes: number;

  /**
   * `dim` channels in and out, `mult`·dim inside (diffusers' defaults);
   * `maxBytes` bounds the GEGLU projection of one row block.
   */
  constructor(dim: number, mult = 4, maxBytes: number = FF_CHUNK_BYTES) {
    super();
    this.#inner = dim * mult;
    this.net = [new GEGLU(dim, this.#inner), null, new Linear(this.#inner, dim)];
    this.#maxBytes = maxBytes;
  }

  /** Applies to the last axis of `x` (any rank ≥ 2). */
  forward<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const dim = x.shape[x.rank - 1]!;
      const flat = tf.reshape(x, [-1, dim]) as tf.Tensor2D;
      const n = flat.shape[0];
      const rowsPerBlock = Math.max(1, Math.floor(this.#maxBytes / (2 * this.#inner * 4)));
      const mlp = (rows: tf.Tensor2D): tf.Tensor => this.net[2].forward(this.net[0].forward(rows));
      const blocks: tf.Tensor[] = [];
      for (let r = 0; r < n; r += rowsPerBlock) {
        const size = Math.min(rowsPerBlock, n - r);
        blocks.push(tf.tidy(() => mlp(size === n ? flat : tf.slice(flat, [r, 0], [size, dim]))));
      }
      return tf.reshape(blocks.length === 1 ? blocks[0]! : tf.concat(blocks, 0), x.shape) as T;
    });
  }
}
