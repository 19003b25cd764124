/**
 * Replays one case of `../shared/fixtures/schedulers/` against a scheduler
 * implementation. See `README-f1.md` section 2 for what a case records.
 *
 * Two loops run:
 * - step by step: every step gets the reference `x` and `model_output_i`,
 *   and `model_input_i`, `prev_sample_i` and `pred_original_sample_i` must
 *   match within `stepTol` (relative);
 * - free-running: our own `x` feeds the next step, and the final sample
 *   must match within `loopTol`.
 * Stochastic steps replay the recorded `noise_i` (as `varianceNoise`) or, with
 * `noiseSource: "generator"`, draw from our PyTorch-compatible generator
 * seeded with the case's `noise_seed`. `add_noise` runs on a fresh instance.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { Generator } from "../lib/random.ts";
import { toFloat32, toFloat64 } from "../lib/weights/safetensors.ts";
import type { ConfigDict } from "../lib/config.ts";
import type { Scheduler, StepOptions } from "../schedulers/scheduler.ts";
import { assertClose, readJson, readTensors } from "./_helpers.ts";

/** Builds the scheduler under test from the case's `config`. */
export type SchedulerFactory = (config: ConfigDict) => Scheduler;

/** Tolerances and noise source of one replay. */
export interface ReplayOptions {
  /** Relative tolerance per step (default 1e-5). */
  stepTol?: number;
  /** Relative tolerance of the free-running final sample (default 1e-4). */
  loopTol?: number;
  /** Where stochastic steps get their noise (default "recorded"). */
  noiseSource?: "recorded" | "generator";
}

interface CaseMeta {
  class_name: string;
  config: ConfigDict;
  num_inference_steps: number;
  num_steps: number;
  order: number;
  init_noise_sigma: number;
  step_kwargs: Record<string, number | boolean>;
  noise_seed: number | null;
  noise_steps: number[];
  pred_original_sample_steps: number[];
}

const KWARG_NAMES: Record<string, keyof StepOptions> = {
  eta: "eta",
  use_clipped_model_output: "useClippedModelOutput",
  s_churn: "sChurn",
  s_tmin: "sTmin",
  s_tmax: "sTmax",
  s_noise: "sNoise",
};

function stepOptions(kwargs: Record<string, number | boolean>): StepOptions {
  const out: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(kwargs)) {
    const name = KWARG_NAMES[k];
    if (!name) throw new Error(`fixture step kwarg ${k} has no StepOptions mapping`);
    out[name] = v;
  }
  return out as StepOptions;
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/** Lists the case names of a scheduler class in `schedulers/index.json`. */
export async function casesOf(className: string): Promise<string[]> {
  const index = await readJson<{ cases: { name: string; class_name: string }[] }>(
    "schedulers/index.json",
  );
  return index.cases.filter((c) => c.class_name === className).map((c) => c.name);
}

