import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { WeightsError } from "../lib/errors.ts";
import { float32ToFloat16 } from "../lib/weights/half.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";
import { convertTree, safetensorsName } from "../tools/convert.ts";
import { assertThrowsTyped, FIXTURES_DIR, readTensors } from "./_helpers.ts";

const SD = `${FIXTURES_DIR}/pipelines/sd_tiny`;
const PARTS = [
  ["text_encoder", "pytorch_model.bin", "model.safetensors"],
  ["unet", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors"],
  ["vae", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors"],
] as const;

/** A temp copy of the sd_tiny checkpoints (the .bin files only). */
async function binOnlyCopy(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convert_test_" });
  for (const [sub, bin] of PARTS) {
    await Deno.mkdir(`${dir}/${sub}`);
    await Deno.copyFile(`${SD}/${sub}/${bin}`, `${dir}/${sub}/${bin}`);
  }
  return dir;
}

Deno.test("convert: names follow from_pretrained", () => {
  assert.equal(safetensorsName("pytorch_model.bin"), "model.safetensors");
  assert.equal(
    safetensorsName("pytorch_model-00002-of-00003.bin"),
    "model-00002-of-00003.safetensors",
  );
  assert.equal(
    safetensorsName("diffusion_pytorch_model.fp16.bin"),
    "diffusion_pytorch_model.fp16.safetensors",
  );
  assert.equal(
    safetensorsName("pytorch_model.bin.index.fp16.json"),
    "model.safetensors.index.fp16.json",
  );
});

Deno.test("convert: round trip of a fixture tree equals the reference safetensors", async () => {
  const dir = await binOnlyCopy();
  try {
    const lines: string[] = [];
    const results = await convertTree(dir, { log: (l) => lines.push(l) });
    assert.equal(results.length, 3);
    assert.equal(lines.length, 3);
    for (const [sub, bin, st] of PARTS) {
      const r = results.find((x) => x.source === `${dir}/${sub}/${bin}`)!;
      assert.equal(r.target, `${dir}/${sub}/${st}`);
      assert(!r.skipped && r.tensors > 0 && r.targetBytes > 0 && r.sourceBytes > 0);
      const got = await readTensors(r.target);
      const want = await readTensors(`${SD}/${sub}/${st}`);
      assert.equal(got.metadata.format, "pt");
      assert.deepEqual([...got.tensors.keys()].sort(), [...want.tensors.keys()].sort());
      for (const [name, w] of want.tensors) {
        const g = got.tensors.get(name)!;
        assert.equal(g.dtype, w.dtype, name);
        assert.deepEqual(g.shape, w.shape, name);
        assert(Buffer.from(g.bytes).equals(Buffer.from(w.bytes)), `${sub}/${name}`);
      }
    }
    // A second run keeps the existing files.
    const again = await convertTree(dir);
    assert(again.every((r) => r.skipped));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("convert: --fp16 narrows floats and keeps integers", async () => {
  const dir = await binOnlyCopy();
  try {
    await convertTree(dir, { fp16: true });
    const got = await readTensors(`${dir}/text_encoder/model.safetensors`);
    const want = await readTensors(`${SD}/text_encoder/model.safetensors`);
    for (const [name, w] of want.tensors) {
      const g = got.tensors.get(name)!;
      if (w.dtype === "I64") {
        assert.equal(g.dtype, "I64", name);
        assert(Buffer.from(g.bytes).equals(Buffer.from(w.bytes)), name);
      } else {
        assert.equal(g.dtype, "F16", name);
        const half = float32ToFloat16(toFloat32(w));
        assert(Buffer.from(g.bytes).equals(Buffer.from(half.buffer)), name);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("convert: sharded .bin index is rewritten for the safetensors shards", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convert_test_" });
  try {
    const shard = "pytorch_model-00001-of-00001.bin";
    await Deno.copyFile(`${SD}/text_encoder/pytorch_model.bin`, `${dir}/${shard}`);
    const names = [...(await readTensors(`${SD}/text_encoder/model.safetensors`)).tensors.keys()];
    const index = {
      metadata: { total_size: 1 },
      weight_map: Object.fromEntries(names.map((n) => [n, shard])),
    };
    await Deno.writeTextFile(`${dir}/pytorch_model.bin.index.json`, JSON.stringify(index));
    await convertTree(dir);
    const written = JSON.parse(await Deno.readTextFile(`${dir}/model.safetensors.index.json`));
    assert.deepEqual(written.metadata, index.metadata);
    assert(
      Object.values(written.weight_map).every((v) => v === "model-00001-of-00001.safetensors"),
    );
    assert.equal(
      (await readTensors(`${dir}/model-00001-of-00001.safetensors`)).tensors.size,
      names.length,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("convert: a corrupt checkpoint is a typed error and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convert_test_" });
  try {
    const bytes = await Deno.readFile(`${SD}/vae/diffusion_pytorch_model.bin`);
    await Deno.writeFile(
      `${dir}/diffusion_pytorch_model.bin`,
      bytes.subarray(0, bytes.byteLength - 50),
    );
    await assertThrowsTyped(() => convertTree(dir), WeightsError, /diffusion_pytorch_model\.bin/);
    const left = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assert.deepEqual(left, ["diffusion_pytorch_model.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
