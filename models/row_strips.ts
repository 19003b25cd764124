/**
 * Feature maps held as horizontal bands ("row strips"), so that no single
 * tensor exceeds a byte budget. WebGPU silently computes wrong results on
 * buffers of 128 MiB or more, and Stable Diffusion's VAE at 512² has
 * 1×512×512×256 activations (256 MiB); in strips every op stays under the
 * budget.
 *
 * Unlike diffusers' tiled VAE (independent overlapping tiles, blended), this
 * is exact: a convolution reads its halo rows from the neighbouring strips,
 * and GroupNorm statistics are accumulated over every strip before any strip
 * is normalised, so the result equals the one-tensor computation up to
 * float32 rounding.
 *
 * Strips stay aligned from op to op (a stride-1 op keeps the row split, 2×
 * upsampling doubles it, a stride-2 conv halves it), so an op only ever
 * takes single halo rows from its neighbours: on WASM `tf.slice` copies its
 * whole source tensor out of the heap (about 200 ms for 64 MiB), so strips
 * are never sliced; halo rows come from `tf.gather`, whose cost is that of
 * its output. strip_steps.ts picks the split and when to use strips. On
 * WASM each strip goes through the conv layer's own `forward` (Winograd
 * where it applies) and what the halo rows add is computed separately.
 *
 * Ownership: every function returns fresh tensors and never disposes or
 * returns its inputs; callers free strips with {@link disposeStrips}.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Conv2d } from "./layers/conv2d.ts";
 * import { concatStrips, convStrips, disposeStrips, SAME_3X3, splitRows } from "./row_strips.ts";
 * const conv = new Conv2d(8, 8, 3, { padding: 1 }).initialize(0);
 * const x = tf.randomNormal([1, 32, 32, 8]) as tf.Tensor4D;
 * const parts = splitRows(x, 8); // 4 strips of 8 rows
 * const strips = convStrips(conv, parts, SAME_3X3);
 * const y = concatStrips(strips); // equals conv.forward(x)
 * disposeStrips([...parts, ...strips]);
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { DiffusersError } from "../lib/errors.ts";
import type { Conv2d } from "./layers/conv2d.ts";
import type { GroupNorm } from "./layers/group_norm.ts";
import type { Activation } from "./layers/activations.ts";

/** An NHWC feature map as strips of consecutive rows, top to bottom (same B, W, C). */
export type RowStrips = readonly tf.Tensor4D[];

/** Budget off WebGPU, and on a WebGPU device that binds 128 MiB (lavapipe): 64 MiB. */
export const DEFAULT_MAX_TENSOR_BYTES: number = 64 * 1024 * 1024;

/** Largest budget ever chosen automatically (1 GiB). */
const MAX_AUTO_BYTES = 2 ** 30;

/**
 * The budget to use when none is given: on the webgpu backend, half of the
 * device's largest storage-buffer binding (up to 1 GiB), since WebGPU
 * silently computes wrong results on larger buffers and one big tensor is
 * fastest where the device allows it; elsewhere {@link DEFAULT_MAX_TENSOR_BYTES}
 * (which also keeps the WASM heap's peak low).
 *
 * @example
 * ```ts
 * import { defaultMaxTensorBytes } from "./row_strips.ts";
 * defaultMaxTensorBytes(); // 67108864 on wasm or lavapipe
 * ```
 */
export function defaultMaxTensorBytes(): number {
  if (tf.getBackend() !== "webgpu") return DEFAULT_MAX_TENSOR_BYTES;
  const device = (tf.backend() as unknown as {
    device?: { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } };
  }).device;
  if (!device) return DEFAULT_MAX_TENSOR_BYTES;
  const { maxStorageBufferBindingSize, maxBufferSize } = device.limits;
  return Math.min(MAX_AUTO_BYTES, Math.min(maxStorageBufferBindingSize, maxBufferSize) / 2);
}

/**
 * The `[B, H, W, C]` shape of the whole map.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { stripsShape } from "./row_strips.ts";
 * stripsShape([tf.zeros([1, 3, 8, 4]), tf.zeros([1, 5, 8, 4])] as tf.Tensor4D[]); // [1, 8, 8, 4]
 * ```
 */