/** Replays case `name` against `make` and asserts every recorded value. */
export async function replaySchedulerCase(
  name: string,
  make: SchedulerFactory,
  options: ReplayOptions = {},
): Promise<void> {
  const { stepTol = 1e-5, loopTol = 1e-4, noiseSource = "recorded" } = options;
  const meta = await readJson<CaseMeta>(`schedulers/${name}.json`);
  const file = await readTensors(`schedulers/${name}.safetensors`);
  const get = (key: string) => {
    const t = file.tensors.get(key);
    assert(t, `${name}: fixture has no ${key}`);
    return t;
  };
  const tensor = (key: string) => tf.tensor(toFloat32(get(key)), [...get(key).shape]);
  const startTensors = tf.memory().numTensors;

  const scheduler = make(meta.config);
  scheduler.noiseLayout = "NCHW";
  scheduler.setTimesteps(meta.num_inference_steps);
  assert.equal(scheduler.className, meta.class_name);
  assert.equal(scheduler.order, meta.order, `${name}: order`);
  assertClose(scheduler.timesteps, toFloat64(get("timesteps")), 1e-7, `${name}: timesteps`);
  assertClose(
    [scheduler.initNoiseSigma],
    [meta.init_noise_sigma],
    1e-6,
    `${name}: init_noise_sigma`,
  );
  if (file.tensors.has("sigmas")) {
    const sigmas = (scheduler as unknown as { sigmas: ArrayLike<number> }).sigmas;
    assertClose(sigmas, toFloat64(get("sigmas")), 1e-6, `${name}: sigmas`);
  }

  const base = stepOptions(meta.step_kwargs);
  const generator = meta.noise_seed === null
    ? undefined
    : new Generator().manualSeed(meta.noise_seed);
  const noiseFor = (i: number): Partial<StepOptions> => {
    if (!meta.noise_steps.includes(i)) return {};
    return noiseSource === "generator" ? { generator } : { varianceNoise: tensor(`noise_${i}`) };
  };

  // Step by step, teacher-forced with the reference x.
  let x = tensor("sample_init");
  for (let i = 0; i < meta.num_steps; i++) {
    const t = scheduler.timesteps[i]!;
    const modelInput = scheduler.scaleModelInput(x, t);
    assertClose(
      await values(modelInput),
      toFloat32(get(`model_input_${i}`)),
      stepTol,
      `${name}: model_input_${i}`,
    );
    const modelOutput = tensor(`model_output_${i}`);
    const extra = noiseFor(i);
    const out = scheduler.step(modelOutput, t, x, { ...base, ...extra });
    assertClose(
      await values(out.prevSample),
      toFloat32(get(`prev_sample_${i}`)),
      stepTol,
      `${name}: prev_sample_${i}`,
    );
    if (meta.pred_original_sample_steps.includes(i)) {
      assert(out.predOriginalSample, `${name}: step ${i} returned no predOriginalSample`);
      assertClose(
        await values(out.predOriginalSample),
        toFloat32(get(`pred_original_sample_${i}`)),
        stepTol,
        `${name}: pred_original_sample_${i}`,
      );
    }
    tf.dispose([modelInput, modelOutput, out.prevSample, out.predOriginalSample ?? [], x]);
    if (extra.varianceNoise) extra.varianceNoise.dispose();
    x = tensor(`prev_sample_${i}`);
  }
  x.dispose();
  scheduler.dispose();

  // Free-running loop from a fresh instance: our own x feeds each step.
  const free = make(meta.config);
  free.noiseLayout = "NCHW";
  free.setTimesteps(meta.num_inference_steps);
  const freeGenerator = meta.noise_seed === null
    ? undefined
    : new Generator().manualSeed(meta.noise_seed);
  let y = tensor("sample_init");
  for (let i = 0; i < meta.num_steps; i++) {
    const t = free.timesteps[i]!;
    const modelOutput = tensor(`model_output_${i}`);
    const extra: Partial<StepOptions> = !meta.noise_steps.includes(i)
      ? {}
      : noiseSource === "generator"
      ? { generator: freeGenerator }
      : { varianceNoise: tensor(`noise_${i}`) };
    const out = free.step(modelOutput, t, y, { ...base, ...extra });
    tf.dispose([modelOutput, y, out.predOriginalSample ?? [], extra.varianceNoise ?? []]);
    y = out.prevSample;
  }
  assertClose(await values(y), toFloat32(get("final_sample")), loopTol, `${name}: final_sample`);
  y.dispose();
  free.dispose();

  // add_noise on a fresh instance after setTimesteps, before any step.
  const fresh = make(meta.config);
  fresh.setTimesteps(meta.num_inference_steps);
  const original = tensor("add_noise_original");
  const noise = tensor("add_noise_noise");
  const noisy = fresh.addNoise(original, noise, [...toFloat64(get("add_noise_timesteps"))]);
  assertClose(
    await values(noisy),
    toFloat32(get("add_noise_result")),
    stepTol,
    `${name}: add_noise_result`,
  );
  tf.dispose([original, noise, noisy]);
  fresh.dispose();
  assert.equal(tf.memory().numTensors, startTensors, `${name}: tensors leaked`);
}
