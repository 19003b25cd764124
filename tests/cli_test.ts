/**
 * The command line as a user runs it: `deno run -A mod.ts ...` in a
 * subprocess, with the Hub served locally (HF_ENDPOINT) and a temporary
 * Hugging Face cache.
 */
import assert from "node:assert/strict";
import { decodeImage } from "../lib/image.ts";
import { FIXTURES_DIR } from "./_helpers.ts";
import { startHubServer } from "./hub_server.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

async function cli(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("cli: writes a PNG for a model id served by the Hub, then works offline from the cache", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-" });
  const server = await startHubServer({
    repos: { "fixtures/ddpm-tiny": `${FIXTURES_DIR}/pipelines/ddpm_tiny` },
  });
  const env = { HF_ENDPOINT: server.url, HF_HUB_CACHE: `${dir}/cache` };
  try {
    const args = ["--model", "fixtures/ddpm-tiny", "--steps", "3", "--seed", "0", "--upscale", "2"];
    const run = await cli([...args, "--out", `${dir}/cat.png`], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `${dir}/cat.png`);
    assert.match(run.stderr, /denoise \[#+\] 100%/);
    assert.match(run.stderr, /seed 0, backend wasm/);
    const image = decodeImage(await Deno.readFile(`${dir}/cat.png`));
    assert.deepEqual([image.width, image.height], [64, 64]);

    const offline = await cli([...args, "--out", `${dir}/again.png`], {
      ...env,
      HF_HUB_OFFLINE: "1",
    });
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(
      await Deno.readFile(`${dir}/again.png`),
      await Deno.readFile(`${dir}/cat.png`),
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: clear messages for an unreachable model, an unknown scheduler, bad flags; --help", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-" });
  try {
    const env = { HF_HUB_CACHE: dir, HF_HUB_OFFLINE: "1" };
    const missing = await cli(["--model", "someone/not-cached", "--out", `${dir}/x.png`], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /someone\/not-cached/);
    assert.match(missing.stderr, /local diffusers folder/);
    assert.doesNotMatch(missing.stderr, /^\s+at /m, "no stack trace for a user error");

    const model = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
    const unknown = await cli(
      ["--model", model, "--scheduler", "Nope", "--out", `${dir}/x.png`],
      env,
    );
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown scheduler "Nope"; valid names: .*EulerDiscreteScheduler/);

    const bad = await cli(["--model", model, "--steps", "many"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--steps must be a whole number/);

    const help = await cli(["--help"], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: deno run -A mod.ts \[PROMPT\]/);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".png")),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
