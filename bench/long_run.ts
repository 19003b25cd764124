/**
 * Long-run drift: the same pipeline called many times in one process must
 * hold a flat number of live tfjs tensors and bytes, and bounded memory
 * (its own V8 and WASM heaps; the process's RSS for the bench), or a server
 * or a batch job would slowly run out of memory.
 * Shared by `tests/long_run_test.ts` (small scale) and
 * `bench/long_run_bench.ts` (100 calls).
 *
 * @example
 * ```ts
 * import { callRepeatedly, drift } from "./long_run.ts";
 * import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
 * import type { DDIMPipeline } from "../lib/pipelines/ddim.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("./ddim_tiny") as DDIMPipeline;
 * console.log(drift(await callRepeatedly(pipe, 20), 3));
 * pipe.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { Generator } from "../lib/random.ts";
import type { UnconditionalPipeline } from "../lib/pipelines/unconditional.ts";

/** Memory after one call. */
export interface CallSample {
  /** Live tfjs tensors. */
  numTensors: number;
  /** Bytes held by live tfjs tensors. */
  numBytes: number;
  /** Process resident set size, bytes (shared with whatever else runs in the process). */
  rss: number;
  /** This isolate's own memory: V8 heap in use plus the WASM heap, bytes. */
  isolateBytes: number;
  /** Wall-clock ms of the call. */
  ms: number;
}

/**
 * Calls `pipe` `calls` times (2 DDIM steps each, a new seed each time, images
 * read back to the host) and samples memory after each call.
 *
 * @example
 * ```ts
 * import { callRepeatedly } from "./long_run.ts";
 * import type { UnconditionalPipeline } from "../lib/pipelines/unconditional.ts";
 * declare const pipe: UnconditionalPipeline;
 * const samples = await callRepeatedly(pipe, 5);
 * console.log(samples.map((s) => s.numTensors));
 * ```
 */
export async function callRepeatedly(
  pipe: UnconditionalPipeline,
  calls: number,
  numInferenceSteps = 2,
): Promise<CallSample[]> {
  const samples: CallSample[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    const { images } = await pipe.call({
      numInferenceSteps,
      generator: new Generator().manualSeed(i),
    });
    if (images.length !== 1) throw new Error(`call ${i} gave ${images.length} images`);
    const { numTensors, numBytes } = tf.memory();
    samples.push({
      numTensors,
      numBytes,
      rss: Deno.memoryUsage().rss,
      isolateBytes: isolateBytes(),
      ms: performance.now() - start,
    });
  }
  return samples;
}

/** V8 heap in use plus the tfjs-wasm heap (0 on other backends): what this isolate holds. */
function isolateBytes(): number {
  const wasm = (tf.backend() as { wasm?: { HEAPU8: Uint8Array } }).wasm;
  return Deno.memoryUsage().heapUsed + (wasm?.HEAPU8.length ?? 0);
}

/** How memory moved between the end of warm-up and the last call. */
export interface Drift {
  /** Change in live tensors (0 when nothing leaks). */
  tensors: number;
  /** Change in live tensor bytes (0 when nothing leaks). */
  bytes: number;
  /** Largest RSS growth over the warm RSS seen after any later call, bytes. */
  rssGrowth: number;
  /**
   * Largest growth of this isolate's memory (V8 heap + WASM heap) over its
   * warm value, bytes: unlike RSS, not moved by other isolates of the
   * process (`deno test --parallel` runs test files side by side).
   */
  isolateGrowth: number;
  /** Median ms per call after warm-up. */
  medianMs: number;
  /** Whether every call after warm-up held exactly the warm tensor count and bytes. */
  flat: boolean;
}

/**
 * Summarises samples, ignoring the first `warmup` calls (kernels, weight
 * packing and buffer pools are set up on first use).
 *
 * @example
 * ```ts
 * import { drift } from "./long_run.ts";
 * const s = { numTensors: 10, numBytes: 400, rss: 1e8, isolateBytes: 5e7, ms: 5 };
 * console.log(drift([s, s, s], 1).flat); // true
 * ```
 */
export function drift(samples: readonly CallSample[], warmup: number): Drift {
  const warm = samples[warmup - 1] ?? samples[0]!;
  const rest = samples.slice(warmup);
  const last = samples[samples.length - 1]!;
  const times = rest.map((s) => s.ms).sort((a, b) => a - b);
  return {
    tensors: last.numTensors - warm.numTensors,
    bytes: last.numBytes - warm.numBytes,
    rssGrowth: Math.max(0, ...rest.map((s) => s.rss - warm.rss)),
    isolateGrowth: Math.max(0, ...rest.map((s) => s.isolateBytes - warm.isolateBytes)),
    medianMs: times[times.length >> 1] ?? 0,
    flat: rest.every((s) => s.numTensors === warm.numTensors && s.numBytes === warm.numBytes),
  };
}
