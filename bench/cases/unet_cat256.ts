/**
 * Report case: one forward of the full-size google/ddpm-cat-256
 * UNet2DModel (batch 1, 256², random weights) on WASM, direct convolution
 * vs the Winograd fast path (`auto`), interleaved. Prints its rows as JSON
 * on the last line (see bench/report.ts).
 *
 * Run: `deno run -A bench/cases/unet_cat256.ts [reps]`
 *
 * @module
 */

import { ready, tf } from "../../lib/backend.ts";
import { parseConfigJson } from "../../lib/config.ts";
import { UNet2DModel } from "../../models/unet_2d.ts";
import { initValues } from "../../models/layers/init.ts";
import { type ConvAlgorithm, setConvAlgorithm } from "../../models/layers/conv_algorithm.ts";
import { countFlops, totalFlops } from "../flops.ts";
import { interleave, wasmHeapMiB } from "../measure.ts";
import type { Row } from "../results_md.ts";

await ready("wasm");
const reps = Number(Deno.args[0] ?? 3);
const config = new URL("../../../shared/configs/google__ddpm-cat-256/config.json", import.meta.url);
const unet = UNet2DModel.fromConfig(parseConfigJson(await Deno.readTextFile(config)));
const x = tf.tensor4d(initValues({ kind: "normal", std: 1 }, 256 * 256 * 3, 1), [1, 256, 256, 3]);

const outputs = new Map<ConvAlgorithm, Float32Array>();
function step(algorithm: ConvAlgorithm): () => void {
  return () => {
    setConvAlgorithm(algorithm);
    const y = unet.forward(x, 500);
    outputs.set(algorithm, y.dataSync() as Float32Array);
    y.dispose();
  };
}

const { result, flops } = countFlops(unet, () => unet.forward(x, 500));
result.dispose();
const [direct, auto] = await interleave([
  { name: "direct", run: step("direct") },
  { name: "auto", run: step("auto") },
], reps);
const a = outputs.get("auto")!;
const d = outputs.get("direct")!;
let diff = 0;
let ref = 0;
for (let i = 0; i < d.length; i++) {
  diff = Math.max(diff, Math.abs(a[i]! - d[i]!));
  ref = Math.max(ref, Math.abs(d[i]!));
}
const name = "UNet2DModel google/ddpm-cat-256, batch 1, 256²";
const rows: Row[] = [
  { ...direct, name: `${name}, direct conv`, flops: totalFlops(flops), torchMs: 2250 },
  {
    ...auto,
    name: `${name}, Winograd F(4,3) (auto, default)`,
    flops: totalFlops(flops),
    torchMs: 2250,
    heapMiB: wasmHeapMiB(),
    note: `${(direct!.wallMs / auto!.wallMs).toFixed(2)}× faster than direct (CPU: ${
      (direct!.cpuMs / auto!.cpuMs).toFixed(2)
    }×); output within ${(diff / ref).toExponential(1)} of direct; FLOPs: conv3x3 ${
      (flops.conv3x3 / 1e9).toFixed(0)
    } G, conv1x1 ${(flops.conv1x1 / 1e9).toFixed(1)} G, linear ${
      (flops.linear / 1e9).toFixed(1)
    } G, attention ${(flops.attention / 1e9).toFixed(2)} G, norm ${
      (flops.norm / 1e9).toFixed(1)
    } G`,
  },
];
console.log(JSON.stringify(rows));
