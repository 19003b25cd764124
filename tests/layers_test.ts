/**
 * Unit tests of models/layers on the WASM backend: each layer against a
 * float64 reference written out in plain loops, plus the Module machinery
 * (state-dict keys, legacy renames, load errors, init, dispose).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ready, tf } from "../lib/backend.ts";
import { WeightsError } from "../lib/errors.ts";
import { Module, Parameter, type WeightMap } from "../models/layers/module.ts";
import { initValues } from "../models/layers/init.ts";
import { Conv2d } from "../models/layers/conv2d.ts";
import { Linear } from "../models/layers/linear.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import { Attention, multiHeadAttention } from "../models/layers/attention.ts";
import { GaussianFourierProjection, getTimestepEmbedding } from "../models/layers/embeddings.ts";
import { Downsample2D } from "../models/layers/downsampling.ts";
import { Upsample2D } from "../models/layers/upsampling.ts";
import { ResnetBlock2D } from "../models/layers/resnet_block.ts";
import { assertClose, assertThrowsTyped } from "./_helpers.ts";

await ready("wasm");

/** Deterministic N(0, 1) values. */
function randn(n: number, seed: number): Float32Array {
  return initValues({ kind: "normal", std: 1 }, n, seed);
}

/** PyTorch-layout conv2d (NCHW input, OIHW weight) in float64, for references. */
function conv2dRef(
  x: Float32Array,
  [n, c, h, w]: number[],
  wt: Float32Array,
  [o, , k]: number[],
  bias: Float32Array,
  stride: number,
  [top, bottom, left, right]: number[],
): { out: Float64Array; shape: number[] } {
  const oh = Math.floor((h + top + bottom - k) / stride) + 1;
  const ow = Math.floor((w + left + right - k) / stride) + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      for (let y = 0; y < oh; y++) {
        for (let xx = 0; xx < ow; xx++) {
          let s = bias[oc]!;
          for (let ic = 0; ic < c; ic++) {
            for (let ky = 0; ky < k; ky++) {
              for (let kx = 0; kx < k; kx++) {
                const iy = y * stride + ky - top;
                const ix = xx * stride + kx - left;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += x[((b * c + ic) * h + iy) * w + ix]! * wt[((oc * c + ic) * k + ky) * k + kx]!;
              }
            }
          }
          out[((b * o + oc) * oh + y) * ow + xx] = s;
        }
      }
    }
  }
  return { out, shape: [n, o, oh, ow] };
}

/** NCHW host data → NHWC tensor. */
function nhwc(data: Float32Array, shape: number[]): tf.Tensor4D {
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(data, shape as [number, number, number, number]), [0, 2, 3, 1])
  );
}

/** NHWC tensor → NCHW host data. */
function nchwData(t: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.transpose(t, [0, 3, 1, 2])).dataSync() as Float32Array;
}

Deno.test("Conv2d: matches a float64 reference (stride 1 pad 1, stride 2 asymmetric pad)", async () => {
  const xShape = [2, 3, 7, 6];
  const x = randn(2 * 3 * 7 * 6, 1);
  for (
    const [stride, padding] of [[1, 1], [2, [0, 1, 0, 1]], [2, 1]] as [
      number,
      number | [number, number, number, number],
    ][]
  ) {
    const w = randn(4 * 3 * 3 * 3, 2);
    const b = randn(4, 3);
    const conv = new Conv2d(3, 4, 3, { stride, padding });
    await conv.loadStateDict(
      new Map([["weight", { shape: [4, 3, 3, 3], data: w }], ["bias", { shape: [4], data: b }]]),
    );
    const xt = nhwc(x, xShape);
    const y = conv.forward(xt);
    const pads = typeof padding === "number" ? [padding, padding, padding, padding] : padding;
    const ref = conv2dRef(x, xShape, w, [4, 3, 3, 3], b, stride, pads);
    assert.deepEqual([y.shape[0], y.shape[3], y.shape[1], y.shape[2]], ref.shape);
    assertClose(nchwData(y), ref.out, 1e-6, `conv stride ${stride} pad ${padding}`);
    tf.dispose([xt, y]);
    conv.dispose();
  }
});

