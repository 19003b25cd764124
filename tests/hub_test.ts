/**
 * Hub client tests against the local test Hub (tests/hub_server.ts): cache
 * layout shared with Python, zero-request cache hits, offline mode, typed
 * errors, token policy, retries and atomicity, path safety, revisions.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  GatedRepoError,
  HubError,
  NotFoundError,
  NotInCacheError,
  PathEscapeError,
} from "../lib/errors.ts";
import {
  type DownloadProgress,
  listRepoFiles,
  resolveModel,
  type ResolveOptions,
} from "../lib/hub.ts";
import { patternToRegExp } from "../lib/hub/patterns.ts";
import { assertThrowsTyped, FIXTURES_DIR, SHARED_DIR } from "./_helpers.ts";
import {
  fakeCommit,
  type HubServer,
  type HubServerOptions,
  startHubServer,
  TEST_TOKEN,
} from "./hub_server.ts";

const DDPM = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
const DDIM = `${FIXTURES_DIR}/pipelines/ddim_tiny`;
const EMOJI = `${SHARED_DIR}/models/emoji-sd-tiny`;
const DDPM_FILES = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  "unet/config.json",
  "unet/diffusion_pytorch_model.safetensors",
];
const LFS_FILE = "unet/diffusion_pytorch_model.safetensors";

// The tests choose endpoint, token and offline mode themselves; the developer's
// environment (a real HF_TOKEN, a token file under ~/.cache) must not leak in.
for (
  const name of [
    "HF_TOKEN",
    "HF_HUB_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
  ]
) Deno.env.delete(name);
Deno.env.set("HF_HOME", "/nonexistent/hf-home-for-tests");

interface Hub {
  server: HubServer;
  cacheDir: string;
  /** Options pointing at the test server and cache, with fast retries. */
  base: ResolveOptions;
}

async function withHub(options: HubServerOptions, fn: (hub: Hub) => Promise<void>): Promise<void> {
  const server = await startHubServer(options);
  const cacheDir = await Deno.makeTempDir({ prefix: "hf-cache-" });
  try {
    await fn({ server, cacheDir, base: { endpoint: server.url, cacheDir, retryDelayMs: 1 } });
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
}

/** Runs `fn` with environment variables set (`undefined` = unset), then restores them. */
async function withEnv(vars: Record<string, string | undefined>, fn: () => Promise<void>) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    }
  };
  apply(vars);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

