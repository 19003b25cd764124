/**
 * Runs fuzz jobs in a child process and watches it: the child reports each
 * input before it starts it, and failures as it finds them. An input that
 * runs longer than `hangMs` is a hang: the child is killed, the input is
 * rebuilt here from the seed (inputs are a pure function of seed, parser
 * and index) and reported, and a fresh child carries on with the next one.
 * A child that dies mid-input (V8 out of memory, a panic) is a crash,
 * reported the same way. A process, not a worker, because a terminated
 * worker spinning in a loop keeps burning its thread.
 *
 * @example
 * ```ts
 * import { fuzz } from "./runner.ts";
 * const [report] = await fuzz({ seed: 1, iterations: 100, seconds: 30, parsers: ["png"] });
 * console.log(report!.tried, report!.failures.length);
 * ```
 *
 * @module
 */

import { type ChildMessage, type Failure, fromBase64, type Job, toBase64 } from "./protocol.ts";
import { Rng } from "./rng.ts";
import { SHARED_DIR } from "./seeds.ts";
import type { FuzzTarget } from "./target.ts";

/** The module holding the library's parsers' targets. */
const DEFAULT_TARGETS = new URL("./targets/mod.ts", import.meta.url).href;
const CHILD = new URL("./child.ts", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;

/** Loads the `TARGETS` map of a targets module. */
async function targetsOf(url: string): Promise<ReadonlyMap<string, FuzzTarget<unknown>>> {
  return ((await import(url)) as { TARGETS: ReadonlyMap<string, FuzzTarget<unknown>> }).TARGETS;
}

/** Options of {@link fuzz}. */
export interface FuzzOptions {
  /** The run seed; with it every input can be rebuilt. */
  seed: number;
  /** Inputs per parser. */
  iterations: number;
  /** Wall-clock limit for the whole run, shared out evenly among the parsers left. */
  seconds: number;
  /** Parsers to fuzz, by target name. */
  parsers: readonly string[];
  /** A finished input slower than this is a failure (default 2000 ms). */
  slowMs?: number;
  /** An input still running after this is a hang (default 20000 ms). */
  hangMs?: number;
  /** Called for each failure as it is found. */
  onFailure?: (failure: Failure) => void | Promise<void>;
  /** Called after each parser. */
  onParserDone?: (report: ParserReport) => void;
  /** URL of a module exporting a `TARGETS` map (default: the library's parsers). */
  targets?: string;
}

/** What one parser's run found. */
export interface ParserReport {
  /** The parser. */
  parser: string;
  /** Inputs tried. */
  tried: number;
  /** Inputs that loaded. */
  loads: number;
  /** Inputs refused with a typed library error. */
  typed: number;
  /** Typed refusals by error class. */
  typedByClass: Record<string, number>;
  /** Every failing input. */
  failures: Failure[];
  /** Wall-clock milliseconds. */
  ms: number;
}

/** Outcome counts of one parser's inputs. */
class Counters {
  tried = 0;
  loads = 0;
  typed = 0;
  readonly byClass: Record<string, number> = {};

  record(m: { loaded: boolean; typed?: string }): void {
    this.tried++;
    if (m.loaded) this.loads++;
    else if (m.typed !== undefined) {
      this.typed++;
      this.byClass[m.typed] = (this.byClass[m.typed] ?? 0) + 1;
    }
  }
}

type SegmentEnd =
  | { type: "done"; next: number }
  | { type: "stuck"; index: number; kind: "hang" | "crash"; detail: string };

/** How long a child may take to load its modules and seeds before it counts as broken. */
const STARTUP_MS = 120_000;

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

/** Keeps the last few kilobytes a child wrote to stderr, for crash reports. */
async function tail(stream: ReadableStream<Uint8Array>, into: { text: string }): Promise<void> {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    into.text = (into.text + chunk).slice(-2000);
  }
}

/**
 * Runs one job in a fresh child process (read and env permissions only)
 * and watches it: an input that outlives `hangMs` gets the child killed.
 */
