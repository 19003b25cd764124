/**
 * The project's WGSL kernels (models/layers/webgpu/) on the WebGPU backend
 * (Mesa's software adapter here): GroupNorm(+SiLU) and flash-style
 * attention, each against the composed tfjs ops on the same backend
 * (kernels switched off) and against a float64 reference computed here,
 * over shapes that are not multiples of the tiles, SiLU on and off,
 * cross-attention (nq ≠ nk), head widths that do and do not divide by 4,
 * an additive mask, and every kernel variant; that the layers call them on
 * webgpu only and the switch turns them off; that nothing leaks; and two
 * fixture models (SD-family UNet2DConditionModel, CLIP text encoder) still
 * matching diffusers / transformers with the kernels on. Tensors stay small
 * (lavapipe computes garbage in buffers ≥ 128 MiB). Set
 * DIFFUSERS_SKIP_WEBGPU=1 on a machine with no adapter at all.
 */
import assert from "node:assert/strict";
import { tf } from "../lib/backend.ts";
import { onWebGPU, SKIP_WEBGPU, testShutdownWebGPU } from "./_webgpu.ts";
import { assertClose, FIXTURES_DIR, readTensors, relError, TEST_BACKEND } from "./_helpers.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import { multiHeadAttention } from "../models/layers/attention.ts";
import { FLOAT32_MIN } from "../models/layers/self_attention.ts";
import { groupNormWebGPU } from "../models/layers/webgpu/group_norm_program.ts";
import {
  type AttentionProgramOptions,
  attentionWebGPU,
} from "../models/layers/webgpu/attention_program.ts";
import {
  setWgslKernels,
  wgslKernelsActive,
  wgslKernelsEnabled,
} from "../models/layers/webgpu/wgsl_kernels.ts";
import { UNet2DConditionModel } from "../models/unet_2d_condition.ts";
import { CLIPTextModel } from "../models/clip_text.ts";
import { toFloat32, toInt32 } from "../lib/weights/safetensors.ts";

/** On webgpu, with the kernel switch back to its default afterwards. */
function onKernelsWebGPU(fn: () => Promise<void>): Promise<void> {
  return onWebGPU(fn, () => setWgslKernels(undefined));
}

/** A deterministic pseudo-random float32 array (values in [-1, 1) · scale + shift). */
function values(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale + shift;
  }
  return out;
}

/** GroupNorm(+SiLU) of x [n, s, c] in float64. */
function groupNormReference(
  x: Float32Array,
  [n, s, c]: number[],
  gamma: Float32Array,
  beta: Float32Array,
  groups: number,
  eps: number,
  silu: boolean,
): Float64Array {
  const out = new Float64Array(x.length);
  const cg = c / groups;
  for (let b = 0; b < n!; b++) {
    for (let g = 0; g < groups; g++) {
      const at = (p: number, ch: number): number => b * s! * c! + p * c! + g * cg + ch;
      let sum = 0;
      for (let p = 0; p < s!; p++) for (let ch = 0; ch < cg; ch++) sum += x[at(p, ch)]!;
      const mean = sum / (s! * cg);
      let sq = 0;
      for (let p = 0; p < s!; p++) {
        for (let ch = 0; ch < cg; ch++) sq += (x[at(p, ch)]! - mean) ** 2;
      }
      const rstd = 1 / Math.sqrt(sq / (s! * cg) + eps);
      for (let p = 0; p < s!; p++) {
        for (let ch = 0; ch < cg; ch++) {
          const y = (x[at(p, ch)]! - mean) * rstd * gamma[g * cg + ch]! + beta[g * cg + ch]!;
          out[at(p, ch)] = silu ? y / (1 + Math.exp(-y)) : y;
        }
      }
    }
  }
  return out;
}

/** softmax(q·kᵀ·scale + bias)·v per (batch, head) in float64, multiHeadAttention's layout. */
function attentionReference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  batch: number,
  heads: number,
  nq: number,
  nk: number,
  d: number,
  bias?: Float32Array,
): Float64Array {
  const width = heads * d;
  const out = new Float64Array(batch * nq * width);
  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(nk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nq; i++) {
        const qo = (b * nq + i) * width + h * d;
        let max = -Infinity;
        for (let j = 0; j < nk; j++) {
          const ko = (b * nk + j) * width + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qo + c]! * k[ko + c]!;
          scores[j] = dot * scale + (bias ? bias[i * nk + j]! : 0);
          max = Math.max(max, scores[j]!);
        }
        let sum = 0;
        for (let j = 0; j < nk; j++) sum += scores[j] = Math.exp(scores[j]! - max);
        for (let j = 0; j < nk; j++) {
          const vo = (b * nk + j) * width + h * d;
          const p = scores[j]! / sum;
          for (let c = 0; c < d; c++) out[qo + c] += p * v[vo + c]!;
        }
      }
    }
  }
  return out;
}

/** CLIP's additive causal mask, generalised to [nq, nk]: key j is hidden from query i when j > i. */
function causalMask(nq: number, nk: number): tf.Tensor2D {
  const m = new Float32Array(nq * nk);
  for (let i = 0; i < nq; i++) for (let j = i + 1; j < nk; j++) m[i * nk + j] = FLOAT32_MIN;
  return tf.tensor2d(m, [nq, nk]);
}

