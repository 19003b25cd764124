/**
 * HTTP requests to the Hub with the token policy huggingface_hub follows:
 * the `Authorization: Bearer` header goes only to the endpoint's own origin
 * and is dropped as soon as a request is redirected to an absolute URL (the
 * CDN that serves LFS files), even when that URL is on the same host.
 * Redirects are followed by hand (`redirect: "manual"`), at most
 * {@link MAX_REDIRECTS}; every wait for headers or a body chunk is bounded
 * by an idle timeout.
 *
 * @example
 * ```ts
 * import { hubFetch } from "./http.ts";
 * const response = await hubFetch(
 *   { endpoint: "https://huggingface.co", timeoutMs: 10_000 },
 *   "https://huggingface.co/api/models/google/ddpm-cifar10-32/revision/main",
 * );
 * console.log(response.status);
 * await response.close();
 * ```
 *
 * @module
 */

import { HubError } from "../errors.ts";

/** How many redirects one request may follow. */
export const MAX_REDIRECTS = 5;

/** Where and how to reach the Hub. */
export interface HubConnection {
  /** The endpoint, e.g. `https://huggingface.co` (no trailing slash). */
  endpoint: string;
  /** The user's token; never logged, sent only to the endpoint's origin. */
  token?: string;
  /** Idle timeout in milliseconds for headers and each body chunk. */
  timeoutMs: number;
}

/** Per-request choices. */
export interface HubRequestInit {
  /** `GET` (default) or `HEAD`. */
  method?: "GET" | "HEAD";
  /** Extra headers (never `Authorization`: the token comes from the connection). */
  headers?: Record<string, string>;
  /** Whether the token may be sent at all (false for CDN URLs). Default true. */
  auth?: boolean;
  /**
   * Return a redirect to an absolute URL instead of following it (a `HEAD`
   * reads the file's metadata there, like huggingface_hub). Default false.
   */
  stopAtAbsoluteRedirect?: boolean;
}

/** A response whose body reads are bounded by the idle timeout. */
export interface HubResponse {
  /** The HTTP status. */
  readonly status: number;
  /** The response headers. */
  readonly headers: Headers;
  /** The URL that answered (after any redirects followed). */
  readonly url: string;
  /** The raw response (for error mapping). */
  readonly response: Response;
  /** The body's chunks; a chunk that takes longer than the timeout aborts the request. */
  chunks(): AsyncGenerator<Uint8Array>;
  /** The body as JSON. */
  json(): Promise<unknown>;
  /** Releases the body and the timer; safe to call more than once. */
  close(): Promise<void>;
}

function isAbsoluteUrl(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:|^\/\//i.test(location);
}

/**
 * Requests `url`, attaching the token only when allowed and `url` is on the
 * endpoint's origin, following redirects by hand. The caller must
 * {@link HubResponse.close} the result.
 *
 * @example
 * ```ts
 * import { hubFetch } from "./http.ts";
 * const r = await hubFetch({ endpoint: "http://127.0.0.1:9", timeoutMs: 100 }, "http://127.0.0.1:9/x")
 *   .catch((e) => e);
 * console.log(r instanceof Error); // true: nothing listens there
 * ```
 */
export async function hubFetch(
  connection: HubConnection,
  url: string,
  init: HubRequestInit = {},
): Promise<HubResponse> {
  const origin = new URL(connection.endpoint).origin;
  let auth = init.auth ?? true;
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers = new Headers(init.headers);
    if (auth && connection.token !== undefined && new URL(current).origin === origin) {
      headers.set("Authorization", `Bearer ${connection.token}`);
    }
    const response = await open(current, init.method ?? "GET", headers, connection.timeoutMs);
    const location = response.headers.get("Location");
    if (response.status < 300 || response.status > 399 || location === null) return response;
    if (isAbsoluteUrl(location)) {
      if (init.stopAtAbsoluteRedirect) return response;
      // An absolute redirect leaves the Hub's API (a CDN): never forward the token.
      auth = false;
    }
    await response.close();
    current = new URL(location, current).href;
  }
  throw new HubError(`more than ${MAX_REDIRECTS} redirects from ${url}`);
}

async function open(
  url: string,
  method: string,
  headers: Headers,
  timeoutMs: number,
): Promise<HubResponse> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(
      // A DOMException, not a HubError: a stalled connection is worth retrying.
      () => controller.abort(new DOMException(`no data for ${timeoutMs} ms`, "TimeoutError")),
      timeoutMs,
    );
  };
  const disarm = (): void => clearTimeout(timer);
  arm();
  let response: Response;
  try {
    response = await fetch(url, { method, headers, redirect: "manual", signal: controller.signal });
  } catch (e) {
    disarm();
    throw controller.signal.aborted ? controller.signal.reason : e;
  }
  disarm();
  let consumed = false;
  const close = async (): Promise<void> => {
    disarm();
    if (!consumed && response.body !== null) {
      consumed = true;
      await response.body.cancel().catch(() => {});
    }
  };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (response.body === null) return;
    consumed = true;
    const reader = response.body.getReader();
    try {
      while (true) {
        arm();
        const { done, value } = await reader.read().catch((e) => {
          throw controller.signal.aborted ? controller.signal.reason : e;
        });
        disarm();
        if (done) return;
        yield value;
      }
    } finally {
      disarm();
      await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
  const json = async (): Promise<unknown> => {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of chunks()) text += decoder.decode(chunk, { stream: true });
    try {
      return JSON.parse(text + decoder.decode());
    } catch (e) {
      throw new HubError(`${url} did not answer JSON`, { cause: e });
    }
  };
  return {
    status: response.status,
    headers: response.headers,
    url,
    response,
    chunks,
    json,
    close,
  };
}
