/**
 * Tests of lib/random.ts against `rng/` fixtures written by torch 1.13 (CPU,
 * AVX2): every stored value must be reproduced bit for bit.
 *
 * @module
 */

import assert from "node:assert/strict";
import { tf } from "../lib/tf.ts";
import {
  defaultGenerator,
  Generator,
  manualSeed,
  rand,
  randn,
  randnTensor,
  type RandomDType,
} from "../lib/random.ts";
import { ArgumentError } from "../lib/errors.ts";
import { type SafetensorsFile, toFloat32, toFloat64 } from "../lib/weights/safetensors.ts";
import { assertThrowsTyped, readJson, readTensors } from "./_helpers.ts";

interface RngCase {
  tensor: string;
  kind: "global" | "sequence";
  fn: "randn" | "rand";
  seed: number;
  shape: number[];
  dtype: RandomDType;
  call_index: number;
  numel: number;
}

interface RngCases {
  cases: RngCase[];
}

const cases = (await readJson<RngCases>("rng/cases.json")).cases;
const file: SafetensorsFile = await readTensors("rng/torch_cpu.safetensors");

/** The stored tensor of `c`, decoded in its own dtype. */
function expected(c: RngCase): Float32Array | Float64Array {
  const t = file.tensors.get(c.tensor);
  assert(t, `missing tensor ${c.tensor}`);
  return c.dtype === "float32" ? toFloat32(t) : toFloat64(t);
}

/** One case's call on `g`. */
function draw(g: Generator, c: RngCase): Float32Array | Float64Array {
  return c.fn === "randn" ? g.randn(c.numel, c.dtype) : g.rand(c.numel, c.dtype);
}

/** Asserts bit-exact equality (0 differing elements) and max abs error ≤ 1e-6; returns the count. */
function assertBitExact(
  actual: Float32Array | Float64Array,
  want: Float32Array | Float64Array,
  label: string,
): number {
  assert.equal(actual.length, want.length, `${label}: length`);
  assert.equal(actual.constructor, want.constructor, `${label}: dtype`);
  let mismatches = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(actual[i], want[i])) mismatches++;
    maxAbs = Math.max(maxAbs, Math.abs(actual[i]! - want[i]!));
  }
  assert.equal(mismatches, 0, `${label}: ${mismatches}/${want.length} values differ`);
  assert(maxAbs <= 1e-6, `${label}: max abs error ${maxAbs}`);
  return want.length;
}

function sequenceName(c: RngCase): string {
  return c.tensor.split("_")[0]!;
}

/** The data of a float32 tensor, which it disposes. */
async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = await t.data();
  t.dispose();
  return v as Float32Array;
}

Deno.test("random: the fixtures hold 6076 values in global and sequence cases", () => {
  assert.equal(cases.reduce((n, c) => n + c.numel, 0), 6076);
  assert(cases.every((c) => c.kind === "global" || c.kind === "sequence"));
  for (const c of cases) assert.equal(expected(c).length, c.numel, c.tensor);
});

Deno.test("random: every global case is bit-exact with torch", () => {
  const globals = cases.filter((c) => c.kind === "global");
  assert.equal(globals.length, 12);
  for (const c of globals) {
    // torch.manual_seed(seed) then one call on the default generator.
    assertBitExact(draw(manualSeed(c.seed), c), expected(c), c.tensor);
  }
});

Deno.test("random: sequences on one generator are bit-exact with torch", () => {
  const sequences = cases.filter((c) => c.kind === "sequence");
  const names = [...new Set(sequences.map(sequenceName))].sort();
  assert.deepEqual(names, ["seqA", "seqB", "seqC"]);
  for (const name of names) {
    const calls = sequences.filter((c) => sequenceName(c) === name)
      .sort((a, b) => a.call_index - b.call_index);
    const g = new Generator().manualSeed(calls[0]!.seed);
    for (const c of calls) assertBitExact(draw(g, c), expected(c), c.tensor);
  }
});

Deno.test("random: randn/rand tensors follow torch's shape and draw order", async () => {
  const s42 = cases.find((c) => c.tensor === "randn_s42_1x3x32x32")!;
  const t = randn([1, 3, 32, 32], { generator: new Generator(42) });
  assert.deepEqual(t.shape, [1, 3, 32, 32]);
  assert.equal(t.dtype, "float32");
  assertBitExact(await values(t), expected(s42), "randn tensor");

  const r = cases.find((c) => c.tensor === "rand_s0_20_float32")!;
  assertBitExact(await values(rand([4, 5], { generator: new Generator(0) })), expected(r), "rand");

  // No generator: the default one, as torch.manual_seed + torch.randn.
  manualSeed(42);
  assertBitExact(await values(randn([1, 3, 32, 32])), expected(s42), "default generator");

  // float64 draws, rounded to the float32 tensor.
  const f64 = cases.find((c) => c.tensor === "randn_s0_20_float64")!;
  const got = await values(randn([20], { generator: new Generator(0), dtype: "float64" }));
  assertBitExact(got, Float32Array.from(expected(f64)), "float64 draw");
});

