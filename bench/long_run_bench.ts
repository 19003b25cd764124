/**
 * 100 consecutive DDIM pipeline calls (2 steps each) on the ddim_tiny
 * fixture in one process: prints the live-tensor and byte drift after
 * warm-up, the RSS growth and the median call time, and fails if a single
 * tensor is left behind. `DIFFUSERS_LONG_RUN_CALLS` changes the count. The
 * WASM heap is printed too: it never shrinks, so RSS steps when it grows.
 *
 * Run: `deno bench -A bench/long_run_bench.ts`
 *
 * @module
 */

import { ready } from "../lib/backend.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import { UnconditionalPipeline } from "../lib/pipelines/unconditional.ts";
import { callRepeatedly, drift } from "./long_run.ts";
import { wasmHeapMiB } from "./measure.ts";

const SHARED = Deno.env.get("DIFFUSERS_SHARED") ??
  new URL("../../shared", import.meta.url).pathname;
const CALLS = Number(Deno.env.get("DIFFUSERS_LONG_RUN_CALLS") ?? 100);
const backend = await ready("wasm");
const pipe = await DiffusionPipeline.fromPretrained(`${SHARED}/fixtures/pipelines/ddim_tiny`);
if (!(pipe instanceof UnconditionalPipeline)) throw new Error("ddim_tiny is not unconditional");

Deno.bench({
  name: `${CALLS} DDIM calls (2 steps, 32x32) on ${backend}`,
  group: "long run",
  n: 1,
  warmup: 0,
  async fn() {
    const samples = await callRepeatedly(pipe, CALLS);
    const d = drift(samples, 5);
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    console.log(
      `after ${CALLS} calls: tensors ${samples.at(-1)!.numTensors} (drift ${d.tensors}), ` +
        `bytes ${samples.at(-1)!.numBytes} (drift ${d.bytes}), RSS ${
          mib(samples.at(-1)!.rss)
        } MiB ` +
        `(growth after warm-up ${mib(d.rssGrowth)} MiB), WASM heap ${wasmHeapMiB() ?? "-"} MiB, ` +
        `median ${d.medianMs.toFixed(0)} ms/call`,
    );
    if (!d.flat) throw new Error(`memory drift: ${d.tensors} tensors, ${d.bytes} bytes`);
  },
});

globalThis.addEventListener("unload", () => pipe.dispose());