const GROUP_NORM_CASES: { shape: number[]; groups: number; silu: boolean }[] = [
  { shape: [1, 8, 8, 64], groups: 32, silu: true },
  { shape: [2, 5, 7, 30], groups: 3, silu: false }, // 10 channels per group, 35 positions
  { shape: [2, 5, 7, 30], groups: 3, silu: true },
  { shape: [1, 3, 33, 40], groups: 8, silu: true },
  { shape: [2, 16, 16, 320], groups: 32, silu: false }, // SD's first level, smaller map
  { shape: [1, 77, 24], groups: 24, silu: true }, // rank 3, one channel per group
  { shape: [3, 1, 1, 16], groups: 4, silu: false }, // 4 values per group
];

Deno.test({
  name: "webgpu kernels: GroupNorm(+SiLU) matches the composed ops and a float64 reference",
  ignore: SKIP_WEBGPU,
  fn: () =>
    onKernelsWebGPU(async () => {
      for (const [i, { shape, groups, silu }] of GROUP_NORM_CASES.entries()) {
        const c = shape.at(-1)!;
        const n = shape.reduce((a, b) => a * b, 1);
        const xs = values(n, 11 + i, 3, 5); // mean 5: checks the two-pass variance
        const gs = values(c, 101 + i, 1, 1);
        const bs = values(c, 201 + i);
        const norm = new GroupNorm(groups, c, 1e-6);
        norm.weight.assign(tf.tensor1d(gs));
        norm.bias.assign(tf.tensor1d(bs));
        const x = tf.tensor(xs, shape);
        const before = tf.memory().numTensors;
        const fused = groupNormWebGPU(x, norm.weight.value, norm.bias.value, groups, 1e-6, silu);
        assert.equal(tf.memory().numTensors, before + 1, "one tensor out, nothing else kept");
        assert.deepEqual(fused.shape, shape);
        setWgslKernels(false);
        const composed = norm.forward(x, silu);
        setWgslKernels(true);
        const viaLayer = norm.forward(x, silu);
        const ref = groupNormReference(
          xs,
          [shape[0]!, n / (shape[0]! * c), c],
          gs,
          bs,
          groups,
          1e-6,
          silu,
        );
        const label = `GroupNorm ${shape} / ${groups}${silu ? " + SiLU" : ""}`;
        const [f, cmp, layer] = [await fused.data(), await composed.data(), await viaLayer.data()];
        assertClose(f, ref, 1e-5, `${label} vs float64`);
        assertClose(f, cmp, 1e-5, `${label} vs composed`);
        assert.deepEqual(layer, f, `${label}: GroupNorm.forward runs the kernel`);
        tf.dispose([x, fused, composed, viaLayer]);
        norm.dispose();
      }
    }),
});

interface AttentionCase {
  batch: number;
  heads: number;
  nq: number;
  nk: number;
  d: number;
  mask?: boolean;
  options?: Pick<AttentionProgramOptions, "rowsPerThread" | "stageKeys">;
}

const ATTENTION_CASES: AttentionCase[] = [
  { batch: 1, heads: 1, nq: 1, nk: 1, d: 8 },
  { batch: 2, heads: 3, nq: 70, nk: 77, d: 40 }, // cross-attention, SD's first-level head
  { batch: 1, heads: 2, nq: 130, nk: 33, d: 80 }, // > one query tile, d = 80
  { batch: 2, heads: 2, nq: 100, nk: 100, d: 64, mask: true }, // causal mask (CLIP)
  { batch: 1, heads: 2, nq: 50, nk: 45, d: 6 }, // d not a multiple of 4
  { batch: 1, heads: 1, nq: 65, nk: 20, d: 160 },
  { batch: 1, heads: 2, nq: 300, nk: 300, d: 40, options: { rowsPerThread: 4 } },
  { batch: 2, heads: 2, nq: 70, nk: 77, d: 8, options: { stageKeys: true } }, // 3 key tiles, last partial
  {
    batch: 1,
    heads: 3,
    nq: 40,
    nk: 50,
    d: 6,
    mask: true,
    options: { stageKeys: true, rowsPerThread: 1 },
  },
];

