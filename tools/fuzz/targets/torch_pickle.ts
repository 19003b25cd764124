/**
 * Fuzz target: the pickle inside PyTorch checkpoints, and the storage
 * records it points at. The pickle is mutated (bytes, and planted opcode
 * sequences: imports of `os.system` / `builtins.exec` / `subprocess.Popen`
 * by GLOBAL, STACK_GLOBAL, INST and OBJ, REDUCE, huge lengths, memo
 * indices and frames, deep MARKs), storages are cut or grown, members
 * dropped or renamed, and the archive is rebuilt with correct CRCs so every
 * input reaches the unpickler.
 *
 * @example
 * ```ts
 * import { torchPickleTarget } from "./torch_pickle.ts";
 * const seeds = await torchPickleTarget.seeds();
 * const rng = (await import("../rng.ts")).Rng.derive(1);
 * await torchPickleTarget.run(torchPickleTarget.mutate(rng, seeds)).catch(() => {});
 * ```
 *
 * @module
 */

import { mutateBytes } from "../bytes.ts";
import type { Rng } from "../rng.ts";
import { pickTwo } from "../seeds.ts";
import type { FuzzTarget } from "../target.ts";
import { writeZip, type ZipMember } from "../zip_writer.ts";
import { checkpointBudget, loadCheckpoint } from "./torch_run.ts";
import { type TorchSeed, torchSeeds } from "./torch_seeds.ts";

const text = (s: string): number[] => [...new TextEncoder().encode(s)];
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

/** Opcode sequences worth planting: code-execution attempts and resource bombs. */
const SNIPPETS: readonly Uint8Array[] = [
  [0x63, ...text("os\nsystem\n")],
  [0x63, ...text("builtins\nexec\n")],
  [0x63, ...text("posix\nsystem\n")],
  [0x8c, 10, ...text("subprocess"), 0x8c, 5, ...text("Popen"), 0x93],
  [
    0x8c,
    8,
    ...text("builtins"),
    0x8c,
    4,
    ...text("eval"),
    0x93,
    0x8c,
    2,
    ...text("id"),
    0x85,
    0x52,
  ],
  [0x28, 0x8c, 2, ...text("id"), 0x69, ...text("os\nsystem\n")],
  [0x28, 0x63, ...text("os\nsystem\n"), 0x8c, 2, ...text("id"), 0x6f],
  [0x63, ...text("collections\nOrderedDict\n"), 0x29, 0x81],
  [0x63, ...text("torch._utils\n_rebuild_tensor_v2\n")],
  [0x63, ...text("torch._utils\n_rebuild_parameter\n")],
  [0x63, ...text("torch\nFloatStorage\n")],
  [0x63, ...text("torch\nSize\n")],
  [0x52],
  [0x51],
  [0x62],
  [0x82, 1],
  [0x28, 0x74],
  [0x29, 0x52],
  [0x4e, 0x85, 0x52],
  [0x68, 0xff],
  [0x6a, ...u32(0xffffffff)],
  [0x72, ...u32(0x7fffffff)],
  [0x94, 0x94, 0x94],
  [0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  [0x8b, ...u32(0x7fffffff)],
  [0x8a, 0xff],
  [0x58, ...u32(0xffffffff)],
  [0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80],
  [0x28, 0x4a, ...u32(0x7fffffff), 0x4a, ...u32(0x7fffffff), 0x74],
  [0x28, 0x4b, 0, 0x4b, 0, 0x74],
  new Array(300).fill(0x28),
  new Array(200).fill(0x32),
  [0x5d, 0x94, 0x32, 0x61],
].map((s) => new Uint8Array(s));

function plant(rng: Rng, pickle: Uint8Array): Uint8Array {
  const snippet = rng.pick(SNIPPETS);
  const at = rng.int(pickle.length + 1);
  const cut = rng.chance(0.5) ? rng.smallLength(16) : 0;
  const out = new Uint8Array(pickle.length - Math.min(cut, pickle.length - at) + snippet.length);
  out.set(pickle.subarray(0, at));
  out.set(snippet, at);
  out.set(pickle.subarray(Math.min(pickle.length, at + cut)), at + snippet.length);
  return out;
}

function mutateMembers(rng: Rng, members: readonly ZipMember[], donor: TorchSeed): ZipMember[] {
  const out = members.map((m) => ({ name: m.name, data: m.data }));
  const pkl = out.find((m) => m.name.endsWith("/data.pkl"));
  const roll = rng.float();
  if (pkl && roll < 0.75) {
    const donorPkl = donor.members.find((m) => m.name.endsWith("/data.pkl"))?.data ?? pkl.data;
    pkl.data = rng.chance(0.4) ? plant(rng, pkl.data) : mutateBytes(rng, pkl.data, donorPkl);
    return out;
  }
  const victim = rng.pick(out);
  if (roll < 0.85) {
    victim.data = rng.chance(0.5)
      ? victim.data.subarray(0, rng.int(victim.data.length))
      : mutateBytes(rng, victim.data, victim.data);
  } else if (roll < 0.93) {
    out.splice(out.indexOf(victim), 1);
  } else {
    victim.name = rng.pick(["archive/data/../data.pkl", "/etc/passwd", "archive/data/0", "x"]);
  }
  return out;
}

function mutate(rng: Rng, seeds: readonly TorchSeed[]): Uint8Array {
  const [seed, donor] = pickTwo(rng, seeds);
  return writeZip(mutateMembers(rng, seed.members, donor));
}

/**
 * The PyTorch pickle target.
 *
 * @example
 * ```ts
 * import { torchPickleTarget } from "./torch_pickle.ts";
 * console.log(torchPickleTarget.name);
 * ```
 */
export const torchPickleTarget: FuzzTarget<TorchSeed> = {
  name: "torch_pickle",
  ext: "bin",
  seeds: torchSeeds,
  mutate,
  run: loadCheckpoint,
  allocationBudget: checkpointBudget,
};
