/**
 * The k-diffusion family (LMS, Euler, Euler ancestral, Heun, KDPM2) against
 * the diffusers 0.27.2 fixtures: every recorded case step by step and
 * free-running (stochastic ones with recorded noise and with our
 * PyTorch-compatible generator), diffusers' own full-loop tests, the
 * shared sigma helpers, and config / argument errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import type { ConfigDict } from "../lib/config.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import type { Scheduler } from "../schedulers/scheduler.ts";
import { EulerDiscreteScheduler } from "../schedulers/euler_discrete.ts";
import { EulerAncestralDiscreteScheduler } from "../schedulers/euler_ancestral_discrete.ts";
import { HeunDiscreteScheduler } from "../schedulers/heun_discrete.ts";
import { KDPM2DiscreteScheduler } from "../schedulers/k_dpm_2_discrete.ts";
import { LMSDiscreteScheduler } from "../schedulers/lms_discrete.ts";
import { casesOf, replaySchedulerCase } from "./_scheduler_fixture.ts";
import { diffusersTestsFor, runDiffusersTest } from "./_diffusers_tests.ts";
import { assertThrowsTyped } from "./_helpers.ts";
import {
  indexForTimestep,
  interpSigmas,
  karrasSigmas,
  logF32,
  logSigmas,
  sigmaTimesteps,
  sigmaToT,
  trainSigmas,
} from "../schedulers/sigmas.ts";
import { alphasCumprod, linspaceF32 } from "../schedulers/schedule.ts";

interface FamilyClass {
  readonly spec: { readonly className: string };
  fromConfig(json?: ConfigDict, overrides?: ConfigDict): Scheduler;
}

const CLASSES: readonly FamilyClass[] = [
  LMSDiscreteScheduler,
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  HeunDiscreteScheduler,
  KDPM2DiscreteScheduler,
];

/** Classes whose step() draws noise: their cases also run with our generator. */
const STOCHASTIC = new Set(["EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler"]);

for (const cls of CLASSES) {
  const name = cls.spec.className;
  const make = (config: ConfigDict) => cls.fromConfig(config);
  for (const c of await casesOf(name)) {
    Deno.test(`${name} fixture ${c} (recorded noise)`, () => replaySchedulerCase(c, make));
    if (STOCHASTIC.has(name)) {
      Deno.test(`${name} fixture ${c} (generator)`, () =>
        replaySchedulerCase(c, make, { noiseSource: "generator" }));
    }
  }
  for (const test of await diffusersTestsFor(name)) {
    Deno.test(`diffusers ${test.id.split("::").slice(1).join("::")}`, async () => {
      await runDiffusersTest(test, make);
    });
  }
}

Deno.test("sigma schedulers: setTimesteps out of range is an ArgumentError", async () => {
  for (const cls of CLASSES) {
    const s = cls.fromConfig({});
    await assertThrowsTyped(() => s.setTimesteps(0), ArgumentError);
    await assertThrowsTyped(() => s.setTimesteps(1001), ArgumentError);
    await assertThrowsTyped(() => s.setTimesteps(2.5), ArgumentError);
    s.dispose();
  }
});

Deno.test("sigma schedulers: unknown config values are ConfigErrors naming the key", async () => {
  for (const cls of CLASSES) {
    await assertThrowsTyped(
      () => cls.fromConfig({ timestep_spacing: "sometimes" }),
      ConfigError,
      /timestep_spacing/,
    );
    await assertThrowsTyped(
      () => cls.fromConfig({ prediction_type: "noise" }),
      ConfigError,
      /prediction_type/,
    );
    await assertThrowsTyped(
      () => cls.fromConfig({ beta_schedule: "cubic" }),
      ConfigError,
      /beta_schedule/,
    );
  }
});

