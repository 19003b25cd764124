/**
 * Test helper run as a separate process by tests/hub_processes_test.ts:
 * `deno run ... tests/_hub_child.ts resolve|pipeline <model id>` fetches a
 * pipeline's files into the Hugging Face cache (settings from HF_ENDPOINT,
 * HF_HUB_CACHE, HF_HUB_OFFLINE), or loads the whole pipeline, and prints
 * the snapshot folder or the pipeline class on stdout.
 *
 * @module
 */

import { resolveModelDir } from "../lib/model_source.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";

const [mode, id] = Deno.args;
if (mode === "resolve") {
  console.log(await resolveModelDir(id!, {}));
} else {
  const pipe = await DiffusionPipeline.fromPretrained(id!, { backend: "wasm" });
  console.log(pipe.className);
  pipe.dispose();
}
