/**
 * Symlinks out of the model folder: a `model_index.json` component folder, a
 * scheduler config, a tokenizer subfolder or a tokenizer file that links
 * outside is refused with a PathEscapeError before anything is read, while
 * links that stay inside (and the Hub cache's links into `blobs/`) load.
 * (Names with `..` or absolute paths, and weight shards, are covered by
 * tests/model_source_test.ts, tests/state_dict_test.ts and tests/hub_test.ts.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { PathEscapeError } from "../lib/errors.ts";
import { DiffusionPipeline, parseModelIndex } from "../lib/pipelines/diffusion_pipeline.ts";
import { loadComponent } from "../lib/pipelines/components.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { loadTokenizer } from "../lib/tokenizers/tokenizer.ts";
import { assertThrowsTyped, FIXTURES_DIR, TEST_BACKEND } from "./_helpers.ts";

const DDPM = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
const CLIP = `${FIXTURES_DIR}/tokenizers/clip_tiny`;

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** A model folder and a folder "outside" it, removed afterwards. */
async function withFolders(fn: (model: string, outside: string) => Promise<void>): Promise<void> {
  const model = await Deno.makeTempDir({ prefix: "model_" });
  const outside = await Deno.makeTempDir({ prefix: "outside_" });
  try {
    await fn(model, outside);
  } finally {
    await Deno.remove(model, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
}

Deno.test("paths: a component folder that links out of the model folder is refused", async () => {
  await withFolders(async (model, outside) => {
    await copyTree(DDPM, model);
    await Deno.remove(`${model}/unet`, { recursive: true });
    await copyTree(`${DDPM}/unet`, `${outside}/unet`);
    await Deno.symlink(`${outside}/unet`, `${model}/unet`);
    await assertThrowsTyped(
      () => DiffusionPipeline.fromPretrained(model, { backend: TEST_BACKEND }),
      PathEscapeError,
      /unet: resolves to .*outside_.*, outside .*model_/,
    );
    // The same folder linked from inside the model folder is fine.
    await Deno.remove(`${model}/unet`);
    await copyTree(`${DDPM}/unet`, `${model}/weights/unet`);
    await Deno.symlink(`${model}/weights/unet`, `${model}/unet`);
    const pipe = await DiffusionPipeline.fromPretrained(model, { backend: TEST_BACKEND });
    pipe.dispose();
  });
});

Deno.test("paths: a scheduler config that links out of its folder is refused", async () => {
  await withFolders(async (model, outside) => {
    await copyTree(DDPM, model);
    await Deno.rename(`${model}/scheduler/scheduler_config.json`, `${outside}/secret.json`);
    await Deno.symlink(`${outside}/secret.json`, `${model}/scheduler/scheduler_config.json`);
    await assertThrowsTyped(
      () => loadComponent(model, "scheduler", "DDPMScheduler", {}),
      PathEscapeError,
      /scheduler_config\.json: resolves to .*secret\.json, outside/,
    );
  });
});

Deno.test("paths: a model config.json that links out of its folder is refused", async () => {
  await withFolders(async (model, outside) => {
    await copyTree(DDPM, model);
    await Deno.rename(`${model}/unet/config.json`, `${outside}/config.json`);
    await Deno.symlink(`${outside}/config.json`, `${model}/unet/config.json`);
    await assertThrowsTyped(
      () => UNet2DModel.fromPretrained(model, { subfolder: "unet" }),
      PathEscapeError,
      /config\.json: resolves to .*outside_.*, outside/,
    );
  });
});

Deno.test("paths: a tokenizer subfolder or tokenizer file that links outside is refused", async () => {
  await withFolders(async (model, outside) => {
    await copyTree(CLIP, `${outside}/tokenizer`);
    await Deno.symlink(`${outside}/tokenizer`, `${model}/tokenizer`);
    await assertThrowsTyped(
      () => loadComponent(model, "tokenizer", "CLIPTokenizer", {}),
      PathEscapeError,
      /tokenizer: resolves to .*, outside/,
    );
    await Deno.remove(`${model}/tokenizer`);
    await copyTree(CLIP, `${model}/tokenizer`);
    await Deno.rename(`${model}/tokenizer/vocab.json`, `${outside}/vocab.json`);
    await Deno.symlink(`${outside}/vocab.json`, `${model}/tokenizer/vocab.json`);
    await assertThrowsTyped(
      () => loadTokenizer(`${model}/tokenizer`, "CLIPTokenizer"),
      PathEscapeError,
      /vocab\.json: resolves to .*outside_.*vocab\.json, outside/,
    );
  });
});

Deno.test("paths: Hub-cache snapshots, whose files link into the repo's blobs/, still load", async () => {
  await withFolders(async (root) => {
    const repo = `${root}/models--org--tok`;
    const snapshot = `${repo}/snapshots/${"a".repeat(40)}/tokenizer`;
    await Deno.mkdir(`${repo}/blobs`, { recursive: true });
    await Deno.mkdir(snapshot, { recursive: true });
    for await (const e of Deno.readDir(CLIP)) {
      await Deno.copyFile(`${CLIP}/${e.name}`, `${repo}/blobs/${e.name}.blob`);
      await Deno.symlink(`../../../blobs/${e.name}.blob`, `${snapshot}/${e.name}`);
    }
    const tok = await loadTokenizer(snapshot, "CLIPTokenizer");
    assert(tok.encode("a photo").inputIds.length > 2);
  });
});

Deno.test("paths: model_index.json component names are plain folder names", async () => {
  for (const name of ["/etc", "a/b", "..", ".", "../unet", "C:\\x", "unet\u0000"]) {
    await assertThrowsTyped(
      () => parseModelIndex({ _class_name: "DDPMPipeline", [name]: ["diffusers", "UNet2DModel"] }),
      PathEscapeError,
      /not a plain folder name/,
    );
  }
});