Deno.test("LMS: setTimesteps twice resets the derivative history", async () => {
  const before = tf.memory().numTensors;
  const s = LMSDiscreteScheduler.fromConfig({});
  const x = tf.ones([1, 2, 2, 3]);
  const run = async () => {
    s.setTimesteps(5);
    let y = tf.clone(x);
    for (const t of s.timesteps) {
      const eps = tf.mul(y, 0.1);
      const out = s.step(eps, t, y);
      tf.dispose([eps, y, out.predOriginalSample!]);
      y = out.prevSample;
    }
    const data = await y.data();
    y.dispose();
    return data;
  };
  const first = await run();
  s.setTimesteps(5);
  assert.equal(tf.memory().numTensors, before + 1, "history released by setTimesteps");
  assert.deepEqual(await run(), first);
  s.dispose();
  x.dispose();
  assert.equal(tf.memory().numTensors, before);
});

/** Runs a loop of `n` steps of a toy model (ε = 0.1·x) and returns the final sample. */
async function toyLoop(s: Scheduler, shape: number[] = [1, 2, 2, 3]): Promise<Float32Array> {
  let y = tf.ones(shape);
  for (const t of s.timesteps) {
    const input = s.scaleModelInput(y, t);
    const eps = tf.mul(input, 0.1);
    const noise = tf.zerosLike(y);
    const out = s.step(eps, t, y, { varianceNoise: noise });
    tf.dispose([input, eps, noise, y, out.predOriginalSample ?? []]);
    y = out.prevSample;
  }
  const data = (await y.data()) as Float32Array;
  y.dispose();
  return data;
}

Deno.test("second-order schedulers: setTimesteps mid-run resets the first-order state", async () => {
  for (const cls of [HeunDiscreteScheduler, KDPM2DiscreteScheduler]) {
    const before = tf.memory().numTensors;
    const s = cls.fromConfig({});
    s.setTimesteps(4);
    const fresh = await toyLoop(s);
    s.setTimesteps(4);
    // One first-order step leaves state behind; setTimesteps must drop it.
    const x = tf.ones([1, 2, 2, 3]);
    const eps = tf.zerosLike(x);
    const out = s.step(eps, s.timesteps[0]!, x);
    assert.equal(s.stateInFirstOrder, false);
    s.setTimesteps(4);
    assert.equal(s.stateInFirstOrder, true);
    assert.equal(s.stepIndex, null);
    assert.deepEqual(await toyLoop(s), fresh, `${s.className}: rerun after reset`);
    tf.dispose([x, eps, out.prevSample]);
    s.dispose();
    assert.equal(tf.memory().numTensors, before, `${s.className}: tensors leaked`);
  }
});

Deno.test("sigma schedulers: stepping past the end or at an unknown timestep is an ArgumentError", async () => {
  for (const cls of CLASSES) {
    const s = cls.fromConfig({});
    s.setTimesteps(3);
    await toyLoop(s);
    const x = tf.ones([1, 2, 2, 3]);
    await assertThrowsTyped(() => s.step(x, s.timesteps.at(-1)!, x), ArgumentError, /ended/);
    s.setTimesteps(3);
    await assertThrowsTyped(() => s.scaleModelInput(x, 123.25), ArgumentError, /123\.25/);
    x.dispose();
    s.dispose();
  }
});

Deno.test("sample prediction is refused where diffusers has no implementation", async () => {
  for (const cls of [EulerAncestralDiscreteScheduler, KDPM2DiscreteScheduler]) {
    await assertThrowsTyped(
      () => cls.fromConfig({ prediction_type: "sample" }),
      ConfigError,
      /prediction_type.*does not support "sample"/,
    );
  }
  // Heun, LMS and Euler do implement it.
  for (const cls of [HeunDiscreteScheduler, LMSDiscreteScheduler, EulerDiscreteScheduler]) {
    assert.equal(cls.fromConfig({ prediction_type: "sample" }).config.prediction_type, "sample");
  }
});

