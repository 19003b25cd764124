/**
 * Runs one model in several Deno Workers, each with its own tfjs backend
 * and its own copy of the weights, and splits every call's batch across
 * them: the two classifier-free-guidance halves of a Stable Diffusion step,
 * or the items of an unconditional batch, run on two cores at once. With
 * `workers: 1` the same API runs everything in one Worker (the
 * single-worker mode).
 *
 * The model is given as a {@link ModelSpec} (a module and the factory it
 * exports), so any model with a `forward(tensors, options)` can be wrapped;
 * lib/workers/unet_2d_factory.ts is the one for UNet2DModel. Inputs whose
 * first dimension equals the first input's batch size are split along it,
 * contiguously and in order; other inputs go to every worker whole. The
 * output halves are joined along the batch axis in the same order, so
 * results equal a one-worker call whenever the model treats batch items
 * independently (every diffusers UNet does).
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { ParallelModel } from "./parallel_model.ts";
 * const unet = await ParallelModel.create({
 *   module: new URL("./unet_2d_factory.ts", import.meta.url).href,
 *   factory: "createUNet2D",
 *   args: { pretrained: "../shared/fixtures/pipelines/ddpm_tiny", subfolder: "unet" },
 * }, { workers: 2 });
 * const eps = await unet.forward([tf.zeros([2, 32, 32, 3]), tf.tensor1d([10, 10])]);
 * unet.close();
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { ArgumentError, DiffusersError } from "../errors.ts";
import type { ModelSpec, Request, Response, WireTensor } from "./protocol.ts";

/** Options of {@link ParallelModel.create}. */
export interface ParallelModelOptions {
  /** Number of Workers (default 2, one per core of a 2-core machine). */
  workers?: number;
  /** Backend each worker starts (default `wasm`). */
  backend?: "wasm" | "cpu";
}

/** A request before it is numbered. */
type RequestBody = Request extends infer R ? R extends { id: number } ? Omit<R, "id"> : never
  : never;

interface Pending {
  resolve(response: Response): void;
  reject(error: Error): void;
}

/** One Worker and its outstanding requests. */
class WorkerHandle {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;

  constructor() {
    this.#worker = new Worker(new URL("./model_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<Response>) => {
      const response = event.data;
      const pending = this.#pending.get(response.id);
      if (!pending) return;
      this.#pending.delete(response.id);
      if (response.type === "error") {
        pending.reject(new DiffusersError(`worker: ${response.message}`));
      } else pending.resolve(response);
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const error = new DiffusersError(`worker failed: ${event.message}`);
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
  }

  request(message: RequestBody, transfer: Transferable[] = []): Promise<Response> {
    if (this.#closed) return Promise.reject(new DiffusersError("worker closed"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  terminate(): void {
    this.#closed = true;
    this.#worker.terminate();
    const error = new DiffusersError("worker closed");
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}

/**
 * Checks a Worker count: a positive integer, and Workers that can run this
 * library (Deno's: its Workers import the model modules as TypeScript,
 * which a page's bundle cannot).
 *
 * @example
 * ```ts
 * import { checkWorkers } from "./parallel_model.ts";
 * checkWorkers(2); // throws ArgumentError in a browser
 * ```
 */
export function checkWorkers(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new ArgumentError(`workers must be a positive integer, got ${n}`);
  }
  if (!("Deno" in globalThis) || typeof Worker === "undefined") {
    throw new ArgumentError(
      "workers: the model runs in Deno Workers, which this runtime does not have (in a browser, leave workers unset)",
    );
  }
}

/** Rows [start, end) of a batched host tensor, as a fresh array (transferable). */
function rows(t: WireTensor, start: number, end: number): WireTensor {
  const per = t.data.length / t.shape[0]!;
  const data = t.data.slice(start * per, end * per);
  return { shape: [end - start, ...t.shape.slice(1)], dtype: t.dtype, data };
}

/**
 * A model replicated in Workers; see the module doc.
 *
 * @example
 * ```ts
 * // const single = await ParallelModel.create(spec, { workers: 1 });
 * // const y = await single.forward([sample, timesteps]);
 * ```
 */
export class ParallelModel {
  readonly #handles: WorkerHandle[];
  #lastWorkerMs: number[] = [];

  private constructor(handles: WorkerHandle[]) {
    this.#handles = handles;
  }

  /**
   * Starts the Workers and builds the model in each (in parallel).
   *
   * @example
   * ```ts
   * // const pm = await ParallelModel.create(spec, { workers: 2 });
   * ```
   */
  static async create(spec: ModelSpec, options: ParallelModelOptions = {}): Promise<ParallelModel> {
    const n = options.workers ?? 2;
    checkWorkers(n);
    const handles = Array.from({ length: n }, () => new WorkerHandle());
    try {
      await Promise.all(
        handles.map((h) => h.request({ type: "load", spec, backend: options.backend ?? "wasm" })),
      );
    } catch (e) {
      for (const h of handles) h.terminate();
      throw e;
    }
    return new ParallelModel(handles);
  }

  /** Number of Workers. */
  get workers(): number {
    return this.#handles.length;
  }

  /** Milliseconds each worker spent in its share of the last call (model time, no transfers). */
  get lastWorkerMs(): readonly number[] {
    return this.#lastWorkerMs;
  }

  /**
   * One forward pass: splits the batch across the workers, runs the shares
   * at once, and joins the outputs in batch order. `options` is passed to
   * every worker's model as is (structured-cloneable).
   *
   * @example
   * ```ts
   * // const eps = await pm.forward([latents, timesteps, textEmbeddings]);
   * ```
   */
  async forward(inputs: readonly tf.Tensor[], options: unknown = {}): Promise<tf.Tensor> {
    if (inputs.length === 0) throw new ArgumentError("forward needs at least one input");
    const wire: WireTensor[] = await Promise.all(inputs.map(async (t) => ({
      shape: [...t.shape],
      dtype: t.dtype === "int32" ? "int32" as const : "float32" as const,
      data: (await t.data()) as Float32Array | Int32Array,
    })));
    const batch = wire[0]!.shape[0]!;
    const shares = Math.min(this.#handles.length, batch);
    const bounds = Array.from({ length: shares + 1 }, (_, i) => Math.round((i * batch) / shares));
    const responses = await Promise.all(
      this.#handles.slice(0, shares).map((handle, i) => {
        const part = wire.map((t) =>
          t.shape[0] === batch
            ? rows(t, bounds[i]!, bounds[i + 1]!)
            : { ...t, data: t.data.slice() }
        );
        return handle.request(
          { type: "forward", inputs: part, options },
          part.map((t) => t.data.buffer as ArrayBuffer),
        );
      }),
    );
    const outputs = responses.map((r) => (r as Extract<Response, { type: "output" }>));
    this.#lastWorkerMs = outputs.map((o) => o.ms);
    const first = outputs[0]!.output;
    const total = outputs.reduce((n, o) => n + o.output.data.length, 0);
    const data = first.dtype === "int32" ? new Int32Array(total) : new Float32Array(total);
    let offset = 0;
    for (const o of outputs) {
      data.set(o.output.data, offset);
      offset += o.output.data.length;
    }
    const rowsOut = outputs.reduce((n, o) => n + o.output.shape[0]!, 0);
    return tf.tensor(data, [rowsOut, ...first.shape.slice(1)], first.dtype);
  }

  /**
   * Stops every Worker (their weights go with them).
   *
   * @example
   * ```ts
   * // pm.close();
   * ```
   */
  close(): void {
    for (const h of this.#handles) h.terminate();
  }
}
