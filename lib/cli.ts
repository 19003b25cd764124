/**
 * The command line: `deno run -A mod.ts [PROMPT] --model ID|DIR --steps N
 * --scheduler NAME --seed S --out FILE --backend B`. Progress (downloads,
 * then denoising steps) is drawn on stderr; the image path goes to stdout.
 * Deno only: `mod.ts` imports this module only when run as a program.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--model", "google/ddpm-cat-256", "--steps", "50", "--out", "cat.png"]);
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_MODEL, generate } from "./generate.ts";
import { decodeImage } from "./image.ts";
import { DiffusersError, HubError, NotFoundError } from "./errors.ts";
import type { BackendChoice } from "./backend.ts";
import { SCHEDULERS } from "../schedulers/registry.ts";

const HELP = `diffusers-tfjs: Hugging Face diffusers pipelines on TensorFlow.js

Usage: deno run -A mod.ts [PROMPT] [options]

Options:
  --model ID|DIR      Hub model id or local diffusers folder (default: the bundled emoji
                      Stable Diffusion, offline: try "cat face", "red heart", "fire")
  --negative TEXT     negative prompt (Stable Diffusion)
  --guidance G        classifier-free guidance scale (default: the pipeline's)
  --width W, --height H  image size in pixels (text-to-image; default: the model's)
  --image FILE        init image (PNG) for image-to-image (Stable Diffusion)
  --strength S        image-to-image strength, 0..1 (default 0.8)
  --steps N           denoising steps (default: the pipeline's default)
  --scheduler NAME    swap the scheduler (${[...SCHEDULERS.keys()].join(", ")})
  --seed S            seed of the PyTorch-compatible generator (default: random, printed)
  --batch N           number of images (default 1)
  --eta E             DDIM eta (default 0)
  --out FILE          output PNG (default: out.png; out-1.png, ... for several images)
  --upscale K         enlarge the output K times, nearest neighbour (default: to about 256 px
                      for small images; 1 keeps the raw size)
  --backend B         auto | webgpu | wasm | cpu (default: auto, or DIFFUSERS_BACKEND)
  --workers N         run the UNet in N Workers, each on its own core (1: in-process);
                      2 runs the two guidance halves at once: same latents, up to 2x
                      faster for Stable Diffusion-size models (default: 2 for UNets too
                      big for one WASM heap with the rest, as SD's and LDM's; else 1)
  --variant V         weight variant, e.g. fp16
  --revision R        Hub branch, tag or commit
  --offline           use only the local Hugging Face cache (same as HF_HUB_OFFLINE=1)
  --quiet             no progress output
  -h, --help          this help

Environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE, DIFFUSERS_BACKEND.
`;

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CliError(`--${name} must be a whole number, got ${value}`);
  }
  return n;
}

class CliError extends Error {}

function optionalNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got ${value}`);
  return n;
}

/** A one-line progress bar on stderr that redraws in place. */
function progressBar(enabled: boolean): (label: string, done: number, total: number) => void {
  const encoder = new TextEncoder();
  let last = "";
  return (label, done, total) => {
    if (!enabled) return;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
    const line = `\r${label} [${bar}] ${Math.round(frac * 100)}%`;
    if (line === last) return;
    last = line;
    Deno.stderr.writeSync(encoder.encode(line + (done >= total ? "\n" : "")));
  };
}

function outputPath(out: string, index: number, count: number): string {
  if (count === 1) return out;
  const dot = out.lastIndexOf(".");
  return dot > 0 ? `${out.slice(0, dot)}-${index + 1}${out.slice(dot)}` : `${out}-${index + 1}`;
}

/**
 * Runs the CLI with `args` (without the program name); returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        model: { type: "string" },
        steps: { type: "string" },
        scheduler: { type: "string" },
        seed: { type: "string" },
        batch: { type: "string" },
        eta: { type: "string" },
        out: { type: "string", default: "out.png" },
        upscale: { type: "string" },
        negative: { type: "string" },
        guidance: { type: "string" },
        width: { type: "string" },
        height: { type: "string" },
        image: { type: "string" },
        strength: { type: "string" },
        backend: { type: "string" },
        workers: { type: "string" },
        variant: { type: "string" },
        revision: { type: "string" },
        offline: { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const model = values.model ?? DEFAULT_MODEL;
  const draw = progressBar(!values.quiet);
  const controller = new AbortController();
  // The first Ctrl-C stops between steps; a second one exits at once.
  const onSigint = () =>
    controller.signal.aborted
      ? Deno.exit(130)
      : controller.abort(new DiffusersError("interrupted"));
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const eta = values.eta === undefined ? undefined : Number(values.eta);
    if (eta !== undefined && !(eta >= 0)) {
      throw new CliError(`--eta must be a number >= 0, got ${values.eta}`);
    }
    const upscale = positiveInt("upscale", values.upscale);
    const guidance = optionalNumber("guidance", values.guidance);
    const strength = optionalNumber("strength", values.strength);
    const image = values.image === undefined ? undefined : decodeImage(
      await Deno.readFile(values.image).catch((e) => {
        throw new CliError(`cannot read --image ${values.image}: ${(e as Error).message}`);
      }),
      values.image,
    );
    const result = await generate({
      negativePrompt: values.negative,
      guidanceScale: guidance,
      width: positiveInt("width", values.width),
      height: positiveInt("height", values.height),
      image,
      strength,
      model,
      prompt: positionals.join(" ") || undefined,
      steps: positiveInt("steps", values.steps),
      scheduler: values.scheduler,
      seed: positiveInt("seed", values.seed),
      batchSize: positiveInt("batch", values.batch),
      eta,
      backend: values.backend as BackendChoice | undefined,
      workers: positiveInt("workers", values.workers),
      variant: values.variant,
      revision: values.revision,
      localFilesOnly: values.offline || undefined,
      signal: controller.signal,
      onDownload: ({ file, loaded, total }) => draw(`download ${file}`, loaded, total ?? loaded),
      onStep: async ({ step, numSteps }) => {
        draw("denoise", step + 1, numSteps);
        // The steps never yield on their own: let the event loop run so Ctrl-C is seen.
        await new Promise((resolve) => setTimeout(resolve, 0));
      },
    });
    for (let i = 0; i < result.images.length; i++) {
      const path = outputPath(values.out, i, result.images.length);
      const image = result.images[i]!;
      // Small outputs (the bundled 32 px model) are enlarged for viewing unless --upscale says otherwise.
      const factor = upscale ?? Math.max(1, Math.floor(256 / Math.max(image.width, image.height)));
      await image.upscale(factor).save(path);
      console.log(path);
    }
    if (!values.quiet) {
      const secs = (ms: number) => (ms / 1000).toFixed(1);
      console.error(
        `seed ${result.seed}, backend ${result.backend}, load ${secs(result.timings.loadMs)} s, ` +
          `generate ${secs(result.timings.generateMs)} s`,
      );
    }
    return 0;
  } catch (e) {
    if (controller.signal.aborted) {
      console.error("\ninterrupted: stopped between steps, no image written");
      return 130;
    }
    if (e instanceof CliError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof HubError || (e instanceof NotFoundError && !values.offline)) {
      console.error(
        `error: ${e.message}\n` +
          `Could not get ${model}. Check the id and your network, set HF_TOKEN for gated models, ` +
          `or pass --model with a local diffusers folder (or --offline to use the Hugging Face cache).`,
      );
      return 1;
    }
    if (e instanceof DiffusersError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}