export function stripsShape(x: RowStrips): [number, number, number, number] {
  const [b, , w, c] = x[0]!.shape;
  return [b, x.reduce((h, t) => h + t.shape[1], 0), w, c];
}

/**
 * Bytes of a float32 tensor of `shape`.
 *
 * @example
 * ```ts
 * import { float32Bytes } from "./row_strips.ts";
 * float32Bytes([1, 512, 512, 128]); // 134217728 (128 MiB)
 * ```
 */
export function float32Bytes(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 4);
}

/**
 * Splits a map into strips of `rows` rows (the last may be shorter). Meant
 * for maps that are small next to the strips made from them (the image, or
 * the latent-level map): on WASM each strip costs a copy of all of `x`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { splitRows } from "./row_strips.ts";
 * const parts = splitRows(tf.zeros([1, 10, 4, 3]) as tf.Tensor4D, 4); // 4 + 4 + 2 rows
 * ```
 */
export function splitRows(x: tf.Tensor4D, rows: number): tf.Tensor4D[] {
  const h = x.shape[1];
  if (rows >= h) return [tf.clone(x)];
  const sizes: number[] = [];
  for (let a = 0; a < h; a += rows) sizes.push(Math.min(rows, h - a));
  return tf.split(x, sizes, 1);
}

/**
 * Frees every strip.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { disposeStrips } from "./row_strips.ts";
 * disposeStrips([tf.zeros([1, 2, 2, 1]) as tf.Tensor4D]);
 * ```
 */
export function disposeStrips(x: RowStrips): void {
  for (const t of x) t.dispose();
}

/**
 * The whole map as one tensor (a new tensor, also for a single strip).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { concatStrips } from "./row_strips.ts";
 * const y = concatStrips([tf.zeros([1, 2, 4, 3]), tf.ones([1, 2, 4, 3])] as tf.Tensor4D[]); // [1, 4, 4, 3]
 * ```
 */
export function concatStrips(x: RowStrips): tf.Tensor4D {
  return x.length === 1 ? tf.clone(x[0]!) : tf.concat(x as tf.Tensor4D[], 1);
}

/** Rows [start, end) of the map (within it), gathered from the strips that hold them; call in a tidy. */
function gatherRows(x: RowStrips, start: number, end: number): tf.Tensor4D {
  const pieces: tf.Tensor4D[] = [];
  let offset = 0;
  for (const strip of x) {
    const h = strip.shape[1];
    const lo = Math.max(start, offset);
    const hi = Math.min(end, offset + h);
    if (lo < hi) {
      const rows = Array.from({ length: hi - lo }, (_, i) => lo - offset + i);
      pieces.push(tf.gather(strip, rows, 1) as tf.Tensor4D);
    }
    offset += h;
  }
  return pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 1);
}

/**
 * A conv's stride and zero padding `[top, bottom, left, right]`, as given
 * to its constructor: {@link convStrips} needs them, and {@link Conv2d}
 * keeps them private.
 */
export interface ConvGeometry {
  /** Stride in both directions. */
  readonly stride: number;
  /** Zero padding `[top, bottom, left, right]` (at most one row above and below). */
  readonly padding: readonly [number, number, number, number];
}

/** A 3×3 conv with stride 1 and padding 1. */
export const SAME_3X3: ConvGeometry = { stride: 1, padding: [1, 1, 1, 1] };

/** A 1×1 conv (reads no halo rows). */
export const POINTWISE: ConvGeometry = { stride: 1, padding: [0, 0, 0, 0] };

/** diffusers' VAE downsampler: 3×3, stride 2, padding (0, 1, 0, 1). */
export const DOWNSAMPLE_3X3: ConvGeometry = { stride: 2, padding: [0, 1, 0, 1] };

/**
 * What the output row a halo row feeds gets from it: `conv` (with its
 * padding and bias) on a 3-row input holding only the halo row (at `slot`
 * 0 above the strip, or 2 below it), minus the bias, keeping output row
 * `row`. Convolution is linear, so this is exactly what zero padding at the
 * strip border left out.
 */
