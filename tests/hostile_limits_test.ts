/**
 * The limits behind the fuzzing fixes, tested directly with clear messages:
 * a small file must never make a parser allocate far more than the file
 * justifies, nor recurse without bound. (The inputs the fuzzer first found
 * are replayed from tests/fuzz_corpus by tests/fuzz_test.ts.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { encode } from "fast-png";
import { loadConfig, parseConfigJson } from "../lib/config.ts";
import { ConfigError, DiffusersError, PickleError } from "../lib/errors.ts";
import { decodeImage } from "../lib/image.ts";
import { loadTokenizer } from "../lib/tokenizers/tokenizer.ts";
import { parseTorchCheckpoint } from "../lib/weights/torch_bin.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { schedulerFromConfig } from "../schedulers/registry.ts";
import { type CraftTensor, f32, stateDictPickle, torchZip } from "./_craft_pickle.ts";
import { assertThrowsTyped, FIXTURES_DIR } from "./_helpers.ts";

const view = (over: Partial<CraftTensor>): CraftTensor => ({
  name: "w",
  storageType: "FloatStorage",
  key: "0",
  numel: 1,
  offset: 0,
  size: [4],
  stride: [1],
  ...over,
});

Deno.test("limits: broadcast (stride-0) views may exceed their storage by 64 MiB in all, not per tensor", async () => {
  // Ten 64 MiB views of one 4-byte float: 640 MiB from a 2 KB file, refused before any is built.
  const bomb = Array.from(
    { length: 10 },
    (_, i) => view({ name: `t${i}`, size: [4096, 4096], stride: [0, 0] }),
  );
  const file = await torchZip(stateDictPickle(bomb).stop().bytes(), { "0": f32([1]) });
  assert(file.length < 4096);
  await assertThrowsTyped(
    () => parseTorchCheckpoint(file, "bomb.bin"),
    PickleError,
    /^bomb\.bin: tensor view of 67108864 bytes .* more than 67108864 bytes/,
  );
  // A small broadcast buffer, as real checkpoints have, still loads.
  const ok = await torchZip(
    stateDictPickle([view({ size: [3, 1024], stride: [0, 1], numel: 1024 })]).stop().bytes(),
    { "0": f32(new Array(1024).fill(2)) },
  );
  const w = (await parseTorchCheckpoint(ok, "ok.bin")).get("w")!;
  assert.equal(w.bytes.length, 3 * 1024 * 4);
});

Deno.test("limits: a deflated storage viewed by many tensors is inflated once", async () => {
  const tensors = Array.from(
    { length: 50 },
    (_, i) => view({ name: `t${i}`, numel: 1 << 16, size: [1 << 16] }),
  );
  const file = await torchZip(
    stateDictPickle(tensors).stop().bytes(),
    { "0": new Uint8Array(4 << 16) },
    { deflate: true },
  );
  const loaded = [...(await parseTorchCheckpoint(file, "shared.bin")).values()];
  assert.equal(loaded.length, 50);
  assert(loaded.every((t) => t.bytes.buffer === loaded[0]!.bytes.buffer), "one inflated copy");
});

Deno.test("limits: a PNG header promising more pixels than the file can hold is refused before decoding", async () => {
  const png = encode({ width: 2, height: 2, data: new Uint8Array(12), channels: 3, depth: 8 });
  const bomb = png.slice();
  new DataView(bomb.buffer).setUint32(16, 30_000);
  new DataView(bomb.buffer).setUint32(20, 30_000);
  await assertThrowsTyped(
    () => decodeImage(bomb, "bomb.png"),
    DiffusersError,
    /^bomb\.png: header declares 30000x30000 pixels .* more than a \d+-byte PNG can hold/,
  );
});

Deno.test("limits: 1-, 2- and 4-bit grey and palette PNGs decode sample by sample", () => {
  const grey1 = encode({
    width: 9,
    height: 1,
    data: new Uint8Array([0b10100000, 0b10000000]),
    channels: 1,
    depth: 1,
  });
  assert.deepEqual(
    [...decodeImage(grey1).data].filter((_, i) => i % 3 === 0),
    [255, 0, 255, 0, 0, 0, 0, 0, 255],
  );
  const grey4 = encode({
    width: 2,
    height: 1,
    data: new Uint8Array([0x0f]),
    channels: 1,
    depth: 4,
  });
  assert.deepEqual([...decodeImage(grey4).data], [0, 0, 0, 255, 255, 255]);
  const palette = encode({
    width: 3,
    height: 1,
    data: new Uint8Array([0b00011011]),
    channels: 1,
    depth: 2,
    palette: [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]],
  });
  assert.deepEqual([...decodeImage(palette).data], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("limits: tokenizer model_max_length must be a usable length", async () => {
  const dir = `${FIXTURES_DIR}/tokenizers/clip_tiny`;
  const files: Record<string, string> = {};
  for (const name of ["vocab.json", "merges.txt", "special_tokens_map.json"]) {
    files[name] = await Deno.readTextFile(`${dir}/${name}`);
  }
  const withMax = (v: unknown) => ({
    ...files,
    "tokenizer_config.json": `{"model_max_length": ${v}}`,
  });
  for (const bad of [1e9, 2 ** 53, -5, 0, 0.5, "NaN"]) {
    await assertThrowsTyped(
      () => loadTokenizer(withMax(bad), "CLIPTokenizer"),
      ConfigError,
      /tokenizer_config\.json: model_max_length: .* is not a whole number from 1 to 1048576/,
    );
  }
  const unlimited = await loadTokenizer(withMax("1e30"), "CLIPTokenizer");
  assert.equal(unlimited.modelMaxLength, Infinity);
  const clip = await loadTokenizer(withMax(77), "CLIPTokenizer");
  assert.equal(clip.encode("a cat", { padding: "max_length" }).inputIds.length, 77);
});

Deno.test("limits: config JSON nested deeper than 64 levels is a ConfigError, not a stack overflow", async () => {
  const nested = (depth: number) => `{"sample_size": ${"[".repeat(depth)}${"]".repeat(depth)}}`;
  const ok = parseConfigJson(nested(63), "config.json");
  await assertThrowsTyped(() => loadConfig(UNet2DModel.spec, ok, {}, "config.json"), ConfigError);
  for (const depth of [64, 10_000, 1_000_000]) {
    await assertThrowsTyped(
      () => parseConfigJson(nested(depth), "config.json"),
      ConfigError,
      /^config\.json: nested deeper than 64 levels/,
    );
  }
  // Brackets inside strings do not count.
  assert.equal(parseConfigJson(`{"a": "${"[".repeat(100)}"}`).a, "[".repeat(100));
});

Deno.test("limits: num_train_timesteps is capped at 1,000,000 (every per-timestep table is that long)", async () => {
  for (const name of ["DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler"]) {
    for (const beta_schedule of ["linear", "sigmoid"]) {
      if (beta_schedule === "sigmoid" && name !== "DDPMScheduler") continue;
      await assertThrowsTyped(
        () => schedulerFromConfig({ _class_name: name, num_train_timesteps: 1e9, beta_schedule }),
        ConfigError,
        /num_train_timesteps: must be a whole number from 1 to 1000000, got 1000000000/,
      );
    }
  }
  schedulerFromConfig({ _class_name: "DDPMScheduler", num_train_timesteps: 4000 }).dispose();
});
