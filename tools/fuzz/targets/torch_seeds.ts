/**
 * Seed checkpoints for the PyTorch targets: a real fixture `.bin` and small
 * crafted ones covering every storage type, strided, sliced, broadcast
 * (stride 0), 0-d and `nn.Parameter` tensors, stored and deflated. Each
 * seed keeps both its file bytes and its members, so a mutated pickle can
 * be put back into a valid archive.
 *
 * @example
 * ```ts
 * import { torchSeeds } from "./torch_seeds.ts";
 * const seeds = await torchSeeds();
 * console.log(seeds[0]!.members.map((m) => m.name));
 * ```
 *
 * @module
 */

import { bytesSource } from "../../../lib/weights/byte_source.ts";
import { readZipDirectory, readZipEntry } from "../../../lib/weights/zip.ts";
import { type PickledTensor, stateDictPickle } from "../pickle_writer.ts";
import { FIXTURES_DIR } from "../seeds.ts";
import { deflateRaw, writeZip, type ZipMember } from "../zip_writer.ts";

/** A seed checkpoint: the file and the members it holds. */
export interface TorchSeed {
  /** The checkpoint file. */
  bytes: Uint8Array;
  /** Its members, uncompressed, in archive order. */
  members: ZipMember[];
}

const TENSORS: PickledTensor[] = [
  {
    name: "w",
    storage: "FloatStorage",
    key: "0",
    numel: 6,
    offset: 0,
    size: [2, 3],
    stride: [3, 1],
  },
  {
    name: "wt",
    storage: "FloatStorage",
    key: "0",
    numel: 6,
    offset: 0,
    size: [3, 2],
    stride: [1, 3],
  },
  { name: "slice", storage: "FloatStorage", key: "0", numel: 6, offset: 2, size: [2], stride: [2] },
  {
    name: "h",
    storage: "HalfStorage",
    key: "1",
    numel: 4,
    offset: 0,
    size: [4],
    stride: [1],
    parameter: true,
  },
  {
    name: "ids",
    storage: "LongStorage",
    key: "2",
    numel: 3,
    offset: 0,
    size: [1, 3],
    stride: [3, 1],
  },
  { name: "mask", storage: "BoolStorage", key: "3", numel: 2, offset: 0, size: [2], stride: [1] },
  { name: "bc", storage: "FloatStorage", key: "4", numel: 1, offset: 0, size: [8], stride: [0] },
  { name: "s", storage: "FloatStorage", key: "4", numel: 1, offset: 0, size: [], stride: [] },
  {
    name: "b16",
    storage: "BFloat16Storage",
    key: "5",
    numel: 2,
    offset: 0,
    size: [2],
    stride: [1],
  },
];

const STORAGES: Record<string, Uint8Array> = {
  "0": new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer),
  "1": new Uint8Array(new Uint16Array([0x3c00, 0xbc00, 0x7c00, 0]).buffer),
  "2": new Uint8Array(new BigInt64Array([0n, 1n, 2n]).buffer),
  "3": new Uint8Array([1, 0]),
  "4": new Uint8Array(new Float32Array([0.5]).buffer),
  "5": new Uint8Array(new Uint16Array([0x3f80, 0xc000]).buffer),
};

function craftedMembers(tensors: readonly PickledTensor[]): ZipMember[] {
  const keys = new Set(tensors.map((t) => t.key));
  return [
    { name: "archive/data.pkl", data: stateDictPickle(tensors) },
    { name: "archive/byteorder", data: new TextEncoder().encode("little") },
    ...[...keys].map((k) => ({ name: `archive/data/${k}`, data: STORAGES[k]! })),
    { name: "archive/version", data: new TextEncoder().encode("3\n") },
  ];
}

async function fixtureSeed(path: string): Promise<TorchSeed> {
  const bytes = await Deno.readFile(path);
  const src = bytesSource(bytes, path);
  const { entries } = await readZipDirectory(src, path);
  const members: ZipMember[] = [];
  for (const entry of entries.values()) {
    members.push({ name: entry.name, data: await readZipEntry(src, entry, path) });
  }
  return { bytes, members };
}

/**
 * The seed checkpoints, in a fixed order.
 *
 * @example
 * ```ts
 * import { torchSeeds } from "./torch_seeds.ts";
 * console.log((await torchSeeds()).length);
 * ```
 */
export async function torchSeeds(): Promise<TorchSeed[]> {
  const all = craftedMembers(TENSORS);
  const small = craftedMembers(TENSORS.slice(0, 2));
  const deflated = await Promise.all(
    all.map(async (m) => ({ ...m, deflated: await deflateRaw(m.data) })),
  );
  return [
    { bytes: writeZip(all), members: all },
    { bytes: writeZip(small), members: small },
    { bytes: writeZip(deflated), members: all },
    await fixtureSeed(`${FIXTURES_DIR}/models/ldmbert/pytorch_model.bin`),
  ];
}