Deno.test("random: randnTensor NHWC is the transposed NCHW draw", async () => {
  const before = tf.memory().numTensors;
  const nhwc = randnTensor([2, 5, 3, 4], { generator: new Generator(3) });
  assert.deepEqual(nhwc.shape, [2, 5, 3, 4]);
  const nchw = randnTensor([2, 4, 5, 3], { generator: new Generator(3), layout: "NCHW" });
  const want = tf.transpose(nchw, [0, 2, 3, 1]);
  nchw.dispose();
  assertBitExact(await values(nhwc), await values(want), "NHWC");
  assert.equal(tf.memory().numTensors, before, "randnTensor leaks tensors");

  // Latents of diffusers: torch.randn([1, 4, 8, 8]) laid out NHWC.
  const s0 = cases.find((c) => c.tensor === "randn_s0_1x4x8x8")!;
  const latents = randnTensor([1, 8, 8, 4], { generator: new Generator(0) });
  const back = tf.transpose(latents, [0, 3, 1, 2]);
  latents.dispose();
  assertBitExact(await values(back), expected(s0), "latents");

  // Other ranks are drawn in the given shape.
  const flat = cases.find((c) => c.tensor === "randn_s0_17")!;
  assertBitExact(
    await values(randnTensor([17], { generator: new Generator(0) })),
    expected(flat),
    "rank 1",
  );
});

Deno.test("random: manualSeed drops the cached normal", () => {
  const s0 = cases.find((c) => c.tensor === "randn_s0_4")!;
  const g = new Generator(9);
  g.randn(1); // leaves the pair's second value cached
  g.manualSeed(0);
  assertBitExact(g.randn(4), expected(s0), "after reseed");
  g.randn(3);
  assert.equal(manualSeed(0), defaultGenerator());
  assertBitExact(defaultGenerator().randn(4), expected(s0), "global reseed");
});

Deno.test("random: clone() continues identically, cached normal included", () => {
  const g = new Generator(7);
  g.randn(5); // odd count: a cached normal is pending
  const h = g.clone();
  assert.equal(h.initialSeed(), 7n);
  for (const [n, dtype] of [[1, "float32"], [20, "float32"], [3, "float64"]] as const) {
    assertBitExact(h.randn(n, dtype), g.randn(n, dtype), `clone randn ${n}`);
  }
  assertBitExact(h.rand(700), g.rand(700), "clone rand across a twist");
  // Independent state: drawing from one leaves the other alone.
  const k = g.clone();
  g.randn(50);
  assertBitExact(k.randn(10), h.randn(10), "independent");
});

Deno.test("random: seeds use the low 32 bits for MT19937, like torch", () => {
  const low = new Generator(5).randn(40);
  assertBitExact(new Generator(2n ** 32n + 5n).randn(40), low, "bigint 2^32 + 5");
  assertBitExact(new Generator(2 ** 40 + 5).randn(40), low, "number 2^40 + 5");
  assertBitExact(new Generator(5n).randn(40), low, "bigint 5");
  assert.equal(new Generator(2n ** 32n + 5n).initialSeed(), 2n ** 32n + 5n);
  // Negative seeds wrap to unsigned 64-bit, as torch.manual_seed(-1) does.
  const neg = new Generator(-1);
  assert.equal(neg.initialSeed(), 2n ** 64n - 1n);
  assertBitExact(neg.rand(10), new Generator(0xffffffff).rand(10), "seed -1");
  assert.equal(new Generator().initialSeed(), 67280421310721n);
});

Deno.test("random: empty draws, seed() and statistics", () => {
  const g = new Generator(0);
  assert.equal(g.randn(0).length, 0);
  assert.equal(g.rand(0, "float64").length, 0);
  const s0 = cases.find((c) => c.tensor === "randn_s0_16")!;
  assertBitExact(g.randn(16), expected(s0), "empty draws consume nothing");

  const fresh = new Generator();
  const seed = fresh.seed();
  assert(seed >= 0n && seed < 2n ** 53n);
  assert.equal(fresh.initialSeed(), seed);
  assert(defaultGenerator().initialSeed() < 2n ** 64n);

  // SD latent size with a partial tail block: plausible N(0, 1).
  const x = new Generator(1).randn(4 * 64 * 64 + 3);
  let mean = 0;
  let sq = 0;
  for (const v of x) {
    assert(Number.isFinite(v));
    mean += v / x.length;
    sq += (v * v) / x.length;
  }
  assert(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert(Math.abs(Math.sqrt(sq - mean * mean) - 1) < 0.03, `std ${Math.sqrt(sq - mean * mean)}`);
});

Deno.test("random: bad arguments throw ArgumentError", async () => {
  const g = new Generator(0);
  await assertThrowsTyped(() => g.manualSeed(1.5), ArgumentError, /integer/);
  await assertThrowsTyped(() => g.manualSeed(2n ** 64n), ArgumentError, /2\^64/);
  await assertThrowsTyped(() => g.manualSeed(-(2n ** 63n) - 1n), ArgumentError, /2\^63/);
  await assertThrowsTyped(() => g.randn(-1), ArgumentError, /non-negative/);
  await assertThrowsTyped(() => g.rand(2.5), ArgumentError, /non-negative/);
  await assertThrowsTyped(
    () => g.randn(4, "float16" as RandomDType),
    ArgumentError,
    /dtype/,
  );
  await assertThrowsTyped(() => randn([2, -1], { generator: g }), ArgumentError, /shape/);
  await assertThrowsTyped(
    () => randnTensor([1, 2, 2, 1], { generator: g, layout: "CHW" as "NCHW" }),
    ArgumentError,
    /layout/,
  );
});
