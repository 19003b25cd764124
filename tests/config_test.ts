import assert from "node:assert/strict";
import {
  configToJSON,
  defineConfig,
  loadConfig,
  parseConfigJson,
  stringifyConfigJson,
} from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { assertThrowsTyped, SHARED_DIR } from "./_helpers.ts";

const spec = defineConfig("TestScheduler", "scheduler_config.json", {
  num_train_timesteps: 1000,
  beta_schedule: "linear",
  clip_sample: true,
  trained_betas: null,
  lambda_min_clipped: -Infinity,
}, { trained_betas: ["number[]", "null"] });

Deno.test("config: defaults + json + overrides, unknown keys kept, frozen", () => {
  const c = loadConfig(spec, { num_train_timesteps: 500, tensor_format: "pt" }, {
    clip_sample: false,
  });
  assert.equal(c.num_train_timesteps, 500);
  assert.equal(c.clip_sample, false);
  assert.equal(c.beta_schedule, "linear");
  assert.equal(c.trained_betas, null);
  assert.equal((c as Record<string, unknown>).tensor_format, "pt");
  assert(Object.isFrozen(c));
  assert.throws(() => {
    (c as Record<string, unknown>).clip_sample = true;
  }, TypeError);
});

Deno.test("config: wrong types name the key and file", async () => {
  await assertThrowsTyped(
    () => loadConfig(spec, { clip_sample: "yes" }, {}, "scheduler/scheduler_config.json"),
    ConfigError,
    /^scheduler\/scheduler_config\.json: clip_sample: TestScheduler expects boolean, got "yes"/,
  );
  await assertThrowsTyped(
    () => loadConfig(spec, { trained_betas: [0.1, "x"] }),
    ConfigError,
    /trained_betas/,
  );
  await assertThrowsTyped(
    () => loadConfig(spec, [] as never),
    ConfigError,
    /must be a JSON object/,
  );
});

Deno.test("config: Python JSON tokens read and written", () => {
  const c = parseConfigJson(
    '{"a": -Infinity, "b": [NaN, Infinity], "s": "NaN -Infinity \\" Infinity"}',
  );
  assert.equal(c.a, -Infinity);
  assert(Number.isNaN((c.b as number[])[0]));
  assert.equal((c.b as number[])[1], Infinity);
  assert.equal(c.s, 'NaN -Infinity " Infinity');
  const text = stringifyConfigJson(c);
  assert.match(text, /"a": -Infinity/);
  assert.match(text, /NaN,\s+Infinity/);
  assert.deepEqual(parseConfigJson(text).s, c.s);
});

Deno.test("config: syntax errors are typed and name the file", async () => {
  await assertThrowsTyped(
    () => parseConfigJson("{oops", "unet/config.json"),
    ConfigError,
    /^unet\/config\.json: not valid JSON/,
  );
  await assertThrowsTyped(() => parseConfigJson("[1]", "x.json"), ConfigError, /not a JSON object/);
});

Deno.test("config: a real Hub scheduler config round-trips through toJSON", async () => {
  const path =
    `${SHARED_DIR}/configs/runwayml__stable-diffusion-v1-5/scheduler/scheduler_config.json`;
  const original = parseConfigJson(await Deno.readTextFile(path), path);
  const c = loadConfig(spec, original);
  const json = configToJSON(spec, c);
  assert.equal(json._class_name, "TestScheduler");
  assert.equal(json._diffusers_version, "0.27.2");
  for (const [k, v] of Object.entries(original)) {
    if (!k.startsWith("_")) assert.deepEqual(json[k], v, k);
  }
  const keys = Object.keys(json);
  assert.deepEqual(keys.slice(2), [...keys.slice(2)].sort());
});
