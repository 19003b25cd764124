/**
 * Random initialisation of parameters, with PyTorch's default
 * distributions: `nn.Conv2d` / `nn.Linear` weights use kaiming-uniform with
 * a = √5, which is uniform(±1/√fan_in), and so do their biases; norms start
 * at weight 1, bias 0; `nn.Embedding` is normal(0, 1).
 *
 * The values are not PyTorch's (its generator order is not reproduced);
 * random weights serve benchmarks and shape tests. They come from a seeded
 * mulberry32 stream written in plain JS: `tf.randomUniform` draws about
 * 70 ns per value here, which is 8 s for a 114M-parameter UNet, and this
 * takes about 15 ns.
 *
 * @example
 * ```ts
 * import { initValues } from "./init.ts";
 * const w = initValues({ kind: "uniform", bound: 0.5 }, 4, 7); // 4 values in [-0.5, 0.5)
 * ```
 *
 * @module
 */

/** How a parameter is filled when it is created without loaded weights. */
export type ParamInit =
  | { readonly kind: "uniform"; readonly bound: number }
  | { readonly kind: "normal"; readonly std: number }
  | { readonly kind: "constant"; readonly value: number };

/**
 * The PyTorch default for a conv / linear weight or bias: uniform(±1/√fanIn).
 *
 * @example
 * ```ts
 * import { kaimingUniform } from "./init.ts";
 * console.log(kaimingUniform(3 * 3 * 64)); // { kind: "uniform", bound: 1/24 }
 * ```
 */
export function kaimingUniform(fanIn: number): ParamInit {
  return { kind: "uniform", bound: fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0 };
}

/** mulberry32: a 32-bit state, good statistical quality, a few ns per draw. */
function uniformStream(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let z = Math.imul(s ^ (s >>> 15), s | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) * 2.3283064365386963e-10; // [0, 1)
  };
}

/**
 * `size` values drawn as `init` says, from a stream seeded by `seed`,
 * written to the start of `scratch` when given (a view of it is returned).
 *
 * @example
 * ```ts
 * import { initValues } from "./init.ts";
 * const ones = initValues({ kind: "constant", value: 1 }, 3, 0); // Float32Array [1, 1, 1]
 * ```
 */
export function initValues(
  init: ParamInit,
  size: number,
  seed: number,
  scratch?: Float32Array,
): Float32Array {
  const out = scratch ? scratch.subarray(0, size) : new Float32Array(size);
  if (init.kind === "constant") return out.fill(init.value);
  const next = uniformStream(seed);
  if (init.kind === "uniform") {
    const scale = 2 * init.bound;
    for (let i = 0; i < size; i++) out[i] = next() * scale - init.bound;
    return out;
  }
  // Box-Muller, both outputs used; 1 - u keeps the log argument in (0, 1].
  for (let i = 0; i < size; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next())) * init.std;
    const a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a);
    if (i + 1 < size) out[i + 1] = r * Math.sin(a);
  }
  return out;
}