function haloContribution(
  conv: Conv2d,
  halo: tf.Tensor4D,
  slot: 0 | 2,
  row: number,
): tf.Tensor4D {
  const zeros = tf.zeros([halo.shape[0], 2, halo.shape[2], halo.shape[3]]) as tf.Tensor4D;
  const y = conv.forward(tf.concat(slot === 0 ? [halo, zeros] : [zeros, halo], 1));
  const picked = tf.gather(y, [row], 1) as tf.Tensor4D;
  return conv.bias ? tf.sub(picked, conv.bias.value) as tf.Tensor4D : picked;
}

/**
 * `conv.forward` on a strip map, exactly, with one output strip per input
 * strip; `geometry` must be the conv's (3-row kernels read at most one
 * halo row above and below). For a stride-2 conv every strip but the last
 * must have an even number of rows.
 *
 * On WASM each strip goes through `conv.forward` alone, zero-padded (so the
 * layer's Winograd path and weight-packing policy apply), and what the halo
 * rows would have added to the border output rows is computed separately
 * and added back (see `haloContribution`). Elsewhere each strip is
 * convolved with its halo rows attached: fewer kernels, which is what
 * counts on WebGPU.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Conv2d } from "./layers/conv2d.ts";
 * import { convStrips, DOWNSAMPLE_3X3, splitRows } from "./row_strips.ts";
 * const down = new Conv2d(4, 4, 3, { stride: 2, padding: [0, 1, 0, 1] }).initialize(0);
 * const y = convStrips(down, splitRows(tf.zeros([1, 16, 16, 4]) as tf.Tensor4D, 4), DOWNSAMPLE_3X3);
 * // 4 strips of 2 rows
 * ```
 */
export function convStrips(conv: Conv2d, x: RowStrips, geometry: ConvGeometry): tf.Tensor4D[] {
  const k = conv.weight.torchShape[2]!;
  const { stride: s, padding: [padTop, padBottom, left, right] } = geometry;
  const h = stripsShape(x)[1];
  const probe = tf.getBackend() === "wasm";
  const out: tf.Tensor4D[] = [];
  let start = 0;
  x.forEach((strip, j) => {
    const rowsIn = strip.shape[1];
    const end = start + rowsIn;
    if (j < x.length - 1 && rowsIn % s !== 0) {
      throw new DiffusersError(`convStrips: strip ${j} has ${rowsIn} rows, not a multiple of ${s}`);
    }
    // A last strip too short to produce a row only feeds its neighbour's halo.
    const outRows = Math.floor((rowsIn + padTop + padBottom - k) / s) + 1;
    const above = padTop > 0 && start > 0;
    const below = padBottom > 0 && end < h;
    if (outRows > 0) {
      out.push(tf.tidy(() => {
        if (!probe) {
          const input = [
            ...(above ? [gatherRows(x, start - padTop, start)] : []),
            strip,
            ...(below ? [gatherRows(x, end, end + padBottom)] : []),
          ];
          return tf.fused.conv2d({
            x: input.length === 1 ? strip : tf.concat(input, 1),
            filter: conv.weight.value as tf.Tensor4D,
            bias: conv.bias?.value,
            strides: s,
            pad: [[0, 0], [above ? 0 : padTop, below ? 0 : padBottom], [left, right], [0, 0]],
          });
        }
        let y = conv.forward(strip);
        // The probe's output row padTop/s reads its first probe row at kernel row 0 and its
        // last at kernel row 2, as the strip's first and last output rows read the halo rows.
        if (above) {
          const c = haloContribution(conv, gatherRows(x, start - 1, start), 0, padTop / s);
          y = tf.add(y, tf.pad(c, [[0, 0], [0, outRows - 1], [0, 0], [0, 0]]));
        }
        if (below) {
          const c = haloContribution(conv, gatherRows(x, end, end + 1), 2, padTop / s);
          y = tf.add(y, tf.pad(c, [[0, 0], [outRows - 1, 0], [0, 0], [0, 0]]));
        }
        return y;
      }));
    }
    start = end;
  });
  return out;
}

