/**
 * The WebAssembly SIMD Winograd transforms and GroupNorm passes (source:
 * `assembly/transforms.ts`, which re-exports `assembly/group_norm.ts`,
 * AssemblyScript; bytes: `wasm_bytes.ts`, made by
 * `deno task build:wasm`), instantiated on tfjs-wasm's own
 * `WebAssembly.Memory`: the module imports that memory, has no data
 * segments, allocator or memory of its own, and reads and writes only the
 * heap addresses it is given (tfjs buffers' `memoryOffset`s), so nothing is
 * copied in or out. A shared memory (tfjs-wasm's threaded build) gets the
 * variant compiled for shared memory.
 *
 * @example
 * ```ts
 * import { simdTransformsFor } from "./simd_transforms.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const simd = simdTransformsFor(memory); // null where WebAssembly SIMD is missing
 * console.log(simd !== null);
 * ```
 *
 * @module
 */

import { WINOGRAD_WASM_BASE64, WINOGRAD_WASM_SHARED_BASE64 } from "./wasm_bytes.ts";

/**
 * Input transform of one row of tiles: V_k[t, ch] = (Bᵀ d B)_k for the
 * tilesW tiles t0.. of tile row `ty` of image `b` of the unpadded NHWC input
 * at byte address `x` (zero padding 1 implied). `table` holds the byte
 * addresses of the (m+2)² V_k buffers as u32; `scratch` is
 * {@link SIMD_SCRATCH_BYTES} − {@link SIMD_TABLE_BYTES} bytes of working
 * space. `c` must be a multiple of 4.
 */
export type SimdInputRow = (
  x: number,
  h: number,
  w: number,
  c: number,
  tilesW: number,
  b: number,
  ty: number,
  t0: number,
  table: number,
  scratch: number,
) => void;

/**
 * Output transform of one row of tiles: y = Aᵀ M A + bias, cropped to h × w,
 * into the NHWC output at byte address `y`; `bias` is the byte address of
 * `co` floats, or 0 for none; `table` holds the addresses of the M_k buffers.
 * `co` must be a multiple of 4.
 */
export type SimdOutputRow = (
  y: number,
  bias: number,
  h: number,
  w: number,
  co: number,
  tilesW: number,
  b: number,
  ty: number,
  t0: number,
  table: number,
  scratch: number,
) => void;

/**
 * Adds, per channel, Σ x (or, with `mean` the address of c floats, Σ (x −
 * mean)²) over `pixels` rows of `c` floats at `x` into the float64 [c] at
 * `total` (8-byte aligned), summing blocks of 16 rows in float32 first in the
 * `c` floats at `acc`. `c` must be a multiple of 4.
 */
export type SimdGroupNormSums = (
  x: number,
  pixels: number,
  c: number,
  mean: number,
  acc: number,
  total: number,
) => void;

/**
 * y = (x − mean)·scale + beta over `pixels` rows of `c` floats (mean, scale,
 * beta: addresses of c floats), then SiLU where `silu` is 1. `c` must be a
 * multiple of 4.
 */
export type SimdGroupNormApply = (
  x: number,
  y: number,
  pixels: number,
  c: number,
  mean: number,
  scale: number,
  beta: number,
  silu: number,
) => void;

/** The module's exports, bound to one memory. */
export interface SimdTransforms {
  /** GroupNorm statistics pass (see {@link SimdGroupNormSums}). */
  groupNormSums: SimdGroupNormSums;
  /** GroupNorm normalise (+ SiLU) pass (see {@link SimdGroupNormApply}). */
  groupNormApply: SimdGroupNormApply;
  /** F(2,3) input transform of one tile row. */
  inputRow2: SimdInputRow;
  /** F(4,3) input transform of one tile row. */
  inputRow4: SimdInputRow;
  /** F(2,3) output transform of one tile row. */
  outputRow2: SimdOutputRow;
  /** F(4,3) output transform of one tile row. */
  outputRow4: SimdOutputRow;
}

/** Bytes of the address table at the start of the working memory: 36 u32. */
export const SIMD_TABLE_BYTES = 36 * 4;
/**
 * Bytes of working memory the transforms need per call: the table, then
 * 72 + 36·32 vectors of scratch (two tiles, and one block of up to 128
 * channels for each of F(4,3)'s 36 positions).
 */
export const SIMD_SCRATCH_BYTES = SIMD_TABLE_BYTES + (72 + 36 * 32) * 16;

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Compiled modules (plain, shared); null where this engine rejects the bytes (no SIMD). */
const modules = new Map<boolean, WebAssembly.Module | null>();
const instances = new WeakMap<WebAssembly.Memory, SimdTransforms | null>();

function compiled(shared: boolean): WebAssembly.Module | null {
  if (!modules.has(shared)) {
    const bytes = decode(shared ? WINOGRAD_WASM_SHARED_BASE64 : WINOGRAD_WASM_BASE64);
    modules.set(shared, WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null);
  }
  return modules.get(shared)!;
}

/**
 * The SIMD transforms working on `memory`, instantiated once per memory;
 * null when this engine has no WebAssembly SIMD (the bytes do not validate).
 *
 * @example
 * ```ts
 * import { simdTransformsFor } from "./simd_transforms.ts";
 * const simd = simdTransformsFor(new WebAssembly.Memory({ initial: 1 }));
 * console.log(typeof simd?.inputRow4); // "function"
 * ```
 */
export function simdTransformsFor(memory: WebAssembly.Memory): SimdTransforms | null {
  if (!instances.has(memory)) {
    const shared = typeof SharedArrayBuffer !== "undefined" &&
      memory.buffer instanceof SharedArrayBuffer;
    const module = compiled(shared);
    const instance = module && new WebAssembly.Instance(module, { env: { memory } });
    instances.set(memory, instance && (instance.exports as unknown as SimdTransforms));
  }
  return instances.get(memory)!;
}

/**
 * The `WebAssembly.Memory` of a tfjs-wasm backend's Emscripten module
 * (`wasm.asm.memory` in tfjs-wasm 4.22's builds, `wasm.wasmMemory` in its
 * threaded build, `wasm.wasmExports.memory` in newer Emscripten), or null.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../../lib/backend.ts";
 * import { backendMemory } from "./simd_transforms.ts";
 * await ready("wasm");
 * console.log(backendMemory(tf.backend()) instanceof WebAssembly.Memory); // true
 * ```
 */
export function backendMemory(backend: unknown): WebAssembly.Memory | null {
  const wasm = (backend as { wasm?: Record<string, unknown> }).wasm;
  const candidates = [
    (wasm?.asm as { memory?: unknown } | undefined)?.memory,
    wasm?.wasmMemory,
    (wasm?.wasmExports as { memory?: unknown } | undefined)?.memory,
  ];
  for (const m of candidates) if (m instanceof WebAssembly.Memory) return m;
  return null;
}
