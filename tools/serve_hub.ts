/**
 * Serves local diffusers folders over the Hugging Face Hub's file API on
 * 127.0.0.1, so the real download path (HF_ENDPOINT, the HF cache, model
 * ids) can be tried on a machine without network:
 *
 * ```sh
 * deno task hub fixtures/ddpm-tiny=../shared/fixtures/pipelines/ddpm_tiny --port 8765
 * HF_ENDPOINT=http://127.0.0.1:8765 deno run -A mod.ts --model fixtures/ddpm-tiny --steps 10
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startHubServer } from "../tests/hub_server.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { port: { type: "string", default: "8765" } },
});
const repos: Record<string, string> = {};
for (const arg of positionals) {
  const eq = arg.indexOf("=");
  if (eq < 1) {
    console.error(`expected REPO_ID=FOLDER, got ${arg}`);
    Deno.exit(2);
  }
  repos[arg.slice(0, eq)] = arg.slice(eq + 1);
}
if (Object.keys(repos).length === 0) {
  console.error("usage: deno task hub OWNER/NAME=FOLDER [...] [--port N]");
  Deno.exit(2);
}
const server = await startHubServer({ repos, port: Number(values.port) });
console.log(
  `serving ${Object.keys(repos).join(", ")} at ${server.url} (HF_ENDPOINT=${server.url})`,
);