Deno.test("EulerDiscreteScheduler.fromConfig swaps in from a DDIM scheduler_config.json", () => {
  const ddim: ConfigDict = {
    _class_name: "DDIMScheduler",
    _diffusers_version: "0.8.0",
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    set_alpha_to_one: false,
    steps_offset: 1,
    timestep_spacing: "leading",
    trained_betas: null,
  };
  const s = EulerDiscreteScheduler.fromConfig(ddim);
  s.setTimesteps(4);
  assert.deepEqual(s.timesteps, [751, 501, 251, 1]);
  // leading spacing: the initial noise is scaled by √(σ_max² + 1).
  assert(Math.abs(s.initNoiseSigma - Math.hypot(s.sigmas[0]!, 1)) < 1e-4);
  const json = s.toJSON();
  assert.equal(json._class_name, "EulerDiscreteScheduler");
  assert.equal(json.set_alpha_to_one, false, "unknown keys are kept");
  assert.equal(json.use_karras_sigmas, false, "own defaults are filled in");
  assert(EulerDiscreteScheduler.compatibles.includes("DDIMScheduler"));
  // And back: the Euler config builds every other family member.
  for (const cls of CLASSES) assert.equal(cls.fromConfig(json).className, cls.spec.className);
});

Deno.test("indexForTimestep takes the second match of a repeated timestep", () => {
  assert.equal(indexForTimestep([999, 500, 500, 0], 500), 2);
  assert.equal(indexForTimestep([999, 500, 0], 500), 1);
  const s = HeunDiscreteScheduler.fromConfig({ timestep_spacing: "leading" });
  s.setTimesteps(3); // [666, 333, 333, 0, 0]
  assert.deepEqual(s.timesteps, [666, 333, 333, 0, 0]);
  const x = tf.zeros([2, 1, 1, 1]);
  const noise = tf.ones([2, 1, 1, 1]);
  const noisy = s.addNoise(x, noise, [333, 0]);
  assert.deepEqual(Array.from(noisy.dataSync()), [s.sigmas[2]!, s.sigmas[4]!]);
  tf.dispose([x, noise, noisy]);
});

Deno.test("setBeginIndex: scaling and addNoise use the begin index, not the timestep", async () => {
  const s = EulerDiscreteScheduler.fromConfig({});
  s.setTimesteps(10);
  s.setBeginIndex(4);
  const x = tf.ones([1, 1, 1, 1]);
  const noisy = s.addNoise(tf.zerosLike(x), x, [s.timesteps[0]!]);
  assert.equal((await noisy.data())[0], s.sigmas[4]);
  const scaled = s.scaleModelInput(x, s.timesteps[0]!);
  assert.equal(s.stepIndex, 4);
  assert(Math.abs((await scaled.data())[0]! - 1 / Math.hypot(s.sigmas[4]!, 1)) < 1e-7);
  await assertThrowsTyped(() => s.setBeginIndex(10), ArgumentError);
  tf.dispose([x, noisy, scaled]);
});

Deno.test("LMS coefficients are the exact integrals of the Lagrange basis polynomials", () => {
  const s = LMSDiscreteScheduler.fromConfig({
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    beta_end: 0.012,
  });
  s.setTimesteps(12);
  // Two-point Gauss-Legendre is exact for the cubic (order ≤ 4) basis polynomials.
  const gauss = (order: number, t: number, j: number) => {
    const sg = s.sigmas;
    const basis = (tau: number) => {
      let p = 1;
      for (let k = 0; k < order; k++) {
        if (k !== j) p *= (tau - sg[t - k]!) / (sg[t - j]! - sg[t - k]!);
      }
      return p;
    };
    const a = sg[t]!;
    const b = sg[t + 1]!;
    const m = (a + b) / 2;
    const h = (b - a) / 2;
    return h * (basis(m - h / Math.sqrt(3)) + basis(m + h / Math.sqrt(3)));
  };
  for (let t = 0; t < 12; t++) {
    const order = Math.min(t + 1, 4);
    let sum = 0;
    for (let j = 0; j < order; j++) {
      const c = s.lmsCoefficient(order, t, j);
      assert(Math.abs(c - gauss(order, t, j)) <= 1e-12 * Math.abs(s.sigmas[t]!), `t=${t} j=${j}`);
      sum += c;
    }
    // The basis polynomials sum to 1, so the coefficients sum to σ_{t+1} − σ_t.
    assert(Math.abs(sum - (s.sigmas[t + 1]! - s.sigmas[t]!)) < 1e-12 * s.sigmas[0]!);
  }
});

