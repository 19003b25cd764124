/**
 * Timing for bench/report.ts on a shared, noisy machine: variants are
 * interleaved round by round in one process and summarised by medians of
 * wall time and of this process's CPU time (CPU time is what a call costs
 * when it is not waiting for a core another job holds), with the load
 * average at the time. Also the machine description and the WASM heap's
 * high-water mark (the heap never shrinks, so its size is the peak).
 *
 * @example
 * ```ts
 * import { interleave } from "./measure.ts";
 * const [a] = await interleave([{ name: "noop", run: () => {} }], 3);
 * console.log(a!.wallMs, a!.cpuMs);
 * ```
 *
 * @module
 */

import process from "node:process";
import { tf } from "../lib/tf.ts";

/** One thing to time; `run` does one call (including any readback it needs). */
export interface Variant {
  /** Label. */
  name: string;
  /** One call. */
  run: () => unknown | Promise<unknown>;
}

/** Medians of a variant's timed calls. */
export interface Timing {
  /** The variant's label. */
  name: string;
  /** Median wall-clock ms per call. */
  wallMs: number;
  /** Median CPU ms per call (all threads of this process). */
  cpuMs: number;
  /** Number of timed calls. */
  reps: number;
  /** 1-minute load average when the last call ended. */
  load: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Runs each variant once untimed, then `reps` rounds of one call of each
 * variant in turn; returns medians in the variants' order.
 *
 * @example
 * ```ts
 * // const [direct, winograd] = await interleave([{ name: "direct", run: a }, { name: "winograd", run: b }], 3);
 * ```
 */
export async function interleave(variants: readonly Variant[], reps: number): Promise<Timing[]> {
  for (const v of variants) await v.run();
  const wall = variants.map((): number[] => []);
  const cpu = variants.map((): number[] => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, v] of variants.entries()) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await v.run();
      wall[i]!.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[i]!.push((c.user + c.system) / 1000);
    }
  }
  const load = Deno.loadavg()[0]!;
  return variants.map((v, i) => ({
    name: v.name,
    wallMs: median(wall[i]!),
    cpuMs: median(cpu[i]!),
    reps,
    load,
  }));
}

/**
 * CPU ms used so far by each thread of this process (Linux `/proc`, 10 ms
 * ticks), by thread id: with Workers, shows how the work was shared.
 *
 * @example
 * ```ts
 * import { threadCpuMs } from "./measure.ts";
 * console.log(threadCpuMs().size); // main thread, V8 helpers, workers
 * ```
 */
export function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of Deno.readDirSync("/proc/self/task")) {
    try {
      const stat = Deno.readTextFileSync(`/proc/self/task/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(entry.name, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** What the report says about the machine and software. */
export interface MachineInfo {
  /** CPU model name and logical core count. */
  cpu: string;
  /** tfjs backend in use. */
  backend: string;
  /** WebGPU adapter description, or "none". */
  adapter: string;
  /** Deno, V8 and tfjs versions. */
  versions: string;
  /** ISO date and time. */
  date: string;
  /** Load average (1, 5, 15 min) at the start. */
  load: string;
}

/**
 * Describes this machine (CPU from `/proc/cpuinfo`).
 *
 * @example
 * ```ts
 * // const info = machineInfo("wasm", "none");
 * ```
 */
export function machineInfo(backend: string, adapter: string): MachineInfo {
  let cpu = "unknown";
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    const model = /model name\s*:\s*(.+)/.exec(text)?.[1] ?? "unknown";
    const family = /cpu family\s*:\s*(\d+)/.exec(text)?.[1];
    const flags = /flags\s*:\s*(.+)/.exec(text)?.[1] ?? "";
    const isa = flags.includes("avx512f") ? ", AVX-512" : flags.includes("avx2") ? ", AVX2" : "";
    cpu = `${model}${
      family ? ` (family ${family}${isa})` : ""
    }, ${navigator.hardwareConcurrency} logical cores`;
  } catch {
    cpu = `${navigator.hardwareConcurrency} logical cores`;
  }
  return {
    cpu,
    backend,
    adapter,
    versions: `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, tfjs ${tf.version_core}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    load: Deno.loadavg().map((v) => v.toFixed(2)).join(", "),
  };
}

/**
 * The WASM heap's size in MiB (its high-water mark), or null on other backends.
 *
 * @example
 * ```ts
 * import { wasmHeapMiB } from "./measure.ts";
 * console.log(wasmHeapMiB()); // e.g. 2538 after a cat-256 UNet step
 * ```
 */
export function wasmHeapMiB(): number | null {
  if (tf.getBackend() !== "wasm") return null;
  const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8;
  return heap.length / 2 ** 20;
}
