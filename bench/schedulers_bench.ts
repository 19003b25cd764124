/**
 * One `step()` of every scheduler at a 1×4×64×64 latent (Stable Diffusion at
 * 512²) on the WASM backend, so scheduler overhead can be set against a UNet
 * step (seconds). Each iteration includes the readback of the new sample.
 *
 * Run: `deno bench -A bench/schedulers_bench.ts`
 */
import { ready, tf } from "../lib/backend.ts";
import { Generator } from "../lib/random.ts";
import { SCHEDULERS } from "../schedulers/registry.ts";

await ready("wasm");
const shape = [1, 64, 64, 4];
const sample = tf.randomNormal(shape, 0, 1, "float32", 1);
const modelOutput = tf.randomNormal(shape, 0, 1, "float32", 2);
const sd = {
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  num_train_timesteps: 1000,
};

for (const [name, cls] of SCHEDULERS) {
  const scheduler = cls.fromConfig(sd);
  const generator = new Generator().manualSeed(0);
  scheduler.setTimesteps(25);
  let i = 0;
  Deno.bench({
    name,
    group: "scheduler step, 1x4x64x64",
    baseline: name === "DDIMScheduler",
    async fn() {
      // Walk the schedule (multistep and second-order state included); start over at the end.
      if (i >= scheduler.timesteps.length) {
        scheduler.setTimesteps(25);
        i = 0;
      }
      const t = scheduler.timesteps[i++]!;
      const out = scheduler.step(modelOutput, t, sample, { generator });
      await out.prevSample.data();
      tf.dispose([out.prevSample, out.predOriginalSample ?? []]);
    },
  });
}