Deno.test("sigmas.ts: spacing, interpolation, Karras schedule and sigma → t", () => {
  assert.deepEqual(Array.from(sigmaTimesteps("leading", 1000, 4, 1)), [751, 501, 251, 1]);
  assert.deepEqual(Array.from(sigmaTimesteps("trailing", 1000, 4)), [999, 749, 499, 249]);
  assert.deepEqual(Array.from(sigmaTimesteps("linspace", 1000, 4)), [999, 666, 333, 0]);
  // NumPy rounds halves to even: arange(1000, 0, -62.5) holds 812.5 -> 812.
  assert(sigmaTimesteps("trailing", 1000, 16).includes(811));
  assert.deepEqual(Array.from(interpSigmas([0.25, 2, 5, -1], [1, 2, 4])), [1.25, 4, 4, 1]);

  const train = trainSigmas(alphasCumprod(linspaceF32(0.0001, 0.02, 1000)));
  const table = logSigmas(train);
  const k = karrasSigmas(train[0]!, train[999]!, 6);
  assert(Math.abs(k[0]! - train[999]!) < 1e-9 * train[999]! && Math.abs(k[5]! - train[0]!) < 1e-12);
  for (let i = 0; i < 6; i++) {
    // Karras et al. 2022, eq. 5 with ρ = 7.
    const hi = train[999]! ** (1 / 7);
    const lo = train[0]! ** (1 / 7);
    assert(Math.abs(k[i]! - (hi + (i / 5) * (lo - hi)) ** 7) <= 1e-12 * k[i]!);
  }
  // σ → t inverts the training schedule (up to float32 log-sigma rounding).
  for (const t of [0, 1, 10, 250, 500, 998, 999]) {
    assert(Math.abs(sigmaToT(train[t]!, table) - t) < 1e-3, `t=${t}`);
    assert(Math.abs(sigmaToT(train[t]!, table, { float32: true }) - t) < 1e-3, `f32 t=${t}`);
  }
  assert.equal(sigmaToT(1e3, table), 999, "clamped above");
  assert.equal(sigmaToT(0, table), 0, "clamped below");
  assert.equal(logF32(1), 0);
  assert.equal(logF32(0), -Infinity);
});

Deno.test("Euler: log_linear sigmas are geometric; continuous timesteps are ¼·ln σ", () => {
  const s = EulerDiscreteScheduler.fromConfig({ interpolation_type: "log_linear" });
  s.setTimesteps(10);
  // diffusers spaces n + 1 sigmas in log space (then the final 0).
  assert.equal(s.sigmas.length, 12);
  const ratios = Array.from(s.sigmas.slice(1, 11), (v, i) => v / s.sigmas[i]!);
  for (const r of ratios) assert(Math.abs(r - ratios[0]!) < 1e-5);
  const c = EulerDiscreteScheduler.fromConfig({
    timestep_type: "continuous",
    prediction_type: "v_prediction",
  });
  c.setTimesteps(5);
  c.timesteps.forEach((t, i) => assert(Math.abs(t - 0.25 * Math.log(c.sigmas[i]!)) < 1e-6));
});

Deno.test("Euler: churn applies only for s_tmin ≤ σ ≤ s_tmax, and zero-SNR keeps σ_max finite", async () => {
  const run = async (options: { sChurn: number; sTmin?: number; sTmax?: number }) => {
    const s = EulerDiscreteScheduler.fromConfig({});
    s.setTimesteps(5);
    const x = tf.ones([1, 2, 2, 1]);
    const noise = tf.onesLike(x);
    const out = s.step(tf.zerosLike(x), s.timesteps[0]!, x, { ...options, varianceNoise: noise });
    const data = await out.prevSample.data();
    tf.dispose([x, noise, out.prevSample, out.predOriginalSample!]);
    return Array.from(data);
  };
  const plain = await run({ sChurn: 0 });
  assert.notDeepEqual(await run({ sChurn: 1 }), plain);
  assert.deepEqual(await run({ sChurn: 1, sTmax: 1 }), plain, "σ_max above s_tmax: no churn");
  const z = EulerDiscreteScheduler.fromConfig({ rescale_betas_zero_snr: true });
  z.setTimesteps(10);
  assert(Number.isFinite(z.initNoiseSigma) && z.initNoiseSigma > 4000);
});
