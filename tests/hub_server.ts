/**
 * A local stand-in for the Hugging Face Hub's file API, serving fixture
 * folders on 127.0.0.1 (port 0) with `Deno.serve`, so the real Hub client
 * code path can be tested without a network:
 *
 * - `HEAD|GET /{repo}/resolve/{revision}/{path}`: `X-Repo-Commit` (a fixed
 *   fake 40-hex commit per repo and revision), `ETag` (git blob sha1),
 *   `Content-Length`, `Range` support. LFS-like files (> 1 MB, or
 *   `.safetensors` / `.bin`) answer `302` to an absolute `/cdn/<sha256>` URL
 *   with `X-Linked-Etag` (sha256) and `X-Linked-Size`, so tests can check
 *   the token is not forwarded there.
 * - `GET /api/models/{repo}/revision/{revision}`: `sha` and `siblings`.
 * - a relative `307` from a renamed repo's old id to its new one.
 * - `404` with `X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound`,
 *   and `401` with `X-Error-Code: GatedRepo` for a gated repo without the token.
 * - Fault injection ({@link HubFaults}): a dropped connection mid-file, an
 *   error status, a stalled body, a wrong advertised size, corrupt bytes.
 *
 * Every request is logged with its headers in `requests`. Responses carry
 * the CORS headers huggingface.co sends, so pages on another origin can read
 * them.
 *
 * @example
 * ```ts
 * import { startHubServer } from "./hub_server.ts";
 * const server = await startHubServer({ repos: { "test/ddpm": "/path/to/ddpm_tiny" } });
 * const r = await fetch(`${server.url}/test/ddpm/resolve/main/model_index.json`);
 * console.log(r.headers.get("X-Repo-Commit"), await r.text());
 * await server.close();
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";

/** One file a fault applies to, and how many times (default once; `Infinity` = always). */
interface FaultTarget {
  /** Repo-relative path of the file. */
  file: string;
  /** How many matching requests the fault hits. */
  times?: number;
}

/** Misbehaviours to inject, each for one file. */
export interface HubFaults {
  /** Close the connection after `afterBytes` bytes of the file's body (Content-Length says more). */
  drop?: FaultTarget & { afterBytes: number };
  /** Answer any request for the file with this status (e.g. 500). */
  status?: FaultTarget & { status: number };
  /** Stall `delayMs` before the headers, or halfway through the body. */
  slow?: FaultTarget & { delayMs: number; stage: "headers" | "body" };
  /** Advertise the size plus `delta` (HEAD and API), serve the true bytes; always on. */
  wrongLength?: { file: string; delta: number };
  /** Serve the file with one byte flipped (same size); always on. */
  corrupt?: { file: string };
}

/** What to serve. */
export interface HubServerOptions {
  /** Repo id → fixture folder (served as `main`), or revision name → folder. */
  repos: Record<string, string | Record<string, string>>;
  /** Old repo id → current id: `resolve` answers a relative 307, as the Hub does for renamed repos. */
  renamed?: Record<string, string>;
  /** Repos that answer 401 `GatedRepo` on `resolve` without the right token. */
  gated?: string[];
  /** The token that opens gated repos. Default {@link TEST_TOKEN}. */
  token?: string;
  /** Faults to inject. */
  faults?: HubFaults;
  /** Port on 127.0.0.1 (default 0: any free port). */
  port?: number;
}

/** A request as the server saw it. */
export interface LoggedRequest {
  /** HTTP method. */
  method: string;
  /** Path and query. */
  path: string;
  /** Request headers, lowercase names. */
  headers: Record<string, string>;
}

/** A running test Hub. */
export interface HubServer {
  /** The endpoint, e.g. `http://127.0.0.1:41234` (use as `HF_ENDPOINT`). */
  url: string;
  /** Every request received, in order. */
  requests: LoggedRequest[];
  /** Stops the server and waits until it has. */
  close(): Promise<void>;
}

/** The token gated repos accept by default. */
export const TEST_TOKEN = "hf_testtoken_0123456789";

const LFS_MIN_SIZE = 1024 * 1024;

interface ServedFile {
  path: string;
  bytes: Uint8Array<ArrayBuffer>;
  gitSha1: string;
  sha256: string;
  lfs: boolean;
}

interface ServedRevision {
  commit: string;
  files: Map<string, ServedFile>;
}

/**
 * The fake commit hash the server gives `repo` at `revision`.
 *
 * @example
 * ```ts
 * import { fakeCommit } from "./hub_server.ts";
 * console.log(fakeCommit("test/ddpm").length); // 40
 * ```
 */
