/**
 * Minimal levelled logging to stderr (console.error), so library messages
 * never mix with a program's stdout. The level comes from
 * `DIFFUSERS_VERBOSITY` (`error`, `warning`, `info`, `debug`; default
 * `warning`), as diffusers' own variable, or from {@link setLogLevel}.
 *
 * @example
 * ```ts
 * import { logger, setLogLevel } from "./log.ts";
 * setLogLevel("debug");
 * logger.debug("loading unet");
 * ```
 *
 * @module
 */

import { getEnv } from "./env.ts";

/** Log levels, most severe first. */
export type LogLevel = "error" | "warning" | "info" | "debug";

const ORDER: Record<LogLevel, number> = { error: 0, warning: 1, info: 2, debug: 3 };

function initialLevel(): LogLevel {
  const v = getEnv("DIFFUSERS_VERBOSITY")?.toLowerCase();
  return v !== undefined && v in ORDER ? (v as LogLevel) : "warning";
}

let level: LogLevel = initialLevel();
const onceSeen = new Set<string>();

/**
 * Sets the level below which messages are dropped.
 *
 * @example
 * ```ts
 * import { setLogLevel } from "./log.ts";
 * setLogLevel("error");
 * ```
 */
export function setLogLevel(next: LogLevel): void {
  level = next;
}

function emit(at: LogLevel, message: string): void {
  if (ORDER[at] <= ORDER[level]) console.error(`[diffusers-tfjs] ${at}: ${message}`);
}

/** Level-named log functions; `*Once` variants print a given message only once per process. */
export interface Logger {
  /** An error the library recovered from. */
  error(message: string): void;
  /** Something the user should probably fix. */
  warning(message: string): void;
  /** Progress and choices worth knowing. */
  info(message: string): void;
  /** Details for debugging. */
  debug(message: string): void;
  /** `debug`, but each distinct message only once. */
  debugOnce(message: string): void;
}

/** The library's logger. */
export const logger: Logger = {
  error: (m) => emit("error", m),
  warning: (m) => emit("warning", m),
  info: (m) => emit("info", m),
  debug: (m) => emit("debug", m),
  debugOnce: (m) => {
    if (onceSeen.has(m)) return;
    onceSeen.add(m);
    emit("debug", m);
  },
};
