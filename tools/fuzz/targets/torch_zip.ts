/**
 * Fuzz target: the zip container of PyTorch checkpoints. Mutations: bytes
 * anywhere, and the fields of the zip records themselves (sizes, offsets,
 * counts, name lengths, methods, flags of local headers, central entries
 * and the (ZIP64) end records) set to edge values: overlapping entries,
 * sizes past the file, ZIP64 saturation, bombs.
 *
 * @example
 * ```ts
 * import { torchZipTarget } from "./torch_zip.ts";
 * const seeds = await torchZipTarget.seeds();
 * await torchZipTarget.run(seeds[0]!.bytes);
 * ```
 *
 * @module
 */

import { interestingInt, mutateBytes, writeInt } from "../bytes.ts";
import type { Rng } from "../rng.ts";
import { pickTwo } from "../seeds.ts";
import type { FuzzTarget } from "../target.ts";
import { checkpointBudget, loadCheckpoint } from "./torch_run.ts";
import { type TorchSeed, torchSeeds } from "./torch_seeds.ts";

/** Record signatures and their numeric fields as [offset, width]. */
const RECORDS: readonly (readonly [number, readonly (readonly [number, number])[]])[] = [
  // Local file header: flags, method, crc, sizes, name and extra lengths.
  [0x04034b50, [[6, 2], [8, 2], [14, 4], [18, 4], [22, 4], [26, 2], [28, 2]]],
  // Central directory entry: flags, method, crc, sizes, lengths, disk, local header offset.
  [0x02014b50, [[8, 2], [10, 2], [16, 4], [20, 4], [24, 4], [28, 2], [30, 2], [32, 2], [34, 2], [
    42,
    4,
  ]]],
  // End of central directory: disks, counts, size, offset, comment length.
  [0x06054b50, [[4, 2], [6, 2], [8, 2], [10, 2], [12, 4], [16, 4], [20, 2]]],
  // ZIP64 end record: disks, counts, size, offset.
  [0x06064b50, [[16, 4], [20, 4], [24, 8], [32, 8], [40, 8], [48, 8]]],
  // ZIP64 locator: the end record's offset.
  [0x07064b50, [[4, 4], [8, 8], [16, 4]]],
  // ZIP64 extra field (id 1) inside a central entry: sizes and offset.
  [0x00180001, [[4, 8], [12, 8], [20, 8]]],
];

function findRecords(bytes: Uint8Array): [number, readonly (readonly [number, number])[]][] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: [number, readonly (readonly [number, number])[]][] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) {
    const sig = view.getUint32(i, true);
    for (const [want, fields] of RECORDS) if (sig === want) found.push([i, fields]);
  }
  return found;
}

function mutateField(rng: Rng, seed: Uint8Array): Uint8Array {
  const records = findRecords(seed);
  if (records.length === 0) return seed.slice();
  const out = seed.slice();
  for (let n = 1 + rng.int(2); n > 0; n--) {
    const [at, fields] = rng.pick(records);
    const [offset, width] = rng.pick(fields);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const old = width === 8 && at + offset + 8 <= out.length
      ? view.getBigUint64(at + offset, true)
      : undefined;
    const value = old !== undefined && rng.chance(0.3)
      ? old + BigInt(rng.pick([-1, 1, -30, 30, 4096]))
      : interestingInt(rng, width);
    writeInt(out, at + offset, width, value, true);
  }
  return out;
}

function mutate(rng: Rng, seeds: readonly TorchSeed[]): Uint8Array {
  const [seed, other] = pickTwo(rng, seeds);
  return rng.chance(0.5) ? mutateField(rng, seed.bytes) : mutateBytes(rng, seed.bytes, other.bytes);
}

/**
 * The PyTorch zip-container target.
 *
 * @example
 * ```ts
 * import { torchZipTarget } from "./torch_zip.ts";
 * console.log(torchZipTarget.name);
 * ```
 */
export const torchZipTarget: FuzzTarget<TorchSeed> = {
  name: "torch_zip",
  ext: "bin",
  seeds: torchSeeds,
  mutate,
  run: loadCheckpoint,
  allocationBudget: checkpointBudget,
};
