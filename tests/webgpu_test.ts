/**
 * The WebGPU subset: one fixture case of every scheduler class, and the
 * tiny DDIM pipeline, replayed on the WebGPU backend (on these machines
 * Mesa's software adapter: slow, so the subset is small). Set
 * DIFFUSERS_SKIP_WEBGPU=1 on a machine with no adapter at all.
 */
import assert from "node:assert/strict";
import { onWebGPU, SKIP_WEBGPU, testShutdownWebGPU } from "./_webgpu.ts";
import { SCHEDULERS } from "../schedulers/registry.ts";
import { casesOf, replaySchedulerCase } from "./_scheduler_fixture.ts";
import { assertClose, FIXTURES_DIR, readTensors } from "./_helpers.ts";
import { DiffusionPipeline } from "../lib/pipelines/diffusion_pipeline.ts";
import type { UnconditionalPipeline } from "../lib/pipelines/unconditional.ts";
import { Generator } from "../lib/random.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";

for (const name of SCHEDULERS.keys()) {
  Deno.test({
    name: `webgpu: ${name} replays its first fixture case`,
    ignore: SKIP_WEBGPU,
    fn: () =>
      onWebGPU(async () => {
        const [first] = await casesOf(name);
        assert(first, `no fixture case for ${name}`);
        await replaySchedulerCase(first, (c) => SCHEDULERS.get(name)!.fromConfig(c));
      }),
  });
}

Deno.test({
  name: "webgpu: ddim_tiny pipeline reproduces diffusers' image from seed 0",
  ignore: SKIP_WEBGPU,
  fn: () =>
    onWebGPU(async () => {
      const expected = await readTensors("pipelines/ddim_tiny/expected.safetensors");
      const pipe = await DiffusionPipeline.fromPretrained(
        `${FIXTURES_DIR}/pipelines/ddim_tiny`,
      ) as UnconditionalPipeline;
      const out = await pipe.call({
        numInferenceSteps: 10,
        generator: new Generator().manualSeed(0),
        outputType: "tensor",
      });
      assertClose(
        await out.images.data(),
        toFloat32(expected.tensors.get("image")!),
        1e-4,
        "image on webgpu",
      );
      out.images.dispose();
      pipe.dispose();
    }),
});

testShutdownWebGPU();