export function fakeCommit(repo: string, revision = "main"): string {
  return createHash("sha1").update(`${repo}@${revision}`).digest("hex");
}

async function readFolder(root: string, prefix = ""): Promise<ServedFile[]> {
  const out: ServedFile[] = [];
  for await (const entry of Deno.readDir(`${root}/${prefix}`)) {
    const path = prefix + entry.name;
    if (entry.isDirectory) out.push(...await readFolder(root, `${path}/`));
    if (!entry.isFile) continue;
    const bytes = await Deno.readFile(`${root}/${path}`);
    const gitSha1 = createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const lfs = bytes.length > LFS_MIN_SIZE || /\.(safetensors|bin)$/.test(path);
    out.push({ path, bytes, gitSha1, sha256, lfs });
  }
  return out;
}

function errorResponse(status: number, code: string, message: string, commit?: string): Response {
  const headers: Record<string, string> = { "X-Error-Code": code, "X-Error-Message": message };
  if (commit !== undefined) headers["X-Repo-Commit"] = commit;
  return new Response(message, { status, headers });
}

/**
 * Starts the test Hub on 127.0.0.1 with an ephemeral port.
 *
 * @example
 * ```ts
 * import { startHubServer } from "./hub_server.ts";
 * const server = await startHubServer({ repos: {}, faults: { status: { file: "a.json", status: 500 } } });
 * await server.close();
 * ```
 */
