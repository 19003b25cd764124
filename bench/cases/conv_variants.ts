/**
 * Report case: one 3×3 stride-1 conv layer (bias fused) at the shapes of the
 * cat-256 UNet, SD's UNet and SD's VAE decoder, on WASM: XNNPACK's direct
 * convolution vs Winograd F(2,3) and F(4,3) (models/layers/winograd.ts),
 * interleaved, with each variant's max error relative to the direct
 * output's largest value; for the cat-256 shapes also F(4,3) with the
 * JavaScript transforms instead of the WebAssembly SIMD ones. Prints its
 * rows as JSON on the last line (see bench/report.ts).
 *
 * Run: `deno run -A bench/cases/conv_variants.ts [reps]`
 *
 * @module
 */

import { ready, tf } from "../../lib/backend.ts";
import { Conv2d } from "../../models/layers/conv2d.ts";
import { type ConvAlgorithm, setConvAlgorithm } from "../../models/layers/conv_algorithm.ts";
import { setWinogradSimd } from "../../models/layers/winograd.ts";
import { interleave } from "../measure.ts";
import type { Row } from "../results_md.ts";

await ready("wasm");
const reps = Number(Deno.args[0] ?? 3);

// [label, side, in, out]
const SHAPES: [string, number, number, number][] = [
  ["cat-256 level 0", 256, 128, 128],
  ["cat-256 up level 0", 256, 256, 128],
  ["cat-256 level 2", 64, 256, 256],
  ["cat-256 level 4", 16, 512, 512],
  ["SD UNet level 0", 64, 320, 320],
  ["SD UNet level 1", 32, 640, 640],
  ["SD UNet level 2", 16, 1280, 1280],
  ["SD UNet level 3", 8, 1280, 1280],
  ["SD VAE decoder 512²", 512, 128, 128],
  ["SD VAE decoder 256²", 256, 256, 256],
  ["SD VAE decoder 128²", 128, 512, 512],
];
// [algorithm, SIMD transforms, name]
const ALGORITHMS: [ConvAlgorithm, boolean, string][] = [
  ["direct", true, "direct (XNNPACK)"],
  ["winograd2", true, "Winograd F(2,3)"],
  ["winograd4", true, "Winograd F(4,3)"],
];
const JS_TRANSFORMS: [ConvAlgorithm, boolean, string] = [
  "winograd4",
  false,
  "Winograd F(4,3), JS transforms",
];

const rows: Row[] = [];
for (const [label, side, ci, co] of SHAPES) {
  const variants = label.startsWith("cat-256") ? [...ALGORITHMS, JS_TRANSFORMS] : ALGORITHMS;
  // One layer per variant (same seed, same weights): a layer keeps one Winograd transform.
  const convs = variants.map(() => new Conv2d(ci, co, 3, { padding: 1 }).initialize(1));
  const x = tf.randomNormal([1, side, side, ci], 0, 1, "float32", 2) as tf.Tensor4D;
  const outputs = new Map<number, Float32Array>();
  const timings = await interleave(
    variants.map(([algorithm, simd, name], i) => ({
      name: `${label}: ${side}²×${ci}→${co}, ${name}`,
      run: () => {
        setConvAlgorithm(algorithm);
        setWinogradSimd(simd);
        const y = convs[i]!.forward(x);
        if (!outputs.has(i)) outputs.set(i, y.dataSync() as Float32Array);
        y.dispose();
      },
    })),
    reps,
  );
  const direct = outputs.get(0)!;
  let ref = 0;
  for (const v of direct) ref = Math.max(ref, Math.abs(v));
  timings.forEach((t, i) => {
    const y = outputs.get(i)!;
    let diff = 0;
    for (let k = 0; k < y.length; k++) diff = Math.max(diff, Math.abs(y[k]! - direct[k]!));
    rows.push({
      ...t,
      flops: 2 * side * side * ci * co * 9,
      note: i === 0
        ? "reference"
        : `${(timings[0]!.cpuMs / t.cpuMs).toFixed(2)}× (CPU) vs direct; max rel. error ${
          (diff / ref).toExponential(1)
        }`,
    });
  });
  setConvAlgorithm("auto");
  setWinogradSimd(true);
  for (const conv of convs) conv.dispose();
  x.dispose();
}
console.log(JSON.stringify(rows));