Deno.test("Linear: [out, in] weight applied as x·Wᵀ + b on any leading shape", async () => {
  const w = randn(5 * 3, 4);
  const b = randn(5, 5);
  const x = randn(2 * 2 * 3, 6);
  const fc = new Linear(3, 5);
  await fc.loadStateDict(
    new Map([["weight", { shape: [5, 3], data: w }], ["bias", { shape: [5], data: b }]]),
  );
  const ref = new Float64Array(4 * 5);
  for (let r = 0; r < 4; r++) {
    for (let o = 0; o < 5; o++) {
      let s = b[o]!;
      for (let i = 0; i < 3; i++) s += x[r * 3 + i]! * w[o * 3 + i]!;
      ref[r * 5 + o] = s;
    }
  }
  const y = fc.forward(tf.tensor3d(x, [2, 2, 3]));
  assert.deepEqual(y.shape, [2, 2, 5]);
  assertClose(y.dataSync(), ref, 1e-6, "linear");
  y.dispose();
  fc.dispose();
});

Deno.test("GroupNorm (+SiLU): matches float64 PyTorch semantics, batch 2, ranks 3 and 4", async () => {
  const [b, h, w, c, g] = [2, 5, 3, 12, 4];
  const x = randn(b * h * w * c, 7).map((v, i) => v * 3 + (i % c) - 4);
  const gamma = randn(c, 8);
  const beta = randn(c, 9);
  const ref = new Float64Array(x.length);
  const cg = c / g;
  const n = h * w;
  for (let bi = 0; bi < b; bi++) {
    for (let gi = 0; gi < g; gi++) {
      const idx: number[] = [];
      for (let p = 0; p < n; p++) {
        for (let ch = gi * cg; ch < (gi + 1) * cg; ch++) idx.push((bi * n + p) * c + ch);
      }
      const mean = idx.reduce((s, i) => s + x[i]!, 0) / idx.length;
      const v = idx.reduce((s, i) => s + (x[i]! - mean) ** 2, 0) / idx.length;
      for (const i of idx) {
        const ch = i % c;
        ref[i] = (x[i]! - mean) / Math.sqrt(v + 1e-6) * gamma[ch]! + beta[ch]!;
      }
    }
  }
  const norm = new GroupNorm(g, c, 1e-6);
  await norm.loadStateDict(
    new Map([["weight", { shape: [c], data: gamma }], ["bias", { shape: [c], data: beta }]]),
  );
  const x4 = tf.tensor4d(x, [b, h, w, c]);
  const y = norm.forward(x4);
  assertClose(y.dataSync(), ref, 1e-5, "group norm");
  const ys = norm.forward(x4, true);
  const refSilu = ref.map((v) => v / (1 + Math.exp(-v)));
  assertClose(ys.dataSync(), refSilu, 1e-5, "group norm + silu");
  const y3 = norm.forward(tf.reshape(x4, [b, n, c]));
  assert.deepEqual(y3.shape, [b, n, c]);
  assertClose(y3.dataSync(), ref, 1e-5, "group norm rank 3");
  tf.dispose([x4, y, ys, y3]);
  norm.dispose();
});

Deno.test("getTimestepEmbedding: diffusers' formula (shift, flip, scale, odd dim)", () => {
  const ts = [0, 10, 999.5];
  for (
    const [dim, flip, shift, scale] of [[32, false, 1, 1], [33, true, 0, 2], [8, true, 1, 1]] as [
      number,
      boolean,
      number,
      number,
    ][]
  ) {
    const half = Math.floor(dim / 2);
    const ref: number[] = [];
    for (const t of ts) {
      const args = Array.from(
        { length: half },
        (_, i) => scale * t * Math.exp(-Math.log(10000) * i / (half - shift)),
      );
      const row = flip
        ? [...args.map(Math.cos), ...args.map(Math.sin)]
        : [...args.map(Math.sin), ...args.map(Math.cos)];
      if (dim % 2) row.push(0);
      ref.push(...row);
    }
    const e = getTimestepEmbedding(tf.tensor1d(ts), dim, {
      flipSinToCos: flip,
      downscaleFreqShift: shift,
      scale,
    });
    assert.deepEqual(e.shape, [3, dim]);
    // float32 arguments up to ~2000 carry ~1e-4 absolute rounding, as in PyTorch
    assertClose(e.dataSync(), ref, 3e-4, `dim ${dim}`);
    e.dispose();
  }
});