export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const repos = new Map<string, Map<string, ServedRevision>>();
  const cdn = new Map<string, ServedFile>();
  for (const [repo, spec] of Object.entries(options.repos)) {
    const revisions = new Map<string, ServedRevision>();
    for (const [name, dir] of Object.entries(typeof spec === "string" ? { main: spec } : spec)) {
      const files = await readFolder(dir);
      for (const file of files) if (file.lfs) cdn.set(file.sha256, file);
      revisions.set(name, {
        commit: fakeCommit(repo, name),
        files: new Map(files.map((f) => [f.path, f])),
      });
    }
    repos.set(repo, revisions);
  }
  const token = options.token ?? TEST_TOKEN;
  const faults = options.faults ?? {};
  const remaining = new Map<FaultTarget, number>();
  const requests: LoggedRequest[] = [];
  const closing = new AbortController();

  /** Whether `fault` applies to `file` now, consuming one of its `times`. */
  const hits = (fault: FaultTarget | undefined, file: string): boolean => {
    if (fault === undefined || fault.file !== file) return false;
    const left = remaining.get(fault) ?? fault.times ?? 1;
    remaining.set(fault, left - 1);
    return left > 0;
  };
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        closing.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      closing.signal.addEventListener("abort", done);
    });

  const findRevision = (repo: string, revision: string): ServedRevision | undefined => {
    const revisions = repos.get(repo)!;
    return revisions.get(revision) ??
      [...revisions.values()].find((r) => r.commit === revision);
  };

  const advertisedSize = (file: ServedFile): number =>
    file.bytes.length + (faults.wrongLength?.file === file.path ? faults.wrongLength.delta : 0);

  async function serveBytes(req: Request, file: ServedFile, extra: HeadersInit): Promise<Response> {
    let bytes: Uint8Array<ArrayBuffer> = file.bytes;
    if (faults.corrupt?.file === file.path) {
      bytes = bytes.slice();
      bytes[bytes.length >> 1]! ^= 0xff;
    }
    const headers = new Headers(extra);
    headers.set("Accept-Ranges", "bytes");
    headers.set("Content-Type", "application/octet-stream");
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("Range") ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length || end < start) {
        return new Response(null, {
          status: 416,
          headers: { "Content-Range": `bytes */${bytes.length}` },
        });
      }
      headers.set("Content-Range", `bytes ${start}-${end}/${bytes.length}`);
      bytes = bytes.subarray(start, end + 1);
      status = 206;
    }
    headers.set("Content-Length", String(bytes.length));
    if (req.method === "HEAD") return new Response(null, { status, headers });
    const slow = hits(faults.slow, file.path) ? faults.slow : undefined;
    if (slow?.stage === "headers") await sleep(slow.delayMs);
    const offset = range ? Number(range[1]) : 0;
    const dropAt = hits(faults.drop, file.path) ? faults.drop!.afterBytes - offset : undefined;
    const stallAt = slow?.stage === "body" ? bytes.length >> 1 : undefined;
    if (dropAt === undefined && stallAt === undefined) {
      return new Response(bytes, { status, headers });
    }
    return new Response(faultyBody(bytes, dropAt, stallAt, slow?.delayMs ?? 0), {
      status,
      headers,
    });
  }

  /** A body that stops early (the connection drops) or stalls halfway. */
  function faultyBody(
    bytes: Uint8Array,
    dropAt: number | undefined,
    stallAt: number | undefined,
    delayMs: number,
  ): ReadableStream<Uint8Array> {
    const cut = Math.max(0, Math.min(dropAt ?? bytes.length, bytes.length));
    let stall = stallAt;
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === stall) {
          stall = undefined;
          await sleep(delayMs);
        }
        if (sent >= cut) {
          // Closing before Content-Length bytes were sent drops the connection mid-body.
          controller.close();
          return;
        }
        const limit = stall !== undefined && sent < stall ? stall : cut;
        const end = Math.min(limit, sent + 64 * 1024);
        controller.enqueue(bytes.slice(sent, end));
        sent = end;
      },
    });
  }

  /** Like huggingface.co, any origin may read the files and the headers the client needs (pages). */
  function withCors(response: Response): Response {
    const headers = new Headers(response.headers);
    headers.set("Access-Control-Allow-Origin", "*");
    headers.set(
      "Access-Control-Expose-Headers",
      "X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag, Content-Range, X-Error-Code",
    );
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    requests.push({
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
    });
    const cdnMatch = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdnMatch) {
      const file = cdn.get(cdnMatch[1]!);
      if (!file) return new Response("no such blob", { status: 404 });
      if (hits(faults.status, file.path)) {
        return new Response("injected", { status: faults.status!.status });
      }
      return await serveBytes(req, file, {});
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) return serveApi(api[1]!, decodeURIComponent(api[2]!), url);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) return new Response("not found", { status: 404 });
    const [, repo, rev, rawPath] = resolve;
    const renamedTo = options.renamed?.[repo!];
    if (renamedTo !== undefined) {
      const location = url.pathname.replace(`/${repo}/`, `/${renamedTo}/`);
      return new Response(null, { status: 307, headers: { Location: location } });
    }
    if (!repos.has(repo!)) return errorResponse(404, "RepoNotFound", `Repository not found`);
    if (options.gated?.includes(repo!) && req.headers.get("Authorization") !== `Bearer ${token}`) {
      return errorResponse(
        401,
        "GatedRepo",
        `Access to model ${repo} is restricted. You must be authenticated to access it.`,
      );
    }
    const revision = findRevision(repo!, decodeURIComponent(rev!));
    if (!revision) return errorResponse(404, "RevisionNotFound", "Invalid rev id");
    const path = rawPath!.split("/").map(decodeURIComponent).join("/");
    const file = revision.files.get(path);
    if (!file) return errorResponse(404, "EntryNotFound", "Entry not found", revision.commit);
    if (hits(faults.status, path)) {
      return new Response("injected", { status: faults.status!.status });
    }
    const size = String(advertisedSize(file));
    if (file.lfs) {
      return new Response(null, {
        status: 302,
        headers: {
          "Location": `${url.origin}/cdn/${file.sha256}`,
          "X-Repo-Commit": revision.commit,
          "ETag": `"${file.gitSha1}"`,
          "X-Linked-Etag": `"${file.sha256}"`,
          "X-Linked-Size": size,
        },
      });
    }
    const meta = { "X-Repo-Commit": revision.commit, "ETag": `"${file.gitSha1}"` };
    if (req.method === "HEAD") {
      return new Response(null, { headers: { ...meta, "Content-Length": size } });
    }
    return await serveBytes(req, file, meta);
  }

  function serveApi(repo: string, rev: string, url: URL): Response {
    if (!repos.has(repo)) return errorResponse(404, "RepoNotFound", "Repository not found");
    const revision = findRevision(repo, rev);
    if (!revision) return errorResponse(404, "RevisionNotFound", "Invalid rev id");
    const blobs = url.searchParams.get("blobs") === "true";
    const siblings = [...revision.files.values()].map((file) => ({
      rfilename: file.path,
      ...(blobs
        ? {
          size: advertisedSize(file),
          blobId: file.gitSha1,
          ...(file.lfs ? { lfs: { sha256: file.sha256, size: advertisedSize(file) } } : {}),
        }
        : {}),
    }));
    return Response.json({ id: repo, modelId: repo, sha: revision.commit, siblings });
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    signal: closing.signal,
    onListen() {},
  }, async (req) => withCors(await handle(req)));
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    async close() {
      closing.abort();
      await server.finished;
    },
  };
}
