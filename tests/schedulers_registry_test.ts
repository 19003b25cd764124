import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import { UnknownNameError } from "../lib/errors.ts";
import { schedulerClass, schedulerFromConfig, SCHEDULERS } from "../schedulers/registry.ts";
import { assertThrowsTyped, readJson, SHARED_DIR } from "./_helpers.ts";
import type { ConfigDict } from "../lib/config.ts";

const SD_SCHEDULER =
  `${SHARED_DIR}/configs/runwayml__stable-diffusion-v1-5/scheduler/scheduler_config.json`;

Deno.test("registry: all ten diffusers schedulers, by _class_name", () => {
  assert.deepEqual([...SCHEDULERS.keys()].sort(), [
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "LMSDiscreteScheduler",
    "PNDMScheduler",
    "UniPCMultistepScheduler",
  ]);
  for (const [name, cls] of SCHEDULERS) assert.equal(cls.fromConfig().className, name);
});

Deno.test("registry: an unknown name lists the valid ones", async () => {
  const e = await assertThrowsTyped(
    () => schedulerClass("DPM++2MKarras"),
    UnknownNameError,
    /unknown scheduler "DPM\+\+2MKarras"; valid names: DDPMScheduler, /,
  );
  assert.equal((e as UnknownNameError).validNames.length, 10);
  await assertThrowsTyped(() => schedulerFromConfig({}), UnknownNameError, /_class_name/);
});

Deno.test("registry: every scheduler swaps in from Stable Diffusion's PNDM config and runs a step", async () => {
  const sd = await readJson<ConfigDict>(SD_SCHEDULER);
  const source = schedulerFromConfig(sd);
  assert.equal(source.className, "PNDMScheduler");
  const before = tf.memory().numTensors;
  for (const cls of SCHEDULERS.values()) {
    const s = cls.fromConfig(source.config);
    // The SD beta schedule carries over to every class.
    assert.equal(s.config.beta_schedule, "scaled_linear", s.className);
    assert.equal(s.config.beta_start, 0.00085, s.className);
    s.setTimesteps(4);
    const x = tf.ones([1, 4, 4, 4]);
    const eps = tf.fill([1, 4, 4, 4], 0.1);
    const t = s.timesteps[0]!;
    const input = s.scaleModelInput(x, t);
    const out = s.step(eps, t, x, { generator: undefined });
    const values = await out.prevSample.data();
    assert(values.every(Number.isFinite), `${s.className} produced non-finite values`);
    tf.dispose([x, eps, input, out.prevSample, out.predOriginalSample ?? []]);
    s.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("registry: two instances never share multistep state", async () => {
  const Cls = schedulerClass("DPMSolverMultistepScheduler");
  const a = Cls.fromConfig();
  const b = Cls.fromConfig();
  a.setTimesteps(5);
  b.setTimesteps(5);
  const x = tf.ones([1, 2, 2, 1]);
  const eps = tf.fill([1, 2, 2, 1], 0.3);
  const step = async (s: typeof a) => {
    const out = s.step(eps, s.timesteps[0]!, x);
    const v = await out.prevSample.data();
    tf.dispose([out.prevSample, out.predOriginalSample ?? []]);
    return v;
  };
  const first = await step(a);
  // b's first step must equal a's first step even though a has taken a step already.
  const firstB = await step(b);
  assert.deepEqual(firstB, first);
  a.dispose();
  b.dispose();
  tf.dispose([x, eps]);
});
