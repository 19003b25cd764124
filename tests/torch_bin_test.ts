import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { PickleError, WeightsError } from "../lib/errors.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";
import { parseTorchCheckpoint } from "../lib/weights/torch_bin.ts";
import { type CraftTensor, f32, Pickle, stateDictPickle, torchZip } from "./_craft_pickle.ts";
import { craftZip } from "./_craft_zip.ts";
import { assertThrowsTyped, FIXTURES_DIR, readTensors } from "./_helpers.ts";

/** Every `.bin` under the fixtures with its `.safetensors` twin. */
async function fixturePairs(dir = FIXTURES_DIR): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await fixturePairs(path));
    else if (e.name.endsWith(".bin")) {
      const twin = e.name.replace(/^pytorch_model/, "model").replace(/\.bin$/, ".safetensors");
      out.push([path, `${dir}/${twin}`]);
    }
  }
  return out.sort();
}

Deno.test("torch_bin: every fixture .bin equals its .safetensors twin exactly", async () => {
  const pairs = await fixturePairs();
  assert(pairs.length >= 15, `found only ${pairs.length} .bin fixtures`);
  for (const [bin, twin] of pairs) {
    const got = await parseTorchCheckpoint(await Deno.readFile(bin), bin);
    const want = (await readTensors(twin)).tensors;
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), bin);
    for (const [name, w] of want) {
      const g = got.get(name)!;
      assert.equal(g.dtype, w.dtype, `${bin}: ${name}`);
      assert.deepEqual(g.shape, w.shape, `${bin}: ${name}`);
      assert(Buffer.from(g.bytes).equals(Buffer.from(w.bytes)), `${bin}: ${name} bytes differ`);
    }
  }
});

Deno.test("torch_bin: clip_text's int64 position_ids buffer", async () => {
  const file = `${FIXTURES_DIR}/models/clip_text/pytorch_model.bin`;
  const t = (await parseTorchCheckpoint(await Deno.readFile(file), file))
    .get("text_model.embeddings.position_ids")!;
  assert.equal(t.dtype, "I64");
  assert.deepEqual(t.shape, [1, 77]);
  assert.deepEqual([...toInt32(t)], Array.from({ length: 77 }, (_, i) => i));
  assert.deepEqual(t.layout.stride, [77, 1]);
});

const T = (over: Partial<CraftTensor> & { name: string }): CraftTensor => ({
  storageType: "FloatStorage",
  key: "0",
  numel: 6,
  offset: 0,
  size: [6],
  stride: [1],
  ...over,
});

function craft(
  tensors: CraftTensor[],
  storages: Record<string, Uint8Array> = { "0": f32([1, 2, 3, 4, 5, 6]) },
  options = {},
): Promise<Uint8Array> {
  return torchZip(stateDictPickle(tensors).stop().bytes(), storages, options);
}

Deno.test("torch_bin: strided, offset and shared-storage views materialise row-major", async () => {
  for (const options of [{}, { deflate: true }, { zip64: true }]) {
    const bytes = await craft(
      [
        T({ name: "m", size: [2, 3], stride: [3, 1] }),
        T({ name: "transposed", size: [3, 2], stride: [1, 3] }),
        T({ name: "every_other", offset: 1, size: [3], stride: [2] }),
        T({ name: "tail", offset: 4, size: [2], stride: [1] }),
        T({ name: "broadcast", offset: 2, size: [2, 2], stride: [0, 1] }),
        T({ name: "scalar", offset: 5, size: [], stride: [] }),
        T({ name: "empty", size: [0, 3], stride: [3, 1] }),
      ],
      undefined,
      options,
    );
    const t = await parseTorchCheckpoint(bytes, "views.bin");
    const v = (n: string): number[] => [...toFloat32(t.get(n)!)];
    assert.deepEqual(v("m"), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(v("transposed"), [1, 4, 2, 5, 3, 6]);
    assert.deepEqual(t.get("transposed")!.layout.stride, [1, 3]);
    assert.deepEqual(v("every_other"), [2, 4, 6]);
    assert.deepEqual(v("tail"), [5, 6]);
    assert.deepEqual(v("broadcast"), [3, 4, 3, 4]);
    assert.deepEqual(v("scalar"), [6]);
    assert.deepEqual(t.get("scalar")!.shape, []);
    assert.deepEqual(v("empty"), []);
  }
});

Deno.test("torch_bin: every storage type maps to its dtype", async () => {
  const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer);
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0x4040]).buffer);
  const long = new Uint8Array(new BigInt64Array([5n, -7n]).buffer);
  const bytes = await craft([
    T({ name: "h", storageType: "HalfStorage", key: "h", numel: 2, size: [2] }),
    T({ name: "b", storageType: "BFloat16Storage", key: "b", numel: 2, size: [2] }),
    T({ name: "d", storageType: "DoubleStorage", key: "d", numel: 1, size: [1] }),
    T({ name: "l", storageType: "LongStorage", key: "l", numel: 2, size: [2] }),
    T({ name: "i", storageType: "IntStorage", key: "i", numel: 1, size: [1] }),
    T({ name: "s", storageType: "ShortStorage", key: "s", numel: 1, size: [1] }),
    T({ name: "c", storageType: "CharStorage", key: "c", numel: 1, size: [1] }),
    T({ name: "u", storageType: "ByteStorage", key: "u", numel: 1, size: [1] }),
    T({ name: "q", storageType: "BoolStorage", key: "q", numel: 1, size: [1] }),
  ], {
    h: half,
    b: bf16,
    d: new Uint8Array(new Float64Array([0.25]).buffer),
    l: long,
    i: new Uint8Array(new Int32Array([-3]).buffer),
    s: new Uint8Array(new Int16Array([-4]).buffer),
    c: new Uint8Array([0xfb]),
    u: new Uint8Array([250]),
    q: new Uint8Array([1]),
  });
  const t = await parseTorchCheckpoint(bytes, "dtypes.bin");
  const dtypes = Object.fromEntries([...t].map(([k, v]) => [k, v.dtype]));
  assert.deepEqual(dtypes, {
    h: "F16",
    b: "BF16",
    d: "F64",
    l: "I64",
    i: "I32",
    s: "I16",
    c: "I8",
    u: "U8",
    q: "BOOL",
  });
  assert.deepEqual([...toFloat32(t.get("h")!)], [1, -2]);
  assert.deepEqual([...toFloat32(t.get("b")!)], [1, 3]);
  assert.deepEqual([...toInt32(t.get("l")!)], [5, -7]);
  assert.deepEqual([...toInt32(t.get("c")!)], [-5]);
});

