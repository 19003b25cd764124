/**
 * Strided tensor layouts (PyTorch's size / stride / storage offset): the
 * contiguity test and the copy of a strided view into row-major order, so
 * a transposed or sliced tensor in a checkpoint loads as plain data.
 *
 * @example
 * ```ts
 * import { gatherStrided, isContiguous } from "./strided.ts";
 * // The transpose of [[1, 2], [3, 4]] stored row-major, as u8 elements.
 * console.log(isContiguous([2, 2], [1, 2])); // false
 * console.log(gatherStrided(new Uint8Array([1, 2, 3, 4]), 1, [2, 2], [1, 2], 0)); // [1, 3, 2, 4]
 * ```
 *
 * @module
 */

/**
 * Whether `stride` is the row-major layout of `shape`. As in PyTorch, the
 * stride of a size-1 dimension does not matter.
 *
 * @example
 * ```ts
 * import { isContiguous } from "./strided.ts";
 * console.log(isContiguous([2, 3], [3, 1]), isContiguous([1, 3], [99, 1])); // true true
 * ```
 */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/**
 * Copies the strided view (`shape`, `stride` and `offset` in elements of
 * `itemSize` bytes) out of `src` into a new row-major byte array. The caller
 * has checked that every element lies inside `src`.
 *
 * @example
 * ```ts
 * import { gatherStrided } from "./strided.ts";
 * // Every other element of [0..5], starting at 1.
 * console.log(gatherStrided(new Uint8Array([0, 1, 2, 3, 4, 5]), 1, [3], [2], 1)); // [1, 3, 5]
 * ```
 */
export function gatherStrided(
  src: Uint8Array,
  itemSize: number,
  shape: readonly number[],
  stride: readonly number[],
  offset: number,
): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(n * itemSize);
  if (n === 0) return out;
  const rank = shape.length;
  const inner = rank === 0 ? 1 : shape[rank - 1]!;
  const innerStride = rank === 0 ? 0 : stride[rank - 1]!;
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let base = offset;
  for (let o = 0; o < out.byteLength;) {
    for (let j = 0; j < inner; j++, o += itemSize) {
      const from = (base + j * innerStride) * itemSize;
      for (let k = 0; k < itemSize; k++) out[o + k] = src[from + k]!;
    }
    // Odometer over the outer dimensions, carrying from the last one.
    for (let d = rank - 2; d >= 0; d--) {
      base += stride[d]!;
      if (++index[d]! < shape[d]!) break;
      base -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}