Deno.test("multiHeadAttention: per-head 2-D matmuls equal naive attention, chunked or not", () => {
  const [batch, nq, nk, heads, d] = [2, 6, 5, 3, 4];
  const inner = heads * d;
  const q = randn(batch * nq * inner, 11);
  const k = randn(batch * nk * inner, 12);
  const v = randn(batch * nk * inner, 13);
  const scale = 1 / Math.sqrt(d);
  const ref = new Float64Array(batch * nq * inner);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nq; i++) {
        const s = Array.from({ length: nk }, (_, j) => {
          let dot = 0;
          for (let e = 0; e < d; e++) {
            dot += q[(b * nq + i) * inner + h * d + e]! * k[(b * nk + j) * inner + h * d + e]!;
          }
          return dot * scale;
        });
        const m = Math.max(...s);
        const p = s.map((x) => Math.exp(x - m));
        const z = p.reduce((a, x) => a + x, 0);
        for (let e = 0; e < d; e++) {
          let acc = 0;
          for (let j = 0; j < nk; j++) acc += p[j]! / z * v[(b * nk + j) * inner + h * d + e]!;
          ref[(b * nq + i) * inner + h * d + e] = acc;
        }
      }
    }
  }
  const [qt, kt, vt] = [
    tf.tensor2d(q, [batch * nq, inner]),
    tf.tensor2d(k, [batch * nk, inner]),
    tf.tensor2d(v, [batch * nk, inner]),
  ];
  for (const maxBytes of [undefined, 2 * nk * 4]) {
    const before = tf.memory().numTensors;
    const y = multiHeadAttention(qt, kt, vt, batch, heads, scale, maxBytes);
    assert.equal(tf.memory().numTensors, before + 1);
    assertClose(y.dataSync(), ref, 1e-5, `attention, chunk bytes ${maxBytes}`);
    y.dispose();
  }
  tf.dispose([qt, kt, vt]);
});

Deno.test("Attention: keys, heads, residual + rescale, legacy query/key/value/proj_attn names", async () => {
  const attn = new Attention({
    queryDim: 8,
    heads: 2,
    dimHead: 4,
    normNumGroups: 2,
    bias: true,
    residualConnection: true,
    rescaleOutputFactor: 2,
    fromDeprecatedAttnBlock: true,
  }).initialize(3);
  assert.deepEqual(attn.namedParameters().map(([k]) => k), [
    "group_norm.weight",
    "group_norm.bias",
    "to_q.weight",
    "to_q.bias",
    "to_k.weight",
    "to_k.bias",
    "to_v.weight",
    "to_v.bias",
    "to_out.0.weight",
    "to_out.0.bias",
  ]);
  const x = tf.tensor4d(randn(2 * 3 * 3 * 8, 4), [2, 3, 3, 8]);
  const y = attn.forward(x);
  // The same weights under the old names must give the same output.
  const legacy = new Map<string, tf.Tensor>();
  const rename: Record<string, string> = { to_q: "query", to_k: "key", to_v: "value" };
  for (const [key, p] of attn.namedParameters()) {
    const [mod, leaf] = [key.slice(0, key.lastIndexOf(".")), key.slice(key.lastIndexOf(".") + 1)];
    const old = mod === "to_out.0" ? "proj_attn" : rename[mod] ?? mod;
    const torch = p.layout === "linear" ? tf.transpose(p.value) : tf.clone(p.value);
    legacy.set(`${old}.${leaf}`, torch);
  }
  const other = new Attention({
    queryDim: 8,
    heads: 2,
    dimHead: 4,
    normNumGroups: 2,
    bias: true,
    residualConnection: true,
    rescaleOutputFactor: 2,
    fromDeprecatedAttnBlock: true,
  });
  await other.loadStateDict(legacy);
  const y2 = other.forward(x);
  assert.deepEqual(Array.from(y2.dataSync()), Array.from(y.dataSync()));
  tf.dispose([x, y, y2, ...legacy.values()]);
  attn.dispose();
  other.dispose();
});

Deno.test("Downsample2D / Upsample2D: stride-2 conv with (0,1,0,1) pad, avg pool, nearest 2x", () => {
  const x = tf.tensor4d(randn(1 * 4 * 4 * 2, 21), [1, 4, 4, 2]);
  const down = new Downsample2D(2, { useConv: true, padding: 0 }).initialize(1);
  const conv = down.conv!;
  const manual = tf.conv2d(
    tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]),
    conv.weight.value as tf.Tensor4D,
    2,
    "valid",
  );
  const y = down.forward(x);
  assertClose(y.dataSync(), tf.add(manual, conv.bias!.value).dataSync(), 1e-6, "downsample pad 0");
  assert.deepEqual(down.namedParameters().map(([k]) => k), ["conv.weight", "conv.bias"]);
  const pool = new Downsample2D(2).forward(x);
  assert.deepEqual(pool.shape, [1, 2, 2, 2]);
  const xs = x.dataSync();
  assert.ok(Math.abs(pool.dataSync()[0]! - (xs[0]! + xs[2]! + xs[8]! + xs[10]!) / 4) < 1e-6);
  const up = new Upsample2D(2).forward(x);
  assert.deepEqual(up.shape, [1, 8, 8, 2]);
  const ud = up.dataSync();
  for (const [oy, ox] of [[0, 0], [3, 5], [7, 7]]) {
    for (let ch = 0; ch < 2; ch++) {
      const src = ((oy >> 1) * 4 + (ox >> 1)) * 2 + ch;
      assert.equal(ud[(oy * 8 + ox) * 2 + ch], xs[src]);
    }
  }
  tf.dispose([x, manual, y, pool, up]);
  down.dispose();
});

