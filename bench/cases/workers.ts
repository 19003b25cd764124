/**
 * Report case: a batch-2 UNet step (random weights) in one Worker vs split
 * across two Workers: the google/ddpm-cat-256 UNet at 128² (`cat`), or a
 * guided step of the UNet2DConditionModel of ldm-text2im-large-256 at 32²
 * latents (`ldm`) or of SD 1.5 at 64² (`sd`), the halves being the
 * unconditional and conditional inputs (lib/workers/); interleaved, with each Worker thread's CPU time: on a
 * machine whose cores are busy with other jobs, the wall-clock speedup
 * understates what two free cores give, and the per-thread CPU times show
 * how evenly the work was split. Checks that both modes give identical
 * outputs. Prints its rows as JSON on the last line (see bench/report.ts).
 *
 * `pipeline` times whole guided Stable Diffusion steps through the pipeline
 * API, in-process (`workers: 1`) vs `workers: 2`: a step is the time from
 * one `onStep` callback to the next (UNet, guidance, scheduler, and in the
 * Worker mode the transfers), so text encoding and decoding are left out.
 * `pipeline emoji` (default) runs the bundled demo model
 * (`DiffusionPipeline.fromPretrained(DEFAULT_MODEL, { workers })`),
 * `pipeline sd` the same pipeline with an SD 1.5-size UNet (random weights,
 * 64² latents, DDIM, 3 steps), run in this thread or in two Workers
 * (`WorkerUNet2DCondition.fromConfig`). Its two modes run one after the other
 * (three copies of its weights would not fit at once); the demo model's are
 * interleaved.
 *
 * Run: `deno run -A bench/cases/workers.ts [reps] [cat|ldm|sd|pipeline [emoji|sd]]`
 *
 * @module
 */

import process from "node:process";
import { ready, tf } from "../../lib/backend.ts";
import { ParallelModel } from "../../lib/workers/parallel_model.ts";
import { WorkerUNet2DCondition } from "../../lib/workers/worker_unet.ts";
import { DiffusionPipeline } from "../../lib/pipelines/diffusion_pipeline.ts";
import type {
  StableDiffusionCallOptions,
  StableDiffusionPipeline,
} from "../../lib/pipelines/stable_diffusion.ts";
import { DEFAULT_MODEL } from "../../lib/generate.ts";
import { DDIMScheduler } from "../../schedulers/ddim.ts";
import { UNet2DConditionModel } from "../../models/unet_2d_condition.ts";
import { initValues } from "../../models/layers/init.ts";
import type { ModelSpec } from "../../lib/workers/protocol.ts";
import { interleave, threadCpuMs } from "../measure.ts";
import type { Row } from "../results_md.ts";

await ready("wasm");
const reps = Number(Deno.args[0] ?? 3);
const which = Deno.args[1] ?? "cat";
const CONFIGS = new URL("../../../shared/configs/", import.meta.url);
const readConfig = async (path: string) =>
  JSON.parse(await Deno.readTextFile(new URL(path, CONFIGS)));
const random = (shape: number[], seed: number): tf.Tensor =>
  tf.tensor(initValues({ kind: "normal", std: 1 }, shape.reduce((a, b) => a * b, 1), seed), shape);