Deno.test("torch_bin: _rebuild_parameter and torch.Size arguments", async () => {
  const p = new Pickle().proto().op(0x7d).str("w").global("torch._utils", "_rebuild_parameter")
    .global("torch._utils", "_rebuild_tensor").mark().mark().str("storage")
    .global("torch", "FloatStorage").str("0").str("cpu").int(6).tuple().op(0x51).int(0)
    .global("torch", "Size").ints([2, 3]).op(0x85).reduce().ints([3, 1]).tuple().reduce()
    .op(0x88).global("collections", "OrderedDict").emptyTuple().reduce().op(0x87).reduce()
    .op(0x73).stop();
  const t = await parseTorchCheckpoint(await torchZip(p.bytes(), { "0": f32([1, 2, 3, 4, 5, 6]) }));
  assert.deepEqual(t.get("w")!.shape, [2, 3]);
});

/** A valid torch zip whose pickle is `p`, with one empty storage "0". */
const wrap = (p: Pickle): Promise<Uint8Array> => torchZip(p.bytes(), { "0": new Uint8Array(0) });

Deno.test("torch_bin: malicious pickles are refused, naming the global", async () => {
  const cmd = (p: Pickle): Pickle => p.str("echo pwned").op(0x85).reduce().stop();
  const cases: [string, Pickle, RegExp][] = [
    [
      "os.system",
      cmd(new Pickle().proto().global("os", "system")),
      /refusing to import os\.system/,
    ],
    ["posix.system", cmd(new Pickle().proto().global("posix", "system")), /posix\.system/],
    [
      "eval",
      cmd(new Pickle().proto().global("builtins", "eval")),
      /refusing to import builtins\.eval/,
    ],
    [
      "exec",
      cmd(new Pickle().proto().global("builtins", "exec")),
      /refusing to import builtins\.exec/,
    ],
    [
      "STACK_GLOBAL subprocess.Popen",
      cmd(new Pickle().proto(4).shortStr("subprocess").shortStr("Popen").op(0x93)),
      /refusing to import subprocess\.Popen \(STACK_GLOBAL\)/,
    ],
    [
      "INST",
      new Pickle().proto().mark().str("id").op(0x69, ...new TextEncoder().encode("os\nsystem\n"))
        .stop(),
      /refusing to import os\.system \(INST\)/,
    ],
    [
      "OBJ of a refused class",
      new Pickle().proto().mark().global("os", "system").str("id").op(0x6f).stop(),
      /refusing to import os\.system/,
    ],
    [
      "OBJ of an allowed class",
      new Pickle().proto().mark().global("collections", "OrderedDict").op(0x6f).stop(),
      /refusing to instantiate collections\.OrderedDict \(OBJ\)/,
    ],
    [
      "NEWOBJ of a refused class",
      new Pickle().proto(4).shortStr("nt").shortStr("system").op(0x93).emptyTuple().op(0x81).stop(),
      /refusing to import nt\.system/,
    ],
    [
      "NEWOBJ of an allowed class",
      new Pickle().proto().global("collections", "OrderedDict").emptyTuple().op(0x81).stop(),
      /refusing to instantiate collections\.OrderedDict \(NEWOBJ\)/,
    ],
    [
      "torch.load",
      cmd(new Pickle().proto().global("torch", "load")),
      /refusing to import torch\.load/,
    ],
    [
      "hooks in a tensor",
      new Pickle().proto().op(0x7d).str("w").global("torch._utils", "_rebuild_tensor_v2").mark()
        .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(0).tuple()
        .op(0x51).int(0).ints([0]).ints([1]).op(0x89).global("builtins", "getattr"),
      /refusing to import builtins\.getattr/,
    ],
  ];
  for (const [what, p, pattern] of cases) {
    const bytes = await wrap(p);
    const e = await assertThrowsTyped(
      () => parseTorchCheckpoint(bytes, "evil.bin"),
      PickleError,
      pattern,
    )
      .catch((err) => {
        throw new Error(`${what}: ${err.message}`);
      });
    assert.match(e.message, /^evil\.bin: /, what);
  }
});

