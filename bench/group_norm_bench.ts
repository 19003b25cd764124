/**
 * GroupNorm (+ SiLU) at the cat-256 UNet's largest size, 1×256×256×128
 * (G = 32) and 1×256×256×256, on the WASM backend: the fused WebAssembly
 * SIMD kernel (models/layers/group_norm_simd.ts) against the composed tfjs
 * ops it replaces (`setGroupNormSimd(false)`).
 *
 * Measured here (2 shared vCPUs of an AMD EPYC, load average ~2.6), mean
 * per call, fused vs composed: GroupNorm + SiLU 16.5 vs 29.3 ms (C = 128)
 * and 31.6 vs 53.3 ms (C = 256); GroupNorm alone 5.4 vs 14.3 ms and 13.1 vs
 * 28.4 ms. (The fused SiLU is ~10 ms of the 16.5: tf.sigmoid alone is ~9.5.)
 *
 * Run: `deno bench -A bench/group_norm_bench.ts`
 *
 * @module
 */

import { ready, tf } from "../lib/backend.ts";
import { GroupNorm } from "../models/layers/group_norm.ts";
import { setGroupNormSimd } from "../models/layers/group_norm_simd.ts";

await ready("wasm");

for (const c of [128, 256]) {
  const norm = new GroupNorm(32, c, 1e-6).initialize(0);
  const x = tf.randomNormal([1, 256, 256, c], 0, 1, "float32", 1) as tf.Tensor4D;
  for (const silu of [true, false]) {
    for (const fused of [true, false]) {
      Deno.bench({
        name: `GroupNorm${silu ? " + SiLU" : ""} 1×256×256×${c} ${
          fused ? "fused SIMD" : "composed"
        }`,
        group: `${c}${silu ? " silu" : ""}`,
        baseline: !fused,
        fn: () => {
          const previous = setGroupNormSimd(fused);
          // tfjs-wasm runs kernels synchronously: no download needed (dataSync alone
          // would add ~100 ms of copying 32-64 MB here)
          norm.forward(x, silu).dispose();
          setGroupNormSimd(previous);
        },
      });
    }
  }
}
