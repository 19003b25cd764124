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
 * Run: `deno run -A bench/cases/workers.ts [reps] [cat|ldm|sd]`
 *
 * @module
 */

import { ready, tf } from "../../lib/backend.ts";
import { ParallelModel } from "../../lib/workers/parallel_model.ts";
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
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const [c1, c2] = [median(busiest[0]!.slice(1)), median(busiest[1]!.slice(1))];
const rows: Row[] = [
  { ...one!, note: `busiest thread ${c1.toFixed(0)} ms CPU` },
  {
    ...two!,
    note: `wall speedup ${(one!.wallMs / two!.wallMs).toFixed(2)}×; busiest thread ${
      c2.toFixed(0)
    } ms CPU → ${(c1 / c2).toFixed(2)}× with a free core per Worker; outputs ${
      identical ? "identical" : "DIFFER"
    }`,
  },
];
for (const p of pools) p.close();
console.log(JSON.stringify(rows));
