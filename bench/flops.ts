/**
 * Counts a model call's floating-point operations from the architecture,
 * per layer type, by watching one real call: every module of the tree gets
 * a temporary wrapper around its `forward` that reads the input and output
 * shapes, and the wrappers are removed afterwards. The count is the
 * architecture's, whatever algorithm runs (a Winograd conv counts as the
 * direct conv it replaces), so achieved GFLOP/s can be compared across
 * algorithms and with PyTorch.
 *
 * Conventions (a multiply-add is 2 FLOPs):
 * - `conv3x3` / `conv1x1` (any other kernel counts under `conv`): 2·B·H'·W'·Cin·Cout·k²;
 * - `linear`: 2·rows·in·out;
 * - `attention`: the score and value matmuls, 4·B·Nq·Nk·D (D = all heads'
 *   width; softmax not counted), for modules with `to_q`/`to_k` (diffusers)
 *   or `q_proj`/`k_proj` (CLIP, LDMBert);
 * - `norm`: GroupNorm and LayerNorm, 8 per element (statistics, normalise,
 *   affine).
 * Biases, activations, residual adds, resampling and embeddings are not
 * counted: together they are well under 1% of a UNet step.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Conv2d } from "../models/layers/conv2d.ts";
 * import { countFlops } from "./flops.ts";
 * const conv = new Conv2d(8, 8, 3, { padding: 1 }).initialize(0);
 * const { flops } = countFlops(conv, () => conv.forward(tf.zeros([1, 4, 4, 8])));
 * console.log(flops.conv3x3); // 2·16·8·8·9 = 18432
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import type { Module } from "../models/layers/module.ts";
import { Conv2d } from "../models/layers/conv2d.ts";
import { Linear } from "../models/layers/linear.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import { LayerNorm } from "../models/layers/layer_norm.ts";

/** FLOPs by layer type. */
export interface FlopCount {
  /** 3×3 convolutions. */
  conv3x3: number;
  /** 1×1 convolutions. */
  conv1x1: number;
  /** Convolutions with other kernels. */
  conv: number;
  /** Fully connected layers (attention projections included). */
  linear: number;
  /** Attention score and value matmuls. */
  attention: number;
  /** Group and layer norms. */
  norm: number;
}

/** What {@link countFlops} returns: the call's result and its FLOPs. */
export interface CountedCall<T> {
  /** What `run` returned. */
  result: T;
  /** FLOPs by layer type. */
  flops: FlopCount;
}

/**
 * Sum of every type.
 *
 * @example
 * ```ts
 * import { totalFlops } from "./flops.ts";
 * totalFlops({ conv3x3: 2, conv1x1: 0, conv: 0, linear: 1, attention: 0, norm: 0 }); // 3
 * ```
 */
export function totalFlops(f: FlopCount): number {
  return f.conv3x3 + f.conv1x1 + f.conv + f.linear + f.attention + f.norm;
}

type Forward = (...args: unknown[]) => unknown;

interface AttentionLike {
  to_q?: Linear;
  q_proj?: Linear;
  to_k?: Linear;
  k_proj?: Linear;
}

function shapeOf(v: unknown): number[] | null {
  return v instanceof tf.Tensor ? v.shape : null;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Score + value matmul FLOPs of one attention call, from its inputs. */
function attentionFlops(module: AttentionLike, args: unknown[]): number {
  const q = module.to_q ?? module.q_proj;
  const x = shapeOf(args[0]);
  if (!q || !x) return 0;
  const width = q.weight.torchShape[0]!;
  if (x.length === 4) { // [B, H, W, C], self-attention over pixels
    const n = x[1]! * x[2]!;
    return 4 * x[0]! * n * n * width;
  }
  if (x.length === 3) { // [B, N, C], keys from the context when given
    const keys = shapeOf(args[1])?.[1] ?? x[1]!;
    return 4 * x[0]! * x[1]! * keys * width;
  }
  if (x.length === 2 && typeof args[1] === "number") { // [B·T, C] with the batch given
    const t = x[0]! / args[1];
    return 4 * args[1] * t * t * width;
  }
  return 0;
}

/** FLOPs of one module call (its own work, not its children's), and its type. */
function ownFlops(
  module: Module,
  args: unknown[],
  out: unknown,
): [keyof FlopCount, number] | null {
  if (module instanceof Conv2d) {
    const [o, i, k] = module.weight.torchShape as number[];
    const y = shapeOf(out);
    if (!y) return null;
    const kind = k === 3 ? "conv3x3" : k === 1 ? "conv1x1" : "conv";
    return [kind, 2 * y[0]! * y[1]! * y[2]! * o! * i! * k! * k!];
  }
  if (module instanceof Linear) {
    const x = shapeOf(args[0]);
    const [o, i] = module.weight.torchShape as number[];
    return x ? ["linear", 2 * (product(x) / i!) * i! * o!] : null;
  }
  if (module instanceof GroupNorm || module instanceof LayerNorm) {
    const x = shapeOf(args[0]);
    return x ? ["norm", 8 * product(x)] : null;
  }
  const a = module as unknown as AttentionLike;
  if ((a.to_q && a.to_k) || (a.q_proj && a.k_proj)) {
    return ["attention", attentionFlops(a, args)];
  }
  return null;
}

/**
 * Runs `run` once with every module of `root` watched, and returns its
 * result with the FLOPs by type.
 *
 * @example
 * ```ts
 * // const { result, flops } = countFlops(unet, () => unet.forward(sample, 500));
 * ```
 */
export function countFlops<T>(root: Module, run: () => T): CountedCall<T> {
  const flops: FlopCount = { conv3x3: 0, conv1x1: 0, conv: 0, linear: 0, attention: 0, norm: 0 };
  const watched: Module[] = [];
  for (const [, module] of root.namedModules()) {
    const original = (module as unknown as { forward?: Forward }).forward;
    if (typeof original !== "function") continue;
    Object.defineProperty(module, "forward", {
      configurable: true,
      writable: true,
      value: (...args: unknown[]): unknown => {
        const out = original.apply(module, args);
        const counted = ownFlops(module, args, out);
        if (counted) flops[counted[0]] += counted[1];
        return out;
      },
    });
    watched.push(module);
  }
  try {
    return { result: run(), flops };
  } finally {
    for (const module of watched) delete (module as unknown as { forward?: Forward }).forward;
  }
}