Deno.test("ResnetBlock2D: keys and shapes for default / scale_shift / shortcut / up / down", () => {
  const block = new ResnetBlock2D({
    inChannels: 8,
    outChannels: 16,
    tembChannels: 12,
    groups: 4,
    timeEmbeddingNorm: "scale_shift",
  }).initialize(0);
  const shapes = Object.fromEntries(block.namedParameters().map(([k, p]) => [k, p.torchShape]));
  assert.deepEqual(shapes, {
    "norm1.weight": [8],
    "norm1.bias": [8],
    "conv1.weight": [16, 8, 3, 3],
    "conv1.bias": [16],
    "time_emb_proj.weight": [32, 12],
    "time_emb_proj.bias": [32],
    "norm2.weight": [16],
    "norm2.bias": [16],
    "conv2.weight": [16, 16, 3, 3],
    "conv2.bias": [16],
    "conv_shortcut.weight": [16, 8, 1, 1],
    "conv_shortcut.bias": [16],
  });
  const x = tf.tensor4d(randn(2 * 4 * 4 * 8, 5), [2, 4, 4, 8]);
  const temb = tf.tensor2d(randn(2 * 12, 6), [2, 12]);
  const y = block.forward(x, temb);
  assert.deepEqual(y.shape, [2, 4, 4, 16]);
  const down = new ResnetBlock2D({ inChannels: 8, tembChannels: 12, groups: 4, down: true })
    .initialize(0);
  const up = new ResnetBlock2D({ inChannels: 8, tembChannels: null, groups: 4, up: true })
    .initialize(0);
  assert.deepEqual(down.forward(x, temb).shape, [2, 2, 2, 8]);
  assert.deepEqual(up.forward(x, null).shape, [2, 8, 8, 8]);
  assert.ok(!up.namedParameters().some(([k]) => k.startsWith("time_emb_proj")));
  tf.dispose([x, temb, y]);
  for (const m of [block, down, up]) m.dispose();
});

class Leaf extends Module {
  readonly weight = new Parameter([2, 3], "linear", { kind: "uniform", bound: 0.5 });
  readonly bias = new Parameter([2], "none", { kind: "constant", value: 0 });
}

class Tree extends Module {
  readonly first = new Leaf();
  readonly list: (Leaf | null)[] = [new Leaf(), null, new Leaf()];
  protected override legacyKeys(): Readonly<Record<string, string>> {
    return { "old.weight": "first.weight" };
  }
}

function host(shape: number[], seed = 0): { shape: number[]; data: Float32Array } {
  return { shape, data: randn(shape.reduce((a, b) => a * b, 1), seed) };
}

Deno.test("Module: dotted keys, parameter count, init bounds, load, legacy keys, dispose", async () => {
  const tree = new Tree();
  assert.deepEqual(tree.namedParameters().map(([k]) => k), [
    "first.weight",
    "first.bias",
    "list.0.weight",
    "list.0.bias",
    "list.2.weight",
    "list.2.bias",
  ]);
  assert.equal(tree.parameterCount(), 3 * 8);
  const before = tf.memory().numTensors;
  tree.initialize(1);
  assert.equal(tf.memory().numTensors, before + 6);
  const w = tree.first.weight.value.dataSync();
  assert.deepEqual(tree.first.weight.value.shape, [3, 2]); // [in, out]
  assert.ok(w.every((v) => Math.abs(v) <= 0.5) && new Set(w).size === 6);
  assert.deepEqual(Array.from(tree.first.bias.value.dataSync()), [0, 0]);

  const dict = new Map(tree.namedParameters().map(([k, p]) => [k, host([...p.torchShape], 3)]));
  dict.delete("first.weight");
  dict.set("old.weight", host([2, 3], 9));
  await tree.loadStateDict(dict);
  // [out, in] = [[a, b, c], [d, e, f]] is stored transposed as [in, out]
  const src = dict.get("old.weight")!.data;
  assert.deepEqual(
    Array.from(tree.first.weight.value.dataSync()),
    [0, 3, 1, 4, 2, 5].map((i) => src[i]),
  );
  tree.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tree.first.weight.loaded, false);
});

