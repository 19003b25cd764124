/**
 * Reproduces diffusers' own scheduler unit tests (`test_full_loop*`,
 * `test_switch`) from `../shared/fixtures/schedulers/diffusers_tests.json`
 * (README-f1 section 3): the deterministic dummy sample, noise and model,
 * each test's procedure, and its `abs(result - expected) < tolerance`
 * assertions on `sum(|x|)` / `mean(|x|)` of the final sample.
 *
 * The runner is generic over scheduler classes. Every procedure of the JSON
 * is implemented (`plain`, `plain_with_noise`, `scaled`, `scaled_with_noise`,
 * `ddpm_train_loop`, `ddpm_with_noise`, `pndm_prk_plms`); a test that names
 * a `torch.manual_seed(s)` generator gets `new Generator().manualSeed(s)`,
 * passed to every `step()`. Samples are NCHW, so schedulers run with
 * `noiseLayout = "NCHW"`.
 *
 * @example
 * ```ts
 * import { diffusersTestsFor, runDiffusersTest } from "./_diffusers_tests.ts";
 * import { DDIMScheduler } from "../schedulers/ddim.ts";
 * for (const test of await diffusersTestsFor("DDIMScheduler")) {
 *   Deno.test(test.id, async () => {
 *     await runDiffusersTest(test, (c) => DDIMScheduler.fromConfig(c));
 *   });
 * }
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { Generator } from "../lib/random.ts";
import type { ConfigDict } from "../lib/config.ts";
import type { Scheduler, SchedulerOutput, StepOptions } from "../schedulers/scheduler.ts";
import { readJson } from "./_helpers.ts";

/**
 * Builds the scheduler under test from a config (constructor kwargs or another scheduler's config).
 *
 * @example
 * ```ts
 * import type { DiffusersTestFactory } from "./_diffusers_tests.ts";
 * import { DDIMScheduler } from "../schedulers/ddim.ts";
 * const factory: DiffusersTestFactory = (config) => DDIMScheduler.fromConfig(config);
 * ```
 */
export type DiffusersTestFactory = (config: ConfigDict) => Scheduler;

/**
 * One `abs(quantity - expected) < tolerance` assertion of a diffusers test.
 *
 * @example
 * ```ts
 * import type { ExpectedValue } from "./_diffusers_tests.ts";
 * const e: ExpectedValue = { quantity: "result_mean", expected: 0.2464, tolerance: 1e-3 };
 * ```
 */
export interface ExpectedValue {
  /** `result_sum` (sum of |x|) or `result_mean` (mean of |x|). */
  quantity: "result_sum" | "result_mean";
  /** The value diffusers asserts. */
  expected: number;
  /** The absolute tolerance of the assertion. */
  tolerance: number;
}

/**
 * One entry of `tests` in `diffusers_tests.json`.
 *
 * @example
 * ```ts
 * import { type DiffusersTest, diffusersTestsFor } from "./_diffusers_tests.ts";
 * const tests: DiffusersTest[] = await diffusersTestsFor("DDPMScheduler");
 * console.log(tests.map((t) => t.procedure)); // ["ddpm_train_loop", "ddpm_train_loop", "ddpm_with_noise"]
 * ```
 */
export interface DiffusersTest {
  /** pytest id, e.g. `tests/schedulers/test_scheduler_ddim.py::DDIMSchedulerTest::test_full_loop_no_noise`. */
  id: string;
  /** The diffusers class under test. */
  scheduler_class: string;
  /** Constructor kwargs. */
  config: ConfigDict;
  /** Procedure name (a key of the JSON's `procedures`). */
  procedure: string;
  /** The procedure in prose. */
  procedure_text: string;
  /** `set_timesteps` argument, or null for the DDPM loops that never call it. */
  num_inference_steps: number | null;
  /** Start index (times `order`) into the timesteps for the `*_with_noise` procedures. */
  t_start: number | null;
  /** Extra `step()` keyword arguments. */
  step_kwargs: Record<string, number | boolean>;
  /** `dummy_sample_deter` or `dummy_sample_deter_1d`. */
  sample: string;
  /** `dummy_noise_deter`, `dummy_noise_deter_1d` or null. */
  noise: string | null;
  /** How the generator is made (`torch.manual_seed(s)` ...), or null. */
  generator: string | null;
  /** Notes on unusual tests (e.g. `test_switch`). */
  note: string | null;
  /** The assertions; for `test_switch`, the k-th entry of a quantity belongs to the k-th run. */
  expected: ExpectedValue[];
  /** True when the tolerance is at least the expected value. */
  weak_check: boolean;
}

