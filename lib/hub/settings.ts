/**
 * Hub settings from options and the environment, read at call time with
 * huggingface_hub's variable names and defaults:
 *
 * | setting  | option           | environment (first set wins)                                  |
 * | -------- | ---------------- | ------------------------------------------------------------- |
 * | endpoint | `endpoint`       | `HF_ENDPOINT`, else `https://huggingface.co`                  |
 * | cache    | `cacheDir`       | `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`        |
 * | home     |                  | `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, `~/.cache/huggingface` |
 * | token    | `token`          | `HF_TOKEN`, `HF_HUB_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, file `HF_TOKEN_PATH` or `$HF_HOME/token` |
 * | offline  | `localFilesOnly` | `HF_HUB_OFFLINE` = 1 / true / yes / on                        |
 * | timeout  | `timeoutMs`      | `HF_HUB_DOWNLOAD_TIMEOUT` (seconds), else 10 s                |
 *
 * @example
 * ```ts
 * import { defaultCacheDir, hubEndpoint } from "./settings.ts";
 * console.log(hubEndpoint(), defaultCacheDir());
 * ```
 *
 * @module
 */

import { getEnv } from "../env.ts";
import { HubError } from "../errors.ts";

/** The public Hub. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";

/**
 * The Hub endpoint: `override`, else `HF_ENDPOINT`, else the public Hub;
 * without a trailing slash. Anything but an http(s) URL is a {@link HubError}.
 *
 * @example
 * ```ts
 * import { hubEndpoint } from "./settings.ts";
 * console.log(hubEndpoint("http://127.0.0.1:8080/")); // http://127.0.0.1:8080
 * ```
 */
export function hubEndpoint(override?: string): string {
  const endpoint = (override ?? getEnv("HF_ENDPOINT") ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]/.test(endpoint)) {
    throw new HubError(
      `the Hub endpoint ${JSON.stringify(endpoint)} (HF_ENDPOINT) is not an http(s) URL`,
    );
  }
  return endpoint;
}

/**
 * Whether network access is off: `localFilesOnly`, else `HF_HUB_OFFLINE`.
 *
 * @example
 * ```ts
 * import { isOffline } from "./settings.ts";
 * console.log(isOffline(true)); // true
 * ```
 */
export function isOffline(localFilesOnly?: boolean): boolean {
  if (localFilesOnly) return true;
  const value = getEnv("HF_HUB_OFFLINE")?.toUpperCase();
  return value !== undefined && ["1", "ON", "YES", "TRUE"].includes(value);
}

/**
 * The per-request idle timeout in milliseconds: `override`, else
 * `HF_HUB_DOWNLOAD_TIMEOUT` seconds, else 10 s (huggingface_hub's default).
 *
 * @example
 * ```ts
 * import { hubTimeoutMs } from "./settings.ts";
 * console.log(hubTimeoutMs(500)); // 500
 * ```
 */
export function hubTimeoutMs(override?: number): number {
  if (override !== undefined) return override;
  const seconds = Number(getEnv("HF_HUB_DOWNLOAD_TIMEOUT"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 10_000;
}

function expandHome(path: string): string | undefined {
  if (!path.startsWith("~")) return path;
  const home = getEnv("HOME") ?? getEnv("USERPROFILE");
  return home === undefined ? undefined : home + path.slice(1);
}

/**
 * `HF_HOME`, or `undefined` when neither it nor a home folder is known
 * (a browser, or a service without `HOME`).
 *
 * @example
 * ```ts
 * import { hfHome } from "./settings.ts";
 * console.log(hfHome());
 * ```
 */
export function hfHome(): string | undefined {
  const explicit = getEnv("HF_HOME");
  if (explicit !== undefined) return expandHome(explicit);
  const xdg = getEnv("XDG_CACHE_HOME");
  return expandHome(`${xdg ?? "~/.cache"}/huggingface`);
}

/**
 * The Hugging Face hub cache folder from the environment. Throws a
 * {@link HubError} saying what to set when none can be found.
 *
 * @example
 * ```ts
 * import { defaultCacheDir } from "./settings.ts";
 * console.log(defaultCacheDir()); // e.g. /home/me/.cache/huggingface/hub
 * ```
 */
export function defaultCacheDir(): string {
  const explicit = getEnv("HF_HUB_CACHE") ?? getEnv("HUGGINGFACE_HUB_CACHE");
  const home = hfHome();
  const dir = explicit !== undefined ? expandHome(explicit) : home && `${home}/hub`;
  if (dir === undefined) {
    throw new HubError(
      "no Hugging Face cache folder: set HF_HUB_CACHE, HF_HOME or HOME, or pass cacheDir",
    );
  }
  return dir;
}

/**
 * The token to send to the Hub: `option` (`false` = none), else the
 * environment, else the token file written by `huggingface-cli login`.
 * `readTextFile` reads that file (`undefined` when absent).
 *
 * @example
 * ```ts
 * import { findToken } from "./settings.ts";
 * const token = await findToken(undefined, () => Promise.resolve(undefined));
 * console.log(token === undefined ? "anonymous" : "authenticated");
 * ```
 */
export async function findToken(
  option: string | false | undefined,
  readTextFile: (path: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  if (option === false) return undefined;
  const fromEnv = option ?? getEnv("HF_TOKEN") ?? getEnv("HF_HUB_TOKEN") ??
    getEnv("HUGGING_FACE_HUB_TOKEN");
  if (fromEnv !== undefined) return fromEnv.trim() || undefined;
  const explicit = getEnv("HF_TOKEN_PATH");
  const home = hfHome();
  const path = explicit !== undefined ? expandHome(explicit) : home && `${home}/token`;
  if (path === undefined) return undefined;
  return (await readTextFile(path))?.trim() || undefined;
}