Deno.test("torch_bin: layouts that leave their storage are refused", async () => {
  const cases: [string, CraftTensor, RegExp][] = [
    ["view past the end", T({ name: "w", offset: 4, size: [3], stride: [1] }), /reaches element 6/],
    ["stride past the end", T({ name: "w", size: [2, 2], stride: [5, 1] }), /reaches element 6/],
    ["numel mismatch", T({ name: "w", numel: 7 }), /holds 24 bytes, not 7/],
    ["missing record", T({ name: "w", key: "9" }), /archive\/data\/9 is missing/],
    ["key with a path", T({ name: "w", key: "../0" }), /not a plain name/],
    ["rank mismatch", T({ name: "w", size: [6], stride: [1, 1] }), /differ in length/],
    ["huge broadcast", T({ name: "w", size: [1 << 20, 1 << 20], stride: [0, 0] }), /repeats/],
    [
      "unknown storage type",
      T({ name: "w", storageType: "ComplexFloatStorage" }),
      /torch\.ComplexFloatStorage/,
    ],
  ];
  for (const [what, t, pattern] of cases) {
    const bytes = await craft([t]);
    await assertThrowsTyped(() => parseTorchCheckpoint(bytes, "bad.bin"), PickleError, pattern)
      .catch((err) => {
        throw new Error(`${what}: ${err.message}`);
      });
  }
});

Deno.test("torch_bin: non-state-dict pickles, legacy files and non-torch zips are typed errors", async () => {
  const list = await wrap(new Pickle().proto().op(0x5d).stop());
  await assertThrowsTyped(
    () => parseTorchCheckpoint(list, "x.bin"),
    WeightsError,
    /not a state dict/,
  );
  const int = await wrap(new Pickle().proto().op(0x7d).str("step").int(5).op(0x73).stop());
  await assertThrowsTyped(
    () => parseTorchCheckpoint(int, "x.bin"),
    WeightsError,
    /step: .*not a tensor/,
  );
  // Pre-1.6 torch.save starts with a pickled magic number.
  const legacy = new Pickle().proto().op(
    0x8a,
    10,
    0x6c,
    0xfc,
    0x9c,
    0x46,
    0xf9,
    0x20,
    0x6a,
    0xa8,
    0x50,
    0x19,
  )
    .stop().bytes();
  await assertThrowsTyped(() => parseTorchCheckpoint(legacy, "old.bin"), WeightsError, /legacy/);
  const other = (await craftZip([["readme.txt", new Uint8Array(3)]])).bytes;
  await assertThrowsTyped(() => parseTorchCheckpoint(other, "x.bin"), WeightsError, /data\.pkl/);
  const big = (await craftZip([
    ["a/data.pkl", new Pickle().proto().op(0x7d).stop().bytes()],
    ["a/byteorder", new TextEncoder().encode("big")],
  ])).bytes;
  await assertThrowsTyped(() => parseTorchCheckpoint(big, "x.bin"), WeightsError, /big-endian/);
  await assertThrowsTyped(
    () => parseTorchCheckpoint(new Uint8Array(5), "x.bin"),
    WeightsError,
    /x\.bin/,
  );
});

Deno.test("torch_bin: a truncated fixture is a WeightsError naming the file", async () => {
  const file = `${FIXTURES_DIR}/pipelines/ddpm_tiny/unet/diffusion_pytorch_model.bin`;
  const bytes = await Deno.readFile(file);
  for (const n of [100, bytes.byteLength >> 1, bytes.byteLength - 100]) {
    await assertThrowsTyped(
      () => parseTorchCheckpoint(bytes.subarray(0, n), "cut.bin"),
      WeightsError,
      /^cut\.bin/,
    );
  }
});
