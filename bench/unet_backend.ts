/**
 * UNet2DModel on one backend, as a plain script (for machines where
 * `deno bench` is not the right tool, e.g. a borrowed GPU box): checks the
 * fixture UNet against PyTorch's output on that backend, then times the
 * full-size google/ddpm-cat-256 forward (batch 1, 256², random weights),
 * median of `--runs`, after one warm-up. Prints one JSON line.
 *
 * ```sh
 * deno run -A bench/unet_backend.ts --backend webgpu --shared ../shared --runs 5
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BackendName, describeAdapter, ready, tf } from "../lib/backend.ts";
import { parseConfigJson } from "../lib/config.ts";
import { parseSafetensors, toFloat32 } from "../lib/weights/safetensors.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { initValues } from "../models/layers/init.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "webgpu" },
    shared: { type: "string", default: new URL("../../shared", import.meta.url).pathname },
    runs: { type: "string", default: "3" },
    size: { type: "string", default: "256" },
  },
});
const backend = await ready(values.backend as BackendName);
const adapter = await describeAdapter();

// Correctness: the fixture UNet against PyTorch's recorded output.
const fixture = `${values.shared}/fixtures/pipelines/ddpm_tiny`;
const io = parseSafetensors(await Deno.readFile(`${fixture}/unet_io.safetensors`));
const unet = await UNet2DModel.fromPretrained(`${fixture}/unet`);
const sample = tf.tidy(() =>
  tf.transpose(tf.tensor4d(toFloat32(io.tensors.get("sample")!), [2, 3, 32, 32]), [0, 2, 3, 1])
) as tf.Tensor4D;
const out = tf.tidy(() => tf.transpose(unet.forward(sample, [10, 500]), [0, 3, 1, 2]));
const ours = await out.data();
const ref = toFloat32(io.tensors.get("output")!);
let diff = 0;
let scale = 0;
for (let i = 0; i < ref.length; i++) {
  diff = Math.max(diff, Math.abs(ours[i]! - ref[i]!));
  scale = Math.max(scale, Math.abs(ref[i]!));
}
tf.dispose([sample, out]);
unet.dispose();

// Speed: the full-size cat-256 UNet.
const size = Number(values.size);
const config = parseConfigJson(
  await Deno.readTextFile(`${values.shared}/configs/google__ddpm-cat-256/config.json`),
);
const big = UNet2DModel.fromConfig(config);
const x = tf.tensor4d(initValues({ kind: "normal", std: 1 }, size * size * 3, 1), [
  1,
  size,
  size,
  3,
]);
const time = async () => {
  const t0 = performance.now();
  const y = big.forward(x, 500);
  await y.data();
  y.dispose();
  return performance.now() - t0;
};
const warmupMs = await time();
const runs: number[] = [];
for (let i = 0; i < Number(values.runs); i++) runs.push(await time());
runs.sort((a, b) => a - b);
console.log(JSON.stringify({
  backend,
  adapter: adapter.description,
  softwareAdapter: adapter.software,
  fixtureRelError: diff / scale,
  catUNetParams: big.parameterCount(),
  size,
  warmupMs: Math.round(warmupMs),
  medianMs: Math.round(runs[Math.floor(runs.length / 2)]!),
  runsMs: runs.map(Math.round),
  memory: tf.memory(),
}));
