/**
 * Learned token + absolute position embeddings, as CLIP's and BART's text
 * encoders add them: row `ids[b][t]` of the token table plus row `t` of the
 * position table, flattened to the 2-D [B·T, D] the encoder layers use.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Embedding } from "./embeddings.ts";
 * import { embedWithPositions } from "./token_embedding.ts";
 * const tokens = new Embedding(100, 8).initialize(0);
 * const positions = new Embedding(77, 8).initialize(1);
 * const h = embedWithPositions(tokens, positions, tf.tensor2d([[1, 2, 3]], [1, 3], "int32")); // [3, 8]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import type { Embedding } from "./embeddings.ts";

/**
 * int32 ids [B, T] → [B·T, D]: token rows plus positions 0..T-1 (T must
 * not exceed the position table).
 *
 * @example
 * ```ts
 * // const h = embedWithPositions(this.token_embedding, this.position_embedding, ids);
 * ```
 */
export function embedWithPositions(
  tokens: Embedding,
  positions: Embedding,
  ids: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, t] = ids.shape;
    const table = positions.weight.value;
    const d = table.shape[1]!;
    const rows = tokens.forward(tf.reshape(ids, [b * t]));
    const added = tf.add(tf.reshape(rows, [b, t, d]), tf.slice(table, [0, 0], [t, d]));
    return tf.reshape(added, [b * t, d]);
  });
}
