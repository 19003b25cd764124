/**
 * `deno task bench:report`: runs the report cases in bench/cases/, each in
 * its own process (a fresh WASM heap, so each heap peak is the case's own,
 * and a case that runs out of memory cannot take the others down), and
 * writes bench/RESULTS.md: ms per call, achieved GFLOP/s (bench/flops.ts),
 * WASM heap peak, and PyTorch's reference time with our ratio to it, plus
 * the machine (CPU, backend, adapter, versions, date, load).
 *
 * Options: `--quick` (fewer repetitions, no SD-size UNet or VAE),
 * `--only=<case>[,<case>]` (cases: cat256, ldm-unet, sd-unet, sd-vae,
 * workers, conv, small), `--out=<file>`.
 *
 * Run: `deno run -A bench/report.ts [--quick]`
 *
 * @module
 */

import { describeAdapter, ready } from "../lib/backend.ts";
import { machineInfo } from "./measure.ts";
import { renderResults, type Row, type Section } from "./results_md.ts";

const args = new Set(Deno.args);
const quick = args.has("--quick");
const only = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const out = Deno.args.find((a) => a.startsWith("--out="))?.slice(6) ??
  new URL("./RESULTS.md", import.meta.url).pathname;

/** Runs one case script; its last stdout line is JSON. */
async function runCase(script: string, caseArgs: string[], timeoutS: number): Promise<unknown> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`./cases/${script}`, import.meta.url).pathname, ...caseArgs],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutS * 1000),
  });
  const started = performance.now();
  console.error(`… ${script} ${caseArgs.join(" ")}`);
  try {
    const { success, stdout, stderr } = await command.output();
    const lines = new TextDecoder().decode(stdout).trim().split("\n");
    if (!success) {
      const err = new TextDecoder().decode(stderr).trim().split("\n").slice(-3).join(" ");
      throw new Error(`exited with an error: ${err}`);
    }
    console.error(`  done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return JSON.parse(lines[lines.length - 1]!);
  } catch (e) {
    const reason = (e as Error).name === "AbortError" || (e as Error).name === "TimeoutError"
      ? `timed out after ${timeoutS} s`
      : String((e as Error).message ?? e);
    console.error(`  failed: ${reason}`);
    return { failed: reason };
  }
}

function rowsOf(result: unknown, name: string): Row[] {
  if (Array.isArray(result)) return result as Row[];
  const failed = (result as { failed?: string }).failed;
  return [{ name, note: `skipped: ${failed ?? "no result"}` }];
}

const wanted = (name: string): boolean => !only || only.includes(name);
const reps = quick ? 1 : 3;

await ready("wasm");
const info = machineInfo(
  "wasm (tfjs-backend-wasm, SIMD, 1 thread per process or Worker)",
  (await describeAdapter()).description,
);
const sections: Section[] = [];

const unetRows: Row[] = [];
if (wanted("cat256")) {
  unetRows.push(...rowsOf(await runCase("unet_cat256.ts", [String(reps)], 1200), "cat-256 UNet"));
}
for (
  const [key, label] of [["ldm-unet", "ldm-text2im-large-256 UNet"], ["sd-unet", "SD 1.5 UNet"]]
) {
  if (!wanted(key!)) continue;
  if (quick && key === "sd-unet") {
    unetRows.push({ name: label!, torchMs: 12700, note: "skipped: --quick" });
    continue;
  }
  unetRows.push(...rowsOf(await runCase("latent_models.ts", [key!, "1"], 1500), label!));
}
if (unetRows.length > 0) {
  sections.push({
    title: "UNet steps vs PyTorch (random weights, real sizes)",
    text: [
      "PyTorch: diffusers 0.27.2, torch 1.13 CPU, float32, 2 threads, quiet machine of this class (issue #7).",
      "Ours: one process, one WASM thread. Goal: within 2× of PyTorch; the aim is parity.",
    ],
    rows: unetRows,
  });
}
if (wanted("sd-vae")) {
  sections.push({
    title: "SD VAE decode",
    rows: quick
      ? [{ name: "AutoencoderKL SD 1.5 decode", torchMs: 6700, note: "skipped: --quick" }]
      : rowsOf(await runCase("latent_models.ts", ["sd-vae", "1"], 1500), "SD VAE decode"),
  });
}
if (wanted("workers")) {
  sections.push({
    title: "Two Workers (lib/workers/ParallelModel), batch split across Workers",
    text: [
      "Each Worker runs its own WASM backend with its own copy of the weights. The wall-clock",
      "speedup depends on the other jobs on the machine (see load); the busiest thread's CPU time",
      "is what each call costs when every Worker has a core of its own.",
    ],
    rows: [
      ...rowsOf(await runCase("workers.ts", [String(reps), "cat"], 1200), "cat-256 UNet, workers"),
      ...rowsOf(await runCase("workers.ts", [quick ? "1" : "2", "ldm"], 1800), "ldm UNet, workers"),
      ...(quick ? [] : rowsOf(await runCase("workers.ts", ["1", "sd"], 2400), "SD UNet, workers")),
    ],
  });
}
if (wanted("conv")) {
  sections.push({
    title: "3×3 conv algorithms on WASM (one layer, batch 1)",
    text: [
      "`auto` (the default) uses F(4,3) for maps of 32² and more with ≥32 channels in and out, within a",
      "memory budget; everything else convolves directly. Errors are max |y − y_direct| / max |y_direct|.",
    ],
    rows: rowsOf(await runCase("conv_variants.ts", [String(reps)], 1200), "conv variants"),
  });
}
if (wanted("small")) {
  const small = await runCase("small_models.ts", [String(quick ? 2 : 5)], 1800) as
    & Record<
      string,
      Row[]
    >
    & { failed?: string };
  const titles: [string, string][] = [
    ["textEncoders", "Text encoders (random weights, real sizes)"],
    ["schedulers", "Scheduler step() at 1×4×64×64"],
    ["weights", "Weight loading from safetensors"],
    ["pipelines", "Whole pipelines on the fixture models"],
  ];
  for (const [key, title] of titles) {
    sections.push({ title, rows: small.failed ? rowsOf(small, title) : small[key] ?? [] });
  }
}

const preamble = [
  `Generated by \`deno task bench:report\` (bench/report.ts) on ${info.date}.`,
  "",
  `- CPU: ${info.cpu}`,
  `- Backend: ${info.backend}; WebGPU adapter: ${info.adapter}`,
  `- Software: ${info.versions}`,
  `- Load average at the start: ${info.load}; at the end: ${
    Deno.loadavg().map((v) => v.toFixed(2)).join(", ")
  } (the machine is shared: other jobs ran during the measurement)`,
  "",
  "Each case runs in its own process. Variants of a case are interleaved call by call and",
  "summarised by medians; `CPU/call` is this process's CPU time, which is less sensitive to the",
  "other jobs than wall time. GFLOP are counted from the architecture (bench/flops.ts: convs,",
  "linears, attention matmuls, norms), whatever algorithm runs. `WASM heap` is the heap's",
  "high-water mark (it never shrinks). Ratios to PyTorch use wall time.",
];
await Deno.writeTextFile(
  out,
  renderResults({ title: "Benchmark results", preamble, sections }),
);
console.error(`wrote ${out}`);
