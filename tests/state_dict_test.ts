import assert from "node:assert/strict";
import { ArgumentError, NotFoundError, PathEscapeError, WeightsError } from "../lib/errors.ts";
import {
  serializeSafetensors,
  type TensorToWrite,
  toFloat32,
  toInt32,
} from "../lib/weights/safetensors.ts";
import { loadStateDict, type StateDict } from "../lib/weights/state_dict.ts";
import { memoryWeightFiles } from "../lib/weights/weight_files.ts";
import { assertThrowsTyped, FIXTURES_DIR, readTensors } from "./_helpers.ts";

const UNET = `${FIXTURES_DIR}/pipelines/ddpm_tiny/unet`;
const UNET_ST = `${UNET}/diffusion_pytorch_model.safetensors`;

/** Loads, runs `fn`, and always closes. */
async function withStateDict<T>(
  sd: Promise<StateDict>,
  fn: (sd: StateDict) => Promise<T>,
): Promise<T> {
  const s = await sd;
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

/** Asserts that every tensor of the safetensors fixture `reference` loads equal from `sd`. */
async function assertMatches(sd: StateDict, reference: string): Promise<void> {
  const want = (await readTensors(reference)).tensors;
  assert.deepEqual([...sd.entries.keys()].sort(), [...want.keys()].sort());
  for (const [name, w] of want) {
    const got = await sd.get(name);
    assert.deepEqual(got.shape, w.shape, name);
    if (w.dtype === "I64") {
      assert.equal(got.dtype, "int32");
      assert.deepEqual([...got.data], [...toInt32(w)], name);
    } else {
      assert.equal(got.dtype, "float32");
      assert.deepEqual(got.data, toFloat32(w), name);
    }
  }
}

async function tempDir(files: Record<string, string | Uint8Array> = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "state_dict_test_" });
  for (const [name, content] of Object.entries(files)) {
    const path = `${dir}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.copyFile(content, path);
    else await Deno.writeFile(path, content);
  }
  return dir;
}

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

const tiny = (values: number[], dtype: "F32" | "F16" = "F32"): Uint8Array =>
  serializeSafetensors({ w: { dtype, shape: [values.length], data: new Float32Array(values) } });

/** The UNet fixture's tensors split into two safetensors shards, with the index. */
async function shardedUnet(
  indexName: string,
  shardNames: [string, string],
): Promise<Record<string, Uint8Array>> {
  const tensors = (await readTensors(UNET_ST)).tensors;
  const parts: [Record<string, TensorToWrite>, Record<string, TensorToWrite>] = [{}, {}];
  const weightMap: Record<string, string> = {};
  [...tensors].forEach(([name, t], i) => {
    parts[i % 2]![name] = { dtype: t.dtype, shape: t.shape, data: t.bytes };
    weightMap[name] = shardNames[i % 2]!;
  });
  return {
    [shardNames[0]]: serializeSafetensors(parts[0]),
    [shardNames[1]]: serializeSafetensors(parts[1]),
    [indexName]: json({ metadata: { total_size: 0 }, weight_map: weightMap }),
  };
}

Deno.test("state_dict: safetensors is preferred over .bin, and matches it", async () => {
  await withStateDict(loadStateDict(UNET), async (sd) => {
    assert.deepEqual(sd.files, [UNET_ST]);
    await assertMatches(sd, UNET_ST);
  });
});

Deno.test("state_dict: transformers names (model.safetensors) and the int64 buffer", async () => {
  const dir = `${FIXTURES_DIR}/models/clip_text`;
  await withStateDict(loadStateDict(dir), async (sd) => {
    assert.deepEqual(sd.files, [`${dir}/model.safetensors`]);
    assert.equal(sd.entries.get("text_model.embeddings.position_ids")!.dtype, "I64");
    await assertMatches(sd, `${dir}/model.safetensors`);
  });
});

Deno.test("state_dict: a folder with only .bin files loads them", async () => {
  const dir = await tempDir({
    "unet/diffusion_pytorch_model.bin": `${UNET}/diffusion_pytorch_model.bin`,
    "text/pytorch_model.bin": `${FIXTURES_DIR}/models/clip_text/pytorch_model.bin`,
  });
  try {
    await withStateDict(loadStateDict(`${dir}/unet`), async (sd) => {
      assert.deepEqual(sd.files, [`${dir}/unet/diffusion_pytorch_model.bin`]);
      await assertMatches(sd, UNET_ST);
    });
    await withStateDict(loadStateDict(`${dir}/text`), async (sd) => {
      assert.deepEqual(sd.files, [`${dir}/text/pytorch_model.bin`]);
      await assertMatches(sd, `${FIXTURES_DIR}/models/clip_text/model.safetensors`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state_dict: variant selection", async () => {
  const dir = await tempDir({
    "diffusion_pytorch_model.safetensors": tiny([1, 2]),
    "diffusion_pytorch_model.fp16.safetensors": tiny([3, 4], "F16"),
  });
  const only = await tempDir({ "diffusion_pytorch_model.fp16.safetensors": tiny([5], "F16") });
  try {
    await withStateDict(loadStateDict(dir), async (sd) => {
      assert.equal(sd.entries.get("w")!.dtype, "F32");
      assert.deepEqual([...(await sd.get("w")).data], [1, 2]);
    });
    await withStateDict(loadStateDict(dir, { variant: "fp16" }), async (sd) => {
      assert.deepEqual(sd.files, [`${dir}/diffusion_pytorch_model.fp16.safetensors`]);
      assert.equal(sd.entries.get("w")!.dtype, "F16");
      const w = await sd.get("w");
      assert.equal(w.dtype, "float32");
      assert.deepEqual([...w.data], [3, 4]);
    });
    // An absent variant is an error listing what was looked for, not a silent fallback.
    const e = await assertThrowsTyped(
      () => loadStateDict(dir, { variant: "ema" }),
      NotFoundError,
      /diffusion_pytorch_model\.ema\.safetensors/,
    );
    assert.match(e.message, /pytorch_model\.bin\.index\.ema\.json/);
    // And a variant file is not picked up when no variant is asked for.
    await assertThrowsTyped(() => loadStateDict(only), NotFoundError, /looked for/);
    await assertThrowsTyped(() => loadStateDict(dir, { variant: "../x" }), ArgumentError);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(only, { recursive: true });
  }
});

Deno.test("state_dict: missing weights list every name looked for", async () => {
  const dir = await tempDir();
  try {
    const e = await assertThrowsTyped(() => loadStateDict(dir), NotFoundError);
    for (
      const name of [
        "diffusion_pytorch_model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
      ]
    ) {
      assert(e.message.includes(name), `${name} not in ${e.message}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state_dict: sharded safetensors via the index, with and without a variant", async () => {
  const dir = await tempDir({
    ...await shardedUnet("diffusion_pytorch_model.safetensors.index.json", [
      "diffusion_pytorch_model-00001-of-00002.safetensors",
      "diffusion_pytorch_model-00002-of-00002.safetensors",
    ]),
    ...await shardedUnet("diffusion_pytorch_model.safetensors.index.fp16.json", [
      "diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
      "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
    ]),
  });
  try {
    await withStateDict(loadStateDict(dir), async (sd) => {
      assert.equal(sd.files.length, 2);
      await assertMatches(sd, UNET_ST);
    });
    await withStateDict(loadStateDict(dir, { variant: "fp16" }), async (sd) => {
      assert(sd.files[0]!.endsWith("diffusion_pytorch_model.fp16-00001-of-00002.safetensors"));
      await assertMatches(sd, UNET_ST);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state_dict: sharded .bin via pytorch_model.bin.index.json", async () => {
  const names = [...(await readTensors(UNET_ST)).tensors.keys()];
  const shard = "pytorch_model-00001-of-00001.bin";
  const dir = await tempDir({
    [shard]: `${UNET}/diffusion_pytorch_model.bin`,
    "pytorch_model.bin.index.json": json({
      weight_map: Object.fromEntries(names.map((n) => [n, shard])),
    }),
  });
  try {
    await withStateDict(loadStateDict(dir), (sd) => assertMatches(sd, UNET_ST));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state_dict: shard names that leave the folder are PathEscapeErrors", async () => {
  const outside = await tempDir({ "secret.safetensors": tiny([9]) });
  try {
    for (
      const shard of [
        "../secret.safetensors",
        `${outside}/secret.safetensors`,
        "a/../../x.safetensors",
        "..\\x",
      ]
    ) {
      const dir = await tempDir({
        "model.safetensors.index.json": json({ weight_map: { w: shard } }),
      });
      try {
        await assertThrowsTyped(() => loadStateDict(dir), PathEscapeError, /outside the folder/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("state_dict: symlinks must resolve inside the folder (or the given root)", async () => {
  const root = await tempDir({ "blobs/abc": tiny([7, 8]) });
  const model = `${root}/snapshots/main/unet`;
  await Deno.mkdir(model, { recursive: true });
  await Deno.symlink(`${root}/blobs/abc`, `${model}/diffusion_pytorch_model.safetensors`);
  const sharded = await tempDir({
    "real.safetensors": tiny([1]),
    "model.safetensors.index.json": json({ weight_map: { w: "link.safetensors" } }),
  });
  try {
    await assertThrowsTyped(() => loadStateDict(model), PathEscapeError, /outside/);
    // The Hugging Face cache layout: allowed when the caller names the cache folder as root.
    await withStateDict(loadStateDict(model, { root }), async (sd) => {
      assert.deepEqual([...(await sd.get("w")).data], [7, 8]);
    });
    // Inside a Hub cache snapshot, the repository folder (with its blobs/) is the default root.
    const repo = `${root}/hub/models--org--name`;
    await Deno.mkdir(`${repo}/blobs`, { recursive: true });
    await Deno.mkdir(`${repo}/snapshots/0123abc/unet`, { recursive: true });
    await Deno.writeFile(`${repo}/blobs/etag1`, tiny([5]));
    const cached = `${repo}/snapshots/0123abc/unet/diffusion_pytorch_model.safetensors`;
    await Deno.symlink("../../../blobs/etag1", cached);
    await withStateDict(loadStateDict(`${repo}/snapshots/0123abc/unet`), async (sd) => {
      assert.deepEqual([...(await sd.get("w")).data], [5]);
    });
    await Deno.remove(cached);
    await Deno.symlink(`${root}/blobs/abc`, cached);
    await assertThrowsTyped(
      () => loadStateDict(`${repo}/snapshots/0123abc/unet`),
      PathEscapeError,
      /outside/,
    );
    await Deno.symlink(`${root}/blobs/abc`, `${sharded}/link.safetensors`);
    await assertThrowsTyped(() => loadStateDict(sharded), PathEscapeError, /outside/);
    // A link that stays inside is fine.
    await Deno.remove(`${sharded}/link.safetensors`);
    await Deno.symlink(`${sharded}/real.safetensors`, `${sharded}/link.safetensors`);
    await withStateDict(loadStateDict(sharded), async (sd) => {
      assert.deepEqual([...(await sd.get("w")).data], [1]);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(sharded, { recursive: true });
  }
});

Deno.test("state_dict: inconsistent shards and indexes are WeightsErrors", async () => {
  const cases: [Record<string, Uint8Array>, RegExp][] = [
    [{
      "model.safetensors.index.json": json({
        weight_map: { w: "a.safetensors", missing: "a.safetensors" },
      }),
      "a.safetensors": tiny([1]),
    }, /missing: the index lists this tensor/],
    [{
      "model.safetensors.index.json": json({
        weight_map: { w: "a.safetensors", v: "b.safetensors" },
      }),
      "a.safetensors": tiny([1]),
      "b.safetensors": tiny([2]),
    }, /also in/],
    [{ "model.safetensors.index.json": new TextEncoder().encode("{oops") }, /not valid JSON/],
    [{ "model.safetensors.index.json": json({ weight_map: [] }) }, /no weight_map/],
    [{ "model.safetensors": new Uint8Array(4) }, /header length/],
  ];
  for (const [files, pattern] of cases) {
    const dir = await tempDir(files);
    try {
      await assertThrowsTyped(() => loadStateDict(dir), WeightsError, pattern);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("state_dict: bytes in memory (the browser path) and explicit file lists", async () => {
  const bytes = await Deno.readFile(`${UNET}/diffusion_pytorch_model.bin`);
  const files = memoryWeightFiles({ "diffusion_pytorch_model.bin": bytes }, "hub:ddpm/unet");
  await withStateDict(loadStateDict(files), async (sd) => {
    assert.deepEqual(sd.files, ["hub:ddpm/unet/diffusion_pytorch_model.bin"]);
    await assertMatches(sd, UNET_ST);
  });
  await assertThrowsTyped(() => files.has("../x"), PathEscapeError);
  await withStateDict(loadStateDict([`${UNET}/diffusion_pytorch_model.bin`]), async (sd) => {
    await assertMatches(sd, UNET_ST);
    const raw = await sd.readRaw("conv_in.weight");
    assert.equal(raw.dtype, "F32");
    await assertThrowsTyped(() => sd.get("nope"), NotFoundError, /nope/);
  });
});
