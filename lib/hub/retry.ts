/**
 * Bounded retries with exponential backoff for Hub requests. Retried: a
 * dropped or stalled connection (any error that is not one of this
 * library's typed errors) and server errors (HTTP 5xx, 429). Not retried:
 * typed errors such as 404, 401 or a checksum mismatch, and a missing
 * permission, which a second try would only repeat.
 *
 * @example
 * ```ts
 * import { withRetries } from "./retry.ts";
 * let calls = 0;
 * const value = await withRetries({ retries: 2, retryDelayMs: 1 }, "config.json", () => {
 *   if (++calls < 2) throw new TypeError("connection reset");
 *   return Promise.resolve(42);
 * });
 * console.log(value, calls); // 42 2
 * ```
 *
 * @module
 */

import { DiffusersError, HubError } from "../errors.ts";
import { logger } from "../log.ts";

/** How often and how patiently to retry. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** The first backoff delay in ms; it doubles each retry, up to 8 s. */
  retryDelayMs: number;
}

const MAX_DELAY_MS = 8_000;

/**
 * Whether `error` is worth another attempt.
 *
 * @example
 * ```ts
 * import { isRetryable } from "./retry.ts";
 * import { HubError } from "../errors.ts";
 * console.log(isRetryable(new HubError("bad gateway", { status: 502 }))); // true
 * ```
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof HubError) {
    return error.status !== undefined && (error.status >= 500 || error.status === 429);
  }
  // A missing Deno permission (`--allow-net`) will not come back on a second try.
  const name = (error as Error | undefined)?.name;
  return !(error instanceof DiffusersError) && name !== "NotCapable" && name !== "PermissionDenied";
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or
 * has failed `retries + 1` times. A final network error becomes a
 * {@link HubError} naming `what`.
 *
 * @example
 * ```ts
 * import { withRetries } from "./retry.ts";
 * const text = await withRetries({ retries: 0, retryDelayMs: 0 }, "x", () => Promise.resolve("ok"));
 * console.log(text); // ok
 * ```
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  what: string,
  attempt: (index: number) => Promise<T>,
): Promise<T> {
  for (let index = 0;; index++) {
    try {
      return await attempt(index);
    } catch (error) {
      if (!isRetryable(error) || index >= policy.retries) {
        if (error instanceof DiffusersError) throw error;
        throw new HubError(
          `failed after ${index + 1} attempt(s): ${(error as Error).message}`,
          { file: what, cause: error },
        );
      }
      const delay = Math.min(policy.retryDelayMs * 2 ** index, MAX_DELAY_MS);
      logger.info(`${what}: ${(error as Error).message}; retry ${index + 1} in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