/** The model (a ParallelModel spec), its batch-2 inputs and its label. */
async function setup(): Promise<[ModelSpec, tf.Tensor[], string]> {
  const unet2d = new URL("../../lib/workers/unet_2d_factory.ts", import.meta.url).href;
  const conditional =
    new URL("../../lib/workers/unet_2d_condition_factory.ts", import.meta.url).href;
  const t = tf.tensor1d([500, 500], "int32");
  if (which === "cat") {
    const args = { config: await readConfig("google__ddpm-cat-256/config.json"), seed: 0 };
    return [
      { module: unet2d, factory: "createUNet2D", args },
      [random([2, 128, 128, 3], 1), t],
      "UNet2DModel cat-256 @128², batch 2",
    ];
  }
  const [path, size, label] = which === "ldm"
    ? ["CompVis__ldm-text2im-large-256/unet/config.reconstructed.json", 32, "ldm-text2im-large-256"]
    : ["runwayml__stable-diffusion-v1-5/unet/config.json", 64, "SD 1.5"];
  const config = await readConfig(path);
  const context = random([2, 77, Number(config.cross_attention_dim)], 2);
  return [
    { module: conditional, factory: "createUNet2DCondition", args: { config, seed: 0 } },
    [random([2, size, size, 4], 1), t, context],
    `UNet2DConditionModel ${label}, guided step (batch 2 = uncond + cond), ${size}² latents`,
  ];
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

/** One mode of the pipeline case: a loaded pipeline, and the call whose steps are timed. */
interface PipelineMode {
  workers: number;
  load(): Promise<StableDiffusionPipeline>;
  call: StableDiffusionCallOptions<"tensor">;
  /** Time the first step too, from the call's start (when the call encodes no prompt). */
  fromStart?: boolean;
}

/**
 * Step times (wall, CPU of all this process's threads, and the busiest thread's CPU) of `reps`
 * calls, and the last call's final latents (compared, not the images: the VAE decode in this
 * thread may pick other conv algorithms when this thread's memory differs, as it does when the
 * UNet is elsewhere).
 */
async function timeSteps(pipe: StableDiffusionPipeline, mode: PipelineMode, reps: number) {
  const wall: number[] = [];
  const cpu: number[] = [];
  const busiest: number[] = [];
  let output: Float32Array | undefined;
  for (let r = 0; r < reps; r++) {
    const marks: [number, number, Map<string, number>][] = [];
    const mark = () => {
      const c = process.cpuUsage();
      marks.push([performance.now(), (c.user + c.system) / 1000, threadCpuMs()]);
    };
    if (mode.fromStart) mark();
    const out = await pipe.call({
      ...mode.call,
      onStep: async ({ step, numSteps, latents }) => {
        mark();
        if (step === numSteps - 1) output = (await latents.data()) as Float32Array;
      },
    });
    out.images.dispose();
    // Between consecutive marks: one whole step, without prompt encoding or decoding.
    for (let i = 1; i < marks.length; i++) {
      wall.push(marks[i]![0] - marks[i - 1]![0]);
      cpu.push(marks[i]![1] - marks[i - 1]![1]);
      const [before, after] = [marks[i - 1]![2], marks[i]![2]];
      busiest.push(Math.max(...[...after].map(([id, ms]) => ms - (before.get(id) ?? 0))));
    }
  }
  return { wall, cpu, busiest, output: output! };
}

/** The `pipeline` case: guided SD steps through the pipeline API, in-process vs two Workers. */
async function pipelineRows(model: string): Promise<Row[]> {
  const embeds = (seed: number) => random([1, 77, 768], seed) as tf.Tensor3D;
  let modes: PipelineMode[];
  let label: string;
  if (model === "sd") {
    const config = await readConfig("runwayml__stable-diffusion-v1-5/unet/config.json");
    const [promptEmbeds, negativePromptEmbeds] = [embeds(2), embeds(3)];
    const latents = random([1, 64, 64, 4], 1) as tf.Tensor4D;
    const call = {
      promptEmbeds,
      negativePromptEmbeds,
      latents,
      numInferenceSteps: 3,
      guidanceScale: 7.5,
      outputType: "tensor",
    } as const;
    const load = async (unet: unknown) => {
      const pipe = await DiffusionPipeline.fromPretrained(DEFAULT_MODEL, {
        components: { unet },
      }) as StableDiffusionPipeline;
      pipe.scheduler = DDIMScheduler.fromConfig(pipe.scheduler.config);
      return pipe;
    };
    modes = [
      {
        workers: 1,
        call,
        fromStart: true,
        load: () => load(UNet2DConditionModel.fromConfig(config, {}, { seed: 0 })),
      },
      {
        workers: 2,
        call,
        fromStart: true,
        load: async () => load(await WorkerUNet2DCondition.fromConfig(config, { workers: 2 })),
      },
    ];
    label = "SD 1.5-size UNet (random weights), 64² latents, DDIM";
  } else {
    const call = {
      prompt: "cat face",
      latents: random([1, 8, 8, 4], 1) as tf.Tensor4D,
      numInferenceSteps: 10,
      guidanceScale: 7.5,
      outputType: "tensor",
    } as const;
    modes = [1, 2].map((workers) => ({
      workers,
      call,
      load: async () =>
        await DiffusionPipeline.fromPretrained(DEFAULT_MODEL, {
          workers,
        }) as StableDiffusionPipeline,
    }));
    label = "bundled emoji SD model, 8² latents (32² image)";
  }
  const results: Awaited<ReturnType<typeof timeSteps>>[] = [];
  if (model === "sd") {
    for (const mode of modes) {
      const pipe = await mode.load();
      try {
        results.push(await timeSteps(pipe, mode, reps));
      } finally {
        pipe.dispose();
      }
    }
  } else {
    // Small enough to hold both: warm both up, then alternate calls so both see the same load.
    const pipes = await Promise.all(modes.map((m) => m.load()));
    for (const [i, m] of modes.entries()) await timeSteps(pipes[i]!, m, 1);
    const parts = modes.map(() => ({
      wall: [] as number[],
      cpu: [] as number[],
      busiest: [] as number[],
    }));
    let outputs: Float32Array[] = [];
    for (let r = 0; r < reps; r++) {
      outputs = [];
      for (const [i, m] of modes.entries()) {
        const t = await timeSteps(pipes[i]!, m, 1);
        parts[i]!.wall.push(...t.wall);
        parts[i]!.cpu.push(...t.cpu);
        parts[i]!.busiest.push(...t.busiest);
        outputs.push(t.output);
      }
    }
    for (const p of pipes) p.dispose();
    results.push(...parts.map((p, i) => ({ ...p, output: outputs[i]! })));
  }
  const identical = results[0]!.output.every((v, k) => v === results[1]!.output[k]);
  const load = Deno.loadavg()[0]!;
  const [one, two] = results.map((r) => median(r.wall));
  const [c1, c2] = results.map((r) => median(r.busiest));
  // Thread CPU times come in 10 ms ticks: only worth showing for long steps.
  const busy = (ms: number) => ms >= 1000 ? `; busiest thread ${ms.toFixed(0)} ms CPU` : "";
  return results.map((r, i): Row => ({
    name: `${label}, one guided step through the pipeline, ${
      i === 0 ? "in-process (workers: 1)" : "workers: 2"
    }`,
    wallMs: median(r.wall),
    cpuMs: median(r.cpu),
    reps: r.wall.length,
    load,
    note: i === 0
      ? `median step (callback to callback)${busy(c1!)}`
      : `wall speedup ${(one! / two!).toFixed(2)}×${busy(c2!)}${
        c1! >= 1000 ? ` → ${(c1! / c2!).toFixed(2)}× with a free core per Worker` : ""
      }; final latents ${identical ? "identical" : "DIFFER"}`,
  }));
}

if (which === "pipeline") {
  console.log(JSON.stringify(await pipelineRows(Deno.args[2] ?? "emoji")));
  Deno.exit(0);
}

const [spec, inputs, label] = await setup();
const pools = [
  await ParallelModel.create(spec, { workers: 1 }),
  await ParallelModel.create(spec, { workers: 2 }),
];
const outputs: Float32Array[] = [];
const busiest: number[][] = [[], []];

const variants = pools.map((pool, i) => ({
  name: `${label}, ${pool.workers} Worker${pool.workers > 1 ? "s" : ""}`,
  run: async () => {
    const before = threadCpuMs();
    const y = await pool.forward(inputs);
    outputs[i] = (await y.data()) as Float32Array;
    y.dispose();
    const after = threadCpuMs();
    // the busiest thread's CPU time: the critical path when every Worker has a core of its own
    const used = [...after].map(([id, ms]) => ms - (before.get(id) ?? 0));
    busiest[i]!.push(Math.max(...used));
  },
}));
const [one, two] = await interleave(variants, reps);
const identical = outputs[0]!.every((v, k) => v === outputs[1]![k]);
const [c1, c2] = [median(busiest[0]!.slice(1)), median(busiest[1]!.slice(1))];
// PyTorch's batch-2 forward (issue #7: 2 threads) is the same work as a guided step.
const torchMs = ({ ldm: 3730, sd: 12700 } as Record<string, number>)[which];
const rows: Row[] = [
  { ...one!, torchMs, note: `busiest thread ${c1.toFixed(0)} ms CPU` },
  {
    ...two!,
    torchMs,
    note: `wall speedup ${(one!.wallMs / two!.wallMs).toFixed(2)}×; busiest thread ${
      c2.toFixed(0)
    } ms CPU → ${(c1 / c2).toFixed(2)}× with a free core per Worker; outputs ${
      identical ? "identical" : "DIFFER"
    }`,
  },
];
for (const p of pools) p.close();
console.log(JSON.stringify(rows));
