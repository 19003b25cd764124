/**
 * Turns a failed Hub response into a typed error that names the repo, the
 * file and what to do, using the Hub's `X-Error-Code` header as
 * huggingface_hub's `hf_raise_for_status` does (`RepoNotFound`,
 * `RevisionNotFound`, `EntryNotFound`, `GatedRepo`).
 *
 * @example
 * ```ts
 * import { statusError } from "./status.ts";
 * const error = statusError(new Response(null, { status: 404, headers: { "X-Error-Code": "EntryNotFound" } }), {
 *   repoId: "owner/name", revision: "main", file: "unet/config.json",
 * });
 * console.log(error.name); // NotFoundError
 * ```
 *
 * @module
 */

import { GatedRepoError, HubError, NotFoundError } from "../errors.ts";

/** What a request was about, for error messages. */
export interface RequestSubject {
  /** The Hub repo id. */
  repoId: string;
  /** The revision asked for. */
  revision: string;
  /** The repo-relative file, if the request was for one. */
  file?: string;
}

const TOKEN_HINT = "set HF_TOKEN (or run `huggingface-cli login`) with a token that has access " +
  "(https://huggingface.co/settings/tokens), and accept the model's conditions on its Hub page";

/**
 * The typed error for a response that is not OK: {@link NotFoundError} for a
 * missing repo, revision or file, {@link GatedRepoError} for 401/403, else a
 * {@link HubError} with the status.
 *
 * @example
 * ```ts
 * import { statusError } from "./status.ts";
 * const e = statusError(new Response(null, { status: 401 }), { repoId: "a/b", revision: "main" });
 * console.log(e.message.includes("HF_TOKEN")); // true
 * ```
 */
export function statusError(response: Response, subject: RequestSubject): HubError | NotFoundError {
  const code = response.headers.get("X-Error-Code");
  const detail = response.headers.get("X-Error-Message");
  const { repoId, revision, file } = subject;
  const context = { file };
  const status = response.status;
  if (code === "RepoNotFound") {
    return new NotFoundError(
      `repository ${repoId} not found on the Hub (HTTP ${status}); check the id, or if it is ` +
        `private or gated, ${TOKEN_HINT}`,
      context,
    );
  }
  if (code === "RevisionNotFound") {
    return new NotFoundError(
      `revision ${JSON.stringify(revision)} not found in ${repoId}`,
      context,
    );
  }
  if (code === "EntryNotFound" || status === 404) {
    return new NotFoundError(
      `not found in ${repoId} at revision ${revision} (HTTP ${status})`,
      context,
    );
  }
  if (code === "GatedRepo" || status === 401 || status === 403) {
    return new GatedRepoError(
      `access to ${repoId} is restricted (HTTP ${status}${
        detail ? `: ${detail}` : ""
      }); ${TOKEN_HINT}`,
      { ...context, status },
    );
  }
  return new HubError(
    `HTTP ${status} ${response.statusText} from ${repoId}${detail ? `: ${detail}` : ""}`,
    { ...context, status },
  );
}
