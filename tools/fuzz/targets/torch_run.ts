/**
 * How the PyTorch targets load a checkpoint: `parseTorchCheckpoint` on the
 * bytes, and the lazy state-dict loader over a byte source (the path
 * models take), with every tensor read and decoded.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "./torch_run.ts";
 * await loadCheckpoint(await Deno.readFile("pytorch_model.bin"));
 * ```
 *
 * @module
 */

import { parseTorchCheckpoint } from "../../../lib/weights/torch_bin.ts";
import { decodeTensor, loadStateDict } from "../../../lib/weights/state_dict.ts";
import { memoryWeightFiles } from "../../../lib/weights/weight_files.ts";
import { BASE_BUDGET } from "../target.ts";

/**
 * Loads `input` both ways; rejects with whatever the library throws.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "./torch_run.ts";
 * await loadCheckpoint(new Uint8Array(22)).catch((e) => console.log(e.name)); // WeightsError
 * ```
 */
export async function loadCheckpoint(input: Uint8Array): Promise<void> {
  for (const tensor of (await parseTorchCheckpoint(input, "fuzz.bin")).values()) {
    decodeTensor(tensor);
  }
  const sd = await loadStateDict(memoryWeightFiles({ "pytorch_model.bin": input }, "fuzz"));
  try {
    for (const name of sd.entries.keys()) await sd.get(name);
  } finally {
    sd.close();
  }
}

/** torch_bin's cap on the bytes of all views larger than their storage (stride-0 broadcasts). */
const MAX_EXPANDED_BYTES = 64 * 2 ** 20;

/**
 * What a checkpoint may justify: its storages (deflate expands at most
 * ~1032:1) plus the capped broadcast views, widened to float32 (4x for
 * 1-byte elements), on each of the two load paths.
 *
 * @example
 * ```ts
 * import { checkpointBudget } from "./torch_run.ts";
 * console.log(checkpointBudget(1000) > 1000); // true
 * ```
 */
export function checkpointBudget(inputBytes: number): number {
  return BASE_BUDGET + 2 * 4 * (1100 * inputBytes + MAX_EXPANDED_BYTES);
}
