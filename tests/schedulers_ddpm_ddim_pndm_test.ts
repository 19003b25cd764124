/**
 * DDPMScheduler, DDIMScheduler and PNDMScheduler against diffusers 0.27.2:
 * every step-by-step fixture case (recorded noise, and our generator for
 * the stochastic ones), diffusers' own full-loop tests and numeric facts,
 * and the config / argument error paths.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import type { ConfigDict } from "../lib/config.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import { Generator, randnTensor } from "../lib/random.ts";
import { toFloat32, toFloat64 } from "../lib/weights/safetensors.ts";
import { DDPMScheduler } from "../schedulers/ddpm.ts";
import { DDIMScheduler } from "../schedulers/ddim.ts";
import { PNDMScheduler } from "../schedulers/pndm.ts";
import { spacedTimesteps } from "../schedulers/schedule.ts";
import { thresholdSample } from "../schedulers/scheduler.ts";
import type { Scheduler } from "../schedulers/scheduler.ts";
import { casesOf, replaySchedulerCase } from "./_scheduler_fixture.ts";
import { diffusersTestsFor, runDiffusersTest } from "./_diffusers_tests.ts";
import { assertClose, assertThrowsTyped, readJson, readTensors } from "./_helpers.ts";

type Factory = (config: ConfigDict) => Scheduler;

const FACTORIES: Record<string, Factory> = {
  DDPMScheduler: (c) => DDPMScheduler.fromConfig(c),
  DDIMScheduler: (c) => DDIMScheduler.fromConfig(c),
  PNDMScheduler: (c) => PNDMScheduler.fromConfig(c),
};

// Step-by-step fixture replays: recorded noise always, our generator where the case draws.
for (const [className, make] of Object.entries(FACTORIES)) {
  for (const name of await casesOf(className)) {
    const meta = await readJson<{ noise_steps: number[] }>(`schedulers/${name}.json`);
    Deno.test(`${className} fixture ${name}`, () => replaySchedulerCase(name, make));
    if (meta.noise_steps.length > 0) {
      Deno.test(
        `${className} fixture ${name} (generator noise)`,
        () => replaySchedulerCase(name, make, { noiseSource: "generator" }),
      );
    }
  }
}

// diffusers' own test_full_loop* tests.
for (const [className, make] of Object.entries(FACTORIES)) {
  for (const test of await diffusersTestsFor(className)) {
    Deno.test(`${className} diffusers ${test.id.split("::").pop()}`, async () => {
      await runDiffusersTest(test, make);
    });
  }
}

interface NumericFact {
  method: string;
  file: string;
  expected: Record<string, number> | number[];
  tolerance?: number;
}

const facts = (await readJson<{ other_numeric_facts: NumericFact[] }>(
  "schedulers/diffusers_tests.json",
)).other_numeric_facts;
const fact = (file: string, method: string): NumericFact =>
  facts.find((f) => f.file.endsWith(file) && f.method === method)!;

Deno.test("DDPM variance matches diffusers' test_variance", () => {
  const f = fact("test_scheduler_ddpm.py", "test_variance");
  const s = DDPMScheduler.fromConfig({ clip_sample: true });
  for (const [t, v] of Object.entries(f.expected)) {
    assert(Math.abs(s.variance(Number(t)) - v) < f.tolerance!, `variance(${t})`);
  }
});

Deno.test("DDIM variance matches diffusers' test_variance", () => {
  const f = fact("test_scheduler_ddim.py", "test_variance");
  const s = DDIMScheduler.fromConfig({});
  for (const [pair, v] of Object.entries(f.expected)) {
    const [t, prev] = JSON.parse(pair.replace("(", "[").replace(")", "]")) as [number, number];
    assert(Math.abs(s.variance(t, prev) - v) < f.tolerance!, `variance${pair}`);
  }
});

Deno.test("DDIM and PNDM steps_offset timesteps match diffusers", () => {
  const ddim = DDIMScheduler.fromConfig({ steps_offset: 1 });
  ddim.setTimesteps(5);
  assert.deepEqual(ddim.timesteps, fact("test_scheduler_ddim.py", "test_steps_offset").expected);
  const pndm = PNDMScheduler.fromConfig({ steps_offset: 1 });
  pndm.setTimesteps(10);
  assert.deepEqual(pndm.timesteps, fact("test_scheduler_pndm.py", "test_steps_offset").expected);
});

Deno.test("DDPM custom timesteps and previousTimestep match diffusers", async () => {
  const f = fact("test_scheduler_ddpm.py", "test_custom_timesteps");
  const s = DDPMScheduler.fromConfig({});
  s.setTimesteps(null, { timesteps: [100, 87, 50, 1, 0] });
  for (const [t, prev] of Object.entries(f.expected)) {
    assert.equal(s.previousTimestep(Number(t)), prev);
  }
  await assertThrowsTyped(
    () => s.setTimesteps(null, { timesteps: [100, 100, 0] }),
    ArgumentError,
    /descending/,
  );
  await assertThrowsTyped(
    () => s.setTimesteps(null, { timesteps: [1000, 0] }),
    ArgumentError,
    /from 0 to 999/,
  );
  await assertThrowsTyped(
    () => s.setTimesteps(10, { timesteps: [1, 0] }),
    ArgumentError,
    /either/,
  );
});

Deno.test("timestep spacing follows numpy (round half to even, float arange)", () => {
  assert.deepEqual(spacedTimesteps("linspace", 1000, 25).slice(-5), [166, 125, 83, 42, 0]);
  assert.deepEqual(spacedTimesteps("trailing", 1000, 16).slice(0, 3), [999, 937, 874]);
  assert.deepEqual(spacedTimesteps("trailing", 1000, 7), [999, 856, 713, 570, 428, 285, 142]);
  assert.deepEqual(spacedTimesteps("leading", 1000, 3, 1), [667, 334, 1]);
});

Deno.test("unknown beta_schedule is a ConfigError naming beta_schedule", async () => {
  for (const make of Object.values(FACTORIES)) {
    const e = await assertThrowsTyped(
      () => make({ beta_schedule: "cubic" }),
      ConfigError,
      /beta_schedule/,
    ) as ConfigError;
    assert.equal(e.key, "beta_schedule");
  }
  // trained_betas take precedence over the schedule name, as in diffusers.
  const s = DDIMScheduler.fromConfig({
    num_train_timesteps: 3,
    beta_schedule: "cubic",
    trained_betas: [0.1, 0.2, 0.3],
  });
  assertClose(s.alphasCumprod, [0.9, 0.72, 0.504], 1e-6);
});

Deno.test("bad config values are ConfigErrors naming the key", async () => {
  const cases: [Factory, ConfigDict, string][] = [
    [FACTORIES.DDPMScheduler!, { clip_sample: "yes" }, "clip_sample"],
    [FACTORIES.DDIMScheduler!, { num_train_timesteps: 10.5 }, "num_train_timesteps"],
    [FACTORIES.PNDMScheduler!, { steps_offset: "1" }, "steps_offset"],
    [FACTORIES.DDPMScheduler!, { variance_type: "huge" }, "variance_type"],
    [FACTORIES.DDIMScheduler!, { prediction_type: "noise" }, "prediction_type"],
    [FACTORIES.PNDMScheduler!, { prediction_type: "sample" }, "prediction_type"],
    [FACTORIES.DDIMScheduler!, { timestep_spacing: "even" }, "timestep_spacing"],
    [FACTORIES.DDPMScheduler!, { trained_betas: [0.1] }, "trained_betas"],
    [
      FACTORIES.DDIMScheduler!,
      { thresholding: true, dynamic_thresholding_ratio: 2 },
      "dynamic_thresholding_ratio",
    ],
  ];
  for (const [make, json, key] of cases) {
    const e = await assertThrowsTyped(() => make(json), ConfigError) as ConfigError;
    assert.equal(e.key, key, `${JSON.stringify(json)}: ${e.message}`);
  }
});

Deno.test("setTimesteps out of range is an ArgumentError", async () => {
  for (const make of Object.values(FACTORIES)) {
    const s = make({ num_train_timesteps: 100 });
    for (const n of [0, 101, 2.5]) {
      await assertThrowsTyped(() => s.setTimesteps(n), ArgumentError, /numInferenceSteps/);
    }
  }
});

Deno.test("step misuse is an ArgumentError", async () => {
  const x = tf.ones([1, 3, 4, 4]);
  const ddim = DDIMScheduler.fromConfig({});
  await assertThrowsTyped(() => ddim.step(x, 999, x), ArgumentError, /setTimesteps/);
  ddim.setTimesteps(10);
  await assertThrowsTyped(() => ddim.step(x, 1000, x), ArgumentError, /timestep/);
  const noise = tf.zerosLike(x);
  await assertThrowsTyped(
    () => ddim.step(x, 900, x, { eta: 1, varianceNoise: noise, generator: new Generator() }),
    ArgumentError,
    /not both/,
  );
  const pndm = PNDMScheduler.fromConfig({});
  pndm.setTimesteps(10);
  await assertThrowsTyped(() => pndm.stepPlms(x, 600, x), ArgumentError, /Runge-Kutta/);
  const learned = DDPMScheduler.fromConfig({ variance_type: "learned_range" });
  await assertThrowsTyped(() => learned.step(x, 10, x), ArgumentError, /twice/);
  await assertThrowsTyped(() => ddim.addNoise(x, x, [1, 2]), ArgumentError, /batch/);
  tf.dispose([x, noise]);
});

Deno.test("DDPM steps without setTimesteps walk the training timesteps", () => {
  const s = DDPMScheduler.fromConfig({ num_train_timesteps: 10 });
  assert.deepEqual(s.timesteps, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  assert.equal(s.previousTimestep(5), 4);
  s.setTimesteps(5);
  assert.deepEqual(s.timesteps, [8, 6, 4, 2, 0]);
  assert.equal(s.previousTimestep(8), 6);
});

Deno.test("DDPM draws noise only for t > 0, DDIM only for eta > 0", () => {
  const x = tf.ones([1, 3, 4, 4]);
  const eps = tf.zerosLike(x);
  const ddpm = DDPMScheduler.fromConfig({});
  ddpm.noiseLayout = "NCHW";
  const g = new Generator().manualSeed(0);
  const reference = new Generator().manualSeed(0);
  tf.dispose(Object.values(ddpm.step(eps, 0, x, { generator: g })));
  assert.deepEqual(g.randn(4), reference.randn(4), "t = 0 drew noise");
  const ddim = DDIMScheduler.fromConfig({});
  ddim.setTimesteps(10);
  tf.dispose(Object.values(ddim.step(eps, 900, x, { generator: g, eta: 0 })));
  assert.deepEqual(g.randn(4), reference.randn(4), "eta = 0 drew noise");
  tf.dispose(Object.values(ddim.step(eps, 900, x, { generator: g, eta: 1 })));
  assert.notDeepEqual(g.randn(4), reference.randn(4), "eta = 1 drew no noise");
  tf.dispose([x, eps]);
});

Deno.test("fromConfig(other.config) swaps between DDPM, DDIM and PNDM", () => {
  const ddpm = DDPMScheduler.fromConfig({
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    beta_end: 0.012,
    variance_type: "fixed_large",
    steps_offset: 1,
  });
  const ddim = DDIMScheduler.fromConfig(ddpm.config);
  const pndm = PNDMScheduler.fromConfig(ddim.config);
  const back = DDPMScheduler.fromConfig(pndm.config);
  for (const s of [ddim, pndm, back]) {
    assert.deepEqual(s.alphasCumprod, ddpm.alphasCumprod, s.className);
    assert.equal(s.config.steps_offset, 1);
  }
  assert.equal(ddim.className, "DDIMScheduler");
  assert.equal(ddim.config.set_alpha_to_one, true, "DDIM default where DDPM has none");
  assert.equal(pndm.config.skip_prk_steps, false);
  // Keys a class does not use travel along, so the round trip keeps them.
  assert.equal(back.config.variance_type, "fixed_large");
  for (const C of [DDPMScheduler, DDIMScheduler, PNDMScheduler]) {
    assert(C.compatibles.includes("DDIMScheduler") && C.compatibles.length === 15);
  }
});

Deno.test("toJSON round-trips and writes diffusers' keys", async () => {
  for (const make of Object.values(FACTORIES)) {
    const s = make({ beta_schedule: "squaredcos_cap_v2", timestep_spacing: "trailing" });
    const json = s.toJSON();
    assert.equal(json._class_name, s.className);
    assert.equal(json._diffusers_version, "0.27.2");
    assert.deepEqual(make(json).toJSON(), json);
    const dir = await Deno.makeTempDir();
    try {
      await s.saveConfig(dir);
      const saved = await readJson(`${dir}/scheduler_config.json`);
      assert.deepEqual(saved, json);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  // The fixtures' saved configs are exactly what we write.
  for (
    const name of ["ddpm_linear_eps_fixedsmall_clip_leading_10", "pndm_linear_eps_prk_leading_10"]
  ) {
    const meta = await readJson<{ class_name: string; config: ConfigDict }>(
      `schedulers/${name}.json`,
    );
    assert.deepEqual(FACTORIES[meta.class_name]!(meta.config).toJSON(), meta.config);
  }
});

Deno.test("dynamic thresholding matches torch.quantile + clamp", async () => {
  // 2 items of 10 values: quantile 0.8 of |x| at rank 7.2 interpolates between sorted[7] and [8].
  const values = [...Array(20).keys()].map((i) => (i % 10) * (i < 10 ? 0.5 : -0.3));
  const x = tf.tensor(values, [2, 1, 2, 5]);
  const y = thresholdSample(x, 0.8, 3);
  const s0 = Math.min(Math.max(3.5 + 0.2 * 0.5, 1), 3); // 3.6 -> clamped to sample_max_value 3
  const s1 = Math.max(7.2 * 0.3, 1);
  const expected = values.map((v, i) => {
    const s = i < 10 ? s0 : s1;
    return Math.min(Math.max(v, -s), s) / s;
  });
  assertClose(await y.data(), expected, 1e-6);
  tf.dispose([x, y]);
});

Deno.test("DDPM learned_range splits the channel axis of either layout", async () => {
  const nchw = tf.fill([1, 3, 2, 2], 0.5);
  const out6 = tf.concat([tf.zerosLike(nchw), tf.fill([1, 3, 2, 2], -1)], 1);
  const noise = tf.onesLike(nchw);
  const s = DDPMScheduler.fromConfig({ variance_type: "learned_range" });
  s.setTimesteps(10);
  s.noiseLayout = "NCHW";
  const a = s.step(out6, 900, nchw, { varianceNoise: noise });
  // Predicted -1 gives frac = 0: the posterior's own (fixed_small) log variance.
  const fixed = DDPMScheduler.fromConfig({ variance_type: "fixed_small" });
  fixed.setTimesteps(10);
  const eps3 = tf.zerosLike(nchw);
  const b = fixed.step(eps3, 900, nchw, { varianceNoise: noise });
  assertClose(await a.prevSample.data(), await b.prevSample.data(), 1e-6);
  // The same in NHWC: channels last.
  const nhwc = tf.transpose(nchw, [0, 2, 3, 1]);
  const out6Last = tf.transpose(out6, [0, 2, 3, 1]);
  const noiseLast = tf.onesLike(nhwc);
  s.noiseLayout = "NHWC";
  const c = s.step(out6Last, 900, nhwc, { varianceNoise: noiseLast });
  assertClose(await c.prevSample.data(), await b.prevSample.data(), 1e-6);
  tf.dispose([nchw, out6, noise, eps3, nhwc, out6Last, noiseLast]);
  tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(c)]);
});

Deno.test("PNDM keeps no tensors after setTimesteps or dispose", () => {
  const before = tf.memory().numTensors;
  const s = PNDMScheduler.fromConfig({});
  s.setTimesteps(10);
  let x = tf.ones([1, 3, 4, 4]);
  for (const t of s.timesteps.slice(0, 14)) {
    const eps = tf.mul(x, 0.1);
    const { prevSample } = s.step(eps, t, x);
    tf.dispose([eps, x]);
    x = prevSample;
  }
  assert(tf.memory().numTensors > before + 1, "history is kept between steps");
  s.setTimesteps(10);
  assert.equal(tf.memory().numTensors, before + 1);
  const eps = tf.zerosLike(x);
  tf.dispose(s.step(eps, s.timesteps[0]!, x).prevSample);
  s.dispose();
  tf.dispose([x, eps]);
  assert.equal(tf.memory().numTensors, before);
});

// The tiny pipeline runs: the scheduler half of DDPM/DDIM/PNDMPipeline, in the library's NHWC
// layout, with the seed-0 generator drawing the initial noise and then DDPM's variance noise.
for (const name of ["ddpm_tiny", "ddim_tiny", "pndm_tiny"]) {
  Deno.test(`pipeline fixture ${name}: scheduler steps in NHWC with generator noise`, async () => {
    const dir = `pipelines/${name}`;
    const config = await readJson(`${dir}/scheduler/scheduler_config.json`);
    const call = (await readJson<{ call: { num_inference_steps: number } }>(`${dir}/case.json`))
      .call;
    const file = await readTensors(`${dir}/expected.safetensors`);
    const get = (key: string) => file.tensors.get(key)!;
    const before = tf.memory().numTensors;
    // [N, B, C, H, W] -> per-step NHWC tensors.
    const steps = (key: string) =>
      tf.tidy(() => {
        const t = get(key);
        const all = tf.tensor(toFloat32(t), [...t.shape]);
        return tf.unstack(all).map((x) => tf.transpose(x, [0, 2, 3, 1]));
      });
    const samples = steps("samples");
    const outputs = steps("model_outputs");

    const scheduler = FACTORIES[config._class_name as string]!(config);
    scheduler.setTimesteps(call.num_inference_steps);
    assert.deepEqual(scheduler.timesteps, [...toFloat64(get("timesteps"))]);
    const generator = new Generator().manualSeed(0);
    const init = randnTensor(samples[0]!.shape, { generator });
    assertClose(await init.data(), await samples[0]!.data(), 0, "init noise");
    for (const [i, t] of scheduler.timesteps.entries()) {
      const out = scheduler.step(outputs[i]!, t, samples[i]!, { generator, eta: 0 });
      assertClose(await out.prevSample.data(), await samples[i + 1]!.data(), 1e-5, `step ${i}`);
      tf.dispose([out.prevSample, out.predOriginalSample ?? []]);
    }
    scheduler.dispose();
    tf.dispose([...samples, ...outputs, init]);
    assert.equal(tf.memory().numTensors, before);
  });
}

Deno.test("DDPM sigmoid betas and zero-terminal-SNR rescaling", () => {
  const sigmoid = DDPMScheduler.fromConfig({ beta_schedule: "sigmoid" });
  const expected = Array.from({ length: 1000 }, (_, i) => {
    const x = -6 + 12 * i / 999;
    return (0.02 - 0.0001) / (1 + Math.exp(-x)) + 0.0001;
  });
  assertClose(sigmoid.betas, expected, 1e-6);
  for (const C of [DDPMScheduler, DDIMScheduler]) {
    const s = C.fromConfig({ rescale_betas_zero_snr: true, beta_schedule: "scaled_linear" });
    assert.equal(s.alphasCumprod[999], 0, C.name);
  }
});

Deno.test("DDIM with every option at once matches a float64 transcription of diffusers", async () => {
  // scaled_linear + zero SNR, trailing, v_prediction, thresholding, clipped ε, eta 0.7.
  const s = DDIMScheduler.fromConfig({
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    beta_end: 0.012,
    rescale_betas_zero_snr: true,
    timestep_spacing: "trailing",
    prediction_type: "v_prediction",
    thresholding: true,
    dynamic_thresholding_ratio: 0.9,
    sample_max_value: 3,
  });
  s.setTimesteps(10);
  assert.deepEqual(s.timesteps.slice(0, 2), [999, 899]);
  const g = new Generator().manualSeed(3);
  const shape = [2, 3, 4, 4];
  // float32 inputs (x doubled exactly); the reference reads the same values as float64.
  const inputs = [2, 1, 1].map((k) => Float32Array.from(g.randn(96), (e) => e * k));
  const tensors = inputs.map((a) => tf.tensor(a, shape));
  const [x, v, noise] = inputs.map((a) => Float64Array.from(a));
  const out = s.step(tensors[1]!, 899, tensors[0]!, {
    eta: 0.7,
    useClippedModelOutput: true,
    varianceNoise: tensors[2]!,
  });

  const a = s.alphasCumprod[899]!;
  const ap = s.alphasCumprod[799]!;
  const x0 = x!.map((xi, i) => Math.sqrt(a) * xi - Math.sqrt(1 - a) * v![i]!);
  for (let b = 0; b < 2; b++) {
    const item = x0.subarray(b * 48, b * 48 + 48);
    const sorted = [...item].map(Math.abs).sort((p, q) => p - q);
    const rank = 0.9 * 47;
    const lo = sorted[Math.floor(rank)]!;
    const q = lo + (rank - Math.floor(rank)) * (sorted[Math.ceil(rank)]! - lo);
    const th = Math.min(Math.max(q, 1), 3);
    item.forEach((e, i) => item[i] = Math.min(Math.max(e, -th), th) / th);
  }
  const sd = 0.7 * Math.sqrt((1 - ap) / (1 - a) * (1 - a / ap));
  const prev = x0.map((e, i) => {
    const eps = (x![i]! - Math.sqrt(a) * e) / Math.sqrt(1 - a);
    return Math.sqrt(ap) * e + Math.sqrt(1 - ap - sd * sd) * eps + sd * noise![i]!;
  });
  assertClose(await out.predOriginalSample!.data(), x0, 1e-6, "x0");
  assertClose(await out.prevSample.data(), prev, 1e-6, "prev_sample");
  tf.dispose([...tensors, out.prevSample, out.predOriginalSample!]);
});
