/**
 * Token ids for the text encoders: a `number[][]` batch (checked on the
 * host: rectangular, integers inside the vocabulary) or a 2-D tensor
 * (shape checked only, since reading values back would stall the GPU),
 * turned into one int32 [batch, T] tensor.
 *
 * @example
 * ```ts
 * import { tokenIdsTensor } from "./token_ids.ts";
 * const ids = tokenIdsTensor([[49406, 320, 49407]], {
 *   model: "CLIPTextModel",
 *   vocabSize: 49408,
 *   maxLength: 77,
 * }); // int32 [1, 3]
 * ids.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ArgumentError } from "../lib/errors.ts";

/** What the model accepts, for {@link tokenIdsTensor}'s checks and messages. */
export interface TokenIdLimits {
  /** The model's name, for error messages. */
  model: string;
  /** Ids must be below this. */
  vocabSize: number;
  /** Sequences may be at most this long (the position table's size). */
  maxLength: number;
}

/**
 * Checks `ids` and returns them as a new int32 [batch, T] tensor (the
 * caller owns it). Bad input is an {@link ArgumentError}.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { tokenIdsTensor } from "./token_ids.ts";
 * const ids = tokenIdsTensor(tf.tensor2d([[101, 102]]), {
 *   model: "LDMBertModel",
 *   vocabSize: 30522,
 *   maxLength: 77,
 * });
 * ```
 */
export function tokenIdsTensor(ids: number[][] | tf.Tensor2D, limits: TokenIdLimits): tf.Tensor2D {
  const { model, vocabSize, maxLength } = limits;
  const fail = (why: string): never => {
    throw new ArgumentError(`${model}.forward: input ids ${why}`);
  };
  let shape: number[];
  if (ids instanceof tf.Tensor) {
    if (ids.rank !== 2) fail(`must be 2-D [batch, tokens], got shape [${ids.shape}]`);
    shape = ids.shape;
  } else {
    if (!Array.isArray(ids) || ids.length === 0) fail("must be a non-empty batch of sequences");
    const t = ids[0]!.length;
    ids.forEach((row, b) => {
      if (!Array.isArray(row) || row.length !== t) {
        fail(`must all have the same length (row 0 has ${t}, row ${b} does not)`);
      }
      const bad = row.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
      if (bad >= 0) fail(`[${b}][${bad}] = ${row[bad]} is not an id in [0, ${vocabSize})`);
    });
    shape = [ids.length, t];
  }
  const [batch, length] = shape as [number, number];
  if (batch === 0 || length === 0) fail(`must not be empty, got shape [${shape}]`);
  if (length > maxLength) {
    fail(`hold ${length} tokens; the model has ${maxLength} positions`);
  }
  return ids instanceof tf.Tensor
    ? tf.cast(ids, "int32")
    : tf.tensor2d(ids.flat(), [batch, length], "int32");
}
