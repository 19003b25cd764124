/**
 * The WGSL kernels (models/layers/webgpu/) against the composed tfjs ops
 * they replace, on the WebGPU backend, at Stable Diffusion's shapes:
 * GroupNorm + SiLU on SD's first UNet level (1×64×64×320, 32 groups) and
 * a low-resolution level (1×8×8×1280), and attention with SD's first-level
 * heads (d = 40): self-attention over 4096 tokens for one head, over 1024
 * tokens for 16 (batch·heads), cross-attention 4096 → 77 tokens for 16, and
 * the kernel alone on SD's whole first-level self-attention (2×8 heads over
 * 4096 tokens; its composed form runs 16 64-MiB score blocks, minutes on a
 * software adapter). Each group's baseline is the composed ops (kernels
 * switched off with setWgslKernels(false)). A call ends when one value of
 * its output has been read back, so the time is the GPU work, not a 5-20 MB
 * download. The adapter is printed first: report it next to the numbers
 * (bench/WEBGPU_KERNELS.md).
 *
 * Run: `deno bench -A bench/webgpu_kernels_bench.ts`
 *
 * @module
 */

import { describeAdapter, ready, tf } from "../lib/backend.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import { multiHeadAttention } from "../models/layers/attention.ts";
import { setWgslKernels } from "../models/layers/webgpu/wgsl_kernels.ts";

await ready("webgpu");
const adapter = await describeAdapter();
console.log(`WebGPU adapter: ${adapter.description}${adapter.software ? " (software)" : ""}`);

/** Waits until `y` is computed by reading back its last value; disposes `y`. */
async function settle(y: tf.Tensor): Promise<void> {
  const last = tf.tidy(() => tf.slice(tf.reshape(y, [-1]), [y.size - 1], [1]));
  await last.data();
  tf.dispose([y, last]);
}

/** Runs `f` with the kernels on or off, then waits for its result. */
async function timed(kernels: boolean, f: () => tf.Tensor): Promise<void> {
  setWgslKernels(kernels);
  try {
    await settle(f());
  } finally {
    setWgslKernels(undefined);
  }
}

function groupNormCase(shape: [number, number, number, number], groups: number): void {
  const norm = new GroupNorm(groups, shape[3], 1e-5).initialize(0);
  const x = tf.randomNormal(shape, 0, 1, "float32", 1);
  const group = `GroupNorm+SiLU ${shape.join("x")}, ${groups} groups`;
  for (const kernels of [false, true]) {
    Deno.bench({
      name: kernels ? "WGSL kernel" : "composed tfjs ops",
      group,
      baseline: !kernels,
      warmup: 2,
      n: 10,
      fn: () => timed(kernels, () => norm.forward(x, true)),
    });
  }
}

function attentionCase(
  batch: number,
  heads: number,
  nq: number,
  nk: number,
  d: number,
  label: string,
  withBaseline = true,
): void {
  const q = tf.randomNormal([batch * nq, heads * d], 0, 1, "float32", 2) as tf.Tensor2D;
  const k = tf.randomNormal([batch * nk, heads * d], 0, 1, "float32", 3) as tf.Tensor2D;
  const v = tf.randomNormal([batch * nk, heads * d], 0, 1, "float32", 4) as tf.Tensor2D;
  const scale = 1 / Math.sqrt(d);
  const group = `attention ${label}: ${batch * heads} (batch·heads), ${nq} → ${nk} tokens, d ${d}`;
  for (const kernels of withBaseline ? [false, true] : [true]) {
    Deno.bench({
      name: kernels ? "WGSL kernel" : "composed tfjs ops",
      group,
      baseline: !kernels,
      warmup: 1,
      n: withBaseline ? 5 : 1,
      fn: () => timed(kernels, () => multiHeadAttention(q, k, v, batch, heads, scale)),
    });
  }
}

groupNormCase([1, 64, 64, 320], 32);
groupNormCase([1, 8, 8, 1280], 32);
attentionCase(1, 1, 4096, 4096, 40, "SD level 0, one head");
attentionCase(2, 8, 1024, 1024, 40, "16 heads, 1024 tokens");
attentionCase(2, 8, 4096, 77, 40, "SD level 0 cross");
attentionCase(2, 8, 4096, 4096, 40, "SD level 0, all heads, kernel only", false);
