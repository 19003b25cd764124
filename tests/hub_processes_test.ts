/**
 * The Hub cache across processes: two processes downloading the same model
 * at the same time (their transfers made to overlap by a stalling server)
 * end with one valid copy and no partial file; and with HF_HUB_OFFLINE=1 a
 * cached model loads in a process that has no network permission at all,
 * while the server sees no request. (Single-process faults, retries, sizes
 * and hashes are in tests/hub_test.ts.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { FIXTURES_DIR } from "./_helpers.ts";
import { startHubServer } from "./hub_server.ts";

const DDPM = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
const CHILD = new URL("./_hub_child.ts", import.meta.url).pathname;
const LFS_FILE = "unet/diffusion_pytorch_model.safetensors";

function child(permissions: string[], args: string[], env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, CHILD, ...args],
    env: { NO_COLOR: "1", HF_HOME: "/nonexistent", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
}

/** Every path under `dir`, relative, not following links. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    out.push(prefix + e.name);
    if (e.isDirectory) out.push(...await tree(dir, `${prefix}${e.name}/`));
  }
  return out.sort();
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("hub processes: two processes downloading one model at once leave one valid copy", async () => {
  const cache = await Deno.makeTempDir({ prefix: "hf-cache-" });
  // Each download of the big file stalls halfway for 1.5 s, so the two transfers overlap.
  const server = await startHubServer({
    repos: { "test/ddpm": DDPM },
    faults: { slow: { file: LFS_FILE, delayMs: 1500, stage: "body", times: 2 } },
  });
  try {
    const env = { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache, PATH: Deno.env.get("PATH") ?? "" };
    const perms = ["--allow-read", "--allow-write", "--allow-env", "--allow-net=127.0.0.1"];
    const [a, b] = await Promise.all([
      child(perms, ["resolve", "test/ddpm"], env),
      child(perms, ["resolve", "test/ddpm"], env),
    ]);
    assert.equal(a.code, 0, text(a.stderr));
    assert.equal(b.code, 0, text(b.stderr));
    const dir = text(a.stdout).trim();
    assert.equal(text(b.stdout).trim(), dir);
    // Both processes fetched the big file: neither found the other's half-written copy.
    const gets = server.requests.filter((r) => r.method === "GET" && r.path.startsWith("/cdn/"));
    assert.equal(gets.length, 2, "both transfers ran, overlapping");
    for (const file of ["model_index.json", "unet/config.json", LFS_FILE]) {
      assert.deepEqual(
        await Deno.readFile(`${dir}/${file}`),
        await Deno.readFile(`${DDPM}/${file}`),
      );
    }
    const paths = await tree(cache);
    assert.deepEqual(paths.filter((p) => /\.incomplete$|\.tmp$/.test(p)), [], "no partial files");
    const blobs = paths.filter((p) => /^models--test--ddpm\/blobs\/./.test(p));
    assert.equal(blobs.length, 4, `one blob per file: ${blobs.join(", ")}`);
  } finally {
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("hub processes: HF_HUB_OFFLINE=1 loads a cached model in a process denied the network", async () => {
  const cache = await Deno.makeTempDir({ prefix: "hf-cache-" });
  const server = await startHubServer({ repos: { "test/ddpm": DDPM } });
  try {
    const env = { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache, PATH: Deno.env.get("PATH") ?? "" };
    const fill = await child(
      ["--allow-read", "--allow-write", "--allow-env", "--allow-net=127.0.0.1"],
      ["resolve", "test/ddpm"],
      env,
    );
    assert.equal(fill.code, 0, text(fill.stderr));
    const seen = server.requests.length;
    const offline = await child(
      ["--allow-read", "--allow-write", "--allow-env", "--deny-net"],
      ["pipeline", "test/ddpm"],
      { ...env, HF_HUB_OFFLINE: "1" },
    );
    assert.equal(offline.code, 0, text(offline.stderr));
    assert.equal(text(offline.stdout).trim(), "DDPMPipeline");
    assert.equal(server.requests.length, seen, "no request reached the server");
    // Without the cache, offline mode fails clearly instead of trying the network.
    const missing = await child(
      ["--allow-read", "--allow-write", "--allow-env", "--deny-net"],
      ["resolve", "test/not-cached"],
      { ...env, HF_HUB_OFFLINE: "1" },
    );
    assert.notEqual(missing.code, 0);
    assert.match(text(missing.stderr), /NotInCacheError|offline/);
    assert.doesNotMatch(text(missing.stderr), /NotCapable|PermissionDenied|net access/);
  } finally {
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});
