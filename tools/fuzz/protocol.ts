/**
 * The messages between the fuzz runner and the child process that runs the
 * parsers. The runner sends one job as JSON on the child's stdin; the child
 * answers with one JSON object per line on stdout: `begin` before each
 * input (so the runner knows which input a hang or crash belongs to),
 * `end` with its outcome, `failure` with the failing input, and `done`.
 *
 * @example
 * ```ts
 * import { fromBase64, toBase64 } from "./protocol.ts";
 * console.log(fromBase64(toBase64(new Uint8Array([1, 2, 255])))); // Uint8Array [1, 2, 255]
 * ```
 *
 * @module
 */

/** A job: mutate and run inputs `[from, to)` of a parser, or replay saved cases from `from`. */
export type Job =
  | {
    type: "fuzz";
    /** URL of the module whose `TARGETS` map holds the parser. */
    targets: string;
    parser: string;
    seed: number;
    from: number;
    to: number;
    /** Epoch milliseconds after which no new input is started. */
    deadline: number;
    slowMs: number;
  }
  | {
    type: "replay";
    /** URL of the module whose `TARGETS` map holds the parser. */
    targets: string;
    parser: string;
    /** Saved cases, their bytes in base64. */
    cases: { name: string; base64: string }[];
    from: number;
    slowMs: number;
  };

/** Why an input counts as a failure. */
export type FailureKind = "untyped" | "allocation" | "slow" | "hang" | "uncaught" | "crash";

/** One failing input. */
export interface Failure {
  /** The parser. */
  parser: string;
  /** Input index (fuzz) or case index (replay). */
  index: number;
  /** The corpus case's name, when replaying. */
  caseName?: string;
  /** What went wrong. */
  kind: FailureKind;
  /** The error or measurement, one line. */
  detail: string;
  /** The input itself. */
  input: Uint8Array;
}

/** Child -> runner messages, one JSON object per stdout line. */
export type ChildMessage =
  | { type: "begin"; index: number }
  | { type: "end"; index: number; loaded: boolean; typed?: string }
  | {
    type: "failure";
    index: number;
    kind: FailureKind;
    detail: string;
    base64: string;
    caseName?: string;
  }
  | { type: "done"; next: number }
  | { type: "fatal"; error: string };

/**
 * Bytes as base64 (for JSON lines).
 *
 * @example
 * ```ts
 * import { toBase64 } from "./protocol.ts";
 * console.log(toBase64(new TextEncoder().encode("hi"))); // "aGk="
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Bytes from base64.
 *
 * @example
 * ```ts
 * import { fromBase64 } from "./protocol.ts";
 * console.log(fromBase64("aGk=")); // Uint8Array [104, 105]
 * ```
 */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
