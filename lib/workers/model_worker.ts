/**
 * The Worker side of {@link ParallelModel} (lib/workers/parallel_model.ts):
 * starts its own tfjs backend (WASM: one single-thread XNNPACK per
 * worker, which is how two cores get used, since tfjs-wasm's own threads do
 * not start under Deno), builds the model from a {@link ModelSpec} and
 * answers forward requests. Not imported by user code; started with
 * `new Worker(new URL("./model_worker.ts", import.meta.url), { type: "module" })`.
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./model_worker.ts", import.meta.url), { type: "module" });
 * worker.terminate();
 * ```
 *
 * @module
 */

import { ready, tf } from "../backend.ts";
import type { Request, Response, WireTensor, WorkerModel, WorkerModelFactory } from "./protocol.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  postMessage(message: Response, transfer?: Transferable[]): void;
}

const scope = self as unknown as WorkerScope;
let model: WorkerModel | null = null;

async function load(request: Extract<Request, { type: "load" }>): Promise<Response> {
  const backend = await ready(request.backend);
  const module = await import(request.spec.module) as Record<string, unknown>;
  const factory = module[request.spec.factory] as WorkerModelFactory | undefined;
  if (typeof factory !== "function") {
    throw new Error(`${request.spec.module} exports no factory ${request.spec.factory}`);
  }
  model?.dispose();
  model = await factory(request.spec.args);
  return { type: "loaded", id: request.id, backend };
}

function forward(request: Extract<Request, { type: "forward" }>): [Response, Transferable[]] {
  if (!model) throw new Error("forward before load");
  const start = performance.now();
  const current = model;
  const output = tf.tidy(() => {
    const inputs = request.inputs.map((t) => tf.tensor(t.data, t.shape, t.dtype));
    return current.forward(inputs, request.options);
  });
  const data = output.dataSync() as Float32Array | Int32Array;
  const wire: WireTensor = {
    shape: output.shape,
    dtype: output.dtype === "int32" ? "int32" : "float32",
    data,
  };
  output.dispose();
  const ms = performance.now() - start;
  return [{ type: "output", id: request.id, output: wire, ms }, [data.buffer as ArrayBuffer]];
}

scope.onmessage = async (event: MessageEvent<Request>): Promise<void> => {
  const request = event.data;
  try {
    if (request.type === "load") scope.postMessage(await load(request));
    else {
      const [response, transfer] = forward(request);
      scope.postMessage(response, transfer);
    }
  } catch (e) {
    scope.postMessage({ type: "error", id: request.id, message: String((e as Error)?.stack ?? e) });
  }
};
