/**
 * Replaces tfjs-wasm's `Slice` kernel (4.22) with one that copies only the
 * slice. The stock kernel first copies the *whole input* out of the WASM
 * heap into a new JavaScript array (`readSync`), so every `tf.slice` /
 * `tf.split` costs as much as the input, plus first-touch page faults on
 * the fresh array: per-head attention slices q, k and v dozens of times per
 * layer, which made CLIP's 77-token forward take seconds. This kernel reads
 * the heap in place: one `set()` per contiguous run of the output. Values
 * are identical; only strings fall back to the stock kernel. `SplitV`
 * (`tf.split`), whose stock kernel calls the stock slice directly, is
 * replaced too. Installed once, on import, when the wasm kernels are
 * registered.
 *
 * @example
 * ```ts
 * import "./wasm_slice.ts";
 * import { ready, tf } from "../../lib/backend.ts";
 * await ready("wasm");
 * const y = tf.slice(tf.ones([1024, 1024]), [0, 0], [8, 1024]); // copies 8 rows, not the input
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The fast kernel; `stock` handles strings. */
function sliceKernel(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === "string" || x.shape.length === 0) return stock(args);
    const { begin, size } = args.attrs as unknown as { begin: number[]; size: number[] };
    const [start, extent] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const backend = args.backend as unknown as HeapBackend;
    const out = backend.makeOutput(extent, x.dtype);
    const total = extent.reduce((a, b) => a * b, 1);
    if (total === 0) return out;
    // Views after makeOutput: growing the heap detaches earlier ones.
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    const rank = x.shape.length;
    const strides = tf.util.computeStrides(x.shape);
    // Merge the trailing axes the slice takes whole into one contiguous run.
    let inner = rank - 1;
    while (inner > 0 && start[inner] === 0 && extent[inner] === x.shape[inner]) inner--;
    const run = extent.slice(inner).reduce((a, b) => a * b, 1);
    const outer = extent.slice(0, inner);
    const index = new Array<number>(inner).fill(0);
    for (let o = 0; o < total; o += run) {
      let offset = start[inner]! * (strides[inner] ?? 1);
      for (let a = 0; a < inner; a++) offset += (start[a]! + index[a]!) * strides[a]!;
      dst.set(src.subarray(offset, offset + run), o);
      for (let a = inner - 1; a >= 0; a--) {
        if (++index[a]! < outer[a]!) break;
        index[a] = 0;
      }
    }
    return out;
  };
}

/** `SplitV` as slices through `slice` (the stock kernel calls the stock slice directly). */
function splitKernel(slice: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { numOrSizeSplits, axis } = args.attrs as unknown as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const dim = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, dim);
    const begin = x.shape.map(() => 0);
    return sizes.map((extent) => {
      const size = [...x.shape];
      size[dim] = extent;
      const out = slice({ ...args, attrs: { begin: [...begin], size } }) as tf.TensorInfo;
      begin[dim]! += extent;
      return out;
    });
  };
}

/** Swaps a registered wasm kernel for `make(stock)`, once. */
function replaceKernel(name: string, make: (stock: tf.KernelFunc) => tf.KernelFunc): void {
  const stock = tf.getKernel(name, "wasm");
  if (!stock || (stock.kernelFunc as { fast?: boolean }).fast) return;
  const fast = make(stock.kernelFunc);
  Object.assign(fast, { fast: true });
  tf.unregisterKernel(name, "wasm");
  tf.registerKernel({ ...stock, kernelFunc: fast });
}

replaceKernel("Slice", sliceKernel);
const slice = tf.getKernel("Slice", "wasm");
if (slice) replaceKernel("SplitV", () => splitKernel(slice.kernelFunc));
