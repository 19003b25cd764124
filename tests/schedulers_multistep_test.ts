/**
 * DPMSolverMultistepScheduler and UniPCMultistepScheduler against diffusers
 * 0.27.2: every step-by-step fixture case, diffusers' own full-loop tests
 * (including `test_switch`), algebraic identities for the variants without
 * fixtures (DPM-Solver, SDE, thresholding, learned variance, ε-space UniPC),
 * history bookkeeping, and the config / argument error paths.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { type ConfigDict, parseConfigJson, stringifyConfigJson } from "../lib/config.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import { Generator, randnTensor } from "../lib/random.ts";
import { DPMSolverMultistepScheduler } from "../schedulers/dpmsolver_multistep.ts";
import { UniPCMultistepScheduler } from "../schedulers/unipc_multistep.ts";
import type { Scheduler, StepOptions } from "../schedulers/scheduler.ts";
import { casesOf, replaySchedulerCase } from "./_scheduler_fixture.ts";
import { diffusersTestsFor, runDiffusersTest } from "./_diffusers_tests.ts";
import { assertClose, assertThrowsTyped, readJson } from "./_helpers.ts";

type Factory = (config: ConfigDict) => Scheduler;

const dpm: Factory = (c) => DPMSolverMultistepScheduler.fromConfig(c);
const unipc: Factory = (c) => UniPCMultistepScheduler.fromConfig(c);
const FACTORIES: Record<string, Factory> = {
  DPMSolverMultistepScheduler: dpm,
  UniPCMultistepScheduler: unipc,
};

for (const [className, make] of Object.entries(FACTORIES)) {
  for (const name of await casesOf(className)) {
    Deno.test(`${className} fixture ${name}`, () => replaySchedulerCase(name, make));
  }
}

// diffusers' test_switch hops through DPMSolverSinglestep, UniPC and DEIS; the
// hops we have are UniPC (for DPM-Solver) and DPM-Solver (for UniPC).
const SWITCH_VIA: Record<string, Factory[]> = {
  DPMSolverMultistepScheduler: [unipc],
  UniPCMultistepScheduler: [dpm],
};
for (const [className, make] of Object.entries(FACTORIES)) {
  for (const test of await diffusersTestsFor(className)) {
    Deno.test(`${className} diffusers ${test.id.split("::").slice(1).join("::")}`, async () => {
      await runDiffusersTest(test, make, { switchVia: SWITCH_VIA[className] });
    });
  }
}

/** A deterministic NCHW-agnostic test tensor with values spread over [-2, 2]. */
function ramp(shape: number[], phase = 0): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, (_, i) => 2 * Math.sin(i * 0.37 + phase)),
    shape,
  );
}

/**
 * Runs `steps` steps (all when omitted) of `s` with a toy model
 * `0.5·tanh(x) + 0.1` and returns the final sample.
 */
function run(s: Scheduler, x0: tf.Tensor, options: StepOptions = {}, steps?: number): tf.Tensor {
  let x = tf.clone(x0);
  for (const t of s.timesteps.slice(0, steps)) {
    const out = tf.tidy(() => tf.add(tf.mul(tf.tanh(x), 0.5), 0.1));
    const { prevSample } = s.step(out, t, x, options);
    tf.dispose([out, x]);
    x = prevSample;
  }
  return x;
}

