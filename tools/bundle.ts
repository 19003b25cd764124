/**
 * Builds `dist/diffusers.js`: one ESM bundle of `mod.ts` for web pages, using
 * the tfjs packages' browser builds, plus the tfjs-wasm `.wasm` binaries next
 * to it (the bundle finds them beside itself).
 *
 * ```sh
 * deno task bundle
 * ```
 *
 * @example
 * ```ts
 * import { bundle } from "./bundle.ts";
 * const file = await bundle();
 * console.log(file); // .../dist/diffusers.js
 * ```
 *
 * @module
 */

import * as esbuild from "esbuild";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The folders (by package name) that hold the npm packages deno.json's import map names. */
async function npmFolders(): Promise<Record<string, string>> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`)) as {
    imports: Record<string, string>;
  };
  const folders: Record<string, string> = {};
  for (const [name, target] of Object.entries(config.imports)) {
    const m = target.match(/^npm:(@?[^@]+)@(.+)$/);
    if (!m || m[1] !== name) continue;
    // Deno's node_modules layout keeps each package under .deno/<name with + for />@<version>.
    folders[name] = `${REPO}/node_modules/.deno/${name.replace("/", "+")}@${m[2]}/node_modules`;
  }
  return folders;
}

/**
 * Writes the bundle and copies the WASM binaries into `outDir`; returns the bundle's path.
 *
 * @example
 * ```ts
 * import { bundle } from "./bundle.ts";
 * await bundle(`${Deno.cwd()}/dist`);
 * ```
 */
export async function bundle(outDir = `${REPO}/dist`): Promise<string> {
  const folders = await npmFolders();
  const outfile = `${outDir}/diffusers.js`;
  await esbuild.build({
    stdin: {
      contents: 'import "./tools/bundle_wasm_paths.ts";\nexport * from "./mod.ts";\n',
      resolveDir: REPO,
      loader: "ts",
    },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    // Bare names resolve as Node would, package "exports" and "browser" fields included.
    nodePaths: Object.values(folders),
    // The CLI (imported by mod.ts under import.meta.main only) and the file-system Hub
    // cache's node:crypto are Deno-only and never loaded in a page: leave them out.
    external: ["./lib/cli.ts", "node:*"],
    outfile,
    logLevel: "warning",
  });
  await esbuild.stop();
  const wasmDir = `${folders["@tensorflow/tfjs-backend-wasm"]}/@tensorflow/tfjs-backend-wasm/dist`;
  for await (const entry of Deno.readDir(wasmDir)) {
    if (entry.name.endsWith(".wasm")) {
      await Deno.copyFile(`${wasmDir}/${entry.name}`, `${outDir}/${entry.name}`);
    }
  }
  return outfile;
}

if (import.meta.main) console.log(`wrote ${await bundle()}`);