/** Per-channel mean of `f(strip)` over the whole map: [B, 1, 1, C], from per-strip averages. */
function channelMean(x: RowStrips, f: (strip: tf.Tensor4D) => tf.Tensor4D): tf.Tensor {
  const [b, h, w, c] = stripsShape(x);
  return tf.tidy(() => {
    // avgPool over each strip (accurate where a long float32 sum is not), weighted by its share of the rows.
    const means = x.map((strip) => {
      const n = strip.shape[1] * w;
      const flat = tf.reshape(f(strip), [b, n, 1, c]) as tf.Tensor4D;
      return tf.mul(tf.avgPool(flat, [n, 1], [n, 1], "valid"), strip.shape[1] / h);
    });
    // Pairwise adds: tfjs-webgpu 4.22's AddN sums only its first 4 inputs.
    return means.reduce((sum, m) => tf.add(sum, m));
  });
}

/** Per-channel means [B, 1, 1, C] averaged within each of `groups` channel groups. */
function groupAverage(perChannel: tf.Tensor, groups: number): tf.Tensor {
  return tf.tidy(() => {
    const [b, , , c] = perChannel.shape as [number, number, number, number];
    const grouped = tf.mean(tf.reshape(perChannel, [b, groups, c / groups]), 2, true);
    return tf.reshape(tf.tile(grouped, [1, 1, c / groups]), [b, 1, 1, c]);
  });
}

/**
 * `act(norm.forward(x))` on a strip map: group statistics over all strips
 * (two-pass, biased variance, as {@link GroupNorm}), then each strip
 * normalised on its own. `act` null means no activation.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { GroupNorm } from "./layers/group_norm.ts";
 * import { silu } from "./layers/activations.ts";
 * import { groupNormStrips } from "./row_strips.ts";
 * const norm = new GroupNorm(2, 8, 1e-6).initialize(0);
 * const parts = [tf.randomNormal([1, 3, 4, 8]), tf.randomNormal([1, 5, 4, 8])] as tf.Tensor4D[];
 * const y = groupNormStrips(norm, parts, silu); // two strips, normalised as one [1, 8, 4, 8] map
 * ```
 */
export function groupNormStrips(
  norm: GroupNorm,
  x: RowStrips,
  act: Activation | null,
): tf.Tensor4D[] {
  const mean = groupAverage(channelMean(x, (t) => t), norm.numGroups);
  const variance = groupAverage(
    channelMean(x, (t) => tf.square(tf.sub(t, mean))),
    norm.numGroups,
  );
  const scale = tf.tidy(() => tf.mul(tf.rsqrt(tf.add(variance, norm.eps)), norm.weight.value));
  const out = x.map((t) =>
    tf.tidy(() => {
      const y = tf.add(tf.mul(tf.sub(t, mean), scale), norm.bias.value);
      return (act ? act(y) : y) as tf.Tensor4D;
    })
  );
  tf.dispose([mean, variance, scale]);
  return out;
}

/**
 * Nearest-neighbour 2× upsampling (output row i reads input row ⌊i/2⌋, as
 * PyTorch's `interpolate(mode="nearest")`), strip by strip: each output
 * strip has twice its input strip's rows.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { upsampleStrips } from "./row_strips.ts";
 * const y = upsampleStrips([tf.zeros([1, 2, 8, 4]), tf.zeros([1, 2, 8, 4])] as tf.Tensor4D[]);
 * // two strips of [1, 4, 16, 4]
 * ```
 */
export function upsampleStrips(x: RowStrips): tf.Tensor4D[] {
  return x.map((t) =>
    tf.image.resizeNearestNeighbor(t, [2 * t.shape[1], 2 * t.shape[2]]) as tf.Tensor4D
  );
}

/**
 * `a + b` on two strip maps with the same strips.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { addStrips } from "./row_strips.ts";
 * const a = [tf.ones([1, 1, 2, 1]), tf.ones([1, 3, 2, 1])] as tf.Tensor4D[];
 * const y = addStrips(a, a); // strips of 2s
 * ```
 */
export function addStrips(a: RowStrips, b: RowStrips): tf.Tensor4D[] {
  if (a.length !== b.length || a.some((t, i) => t.shape[1] !== b[i]!.shape[1])) {
    throw new DiffusersError("addStrips: the two maps are split into different strips");
  }
  return a.map((t, i) => tf.add(t, b[i]!) as tf.Tensor4D);
}
