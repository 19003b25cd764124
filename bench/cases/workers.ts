/**
 * Report case: a batch-2 step of the google/ddpm-cat-256 UNet (random
 * weights, at `size`²) in one Worker vs split across two Workers
 * (lib/workers/), interleaved, with each Worker thread's CPU time: on a
 * machine whose cores are busy with other jobs, the wall-clock speedup
 * understates what two free cores give, and the per-thread CPU times show
 * how evenly the work was split. Checks that both modes give identical
 * outputs. Prints its rows as JSON on the last line (see bench/report.ts).
 *
 * Run: `deno run -A bench/cases/workers.ts [reps] [size]`
 *
 * @module
 */

import { ready, tf } from "../../lib/backend.ts";
import { ParallelModel } from "../../lib/workers/parallel_model.ts";
import { initValues } from "../../models/layers/init.ts";
import { interleave, threadCpuMs } from "../measure.ts";
import type { Row } from "../results_md.ts";

await ready("wasm");
const reps = Number(Deno.args[0] ?? 3);
const size = Number(Deno.args[1] ?? 128);
const config = new URL("../../../shared/configs/google__ddpm-cat-256/config.json", import.meta.url);
const spec = {
  module: new URL("../../lib/workers/unet_2d_factory.ts", import.meta.url).href,
  factory: "createUNet2D",
  args: { config: JSON.parse(await Deno.readTextFile(config)), seed: 0 },
};
const sample = tf.tensor4d(initValues({ kind: "normal", std: 1 }, 2 * size * size * 3, 1), [
  2,
  size,
  size,
  3,
]);
const timesteps = tf.tensor1d([500, 500], "int32");
const pools = [
  await ParallelModel.create(spec, { workers: 1 }),
  await ParallelModel.create(spec, { workers: 2 }),
];
const outputs: Float32Array[] = [];
const busiest: number[][] = [[], []];

const variants = pools.map((pool, i) => ({
  name: `UNet2DModel cat-256 @${size}², batch 2, ${pool.workers} Worker${
    pool.workers > 1 ? "s" : ""
  }`,
  run: async () => {
    const before = threadCpuMs();
    const y = await pool.forward([sample, timesteps]);
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