Deno.test("Module.loadStateDict: one WeightsError listing missing, unexpected, shape; no partial load", async () => {
  const tree = new Tree();
  const dict: Map<string, { shape: number[]; data: Float32Array }> = new Map(
    tree.namedParameters().map(([k, p]) => [k, host([...p.torchShape])]),
  );
  dict.delete("list.2.bias");
  dict.set("list.1.weight", host([2, 3]));
  dict.set("first.bias", host([3]));
  const err = await assertThrowsTyped(
    () => tree.loadStateDict(dict as WeightMap, { file: "w.safetensors" }),
    WeightsError,
  );
  assert.match(err.message, /^w\.safetensors: /);
  assert.match(err.message, /1 missing key: list\.2\.bias/);
  assert.match(err.message, /1 unexpected key: list\.1\.weight/);
  assert.match(err.message, /first\.bias: expected shape \[2\], got \[3\]/);
  assert.ok(tree.namedParameters().every(([, p]) => !p.loaded));

  const single = await assertThrowsTyped(
    () => tree.loadStateDict(new Map([["first.bias", host([3])]]), { strict: false }),
    WeightsError,
    /shape mismatch/,
  );
  assert.equal((single as WeightsError).key, "first.bias");

  dict.set("first.bias", host([2]));
  const report = await tree.loadStateDict(dict as WeightMap, { strict: false });
  assert.deepEqual(report, { missing: ["list.2.bias"], unexpected: ["list.1.weight"] });
  assert.equal(tree.list[2]!.bias.loaded, false);
  tree.dispose();
});

Deno.test("Module.loadStateDict: lazy WeightReader; a failed read releases what it assigned", async () => {
  const tree = new Tree();
  const entries = new Map(tree.namedParameters().map(([k, p]) => [k, { shape: p.torchShape }]));
  const reads: string[] = [];
  const reader = {
    entries,
    get(name: string): Promise<{ data: Float32Array | Int32Array }> {
      reads.push(name);
      const n = entries.get(name)!.shape.reduce((a, b) => a * b, 1);
      return Promise.resolve({ data: new Int32Array(n).fill(reads.length) });
    },
  };
  await tree.loadStateDict(reader);
  assert.deepEqual(reads, tree.namedParameters().map(([k]) => k));
  assert.deepEqual(Array.from(tree.list[0]!.bias.value.dataSync()), [4, 4]);

  const failing = {
    entries,
    get(name: string): Promise<{ data: Float32Array }> {
      if (name === "list.0.bias") {
        return Promise.reject(new WeightsError("truncated", { key: name }));
      }
      const n = entries.get(name)!.shape.reduce((a, b) => a * b, 1);
      return Promise.resolve({ data: new Float32Array(name === "list.2.weight" ? n + 1 : n) });
    },
  };
  await assertThrowsTyped(() => tree.loadStateDict(failing), WeightsError, /truncated/);
  const loaded = (): string[] => tree.namedParameters().filter(([, p]) => p.loaded).map(([k]) => k);
  // first.*, list.0.weight were assigned by the failed call and released; the rest keep old values
  assert.deepEqual(loaded(), ["list.0.bias", "list.2.weight", "list.2.bias"]);
  // a tensor whose data does not fill its declared shape is refused too
  const short = {
    ...failing,
    get: (name: string) => failing.get(name === "list.0.bias" ? "first.bias" : name),
  };
  await assertThrowsTyped(
    () => tree.loadStateDict(short),
    WeightsError,
    /list\.2\.weight: holds 7 values; shape \[2,3\] needs 6/,
  );
  assert.deepEqual(loaded(), ["list.2.weight", "list.2.bias"]);
  tree.dispose();
});

Deno.test("GaussianFourierProjection: loads `weight` or `W`, sin/cos of 2π·log(x)·W", async () => {
  const proj = new GaussianFourierProjection(3, 16);
  const w = new Float32Array([0.5, -1, 2]);
  await proj.loadStateDict(
    new Map([["weight", { shape: [3], data: w }], ["W", { shape: [3], data: w }]]),
  );
  const only = new GaussianFourierProjection(3, 16);
  await only.loadStateDict(new Map([["W", { shape: [3], data: w }]]));
  const x = tf.tensor1d([0.5, 3]);
  const y = proj.forward(x);
  const ref = [0.5, 3].flatMap((t) => {
    const a = Array.from(w, (f) => 2 * Math.PI * Math.log(t) * f);
    return [...a.map(Math.sin), ...a.map(Math.cos)];
  });
  assertClose(y.dataSync(), ref, 1e-6, "fourier");
  assert.deepEqual(Array.from(only.forward(x).dataSync()), Array.from(y.dataSync()));
  tf.dispose([x, y]);
  proj.dispose();
  only.dispose();
});
