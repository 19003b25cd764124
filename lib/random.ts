/**
 * PLACEHOLDER API (being implemented): PyTorch-CPU-compatible random numbers.
 *
 * @module
 */
import { tf } from "./tf.ts";

/** Data type of generated values. */
export type RandomDType = "float32" | "float64";

/** MT19937 generator reproducing `torch.Generator("cpu")`. */
export class Generator {
  /** Seeds the generator like `torch.manual_seed(seed)`. */
  manualSeed(_seed: number | bigint): this {
    throw new Error("not implemented");
  }
  /** `torch.randn(n, dtype)` values. */
  randn(_n: number, _dtype: RandomDType = "float32"): Float32Array | Float64Array {
    throw new Error("not implemented");
  }
  /** `torch.rand(n, dtype)` values. */
  rand(_n: number, _dtype: RandomDType = "float32"): Float32Array | Float64Array {
    throw new Error("not implemented");
  }
}

/** Options of the tensor-returning draws. */
export interface RandomTensorOptions {
  /** Generator to draw from (default: the process-wide default generator). */
  generator?: Generator;
  /** For rank-4 shapes given in this layout: "NHWC" draws in NCHW order, then transposes. */
  layout?: "NHWC" | "NCHW";
}

/** `torch.randn(shape)` as a float32 tensor; see {@link RandomTensorOptions.layout}. */
export function randnTensor(
  _shape: readonly number[],
  _options: RandomTensorOptions = {},
): tf.Tensor {
  throw new Error("not implemented");
}