async function values(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

Deno.test("multistep: unknown algorithm_type / solver_type are ConfigErrors listing the valid values", async () => {
  const cases: [Factory, ConfigDict, string, RegExp][] = [
    [
      dpm,
      { algorithm_type: "deis2" },
      "algorithm_type",
      /dpmsolver\+\+, sde-dpmsolver\+\+, dpmsolver, sde-dpmsolver/,
    ],
    [dpm, { solver_type: "rk4" }, "solver_type", /midpoint, heun/],
    [unipc, { solver_type: "bh3" }, "solver_type", /bh1, bh2/],
    [dpm, { final_sigmas_type: "one" }, "final_sigmas_type", /zero, sigma_min/],
    [unipc, { final_sigmas_type: "one" }, "final_sigmas_type", /zero, sigma_min/],
    [dpm, { prediction_type: "noise" }, "prediction_type", /epsilon, sample, v_prediction/],
    [unipc, { timestep_spacing: "even" }, "timestep_spacing", /linspace, leading, trailing/],
    [dpm, { solver_order: 4 }, "solver_order", /\[1, 3\]/],
    [unipc, { solver_order: 0 }, "solver_order", /at least 1/],
    [dpm, { algorithm_type: "dpmsolver" }, "final_sigmas_type", /sigma_min/],
    [dpm, { algorithm_type: "sde-dpmsolver++", solver_order: 3 }, "solver_order", /sde/],
    [unipc, { disable_corrector: [0.5] }, "disable_corrector", /integer/],
    [dpm, { lambda_min_clipped: "low" }, "lambda_min_clipped", /number/],
  ];
  for (const [make, json, key, pattern] of cases) {
    const e = await assertThrowsTyped(() => make(json), ConfigError, pattern) as ConfigError;
    assert.equal(e.key, key, `${JSON.stringify(json)}: ${e.message}`);
  }
});

Deno.test("multistep: configs swap between DDIM, DPM-Solver and UniPC as in diffusers", async () => {
  const ddim = await readJson<{ config: ConfigDict }>(
    "schedulers/ddim_scaledlinear_v_noclip_offset1_leading_eta0_25.json",
  );
  const s = DPMSolverMultistepScheduler.fromConfig(ddim.config);
  assert.equal(s.config.timestep_spacing, "leading");
  assert.equal(s.config.prediction_type, "v_prediction");
  assert.equal(s.config.algorithm_type, "dpmsolver++");
  s.setTimesteps(10);
  // leading over n + 1 points: 1000 // 11 = 90, plus steps_offset 1.
  assert.deepEqual(s.timesteps, [901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
  const json = s.toJSON();
  assert.equal(json._class_name, "DPMSolverMultistepScheduler");
  assert.equal(json.clip_sample, false, "DDIM's keys are kept");

  // UniPC's bh2 becomes midpoint, DEIS's algorithm becomes dpmsolver++.
  const fromUni = DPMSolverMultistepScheduler.fromConfig(
    UniPCMultistepScheduler.fromConfig({}).toJSON(),
  );
  assert.equal(fromUni.config.solver_type, "midpoint");
  const fromDeis = DPMSolverMultistepScheduler.fromConfig({
    _class_name: "DEISMultistepScheduler",
    algorithm_type: "deis",
    solver_type: "logrho",
  });
  assert.equal(fromDeis.config.algorithm_type, "dpmsolver++");
  assert.equal(fromDeis.config.solver_type, "midpoint");
  const fromDpm = UniPCMultistepScheduler.fromConfig(
    DPMSolverMultistepScheduler.fromConfig({ solver_type: "heun" }).toJSON(),
  );
  assert.equal(fromDpm.config.solver_type, "bh2");
});

Deno.test("multistep: lambda_min_clipped -Infinity round-trips through toJSON and JSON text", () => {
  const s = DPMSolverMultistepScheduler.fromConfig({});
  const text = stringifyConfigJson(s.toJSON());
  assert.match(text, /"lambda_min_clipped": -Infinity/);
  const again = DPMSolverMultistepScheduler.fromConfig(parseConfigJson(text));
  assert.equal(again.config.lambda_min_clipped, -Infinity);
  assert.deepEqual(again.toJSON(), s.toJSON());
});

Deno.test("DPM-Solver: lambda_min_clipped drops the noisiest timesteps", () => {
  const s = DPMSolverMultistepScheduler.fromConfig({
    beta_schedule: "squaredcos_cap_v2",
    lambda_min_clipped: -5.1,
  });
  s.setTimesteps(10);
  // λ_t < -5.1 for the last few cosine timesteps, so linspace ends below 999.
  assert(s.timesteps[0]! < 999, `first timestep ${s.timesteps[0]}`);
  const unclipped = DPMSolverMultistepScheduler.fromConfig({ beta_schedule: "squaredcos_cap_v2" });
  unclipped.setTimesteps(10);
  assert.equal(unclipped.timesteps[0], 999);
});

Deno.test("multistep: setTimesteps twice resets the history and gives a fresh run", async () => {
  for (const make of [dpm, unipc]) {
    const before = tf.memory().numTensors;
    const x0 = ramp([1, 3, 4, 4]);
    const fresh = make({ solver_order: 3 });
    fresh.setTimesteps(8);
    const expected = run(fresh, x0);
    const reused = make({ solver_order: 3 });
    reused.setTimesteps(8);
    run(reused, x0, {}, 4).dispose(); // a partial run leaves history behind
    reused.setTimesteps(8);
    const actual = run(reused, x0);
    assert.deepEqual(await values(actual), await values(expected), fresh.className);
    tf.dispose([x0, expected, actual]);
    fresh.dispose();
    reused.dispose();
    assert.equal(tf.memory().numTensors, before, `${fresh.className}: tensors leaked`);
  }
});

Deno.test("multistep: the kept history survives an enclosing tf.tidy", async () => {
  for (const make of [dpm, unipc]) {
    const x0 = ramp([1, 3, 4, 4]);
    const plain = make({});
    plain.setTimesteps(6);
    const expected = run(plain, x0);
    const tidied = make({});
    tidied.setTimesteps(6);
    let x = tf.clone(x0);
    for (const t of tidied.timesteps) {
      const next = tf.tidy(() =>
        tidied.step(tf.add(tf.mul(tf.tanh(x), 0.5), 0.1), t, x).prevSample
      );
      x.dispose();
      x = next;
    }
    assert.deepEqual(await values(x), await values(expected), plain.className);
    tf.dispose([x0, x, expected]);
    plain.dispose();
    tidied.dispose();
  }
});

Deno.test("multistep: step and setTimesteps misuse are ArgumentErrors", async () => {
  const x = tf.ones([1, 3, 4, 4]);
  for (const make of [dpm, unipc]) {
    const s = make({ num_train_timesteps: 100 });
    await assertThrowsTyped(() => s.step(x, 99, x), ArgumentError, /setTimesteps/);
    for (const n of [0, 101, 2.5]) {
      await assertThrowsTyped(() => s.setTimesteps(n), ArgumentError, /numInferenceSteps/);
    }
    s.setTimesteps(2);
    await assertThrowsTyped(() => (s as UniPCMultistepScheduler).setBeginIndex(2), ArgumentError);
    run(s, x).dispose();
    await assertThrowsTyped(() => s.step(x, 0, x), ArgumentError, /last timestep/);
    s.dispose();
  }
  x.dispose();
});

Deno.test("UniPC: cosine + Karras repeats timesteps and runs past the end, as in diffusers", async () => {
  const s = UniPCMultistepScheduler.fromConfig({
    beta_schedule: "squaredcos_cap_v2",
    use_karras_sigmas: true,
  });
  s.setTimesteps(10);
  assert.notEqual(new Set(s.timesteps).size, s.timesteps.length, "duplicate timesteps");
  const x = tf.ones([1, 3, 4, 4]);
  // diffusers fails `assert self.this_order > 0`; we throw a typed error instead.
  await assertThrowsTyped(() => run(s, x).dispose(), ArgumentError, /last timestep/);
  s.dispose();
  x.dispose();
});

Deno.test("multistep: addNoise uses index_for_timestep, then the current index", async () => {
  for (const make of [dpm, unipc]) {
    const s = make({}) as DPMSolverMultistepScheduler | UniPCMultistepScheduler;
    s.setTimesteps(10);
    const x = tf.ones([2, 3, 2, 2]);
    const noise = tf.zeros([2, 3, 2, 2]);
    const alpha = (sigma: number) =>
      Math.fround(1 / Math.fround(Math.sqrt(Math.fround(Math.fround(sigma * sigma) + 1))));
    const noisy = s.addNoise(x, noise, [s.timesteps[2]!, 12345]);
    const data = await values(noisy);
    assertClose(
      [data[0]!, data[12]!],
      [alpha(s.sigmas[2]!), alpha(s.sigmas[9]!)],
      1e-7,
      "before a run",
    );
    s.setBeginIndex(4);
    const begun = s.addNoise(x, noise, [s.timesteps[0]!]);
    assertClose([(await values(begun))[0]!], [alpha(s.sigmas[4]!)], 1e-7, "begin index");
    tf.dispose([x, noise, noisy, begun]);
    s.dispose();
  }
});

Deno.test("DPM-Solver: the first step of dpmsolver and dpmsolver++ is the same DDIM step", async () => {
  const x = ramp([1, 3, 4, 4]);
  const eps = ramp([1, 3, 4, 4], 1);
  for (const prediction_type of ["epsilon", "sample", "v_prediction"]) {
    const out: Float32Array[] = [];
    for (const algorithm_type of ["dpmsolver++", "dpmsolver"]) {
      const s = DPMSolverMultistepScheduler.fromConfig({
        algorithm_type,
        prediction_type,
        final_sigmas_type: "sigma_min",
      });
      s.setTimesteps(10);
      const { prevSample } = s.step(eps, s.timesteps[3]!, x);
      out.push(await values(prevSample));
      prevSample.dispose();
      s.dispose();
    }
    assertClose(out[1]!, out[0]!, 1e-5, prediction_type);
  }
  tf.dispose([x, eps]);
});

Deno.test("UniPC: predict_x0 false agrees with predict_x0 true at first order", async () => {
  const x = ramp([1, 3, 4, 4]);
  const eps = ramp([1, 3, 4, 4], 1);
  for (const solver_type of ["bh1", "bh2"]) {
    const out: Float32Array[] = [];
    for (const predict_x0 of [true, false]) {
      const s = UniPCMultistepScheduler.fromConfig({ predict_x0, solver_type, solver_order: 1 });
      s.setTimesteps(10);
      const { prevSample } = s.step(eps, s.timesteps[3]!, x);
      out.push(await values(prevSample));
      prevSample.dispose();
      s.dispose();
    }
    assertClose(out[1]!, out[0]!, 1e-5, solver_type);
  }
  tf.dispose([x, eps]);
});

Deno.test("multistep: thresholding maps a saturated x̂_0 to ±1 before the update", async () => {
  // With `sample` prediction the output is x̂_0; a constant 10 thresholds to
  // clamp(10, -s, s) / s with s = clamp(10, 1, 2) = 2, i.e. the constant 1.
  const x = ramp([1, 3, 4, 4]);
  const ten = tf.fill([1, 3, 4, 4], 10);
  const one = tf.onesLike(x);
  for (const make of [dpm, unipc]) {
    const base = { prediction_type: "sample", sample_max_value: 2 };
    const thresholded = make({ ...base, thresholding: true });
    const plain = make(base);
    thresholded.setTimesteps(10);
    plain.setTimesteps(10);
    const a = thresholded.step(ten, thresholded.timesteps[0]!, x).prevSample;
    const b = plain.step(one, plain.timesteps[0]!, x).prevSample;
    assert.deepEqual(await values(a), await values(b), thresholded.className);
    tf.dispose([a, b]);
    thresholded.dispose();
    plain.dispose();
  }
  tf.dispose([x, ten, one]);
});

Deno.test("DPM-Solver: learned variance keeps the first channels in either layout", async () => {
  for (const layout of ["NHWC", "NCHW"] as const) {
    const shape = layout === "NHWC" ? [1, 4, 4, 3] : [1, 3, 4, 4];
    const axis = layout === "NHWC" ? 3 : 1;
    const x = ramp(shape);
    const eps = ramp(shape, 1);
    const withVariance = tf.concat([eps, tf.fill(shape, 7)], axis);
    const learned = DPMSolverMultistepScheduler.fromConfig({ variance_type: "learned_range" });
    const plain = DPMSolverMultistepScheduler.fromConfig({});
    learned.noiseLayout = layout;
    learned.setTimesteps(10);
    plain.setTimesteps(10);
    const a = learned.step(withVariance, 999, x).prevSample;
    const b = plain.step(eps, 999, x).prevSample;
    assert.deepEqual(a.shape, shape);
    assert.deepEqual(await values(a), await values(b), layout);
    tf.dispose([x, eps, withVariance, a, b]);
    learned.dispose();
    plain.dispose();
  }
});

Deno.test("DPM-Solver SDE: generator noise is torch.randn in NCHW order, one draw per step", async () => {
  for (const algorithm_type of ["sde-dpmsolver++", "sde-dpmsolver"]) {
    const config = { algorithm_type, final_sigmas_type: "sigma_min", solver_order: 2 };
    const x0 = ramp([1, 3, 4, 4]);
    const a = DPMSolverMultistepScheduler.fromConfig(config);
    a.noiseLayout = "NCHW";
    a.setTimesteps(5);
    const viaGenerator = run(a, x0, { generator: new Generator().manualSeed(3) });

    // The same draws, passed explicitly.
    const b = DPMSolverMultistepScheduler.fromConfig(config);
    b.setTimesteps(5);
    const g = new Generator().manualSeed(3);
    let x = tf.clone(x0);
    for (const t of b.timesteps) {
      const noise = randnTensor([1, 3, 4, 4], { generator: g, layout: "NCHW" });
      const out = tf.tidy(() => tf.add(tf.mul(tf.tanh(x), 0.5), 0.1));
      const { prevSample } = b.step(out, t, x, { varianceNoise: noise });
      tf.dispose([noise, out, x]);
      x = prevSample;
    }
    assert.deepEqual(await values(viaGenerator), await values(x), algorithm_type);

    // Fresh noise changes the result; the ODE variant draws nothing.
    const c = DPMSolverMultistepScheduler.fromConfig(config);
    c.setTimesteps(5);
    const otherSeed = run(c, x0, { generator: new Generator().manualSeed(4) });
    assert.notDeepEqual(await values(otherSeed), await values(x));
    tf.dispose([x0, viaGenerator, x, otherSeed]);
    for (const s of [a, b, c]) s.dispose();
  }
  const g = new Generator().manualSeed(0);
  const ode = DPMSolverMultistepScheduler.fromConfig({});
  ode.setTimesteps(3);
  const x0 = ramp([1, 3, 4, 4]);
  run(ode, x0, { generator: g }).dispose();
  const untouched = new Generator().manualSeed(0);
  assert.deepEqual(g.randn(4, "float32"), untouched.randn(4, "float32"));
  x0.dispose();
  ode.dispose();
});

Deno.test("DPM-Solver: final_sigmas_type sets the last sigma", () => {
  const sigmaMin = DPMSolverMultistepScheduler.fromConfig({}).sigmas[0]!; // training sigmas before setTimesteps
  const zero = DPMSolverMultistepScheduler.fromConfig({});
  zero.setTimesteps(10);
  assert.equal(zero.sigmas.length, 11);
  assert.equal(zero.sigmas[10], 0);
  const min = DPMSolverMultistepScheduler.fromConfig({ final_sigmas_type: "sigma_min" });
  min.setTimesteps(10);
  assert.equal(min.sigmas[10], sigmaMin);
  const karras = DPMSolverMultistepScheduler.fromConfig({ use_karras_sigmas: true });
  karras.setTimesteps(10);
  assert.equal(karras.timesteps.length, 10);
  assert(karras.sigmas[0]! > karras.sigmas[9]!);
});

Deno.test("DPM-Solver: euler_at_final changes only the last step", async () => {
  const x0 = ramp([1, 3, 4, 4]);
  const results: Float32Array[][] = [];
  for (const euler_at_final of [false, true]) {
    // 20 steps: lower_order_final no longer applies, and sigma_min keeps the last step second order.
    const config = { euler_at_final, final_sigmas_type: "sigma_min" };
    const partial = DPMSolverMultistepScheduler.fromConfig(config);
    partial.setTimesteps(20);
    const full = DPMSolverMultistepScheduler.fromConfig(config);
    full.setTimesteps(20);
    const [a, b] = [run(partial, x0, {}, 19), run(full, x0)];
    results.push([await values(a), await values(b)]);
    tf.dispose([a, b]);
    partial.dispose();
    full.dispose();
  }
  assert.deepEqual(results[0]![0], results[1]![0]);
  assert.notDeepEqual(results[0]![1], results[1]![1]);
  x0.dispose();
});

Deno.test("UniPC: final_sigmas_type from a UniPC config is honoured, from another class's it is dropped", async () => {
  const v027 = UniPCMultistepScheduler.fromConfig({});
  const sigmaMin = v027.sigmas[0]!; // training sigmas before setTimesteps
  v027.setTimesteps(10);
  assert.equal(v027.sigmas[10], sigmaMin, "v0.27.2 default");
  assert(!("final_sigmas_type" in v027.toJSON()), "not added on save");

  const own = UniPCMultistepScheduler.fromConfig({
    _class_name: "UniPCMultistepScheduler",
    final_sigmas_type: "zero",
  });
  own.setTimesteps(10);
  assert.equal(own.sigmas[10], 0);
  assert.equal(own.toJSON().final_sigmas_type, "zero", "kept on save");

  const karras = UniPCMultistepScheduler.fromConfig({}, { use_karras_sigmas: true });
  karras.setTimesteps(10);
  assert.equal(karras.sigmas[10], karras.sigmas[9], "v0.27.2 repeats the last Karras sigma");

  const swapped = UniPCMultistepScheduler.fromConfig(
    DPMSolverMultistepScheduler.fromConfig({}).toJSON(),
  );
  swapped.setTimesteps(10);
  assert.notEqual(swapped.sigmas[10], 0, "DPM-Solver's final_sigmas_type is not UniPC's");
  assert(!("final_sigmas_type" in swapped.toJSON()));

  // A zero final sigma runs to the end without NaN for both B(h).
  for (const solver_type of ["bh1", "bh2"]) {
    const s = UniPCMultistepScheduler.fromConfig({ final_sigmas_type: "zero", solver_type });
    s.setTimesteps(5);
    const x0 = ramp([1, 3, 4, 4]);
    const y = run(s, x0);
    assert((await values(y)).every(Number.isFinite), solver_type);
    tf.dispose([x0, y]);
    s.dispose();
  }
});

Deno.test("UniPC: disable_corrector skips the corrector after the listed steps", async () => {
  const x0 = ramp([1, 3, 4, 4]);
  const results: Float32Array[] = [];
  for (const disable_corrector of [[], [0], [0, 1, 2, 3]]) {
    const s = UniPCMultistepScheduler.fromConfig({ disable_corrector });
    s.setTimesteps(5);
    const y = run(s, x0);
    results.push(await values(y));
    y.dispose();
    s.dispose();
  }
  assert.notDeepEqual(results[0], results[1]);
  assert.notDeepEqual(results[1], results[2]);
  x0.dispose();
});
