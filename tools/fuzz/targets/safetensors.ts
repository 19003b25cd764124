/**
 * Fuzz target: safetensors files, loaded both ways the library reads them
 * (`parseSafetensors` on bytes in memory, and the lazy state-dict loader
 * over a byte source), with every tensor decoded. Mutations: bytes, the
 * 8-byte header length (huge, off by one), and the JSON header (shapes,
 * dtypes, overlapping or out-of-range `data_offsets`, deep nesting, NaN)
 * rewritten with a consistent length prefix.
 *
 * @example
 * ```ts
 * import { safetensorsTarget } from "./safetensors.ts";
 * const seeds = await safetensorsTarget.seeds();
 * await safetensorsTarget.run(seeds[0]!);
 * ```
 *
 * @module
 */

import { parseSafetensors, serializeSafetensors } from "../../../lib/weights/safetensors.ts";
import { decodeTensor, loadStateDict } from "../../../lib/weights/state_dict.ts";
import { memoryWeightFiles } from "../../../lib/weights/weight_files.ts";
import { interestingInt, mutateBytes, writeInt } from "../bytes.ts";
import { mutateJsonText } from "../json.ts";
import type { Rng } from "../rng.ts";
import { FIXTURES_DIR, pickTwo, readAll } from "../seeds.ts";
import { BASE_BUDGET, type FuzzTarget } from "../target.ts";

const FILE = "fuzz.safetensors";

/** Small files with every dtype, a 0-d and an empty tensor, and metadata. */
function craftedSeeds(): Uint8Array[] {
  return [
    serializeSafetensors({
      f32: { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, NaN, -Infinity]) },
      f16: { dtype: "F16", shape: [2], data: new Float32Array([0.5, -1]) },
      bf16: { dtype: "BF16", shape: [1], data: new Uint16Array([0x3f80]) },
      f64: { dtype: "F64", shape: [], data: new Float64Array([Math.PI]) },
      i64: { dtype: "I64", shape: [2], data: new BigInt64Array([49406n, -1n]) },
      i32: { dtype: "I32", shape: [1, 1], data: new Int32Array([7]) },
      i16: { dtype: "I16", shape: [1], data: new Int16Array([-3]) },
      i8: { dtype: "I8", shape: [1], data: new Int8Array([-1]) },
      u8: { dtype: "U8", shape: [3], data: new Uint8Array([0, 1, 255]) },
      bool: { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) },
      empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
    }, { format: "pt" }),
    serializeSafetensors({ w: { dtype: "F32", shape: [1], data: new Float32Array([1]) } }),
  ];
}

/** Splits a file into its JSON header and data, or undefined when the prefix is already broken. */
function split(bytes: Uint8Array): { header: string; data: Uint8Array } | undefined {
  if (bytes.length < 8) return undefined;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8) return undefined;
  return {
    header: new TextDecoder().decode(bytes.subarray(8, 8 + n)),
    data: bytes.subarray(8 + n),
  };
}

function join(header: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  writeInt(out, 0, 8, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Moves one tensor's `data_offsets` onto another's, or past the end: overlaps and gaps. */
function shiftOffsets(rng: Rng, header: string): string {
  const ranges = [...header.matchAll(/"data_offsets":\s*\[(\d+),\s*(\d+)\]/g)];
  if (ranges.length === 0) return header;
  const target = rng.pick(ranges);
  const source = rng.pick(ranges);
  const begin = rng.chance(0.5) ? Number(source[1]) : Number(target[1]) + rng.pick([-1, 1, 4096]);
  const end = rng.chance(0.5) ? Number(source[2]) : begin + rng.pick([0, 1, 2 ** 31, 2 ** 53]);
  const at = target.index!;
  return `${header.slice(0, at)}"data_offsets":[${begin},${end}]${
    header.slice(at + target[0].length)
  }`;
}

function mutate(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  const [seed, other] = pickTwo(rng, seeds);
  const parts = split(seed);
  const roll = rng.float();
  if (roll < 0.4 || !parts) return mutateBytes(rng, seed, other);
  if (roll < 0.5) {
    const out = seed.slice();
    writeInt(
      out,
      0,
      8,
      rng.chance(0.5) ? interestingInt(rng, 8) : BigInt(out.length - 8 - rng.int(3)),
      true,
    );
    return out;
  }
  const header = roll < 0.65
    ? shiftOffsets(rng, parts.header)
    : mutateJsonText(rng, parts.header, split(other)?.header ?? "{}", JSON.parse);
  const data = rng.chance(0.2) ? parts.data.subarray(0, rng.int(parts.data.length)) : parts.data;
  return join(header, data);
}

async function run(input: Uint8Array): Promise<void> {
  for (const tensor of parseSafetensors(input, FILE).tensors.values()) decodeTensor(tensor);
  const sd = await loadStateDict(memoryWeightFiles({ "model.safetensors": input }, "fuzz"));
  try {
    for (const name of sd.entries.keys()) await sd.get(name);
  } finally {
    sd.close();
  }
}

/**
 * The safetensors target.
 *
 * @example
 * ```ts
 * import { safetensorsTarget } from "./safetensors.ts";
 * console.log(safetensorsTarget.name);
 * ```
 */
export const safetensorsTarget: FuzzTarget<Uint8Array> = {
  name: "safetensors",
  ext: "safetensors",
  async seeds() {
    const fixtures = await readAll([
      `${FIXTURES_DIR}/models/ldmbert/io.safetensors`,
      `${FIXTURES_DIR}/pipelines/ddim_tiny/unet_io.safetensors`,
    ]);
    return [...craftedSeeds(), ...fixtures];
  },
  mutate,
  run,
  // Decoding widens at most 1-byte elements to float32, twice (both load paths).
  allocationBudget: (n) => BASE_BUDGET + 16 * n,
};