async function runSegment(
  job: Job,
  counters: Counters,
  hangMs: number,
  onFailure: (f: Failure) => void,
): Promise<SegmentEnd> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-read=${REPO},${SHARED_DIR}`, "--allow-env", CHILD],
    cwd: REPO,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = { text: "" };
  const stderrDone = tail(child.stderr, stderr);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(job)));
  await writer.close();
  let running: number | undefined;
  let since = performance.now();
  let hung: number | undefined;
  let next: number | undefined;
  let fatal: string | undefined;
  const watchdog = setInterval(() => {
    const waited = performance.now() - since;
    if (running !== undefined ? waited > hangMs : waited > STARTUP_MS) {
      hung = running ?? -1;
      child.kill("SIGKILL");
    }
  }, 50);
  try {
    for await (const line of lines(child.stdout)) {
      const m = JSON.parse(line) as ChildMessage;
      since = performance.now();
      if (m.type === "begin") running = m.index;
      else if (m.type === "end") {
        counters.record(m);
        running = undefined;
      } else if (m.type === "failure") {
        const { index, kind, detail, caseName } = m;
        onFailure({
          parser: job.parser,
          index,
          kind,
          detail,
          caseName,
          input: fromBase64(m.base64),
        });
      } else if (m.type === "done") next = m.next;
      else fatal = m.error;
    }
  } finally {
    clearInterval(watchdog);
  }
  const status = await child.status;
  await stderrDone;
  if (hung === -1) throw new Error(`fuzz child did not start: ${stderr.text}`);
  if (hung !== undefined) {
    return { type: "stuck", index: hung, kind: "hang", detail: `no result after ${hangMs} ms` };
  }
  if (fatal !== undefined) throw new Error(`fuzz child failed: ${fatal}`);
  if (next !== undefined) return { type: "done", next };
  const how = `exit code ${status.code}${status.signal ? `, signal ${status.signal}` : ""}`;
  if (running !== undefined) {
    return {
      type: "stuck",
      index: running,
      kind: "crash",
      detail: `${how}: ${stderr.text.trim()}`,
    };
  }
  throw new Error(`fuzz child failed (${how}): ${stderr.text}`);
}

/** Runs `makeJob(from)` segments until one finishes, restarting after each stuck input. */
async function supervise(
  parser: string,
  makeJob: (from: number) => Job,
  inputAt: (index: number) => Promise<Uint8Array>,
  hangMs: number,
  onFailure: (f: Failure) => void,
): Promise<Counters> {
  const counters = new Counters();
  let from = 0;
  while (true) {
    const end = await runSegment(makeJob(from), counters, hangMs, onFailure);
    if (end.type === "done") return counters;
    counters.record({ loaded: false });
    const input = await inputAt(end.index);
    onFailure({ parser, index: end.index, kind: end.kind, detail: end.detail, input });
    from = end.index + 1;
  }
}

function report(parser: string, counters: Counters, failures: Failure[], ms: number): ParserReport {
  return {
    parser,
    tried: counters.tried,
    loads: counters.loads,
    typed: counters.typed,
    typedByClass: counters.byClass,
    failures,
    ms,
  };
}

/**
 * Fuzzes each parser in turn with `iterations` mutated inputs (or until its
 * share of `seconds` runs out).
 *
 * @example
 * ```ts
 * import { fuzz } from "./runner.ts";
 * const reports = await fuzz({ seed: 7, iterations: 50, seconds: 60, parsers: ["config", "png"] });
 * console.log(reports.map((r) => `${r.parser}: ${r.tried}`));
 * ```
 */
export async function fuzz(options: FuzzOptions): Promise<ParserReport[]> {
  const reports: ParserReport[] = [];
  const end = performance.now() + options.seconds * 1000;
  const targets = options.targets ?? DEFAULT_TARGETS;
  const known = await targetsOf(targets);
  for (const [i, parser] of options.parsers.entries()) {
    const target = known.get(parser);
    if (!target) {
      throw new Error(`unknown parser ${parser}; known: ${[...known.keys()].join(", ")}`);
    }
    const start = performance.now();
    const share = (end - start) / (options.parsers.length - i);
    const failures: Failure[] = [];
    let seeds: unknown[] | undefined;
    const counters = await supervise(
      parser,
      (from) => ({
        type: "fuzz",
        targets,
        parser,
        seed: options.seed,
        from,
        to: options.iterations,
        deadline: Date.now() + Math.max(0, share - (performance.now() - start)),
        slowMs: options.slowMs ?? 2000,
      }),
      async (index) =>
        target.mutate(Rng.derive(options.seed, parser, index), seeds ??= await target.seeds()),
      options.hangMs ?? 20_000,
      (f) => {
        failures.push(f);
        void options.onFailure?.(f);
      },
    );
    const r = report(parser, counters, failures, performance.now() - start);
    options.onParserDone?.(r);
    reports.push(r);
  }
  return reports;
}

/**
 * Runs saved cases of one parser (the regression corpus) through the same
 * checks.
 *
 * @example
 * ```ts
 * import { replay } from "./runner.ts";
 * const r = await replay("png", [{ name: "x.png", bytes: new Uint8Array(3) }]);
 * console.log(r.typed); // 1: a typed "not a readable PNG"
 * ```
 */
export async function replay(
  parser: string,
  cases: { name: string; bytes: Uint8Array }[],
  options: { slowMs?: number; hangMs?: number; targets?: string } = {},
): Promise<ParserReport> {
  const targets = options.targets ?? DEFAULT_TARGETS;
  if (!(await targetsOf(targets)).has(parser)) throw new Error(`unknown parser ${parser}`);
  const start = performance.now();
  const failures: Failure[] = [];
  const counters = await supervise(
    parser,
    (from) => ({
      type: "replay",
      targets,
      parser,
      cases: cases.map(({ name, bytes }) => ({ name, base64: toBase64(bytes) })),
      from,
      slowMs: options.slowMs ?? 2000,
    }),
    (index) => Promise.resolve(cases[index]!.bytes),
    options.hangMs ?? 20_000,
    (f) => failures.push(f),
  );
  return report(parser, counters, failures, performance.now() - start);
}