Deno.test({
  name: "webgpu kernels: attention matches the composed ops and a float64 reference",
  ignore: SKIP_WEBGPU,
  fn: () =>
    onKernelsWebGPU(async () => {
      for (const [i, c] of ATTENTION_CASES.entries()) {
        const { batch, heads, nq, nk, d } = c;
        const qs = values(batch * nq * heads * d, 7 + i, 2);
        const ks = values(batch * nk * heads * d, 17 + i, 2);
        const vs = values(batch * nk * heads * d, 27 + i);
        const q = tf.tensor2d(qs, [batch * nq, heads * d]);
        const k = tf.tensor2d(ks, [batch * nk, heads * d]);
        const v = tf.tensor2d(vs, [batch * nk, heads * d]);
        const mask = c.mask ? causalMask(nq, nk) : undefined;
        const scale = 1 / Math.sqrt(d);
        const before = tf.memory().numTensors;
        const fused = attentionWebGPU(q, k, v, batch, heads, scale, mask, c.options);
        assert.equal(tf.memory().numTensors, before + 1, "one tensor out, nothing else kept");
        setWgslKernels(false);
        const composed = multiHeadAttention(q, k, v, batch, heads, scale, undefined, mask);
        setWgslKernels(true);
        const ref = attentionReference(
          qs,
          ks,
          vs,
          batch,
          heads,
          nq,
          nk,
          d,
          mask ? await mask.data() as Float32Array : undefined,
        );
        const label = `attention ${JSON.stringify(c)}`;
        const f = await fused.data();
        assertClose(f, ref, 1e-5, `${label} vs float64`);
        assertClose(f, await composed.data(), 1e-5, `${label} vs composed`);
        if (!c.options) {
          const viaLayer = multiHeadAttention(q, k, v, batch, heads, scale, undefined, mask);
          assert.deepEqual(
            await viaLayer.data(),
            f,
            `${label}: multiHeadAttention runs the kernel`,
          );
          viaLayer.dispose();
        }
        tf.dispose([q, k, v, fused, composed, mask]);
      }
    }),
});

Deno.test({
  name: "webgpu kernels: the layers use them on webgpu only, and the switch turns them off",
  ignore: SKIP_WEBGPU,
  fn: async () => {
    assert.equal(tf.getBackend(), TEST_BACKEND);
    setWgslKernels(true);
    assert.equal(wgslKernelsActive(), TEST_BACKEND === "webgpu");
    setWgslKernels(undefined);
    assert.equal(wgslKernelsEnabled(), Deno.env.get("DIFFUSERS_WGSL") !== "0");
    await onKernelsWebGPU(async () => {
      const norm = new GroupNorm(4, 16).initialize(0);
      const x = tf.randomNormal([1, 4, 4, 16]);
      const q = tf.randomNormal([32, 16]) as tf.Tensor2D;
      const kernels = async (): Promise<string[]> => {
        const info = await tf.profile(() => {
          tf.dispose([norm.forward(x, true), multiHeadAttention(q, q, q, 2, 2, 0.25)]);
        });
        return info.kernelNames;
      };
      setWgslKernels(true);
      assert(wgslKernelsActive());
      const on = await kernels();
      setWgslKernels(false);
      assert(!wgslKernelsActive());
      const off = await kernels();
      for (const op of ["AvgPool", "Softmax", "BatchMatMul"]) {
        assert(!on.includes(op), `${op} runs with the kernels on: ${on}`);
        assert(off.includes(op), `${op} missing with the kernels off: ${off}`);
      }
      tf.dispose([x, q]);
      norm.dispose();
    });
  },
});

Deno.test({
  name:
    "webgpu kernels: the SD-family UNet2DConditionModel and CLIP fixtures still match on webgpu",
  ignore: SKIP_WEBGPU,
  fn: () =>
    onKernelsWebGPU(async () => {
      setWgslKernels(true);
      const dir = `${FIXTURES_DIR}/models/unet2d_cond_sd`;
      const io = await readTensors(`${dir}/io.safetensors`);
      const get = (name: string): tf.Tensor => {
        const t = io.tensors.get(name)!;
        return tf.tensor(toFloat32(t), t.shape as number[]);
      };
      const unet = await UNet2DConditionModel.fromPretrained(dir);
      const before = tf.memory().numTensors;
      const sample = tf.tidy(() => tf.transpose(get("input.sample"), [0, 2, 3, 1])) as tf.Tensor4D;
      const context = get("input.encoder_hidden_states") as tf.Tensor3D;
      const y = unet.forward(sample, 500, context);
      const out = tf.transpose(y, [0, 3, 1, 2]);
      const err = relError(await out.data(), toFloat32(io.tensors.get("output.sample")!));
      console.log(`sd UNet fixture on webgpu with the WGSL kernels: ${err.toExponential(2)}`);
      assert(err <= 1e-4, `UNet relative error ${err}`);
      tf.dispose([sample, context, y, out]);
      assert.equal(tf.memory().numTensors, before, "no tensor leaked by the UNet forward");
      unet.dispose();

      const clipDir = `${FIXTURES_DIR}/models/clip_text`;
      const clipIO = await readTensors(`${clipDir}/io.safetensors`);
      const idsT = clipIO.tensors.get("input.input_ids")!;
      const flat = Array.from(toInt32(idsT));
      const width = idsT.shape[1]!;
      const ids = Array.from({ length: idsT.shape[0]! }, (_, r) =>
        flat.slice(r * width, (r + 1) * width));
      const te = await CLIPTextModel.fromPretrained(clipDir);
      const res = te.forward(ids);
      assertClose(
        await res.lastHiddenState.data(),
        toFloat32(clipIO.tensors.get("output.last_hidden_state")!),
        1e-4,
        "CLIP last_hidden_state on webgpu",
      );
      tf.dispose([res.lastHiddenState, res.pooledOutput]);
      te.dispose();
    }),
});

testShutdownWebGPU();
