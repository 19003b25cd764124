/**
 * The command line under faults: Ctrl-C during generation stops cleanly
 * between steps and leaves no file behind; and the Hub token is sent only to
 * the configured endpoint and never printed (debug logging on, with retried
 * faults, a refused token and an unreachable server) nor written to the
 * cache.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FIXTURES_DIR } from "./_helpers.ts";
import { startHubServer, TEST_TOKEN } from "./hub_server.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;
const DDPM = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
const LFS_FILE = "unet/diffusion_pytorch_model.safetensors";

function cli(args: string[], env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp", HF_HOME: "/nonexistent", ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Every file's contents and every link's target under `dir`. */
async function cacheText(dir: string): Promise<string> {
  let out = "";
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    out += `${path}\n`;
    if (e.isDirectory) out += await cacheText(path);
    else if (e.isSymlink) out += await Deno.readLink(path);
    else out += text(await Deno.readFile(path));
  }
  return out;
}

Deno.test("cli: Ctrl-C during generation stops between steps, exits 130 in one line, writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-sigint-" });
  try {
    const args = ["--model", DDPM, "--steps", "1000", "--seed", "0", "--out", `${dir}/x.png`];
    const child = cli(args, { HF_HUB_OFFLINE: "1" }).spawn();
    let stderr = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    // Interrupt once a few steps have been drawn: the loop is running.
    while (!/denoise \[[#-]+\] [1-9]%/.test(stderr)) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
    }
    child.kill("SIGINT");
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    const status = await child.status;
    await child.stdout.cancel();
    assert.equal(status.code, 130, stderr.slice(-500));
    assert.match(stderr, /\ninterrupted: stopped between steps, no image written\n$/);
    assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
    assert.doesNotMatch(stderr, /100%/, "stopped before the end");
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no PNG and no temp file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: HF_TOKEN goes only to the endpoint and is never printed or cached, even at debug level", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-token-" });
  const server = await startHubServer({
    repos: { "test/gated": DDPM },
    gated: ["test/gated"],
    // A retried 500 and a resumed drop, so the retry paths log too.
    faults: {
      status: { file: "unet/config.json", status: 500 },
      drop: { file: LFS_FILE, afterBytes: 100_000 },
    },
  });
  const env = {
    HF_ENDPOINT: server.url,
    HF_HUB_CACHE: `${dir}/cache`,
    HF_TOKEN: TEST_TOKEN,
    DIFFUSERS_VERBOSITY: "debug",
  };
  try {
    const args = ["--model", "test/gated", "--steps", "2", "--seed", "0"];
    const ok = await cli([...args, "--out", `${dir}/x.png`], env).output();
    const printed = text(ok.stdout) + text(ok.stderr);
    assert.equal(ok.code, 0, printed);
    assert.match(printed, /retry 1/, "the faults were hit and logged");
    assert(!printed.includes(TEST_TOKEN), "token not printed");
    const withToken = server.requests.filter((r) => r.headers["authorization"] !== undefined);
    assert(withToken.length > 0);
    assert(withToken.every((r) => r.headers["authorization"] === `Bearer ${TEST_TOKEN}`));
    assert(withToken.every((r) => !r.path.startsWith("/cdn/")), "never to the CDN it redirects to");
    assert(!(await cacheText(`${dir}/cache`)).includes(TEST_TOKEN), "token not in the cache");

    const refused = await cli([...args, "--out", `${dir}/y.png`], {
      ...env,
      HF_HUB_CACHE: `${dir}/other-cache`,
      HF_TOKEN: "hf_wrong_secret_0123456789",
    }).output();
    const refusedText = text(refused.stdout) + text(refused.stderr);
    assert.equal(refused.code, 1, refusedText);
    assert.match(refusedText, /HF_TOKEN/);
    assert(!refusedText.includes("hf_wrong_secret_0123456789"), refusedText);

    const unreachable = await cli([...args, "--out", `${dir}/z.png`], {
      ...env,
      HF_HUB_CACHE: `${dir}/third-cache`,
      HF_ENDPOINT: "http://127.0.0.1:9",
    }).output();
    const unreachableText = text(unreachable.stdout) + text(unreachable.stderr);
    assert.equal(unreachable.code, 1, unreachableText);
    assert(!unreachableText.includes(TEST_TOKEN), unreachableText);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".png")),
      ["x.png"],
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
