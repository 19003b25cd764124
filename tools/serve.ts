/**
 * Development server for the web example: serves `examples/web/` at `/`,
 * the bundle (`dist/`) at `/dist/`, the repo's bundled models at `/models/`
 * and, when present, the shared test fixtures at `/fixtures/`, on
 * 127.0.0.1 with the COOP/COEP headers that multi-threaded WASM needs.
 *
 * ```sh
 * deno task bundle && deno task serve   # then open http://127.0.0.1:8000/
 * ```
 *
 * @example
 * ```ts
 * import { serveExample } from "./serve.ts";
 * const server = serveExample({ port: 0 });
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 *
 * @module
 */

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** URL prefix → folder, longest prefix first. */
const DEFAULT_ROOTS: Readonly<Record<string, string>> = {
  "/dist/": `${REPO}/dist`,
  "/models/": `${REPO}/models/pretrained`,
  "/fixtures/": `${REPO}/../shared/fixtures/pipelines`,
  "/": `${REPO}/examples/web`,
};

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
  wasm: "application/wasm",
  png: "image/png",
  txt: "text/plain; charset=utf-8",
};

/** Options for {@link serveExample}. */
export interface ServeOptions {
  /** Port on 127.0.0.1 (default 8000; 0 picks a free one). */
  readonly port?: number;
  /** URL prefix → folder (default: the example, dist, models and fixtures). */
  readonly roots?: Readonly<Record<string, string>>;
}

/** The file for a URL path, or undefined when no root serves it or it climbs out (`..`). */
function fileFor(pathname: string, roots: Readonly<Record<string, string>>): string | undefined {
  const path = decodeURIComponent(pathname);
  if (path.split("/").includes("..")) return undefined;
  const prefix = Object.keys(roots).sort((a, b) => b.length - a.length).find((p) =>
    path.startsWith(p)
  );
  if (prefix === undefined) return undefined;
  const rest = path.slice(prefix.length);
  return `${roots[prefix]}/${rest === "" || rest.endsWith("/") ? `${rest}index.html` : rest}`;
}

/** A file as a response; 404 for anything that is not a readable file. */
async function respond(file: string | undefined): Promise<Response> {
  const headers = {
    // Cross-origin isolation lets tfjs-wasm use SharedArrayBuffer threads.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cache-Control": "no-cache",
  };
  try {
    const info = file === undefined ? undefined : await Deno.stat(file);
    if (file === undefined || !info?.isFile) throw new Deno.errors.NotFound();
    const type = TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream";
    const body = (await Deno.open(file)).readable;
    // The length lets pages show download progress as a fraction.
    const length = String(info.size);
    return new Response(body, {
      headers: { ...headers, "Content-Type": type, "Content-Length": length },
    });
  } catch {
    return new Response("not found", { status: 404, headers });
  }
}

/**
 * Starts the server; resolves paths under the given roots only.
 *
 * @example
 * ```ts
 * import { serveExample } from "./serve.ts";
 * const server = serveExample({ port: 8123, roots: { "/": "./examples/web" } });
 * await server.shutdown();
 * ```
 */
export function serveExample(options: ServeOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  const roots = options.roots ?? DEFAULT_ROOTS;
  return Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 8000, onListen: () => {} },
    (request) => respond(fileFor(new URL(request.url).pathname, roots)),
  );
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 8000);
  const server = serveExample({ port });
  console.log(`serving http://127.0.0.1:${server.addr.port}/`);
}