/** Every path under `dir` (not following symlinks), relative, sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const rel = prefix + entry.name;
    out.push(rel);
    if (entry.isDirectory) out.push(...await tree(dir, `${rel}/`));
  }
  return out.sort();
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const gitSha1 = (bytes: Uint8Array) =>
  createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");

Deno.test("hub: download by id into the HF cache layout, byte-identical, only the files asked for", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, cacheDir, base }) => {
    const progress: DownloadProgress[] = [];
    const model = await resolveModel("test/ddpm", {
      ...base,
      files: DDPM_FILES,
      onProgress: (p) => progress.push(p),
    });
    const commit = fakeCommit("test/ddpm");
    const repoDir = `${cacheDir}/models--test--ddpm`;
    assert.equal(model.commit, commit);
    assert.equal(model.root, `${repoDir}/snapshots/${commit}`);
    assert.equal(model.dir, model.root);
    assert.deepEqual(model.files, [...DDPM_FILES].sort());
    assert.equal(await Deno.readTextFile(`${repoDir}/refs/main`), commit);

    for (const file of DDPM_FILES) {
      const expected = await Deno.readFile(`${DDPM}/${file}`);
      assert.deepEqual(await Deno.readFile(`${model.dir}/${file}`), expected, file);
      const link = `${model.root}/${file}`;
      assert((await Deno.lstat(link)).isSymlink, `${file} is a symlink`);
      const etag = file.endsWith(".safetensors") ? sha256(expected) : gitSha1(expected);
      const up = "../".repeat(file.split("/").length + 1);
      assert.equal(await Deno.readLink(link), `${up}blobs/${etag}`);
      assert((await Deno.lstat(`${repoDir}/blobs/${etag}`)).isFile);
    }
    assert.deepEqual((await tree(repoDir)).filter((p) => p.startsWith("blobs/")).length, 4);
    assert(!server.requests.some((r) => r.path.includes(".bin")), "the .bin was not fetched");
    const last = progress.filter((p) => p.file === LFS_FILE).at(-1)!;
    assert.equal(last.loaded, 1033260);
    assert.equal(last.total, 1033260);

    const before = server.requests.length;
    const again = await resolveModel("test/ddpm", { ...base, files: DDPM_FILES });
    assert.deepEqual(again, model);
    assert.equal(server.requests.length, before, "a cached model makes no request");
  });
});

Deno.test("hub: the redirect to the CDN is followed without the token", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, base }) => {
    await resolveModel("test/ddpm", {
      ...base,
      files: [LFS_FILE, "unet/config.json"],
      token: "hf_secret",
    });
    const head = server.requests.find((r) => r.method === "HEAD" && r.path.endsWith(LFS_FILE))!;
    assert.equal(head.headers["authorization"], "Bearer hf_secret");
    assert.equal(head.headers["accept-encoding"], "identity");
    const cdn = server.requests.filter((r) => r.path.startsWith("/cdn/"));
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0]!.headers["authorization"], undefined);
    const small = server.requests.find((r) =>
      r.method === "GET" && r.path.endsWith("config.json")
    )!;
    assert.equal(small.headers["authorization"], "Bearer hf_secret");
  });
});

Deno.test("hub: whole repo and allowPatterns from the listing; listRepoFiles", async () => {
  await withHub({ repos: { "test/emoji": EMOJI } }, async ({ server, base }) => {
    const some = await resolveModel("test/emoji", {
      ...base,
      allowPatterns: ["*.json", "tokenizer/"],
    });
    assert.deepEqual(some.files, [
      "model_index.json",
      "scheduler/scheduler_config.json",
      "text_encoder/config.json",
      "tokenizer/merges.txt",
      "tokenizer/special_tokens_map.json",
      "tokenizer/tokenizer_config.json",
      "tokenizer/vocab.json",
      "unet/config.json",
      "vae/config.json",
    ]);
    const sub = await resolveModel("test/emoji", {
      ...base,
      subfolder: "unet",
      allowPatterns: ["*.safetensors"],
    });
    assert.equal(sub.dir, `${sub.root}/unet`);
    assert.deepEqual(sub.files, ["diffusion_pytorch_model.safetensors"]);

    const all = await resolveModel("test/emoji", base);
    const fixture = (await tree(EMOJI)).filter((p) =>
      !p.endsWith("/") && Deno.statSync(`${EMOJI}/${p}`).isFile
    );
    assert.deepEqual(all.files, fixture);
    for (const file of fixture) {
      assert.deepEqual(
        await Deno.readFile(`${all.dir}/${file}`),
        await Deno.readFile(`${EMOJI}/${file}`),
        file,
      );
    }

    const listing = await listRepoFiles("test/emoji", base);
    assert.equal(listing.commit, fakeCommit("test/emoji"));
    assert.deepEqual(listing.files.map((f) => f.path), fixture);
    assert.equal(listing.files.find((f) => f.path === "unet/config.json")!.size, 1648);
    const before = server.requests.length;
    const offline = await listRepoFiles("test/emoji", { ...base, localFilesOnly: true });
    assert.deepEqual(offline.files.map((f) => f.path), fixture);
    assert.equal(server.requests.length, before);
  });
});

Deno.test("hub: select picks from the listing online, and from the cached files offline", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, base }) => {
    const seen: (readonly string[])[] = [];
    const select = (files: readonly string[]) => {
      seen.push(files);
      return files.filter((f) => !f.endsWith(".bin"));
    };
    const model = await resolveModel("test/ddpm", { ...base, subfolder: "unet", select });
    assert.deepEqual(model.files, ["config.json", "diffusion_pytorch_model.safetensors"]);
    assert.deepEqual(seen, [[
      "config.json",
      "diffusion_pytorch_model.bin",
      "diffusion_pytorch_model.safetensors",
    ]]);
    assert(!server.requests.some((r) => r.path.endsWith(".bin")));
    const before = server.requests.length;
    const offline = await resolveModel("test/ddpm", {
      ...base,
      subfolder: "unet",
      select,
      localFilesOnly: true,
    });
    assert.deepEqual(offline, model);
    assert.deepEqual(seen[1], ["config.json", "diffusion_pytorch_model.safetensors"]);
    assert.equal(server.requests.length, before);
  });
});

Deno.test("hub: offline mode serves the cache with no request and fails clearly when absent", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, cacheDir, base }) => {
    await assertThrowsTyped(
      () => resolveModel("test/ddpm", { ...base, files: DDPM_FILES, localFilesOnly: true }),
      NotInCacheError,
      /test\/ddpm \(revision main\) is not in the Hugging Face cache at .*HF_HUB_OFFLINE/,
    );
    await resolveModel("test/ddpm", { ...base, files: ["model_index.json"] });
    const before = server.requests.length;
    await withEnv({ HF_HUB_OFFLINE: "1", HF_HUB_CACHE: cacheDir }, async () => {
      const model = await resolveModel("test/ddpm", {
        endpoint: server.url,
        files: ["model_index.json"],
      });
      assert.equal(model.commit, fakeCommit("test/ddpm"));
      const all = await resolveModel("test/ddpm", { endpoint: server.url });
      assert.deepEqual(all.files, ["model_index.json"]);
      await assertThrowsTyped(
        () => resolveModel("test/ddpm", { endpoint: server.url, files: ["unet/config.json"] }),
        NotInCacheError,
        /^unet\/config\.json: not in the Hugging Face cache for test\/ddpm/,
      );
      await assertThrowsTyped(
        () => resolveModel("test/ddpm", { endpoint: server.url, revision: "other" }),
        NotInCacheError,
      );
    });
    assert.equal(server.requests.length, before, "offline mode opened no connection");
  });
});

Deno.test("hub: a cache written by Python's huggingface_hub is reused without requests", async () => {
  await withHub({ repos: {} }, async ({ server, cacheDir, base }) => {
    // The layout huggingface_hub writes: blobs, a ref without newline, relative links.
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const repoDir = `${cacheDir}/models--google--ddpm-tiny`;
    const json = await Deno.readFile(`${DDPM}/unet/config.json`);
    await Deno.mkdir(`${repoDir}/blobs`, { recursive: true });
    await Deno.mkdir(`${repoDir}/refs`);
    await Deno.mkdir(`${repoDir}/snapshots/${commit}/unet`, { recursive: true });
    await Deno.writeFile(`${repoDir}/blobs/${gitSha1(json)}`, json);
    await Deno.writeTextFile(`${repoDir}/refs/main`, commit);
    await Deno.symlink(
      `../../../blobs/${gitSha1(json)}`,
      `${repoDir}/snapshots/${commit}/unet/config.json`,
    );
    const model = await resolveModel("google/ddpm-tiny", {
      ...base,
      subfolder: "unet",
      files: ["config.json"],
    });
    assert.equal(model.dir, `${repoDir}/snapshots/${commit}/unet`);
    assert.deepEqual(await Deno.readFile(`${model.dir}/config.json`), json);
    const pinned = await resolveModel("google/ddpm-tiny", {
      ...base,
      revision: commit,
      files: ["unet/config.json"],
    });
    assert.equal(pinned.commit, commit);
    assert.equal(server.requests.length, 0);
  });
});

Deno.test("hub: 404 repo, revision and file, 401 gated: typed errors naming repo and file", async () => {
  await withHub(
    { repos: { "test/ddpm": DDPM, "test/gated": DDPM }, gated: ["test/gated"] },
    async ({ cacheDir, base }) => {
      await assertThrowsTyped(
        () => resolveModel("test/nope", { ...base, files: ["model_index.json"] }),
        NotFoundError,
        /^model_index\.json: repository test\/nope not found on the Hub \(HTTP 404\)/,
      );
      await assertThrowsTyped(
        () => listRepoFiles("test/nope", base),
        NotFoundError,
        /repository test\/nope not found/,
      );
      await assertThrowsTyped(
        () => resolveModel("test/ddpm", { ...base, revision: "nope", files: ["model_index.json"] }),
        NotFoundError,
        /revision "nope" not found in test\/ddpm/,
      );
      await assertThrowsTyped(
        () =>
          resolveModel("test/ddpm", {
            ...base,
            files: ["unet/diffusion_pytorch_model.fp16.safetensors"],
          }),
        NotFoundError,
        /^unet\/diffusion_pytorch_model\.fp16\.safetensors: not found in test\/ddpm at revision main/,
      );
      const gated = await assertThrowsTyped(
        () => resolveModel("test/gated", { ...base, files: ["model_index.json"] }),
        GatedRepoError,
        /access to test\/gated is restricted \(HTTP 401.*set HF_TOKEN/,
      );
      assert.equal((gated as GatedRepoError).status, 401);
      await assertThrowsTyped(
        () => resolveModel("not a repo!", base),
        NotFoundError,
        /neither a local folder nor a Hub model id/,
      );
      assert.deepEqual(await tree(cacheDir), [], "failed calls leave the cache empty");
    },
  );
});

Deno.test("hub: gated repo with HF_TOKEN or the token file; the token never reaches the cache", async () => {
  await withHub(
    { repos: { "test/gated": DDPM }, gated: ["test/gated"] },
    async ({ server, cacheDir, base }) => {
      await withEnv({ HF_TOKEN: TEST_TOKEN }, async () => {
        await resolveModel("test/gated", { ...base, files: ["model_index.json", LFS_FILE] });
      });
      const home = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${home}/token`, `${TEST_TOKEN}\n`);
        await withEnv({ HF_HOME: home }, async () => {
          await resolveModel("test/gated", { ...base, files: ["unet/config.json"] });
        });
      } finally {
        await Deno.remove(home, { recursive: true });
      }
      const sent = server.requests.filter((r) => r.headers["authorization"] !== undefined);
      assert(sent.length >= 3);
      assert(sent.every((r) => !r.path.startsWith("/cdn/")), "no token to the CDN");
      for (const path of await tree(cacheDir)) {
        const info = await Deno.lstat(`${cacheDir}/${path}`);
        const text = info.isFile
          ? await Deno.readTextFile(`${cacheDir}/${path}`)
          : info.isSymlink
          ? await Deno.readLink(`${cacheDir}/${path}`)
          : "";
        assert(!text.includes(TEST_TOKEN) && !path.includes(TEST_TOKEN), `${path} holds no token`);
      }
    },
  );
});

Deno.test("hub: a dropped connection is resumed with Range; a 500 is retried", async () => {
  await withHub({
    repos: { "test/ddpm": DDPM },
    faults: {
      drop: { file: LFS_FILE, afterBytes: 300_000, times: 2 },
      status: { file: "unet/config.json", status: 500 },
    },
  }, async ({ server, base }) => {
    const model = await resolveModel("test/ddpm", {
      ...base,
      files: [LFS_FILE, "unet/config.json"],
    });
    for (const file of model.files) {
      assert.deepEqual(
        await Deno.readFile(`${model.dir}/${file}`),
        await Deno.readFile(`${DDPM}/${file}`),
      );
    }
    const gets = server.requests.filter((r) => r.path.startsWith("/cdn/"));
    assert.deepEqual(gets.map((r) => r.headers["range"]), [
      undefined,
      "bytes=300000-",
      "bytes=300000-",
    ]);
  });
});

Deno.test("hub: when retries run out, nothing appears in snapshots or blobs", async () => {
  await withHub({
    repos: { "test/ddpm": DDPM },
    faults: { drop: { file: LFS_FILE, afterBytes: 1000, times: Infinity } },
  }, async ({ server, cacheDir, base }) => {
    await assertThrowsTyped(
      () => resolveModel("test/ddpm", { ...base, retries: 2, files: [LFS_FILE] }),
      HubError,
      /^test\/ddpm\/unet\/diffusion_pytorch_model\.safetensors: failed after 3 attempt\(s\)/,
    );
    assert.equal(server.requests.filter((r) => r.path.startsWith("/cdn/")).length, 3);
    const left = await tree(cacheDir).catch(() => []);
    assert.deepEqual(left.filter((p) => /^models--[^/]+\/(blobs|snapshots)\/./.test(p)), []);
  });
});

Deno.test("hub: stalled headers or a stalled body time out and are retried", async () => {
  for (const stage of ["headers", "body"] as const) {
    await withHub({
      repos: { "test/ddpm": DDPM },
      faults: { slow: { file: LFS_FILE, delayMs: 2_000, stage } },
    }, async ({ server, base }) => {
      const model = await resolveModel("test/ddpm", { ...base, timeoutMs: 200, files: [LFS_FILE] });
      assert.deepEqual(
        await Deno.readFile(`${model.dir}/${LFS_FILE}`),
        await Deno.readFile(`${DDPM}/${LFS_FILE}`),
        stage,
      );
      assert.equal(server.requests.filter((r) => r.path.startsWith("/cdn/")).length, 2, stage);
    });
  }
});

Deno.test("hub: a renamed repo's relative redirect is followed with the token", async () => {
  await withHub({
    repos: { "test/new-name": DDPM },
    renamed: { "test/old-name": "test/new-name" },
  }, async ({ server, base }) => {
    const model = await resolveModel("test/old-name", {
      ...base,
      token: "hf_secret",
      files: ["unet/config.json"],
    });
    assert.equal(model.commit, fakeCommit("test/new-name"));
    assert(model.root.includes("/models--test--old-name/"), "cached under the id asked for");
    const moved = server.requests.filter((r) => r.path.startsWith("/test/new-name/"));
    assert(
      moved.length >= 2 && moved.every((r) => r.headers["authorization"] === "Bearer hf_secret"),
    );
  });
});

Deno.test("hub: a wrong sha256 or size is an error and leaves no visible file", async () => {
  for (
    const [faults, message] of [
      [{ corrupt: { file: LFS_FILE } }, /sha256 mismatch/],
      [
        { wrongLength: { file: LFS_FILE, delta: 7 } },
        /size mismatch: expected 1033267 bytes, got 1033260/,
      ],
      [{ wrongLength: { file: LFS_FILE, delta: -7 } }, /more than the expected 1033253 bytes/],
    ] as const
  ) {
    await withHub({ repos: { "test/ddpm": DDPM }, faults }, async ({ cacheDir, base }) => {
      await assertThrowsTyped(
        () => resolveModel("test/ddpm", { ...base, files: [LFS_FILE] }),
        HubError,
        message,
      );
      assert.deepEqual(await tree(cacheDir), ["models--test--ddpm", "models--test--ddpm/blobs"]);
    });
  }
});

Deno.test("hub: subfolder and file names cannot leave the model folder", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, base }) => {
    for (
      const options of [
        { subfolder: "../x" },
        { files: ["../../etc/passwd"] },
        { subfolder: "unet", files: ["../../x"] },
        { files: ["/etc/passwd"] },
        { files: ["unet\\..\\..\\x"] },
      ]
    ) {
      await assertThrowsTyped(
        () => resolveModel("test/ddpm", { ...base, ...options }),
        PathEscapeError,
      );
      await assertThrowsTyped(() => resolveModel(DDPM, { ...base, ...options }), PathEscapeError);
    }
    await assertThrowsTyped(
      () =>
        resolveModel("test/ddpm", { ...base, revision: "../../x", files: ["model_index.json"] }),
      PathEscapeError,
    );
    assert.equal(server.requests.length, 0);
  });
});

Deno.test("hub: names sent by a hostile server cannot leave the cache; redirect loops end", async () => {
  const evil = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (req.url.includes("/loop/")) {
      return new Response(null, { status: 302, headers: { Location: new URL(req.url).pathname } });
    }
    if (req.url.includes("/plain/")) return new Response("<html>not a hub</html>");
    if (req.url.includes("/api/")) {
      return Response.json({ sha: "a".repeat(40), siblings: [{ rfilename: "../../../evil" }] });
    }
    return new Response(null, {
      headers: {
        "X-Repo-Commit": "a".repeat(40),
        "ETag": '"../../../evil"',
        "Content-Length": "1",
      },
    });
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const base = { endpoint: `http://127.0.0.1:${evil.addr.port}`, cacheDir };
    await assertThrowsTyped(() => resolveModel("test/evil", base), PathEscapeError, /evil/);
    await assertThrowsTyped(
      () => resolveModel("test/evil", { ...base, files: ["x.json"] }),
      PathEscapeError,
      /etag/,
    );
    await assertThrowsTyped(
      () => resolveModel("test/loop", { ...base, files: ["x.json"] }),
      HubError,
      /more than 5 redirects/,
    );
    await assertThrowsTyped(
      () => resolveModel("test/plain", { ...base, files: ["x.json"] }),
      HubError,
      /did not send X-Repo-Commit.*is HF_ENDPOINT a Hugging Face Hub/,
    );
    await assertThrowsTyped(
      () => resolveModel("test/plain", { ...base, endpoint: "huggingface.co", files: ["x.json"] }),
      HubError,
      /not an http\(s\) URL/,
    );
    assert.deepEqual(await tree(cacheDir), []);
  } finally {
    await evil.shutdown();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("hub: revision by branch, tag-like name and commit hash", async () => {
  await withHub(
    { repos: { "test/multi": { main: DDPM, "v2.0": DDIM } } },
    async ({ server, cacheDir, base }) => {
      const repoDir = `${cacheDir}/models--test--multi`;
      const v2 = await resolveModel("test/multi", {
        ...base,
        revision: "v2.0",
        files: ["model_index.json"],
      });
      assert.equal(v2.commit, fakeCommit("test/multi", "v2.0"));
      assert.equal(await Deno.readTextFile(`${repoDir}/refs/v2.0`), v2.commit);
      assert.deepEqual(
        await Deno.readFile(`${v2.dir}/model_index.json`),
        await Deno.readFile(`${DDIM}/model_index.json`),
      );

      const main = fakeCommit("test/multi");
      const pinned = await resolveModel("test/multi", {
        ...base,
        revision: main,
        files: ["model_index.json"],
      });
      assert.equal(pinned.root, `${repoDir}/snapshots/${main}`);
      assert.deepEqual(
        await Deno.readFile(`${pinned.dir}/model_index.json`),
        await Deno.readFile(`${DDPM}/model_index.json`),
      );
      assert.deepEqual(
        await tree(`${repoDir}/refs`),
        ["v2.0"],
        "no ref is written for a commit hash",
      );
      assert(
        server.requests.some((r) => r.path === `/test/multi/resolve/${main}/model_index.json`),
      );

      const before = server.requests.length;
      await resolveModel("test/multi", { ...base, revision: main, files: ["model_index.json"] });
      assert.equal(server.requests.length, before);
    },
  );
});

Deno.test("hub: a local folder is used as is, without network", async () => {
  await withHub({ repos: {} }, async ({ server, base }) => {
    const model = await resolveModel(DDPM, { ...base, subfolder: "unet", files: ["config.json"] });
    assert.deepEqual(model, { root: DDPM, dir: `${DDPM}/unet`, files: ["config.json"] });
    const all = await resolveModel(DDPM, { ...base, allowPatterns: ["*.json"] });
    assert(all.files.includes("scheduler/scheduler_config.json"));
    await assertThrowsTyped(
      () => resolveModel(DDPM, { ...base, files: ["nope.json"] }),
      NotFoundError,
      /^nope\.json: not in the local model folder/,
    );
    assert.equal(server.requests.length, 0);
  });
});

Deno.test("hub: cache location from HF_HUB_CACHE, HF_HOME, HOME; clear errors when unusable", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, cacheDir }) => {
    const options = { endpoint: server.url, files: ["model_index.json"] };
    const cases: [Record<string, string | undefined>, string][] = [
      [{ HF_HUB_CACHE: `${cacheDir}/a`, HF_HOME: `${cacheDir}/no` }, `${cacheDir}/a`],
      [{ HF_HOME: `${cacheDir}/b` }, `${cacheDir}/b/hub`],
      [
        { HF_HOME: undefined, XDG_CACHE_HOME: undefined, HOME: `${cacheDir}/c` },
        `${cacheDir}/c/.cache/huggingface/hub`,
      ],
    ];
    for (const [env, expected] of cases) {
      await withEnv(env, async () => {
        const model = await resolveModel("test/ddpm", options);
        assert.equal(
          model.root,
          `${expected}/models--test--ddpm/snapshots/${fakeCommit("test/ddpm")}`,
        );
      });
    }
    await withEnv({
      HF_HOME: undefined,
      XDG_CACHE_HOME: undefined,
      HOME: undefined,
      USERPROFILE: undefined,
    }, async () => {
      await assertThrowsTyped(
        () => resolveModel("test/ddpm", options),
        HubError,
        /set HF_HUB_CACHE, HF_HOME or HOME/,
      );
    });
    await Deno.writeTextFile(`${cacheDir}/file`, "");
    await assertThrowsTyped(
      () => resolveModel("test/ddpm", { ...options, cacheDir: `${cacheDir}/file/hub` }),
      HubError,
      /cannot write to the Hugging Face cache at .*file\/hub .*set HF_HUB_CACHE/,
    );
  });
});

Deno.test("hub: HF_ENDPOINT selects the server; concurrent downloads of one file agree", async () => {
  await withHub({ repos: { "test/ddpm": DDPM } }, async ({ server, cacheDir }) => {
    await withEnv({ HF_ENDPOINT: `${server.url}/` }, async () => {
      const [a, b] = await Promise.all([
        resolveModel("test/ddpm", { cacheDir, files: [LFS_FILE] }),
        resolveModel("test/ddpm", { cacheDir, files: [LFS_FILE] }),
      ]);
      assert.equal(a.root, b.root);
      assert.deepEqual(
        await Deno.readFile(`${a.dir}/${LFS_FILE}`),
        await Deno.readFile(`${DDPM}/${LFS_FILE}`),
      );
    });
    assert(!(await tree(cacheDir)).some((p) => p.endsWith(".incomplete")));
  });
});

Deno.test("hub: importable without Deno or node:* at load time (browser)", async () => {
  const url = new URL("../lib/hub.ts", import.meta.url).href;
  const code = `delete globalThis.Deno; const m = await import(${JSON.stringify(url)});
    if (typeof m.resolveModel !== "function") throw new Error("no resolveModel");`;
  const run = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stderr: "piped" })
    .output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", url],
    stdout: "piped",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: { dependencies?: { specifier: string; isDynamic?: boolean }[] }[];
  };
  const staticNode = graph.modules.flatMap((m) => m.dependencies ?? [])
    .filter((d) => d.specifier.startsWith("node:") && !d.isDynamic);
  assert.deepEqual(staticNode, []);
});

Deno.test("hub: allowPatterns are fnmatch globs, as huggingface_hub's", () => {
  const cases: [string, string, boolean][] = [
    ["*.json", "unet/config.json", true],
    ["unet/", "unet/diffusion_pytorch_model.safetensors", true],
    ["unet/", "vae/config.json", false],
    ["*.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors", false],
    ["text_encoder/model.safetensor?", "text_encoder/model.safetensors", true],
    ["[!v]*/config.json", "vae/config.json", false],
    ["[tu]*/config.json", "unet/config.json", true],
    ["a+b(c).json", "a+b(c).json", true],
  ];
  for (const [pattern, path, expected] of cases) {
    assert.equal(patternToRegExp(pattern).test(path), expected, `${pattern} vs ${path}`);
  }
});
