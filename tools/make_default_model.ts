/**
 * Builds the model the library ships as its offline default: a copy of a
 * diffusers folder (configs, tokenizer files, model card) whose
 * floating-point weight matrices and kernels are stored as float16 (round
 * to nearest even, as PyTorch's `.half()`), halving the download; 1-D
 * tensors stay float32. The loader widens everything to float32.
 *
 * ```sh
 * deno run --allow-read --allow-write tools/make_default_model.ts ../shared/models/emoji-sd-tiny models/pretrained/emoji-sd-tiny
 * ```
 *
 * @module
 */

import {
  parseSafetensors,
  serializeSafetensors,
  type TensorToWrite,
  toFloat32,
} from "../lib/weights/safetensors.ts";
import { writeFileAtomic } from "../lib/fs.ts";

const FLOATS = new Set(["F64", "F32", "F16", "BF16"]);

async function copyTree(src: string, dst: string): Promise<void> {
  await Deno.mkdir(dst, { recursive: true });
  for await (const entry of Deno.readDir(src)) {
    const from = `${src}/${entry.name}`;
    const to = `${dst}/${entry.name}`;
    if (entry.isDirectory) {
      await copyTree(from, to);
    } else if (entry.name.endsWith(".safetensors")) {
      const file = parseSafetensors(await Deno.readFile(from), from);
      const tensors: Record<string, TensorToWrite> = {};
      for (const [name, t] of file.tensors) {
        // Matrices and kernels (nearly all the bytes) become float16; 1-D tensors (biases and norm
        // scales, a few KB) stay float32, which halves the image error of the copy.
        const narrow = FLOATS.has(t.dtype) && t.shape.length >= 2;
        tensors[name] = narrow
          ? { dtype: "F16", shape: t.shape, data: toFloat32(t) }
          : { dtype: t.dtype, shape: t.shape, data: t.bytes };
      }
      await writeFileAtomic(to, serializeSafetensors(tensors, { ...file.metadata, format: "pt" }));
      console.log(`${to}: ${file.tensors.size} tensors, matrices as float16`);
    } else {
      await Deno.copyFile(from, to);
    }
  }
}

if (import.meta.main) {
  const [src, dst] = Deno.args;
  if (!src || !dst) {
    console.error("usage: make_default_model.ts SOURCE_DIR TARGET_DIR");
    Deno.exit(2);
  }
  await copyTree(src, dst);
}
