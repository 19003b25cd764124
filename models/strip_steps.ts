/**
 * Runs a chain of steps (the VAE's resnet groups, up/down samplers, output
 * head) on one tensor where it fits the byte budget and on row strips where
 * it does not: a step whose largest tensor for the whole map would exceed
 * `maxBytes` runs on strips, consecutive such steps share one split (chosen
 * by {@link planStrips} so every step's strips fit), and the map is split
 * or joined only where the mode changes. Splitting and joining happen where
 * the map is smallest: the decoder goes whole → strips, the encoder
 * strips → whole.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { runSteps, type StripStep } from "./strip_steps.ts";
 * import { upsampleStrips } from "./row_strips.ts";
 * // Nearest 2× of a [1, 8, 8, 3] map: output rows of 16 px × 3 channels.
 * const up: StripStep = {
 *   rowBytes: 16 * 3 * 4, scale: 2, outScale: 2, multiple: 1,
 *   plain: (x) => tf.image.resizeNearestNeighbor(x, [2 * x.shape[1], 2 * x.shape[2]]),
 *   strips: (s) => upsampleStrips(s),
 * };
 * const y = runSteps(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D, [up], 2048); // [1, 16, 16, 3], from 2 strips
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { concatStrips, disposeStrips, type RowStrips, splitRows } from "./row_strips.ts";

/** One step of a chain, and what it costs in memory per row of its input map. */
export interface StripStep {
  /** Bytes of one row of the step's largest tensor. */
  readonly rowBytes: number;
  /** Rows of that largest tensor per input row (2 for a tensor after 2× upsampling). */
  readonly scale: number;
  /** Output rows per input row (2 upsampling, ½ a stride-2 conv, else 1). */
  readonly outScale: number;
  /** Input strips (but the last) need a multiple of this many rows (2 before a stride-2 conv). */
  readonly multiple: number;
  /** The step on one tensor (the caller keeps `x`). */
  plain(x: tf.Tensor4D): tf.Tensor4D;
  /** The step on row strips; returns new strips (the caller keeps `x`). */
  strips(x: RowStrips): tf.Tensor4D[];
}

/** Rows of room kept per strip for a conv's zero padding (one above, one below). */
const MARGIN_ROWS = 2;

/**
 * Rows per strip of a map of `height` rows entering `steps`: as few,
 * equally tall strips as keep every step's strips (plus two rows of
 * padding) within `maxBytes`, each a multiple of what the strided steps
 * need. When even the smallest strip is over budget, the smallest is used.
 *
 * @example
 * ```ts
 * import { planStrips } from "./strip_steps.ts";
 * // A 2× upsampler from a 128-row map to 512-channel rows of 256 px: 3 strips.
 * planStrips(128, [{ rowBytes: 256 * 512 * 4, scale: 2, outScale: 2, multiple: 1 }], 64 * 2 ** 20); // 43
 * ```
 */
export function planStrips(
  height: number,
  steps: readonly Pick<StripStep, "rowBytes" | "scale" | "outScale" | "multiple">[],
  maxBytes: number,
): number {
  let most = Infinity;
  let multiple = 1;
  let rowsPerInput = 1; // rows of the current step's input per row of the first step's input
  for (const step of steps) {
    // A stride-2 step needs even strips at its input, so 2^k at the chain's input after k of them.
    multiple = Math.max(multiple, Math.ceil(step.multiple / rowsPerInput));
    const fit = Math.floor(maxBytes / step.rowBytes) - MARGIN_ROWS;
    most = Math.min(most, Math.floor(fit / (step.scale * rowsPerInput)));
    rowsPerInput *= step.outScale;
  }
  const largest = Math.max(multiple, Math.floor(most / multiple) * multiple);
  const count = Math.ceil(height / largest);
  return Math.min(largest, Math.ceil(height / count / multiple) * multiple);
}

/**
 * `steps` applied in order to `x`, each on one tensor or on row strips as
 * the budget requires (see the module doc). Returns one new tensor; `x` is
 * left to the caller. Call inside a `tf.tidy` if the steps leave temporaries.
 *
 * @example
 * ```ts
 * // const image = runSteps(h, decoderSteps, 64 * 2 ** 20);
 * ```
 */
export function runSteps(
  x: tf.Tensor4D,
  steps: readonly StripStep[],
  maxBytes: number,
): tf.Tensor4D {
  const heights: number[] = [];
  let h = x.shape[1];
  for (const step of steps) {
    heights.push(h);
    h *= step.outScale;
  }
  const fits = steps.map((step, i) => step.rowBytes * step.scale * heights[i]! <= maxBytes);
  let whole: tf.Tensor4D | null = x;
  let strips: tf.Tensor4D[] = [];
  const own = (t: tf.Tensor4D | null) => t !== null && t !== x;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (fits[i]) {
      if (whole === null) {
        whole = concatStrips(strips);
        disposeStrips(strips);
      }
      const next = step.plain(whole);
      if (own(whole)) whole.dispose();
      whole = next;
      continue;
    }
    if (whole !== null) {
      let end = i;
      while (end < steps.length && !fits[end]) end++;
      strips = splitRows(whole, planStrips(heights[i]!, steps.slice(i, end), maxBytes));
      if (own(whole)) whole.dispose();
      whole = null;
    }
    const next = step.strips(strips);
    disposeStrips(strips);
    strips = next;
  }
  if (whole === null) {
    const out = concatStrips(strips);
    disposeStrips(strips);
    return out;
  }
  return whole === x ? tf.clone(x) : whole;
}
