/**
 * The fuzz child process: installs the allocation guard, reads one job from
 * stdin, loads the parser's target and seeds, and runs inputs one by one,
 * classifying each as loaded, refused with a typed library error, or a
 * failure (another exception, an allocation past the input's budget, a run
 * slower than `slowMs`, or a rejection the parser left unhandled). It runs
 * with read and env permissions only: no network, no writes. Hangs and
 * crashes are the runner's to see; this process just stops answering.
 *
 * Started by the runner as `deno run --allow-read --allow-env tools/fuzz/child.ts`.
 *
 * @example
 * ```ts
 * const child = new Deno.Command(Deno.execPath(), {
 *   args: ["run", "--allow-read", "--allow-env", new URL("./child.ts", import.meta.url).pathname],
 *   stdin: "piped",
 *   stdout: "piped",
 * }).spawn();
 * child.kill();
 * ```
 *
 * @module
 */

import { installAllocationGuard, measureAllocations } from "./alloc_guard.ts";
import { type ChildMessage, type FailureKind, fromBase64, type Job, toBase64 } from "./protocol.ts";
import { Rng } from "./rng.ts";
import type { FuzzTarget } from "./target.ts";

// Before any parser code is loaded, so every allocation it makes goes through the guard.
installAllocationGuard();
const { DiffusersError } = await import("../../lib/errors.ts");

const encoder = new TextEncoder();

function send(message: ChildMessage): void {
  const line = encoder.encode(`${JSON.stringify(message)}\n`);
  for (let done = 0; done < line.length;) done += Deno.stdout.writeSync(line.subarray(done));
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const at = e.stack?.split("\n").find((l) => l.trim().startsWith("at ")) ?? "";
    return `${e.name}: ${e.message.slice(0, 300)} ${at.trim()}`.trim();
  }
  return `thrown ${typeof e}: ${String(e).slice(0, 300)}`;
}

/** The input run last, to which a late unhandled rejection is charged. */
let last: { index: number; input: Uint8Array; caseName?: string } | undefined;

function fail(kind: FailureKind, detail: string): void {
  if (!last) return;
  const { index, input, caseName } = last;
  send({ type: "failure", index, kind, detail, base64: toBase64(input), caseName });
}

globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  fail("uncaught", `unhandled rejection: ${describe(event.reason)}`);
});
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  fail("uncaught", `uncaught error: ${describe(event.error)}`);
});

/** One trip through the event loop; a message port is far quicker than a 0 ms timer. */
const channel = new MessageChannel();
function turn(): Promise<void> {
  return new Promise((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function runOne(
  target: FuzzTarget<unknown>,
  input: Uint8Array,
  index: number,
  slowMs: number,
  caseName?: string,
): Promise<void> {
  last = { index, input, caseName };
  send({ type: "begin", index });
  const budget = target.allocationBudget(input.length);
  const start = performance.now();
  const report = await measureAllocations(budget, () => target.run(input));
  const ms = performance.now() - start;
  // Let the event loop turn, so a rejection the parser left unhandled is reported against this input.
  await turn();
  const typed = report.failed && report.error instanceof DiffusersError
    ? (report.error as Error).name
    : undefined;
  if (report.exceeded) {
    fail("allocation", `asked for ${report.largest} bytes; budget ${budget} for ${input.length}`);
  } else if (report.failed && typed === undefined) {
    fail("untyped", describe(report.error));
  } else if (ms > slowMs) {
    fail("slow", `took ${ms.toFixed(0)} ms`);
  }
  send({ type: "end", index, loaded: !report.failed, typed });
}

async function work(job: Job): Promise<number> {
  const { TARGETS } = await import(job.targets) as {
    TARGETS: ReadonlyMap<string, FuzzTarget<unknown>>;
  };
  const target = TARGETS.get(job.parser);
  if (!target) throw new Error(`no fuzz target ${job.parser}`);
  if (job.type === "replay") {
    for (let i = job.from; i < job.cases.length; i++) {
      const { name, base64 } = job.cases[i]!;
      await runOne(target, fromBase64(base64), i, job.slowMs, name);
    }
    return job.cases.length;
  }
  const seeds = await target.seeds();
  let i = job.from;
  for (; i < job.to && Date.now() < job.deadline; i++) {
    await runOne(target, target.mutate(Rng.derive(job.seed, job.parser, i), seeds), i, job.slowMs);
  }
  return i;
}

try {
  const job = JSON.parse(await new Response(Deno.stdin.readable).text()) as Job;
  send({ type: "done", next: await work(job) });
} catch (e) {
  send({ type: "fatal", error: describe(e) });
} finally {
  // An open port would keep this process alive.
  channel.port1.close();
}