/**
 * Options of {@link runDiffusersTest}.
 *
 * @example
 * ```ts
 * import type { DiffusersTestOptions } from "./_diffusers_tests.ts";
 * import { DDIMScheduler } from "../schedulers/ddim.ts";
 * // test_switch: pass the config through DDIM before the class under test.
 * const options: DiffusersTestOptions = { switchVia: [(c) => DDIMScheduler.fromConfig(c)] };
 * ```
 */
export interface DiffusersTestOptions {
  /**
   * `test_switch` only: the classes the config passes through before the
   * second run (`B.from_config(A.from_config(config).config)` ...); the
   * last hop is always the factory. Without it, the second run uses the
   * factory's own config round trip.
   */
  switchVia?: readonly DiffusersTestFactory[];
}

/** The scheduler surface of the `pndm_prk_plms` procedure. */
interface PrkPlmsScheduler extends Scheduler {
  prkTimesteps: readonly number[];
  plmsTimesteps: readonly number[];
  stepPrk(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerOutput;
  stepPlms(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerOutput;
}

const KWARG_NAMES: Record<string, keyof StepOptions> = {
  eta: "eta",
  use_clipped_model_output: "useClippedModelOutput",
  s_churn: "sChurn",
  s_tmin: "sTmin",
  s_tmax: "sTmax",
  s_noise: "sNoise",
};

interface TestFile {
  tests: DiffusersTest[];
}

/**
 * The diffusers tests of one scheduler class, in file order.
 *
 * @example
 * ```ts
 * import { diffusersTestsFor } from "./_diffusers_tests.ts";
 * console.log((await diffusersTestsFor("PNDMScheduler")).length); // 4
 * ```
 */
export async function diffusersTestsFor(className: string): Promise<DiffusersTest[]> {
  const file = await readJson<TestFile>("schedulers/diffusers_tests.json");
  return file.tests.filter((t) => t.scheduler_class === className);
}

/**
 * diffusers' `dummy_sample_deter` (4-D, `[4, 3, 8, 8]`) or its 1-D variant
 * (`[4, 3, 8]`): `x[n, c, ...] = float32(k / size)` with `k` the row-major
 * index of `[c, ..., n]`; `flip` gives `dummy_noise_deter` (`size - 1 - k`).
 *
 * @example
 * ```ts
 * import { dummyDeter } from "./_diffusers_tests.ts";
 * const sample = dummyDeter("dummy_sample_deter"); // shape [4, 3, 8, 8]
 * sample.dispose();
 * ```
 */
export function dummyDeter(name: string): tf.Tensor {
  const oneD = name.endsWith("_1d");
  const flip = name.startsWith("dummy_noise");
  const shape = oneD ? [4, 3, 8] : [4, 3, 8, 8];
  const size = shape.reduce((a, b) => a * b, 1);
  const spatial = oneD ? 8 : 64;
  const data = new Float32Array(size);
  // Row-major [n, c, spatial] index -> k of the [c, spatial, n] arange it was permuted from.
  for (let n = 0; n < 4; n++) {
    for (let c = 0; c < 3; c++) {
      for (let s = 0; s < spatial; s++) {
        const k = (c * spatial + s) * 4 + n;
        data[(n * 3 + c) * spatial + s] = (flip ? size - 1 - k : k) / size;
      }
    }
  }
  return tf.tensor(data, shape, "float32");
}

/**
 * diffusers' test `dummy_model`: `(sample * t) / (t + 1)` in float32, with
 * `t` cast to float32 first.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { dummyModel } from "./_diffusers_tests.ts";
 * const y = dummyModel(tf.ones([1, 3, 8, 8]), 999);
 * y.dispose();
 * ```
 */
export function dummyModel(sample: tf.Tensor, t: number): tf.Tensor {
  const t32 = Math.fround(t);
  return tf.tidy(() => tf.div(tf.mul(sample, t32), Math.fround(t32 + 1)));
}

function stepOptions(test: DiffusersTest, generator: Generator | undefined): StepOptions {
  const out: Record<string, number | boolean | Generator> = {};
  for (const [k, v] of Object.entries(test.step_kwargs)) {
    const name = KWARG_NAMES[k];
    if (!name) throw new Error(`${test.id}: step kwarg ${k} has no StepOptions mapping`);
    out[name] = v;
  }
  if (generator) out.generator = generator;
  return out as StepOptions;
}

function seedOf(test: DiffusersTest): number | null {
  if (test.generator === null) return null;
  const m = /manual_seed\((\d+)\)/.exec(test.generator);
  if (!m) throw new Error(`${test.id}: cannot find the seed in ${JSON.stringify(test.generator)}`);
  return Number(m[1]);
}

function isPrkPlms(s: Scheduler): s is PrkPlmsScheduler {
  const c = s as Partial<PrkPlmsScheduler>;
  return Array.isArray(c.prkTimesteps) && typeof c.stepPrk === "function" &&
    typeof c.stepPlms === "function";
}

/** Replaces `x` with the step's `prevSample`, releasing everything else of the step. */
function advance(x: tf.Tensor, extra: tf.Tensor[], out: SchedulerOutput): tf.Tensor {
  const drop = [x, ...extra, out.predOriginalSample ?? []].filter((t) => t !== out.prevSample);
  tf.dispose(drop);
  return out.prevSample;
}

/** Runs the test's procedure once and returns the final sample. */
function runProcedure(test: DiffusersTest, scheduler: Scheduler): tf.Tensor {
  scheduler.noiseLayout = "NCHW";
  const seed = seedOf(test);
  const generator = seed === null ? undefined : new Generator().manualSeed(seed);
  const options = stepOptions(test, generator);
  const T = scheduler.config.num_train_timesteps as number;
  let x = dummyDeter(test.sample);

  const withNoise = (timesteps: readonly number[]): readonly number[] => {
    assert(test.noise !== null && test.t_start !== null, `${test.id}: no noise / t_start`);
    const from = timesteps.slice(test.t_start * scheduler.order);
    const noise = dummyDeter(test.noise);
    const noisy = scheduler.addNoise(x, noise, from.slice(0, 1));
    tf.dispose([noise, x]);
    x = noisy;
    return from;
  };
  const plainLoop = (timesteps: readonly number[]) => {
    for (const t of timesteps) {
      const residual = dummyModel(x, t);
      x = advance(x, [residual], scheduler.step(residual, t, x, options));
    }
  };
  const scaledLoop = (timesteps: readonly number[]) => {
    for (const t of timesteps) {
      // diffusers' tests pass the scaled input (not the latents) to step().
      const scaled = scheduler.scaleModelInput(x, t);
      if (scaled !== x) x.dispose();
      x = scaled;
      const output = dummyModel(x, t);
      x = advance(x, [output], scheduler.step(output, t, x, options));
    }
  };

  switch (test.procedure) {
    case "plain":
      scheduler.setTimesteps(test.num_inference_steps!);
      plainLoop(scheduler.timesteps);
      break;
    case "plain_with_noise":
      scheduler.setTimesteps(test.num_inference_steps!);
      plainLoop(withNoise(scheduler.timesteps));
      break;
    case "scaled":
    case "scaled_with_noise": {
      scheduler.setTimesteps(test.num_inference_steps!);
      const scaled = tf.mul(x, scheduler.initNoiseSigma);
      x.dispose();
      x = scaled;
      scaledLoop(
        test.procedure === "scaled" ? scheduler.timesteps : withNoise(scheduler.timesteps),
      );
      break;
    }
    case "ddpm_train_loop":
      // No setTimesteps: every training timestep, T - 1 down to 0.
      plainLoop(Array.from({ length: T }, (_, i) => T - 1 - i));
      break;
    case "ddpm_with_noise":
      // No setTimesteps: the scheduler's default (training) timesteps.
      plainLoop(withNoise(scheduler.timesteps));
      break;
    case "pndm_prk_plms": {
      assert(isPrkPlms(scheduler), `${test.id}: ${scheduler.className} has no stepPrk/stepPlms`);
      scheduler.setTimesteps(test.num_inference_steps!);
      for (const t of scheduler.prkTimesteps) {
        const residual = dummyModel(x, t);
        x = advance(x, [residual], scheduler.stepPrk(residual, t, x));
      }
      for (const t of scheduler.plmsTimesteps) {
        const residual = dummyModel(x, t);
        x = advance(x, [residual], scheduler.stepPlms(residual, t, x));
      }
      break;
    }
    default:
      throw new Error(`${test.id}: unknown procedure ${test.procedure}`);
  }
  return x;
}

/**
 * `sum(|x|)` and `mean(|x|)` of a final sample, reduced on the host in
 * float64: torch's vectorised float32 sum stays within an ulp or two of the
 * exact sum, while a sequential float32 sum (tfjs WASM) drifts by ~1e-6
 * relative, more than diffusers' 0.01 tolerance on sums near 5e4.
 */
async function results(x: tf.Tensor): Promise<Record<ExpectedValue["quantity"], number>> {
  const data = await x.data();
  let sum = 0;
  for (const v of data) sum += Math.abs(v);
  return { result_sum: Math.fround(sum), result_mean: Math.fround(sum / data.length) };
}

/**
 * Runs one diffusers test against `factory` and asserts every expected
 * value; returns the measured values (one record per run) for reports.
 * Asserts that no tensor outlives the test.
 *
 * @example
 * ```ts
 * import { diffusersTestsFor, runDiffusersTest } from "./_diffusers_tests.ts";
 * import { PNDMScheduler } from "../schedulers/pndm.ts";
 * const [test] = await diffusersTestsFor("PNDMScheduler");
 * const [values] = await runDiffusersTest(test!, (c) => PNDMScheduler.fromConfig(c));
 * console.log(values!.result_sum); // ≈ 198.1318
 * ```
 */
export async function runDiffusersTest(
  test: DiffusersTest,
  factory: DiffusersTestFactory,
  options: DiffusersTestOptions = {},
): Promise<Record<ExpectedValue["quantity"], number>[]> {
  const before = tf.memory().numTensors;
  const configs: ConfigDict[] = [test.config];
  if (test.id.endsWith("::test_switch")) {
    let config = test.config;
    for (const via of options.switchVia ?? []) {
      const hop = via(config);
      config = hop.toJSON();
      hop.dispose();
    }
    const last = factory(config);
    configs.push(last.toJSON());
    last.dispose();
  }

  const measured: Record<ExpectedValue["quantity"], number>[] = [];
  for (const config of configs) {
    const scheduler = factory(config);
    const x = runProcedure(test, scheduler);
    measured.push(await results(x));
    x.dispose();
    scheduler.dispose();
  }

  const seen: Partial<Record<ExpectedValue["quantity"], number>> = {};
  for (const e of test.expected) {
    const run = seen[e.quantity] ?? 0;
    seen[e.quantity] = run + 1;
    const value = measured[Math.min(run, measured.length - 1)]![e.quantity];
    assert(
      Math.abs(value - e.expected) < e.tolerance,
      `${test.id}: ${e.quantity} (run ${
        run + 1
      }) = ${value}, expected ${e.expected} ± ${e.tolerance}`,
    );
  }
  assert.equal(tf.memory().numTensors, before, `${test.id}: tensors leaked`);
  return measured;
}
