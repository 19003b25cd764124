/**
 * Messages between {@link ParallelModel} (lib/workers/parallel_model.ts)
 * and its Workers (lib/workers/model_worker.ts): tensors travel as
 * shape + typed array (transferred, not copied), models as a
 * {@link ModelSpec} (a module to import in the worker and the factory it
 * exports), since functions cannot cross a Worker boundary.
 *
 * @example
 * ```ts
 * import type { ModelSpec } from "./protocol.ts";
 * const spec: ModelSpec = {
 *   module: new URL("./unet_2d_factory.ts", import.meta.url).href,
 *   factory: "createUNet2D",
 *   args: { pretrained: "../shared/fixtures/pipelines/ddpm_tiny", subfolder: "unet" },
 * };
 * ```
 *
 * @module
 */

import type { tf } from "../tf.ts";

/** A tensor as it crosses a Worker boundary. */
export interface WireTensor {
  /** tfjs shape. */
  shape: number[];
  /** `float32` or `int32`. */
  dtype: "float32" | "int32";
  /** Row-major values. */
  data: Float32Array | Int32Array;
}

/**
 * Which model a worker builds: `module` (a URL the worker can import)
 * exports `factory(args)`, returning a {@link WorkerModel}. `args` must be
 * structured-cloneable (ArrayBuffers of weights included).
 */
export interface ModelSpec {
  /** Absolute URL of the module exporting the factory. */
  module: string;
  /** Name of the exported factory function. */
  factory: string;
  /** Passed to the factory. */
  args?: unknown;
}

/**
 * What a factory returns inside the worker: a forward pass over tensors
 * (batched inputs first) and a way to free it.
 */
export interface WorkerModel {
  /** One call; `options` is the structured-cloneable extra argument of {@link ParallelModel.forward}. */
  forward(inputs: tf.Tensor[], options: unknown): tf.Tensor;
  /** Frees the weights. */
  dispose(): void;
}

/** A factory as exported by a {@link ModelSpec} module. */
export type WorkerModelFactory = (args: unknown) => Promise<WorkerModel> | WorkerModel;

/** Main thread → worker. */
export type Request =
  | { type: "load"; id: number; spec: ModelSpec; backend: "wasm" | "cpu" }
  | { type: "forward"; id: number; inputs: WireTensor[]; options: unknown };

/** Worker → main thread. */
export type Response =
  | { type: "loaded"; id: number; backend: string }
  | { type: "output"; id: number; output: WireTensor; ms: number }
  | { type: "error"; id: number; message: string };
