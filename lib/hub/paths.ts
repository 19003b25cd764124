/**
 * Names that become file paths: repo ids, revisions, repo-relative file
 * paths, commit hashes and etags. Everything that comes from a caller or a
 * server is checked here before it is joined onto a cache or model folder,
 * so no name can point outside it ({@link PathEscapeError}).
 *
 * Paths use `/` on every platform (Windows accepts it), so this module needs
 * no `node:path` and loads in a browser.
 *
 * @example
 * ```ts
 * import { joinRepoPath, repoFolderName } from "./paths.ts";
 * console.log(repoFolderName("google/ddpm-cifar10-32")); // models--google--ddpm-cifar10-32
 * console.log(joinRepoPath("unet", "config.json")); // unet/config.json
 * ```
 *
 * @module
 */

import { NotFoundError, PathEscapeError } from "../errors.ts";

/** A full git commit hash, as the Hub sends in `X-Repo-Commit`. */
export const COMMIT_HASH: RegExp = /^[0-9a-f]{40}$/;

/** A sha256 hex digest: the etag of an LFS file. */
export const SHA256_HEX: RegExp = /^[0-9a-f]{64}$/;

// The Hub's own rule (huggingface_hub validate_repo_id): word characters, `-`, `.`,
// an optional namespace, no `--` or `..`, at most 96 characters.
const REPO_ID = /^(?:[\w.-]+\/)?[\w.-]+$/;

/**
 * Whether `id` is a valid Hub model id (`owner/name` or `name`).
 *
 * @example
 * ```ts
 * import { isRepoId } from "./paths.ts";
 * console.log(isRepoId("CompVis/ldm-text2im-large-256"), isRepoId("../x")); // true false
 * ```
 */
export function isRepoId(id: string): boolean {
  return id.length <= 96 && REPO_ID.test(id) && !id.includes("--") && !id.includes("..") &&
    !id.split("/").some((part) => part.startsWith(".") || part.endsWith("."));
}

/**
 * The cache folder name of a model repo: `models--owner--name`, as
 * huggingface_hub's `repo_folder_name`.
 *
 * @example
 * ```ts
 * import { repoFolderName } from "./paths.ts";
 * console.log(repoFolderName("owner/name")); // models--owner--name
 * ```
 */
export function repoFolderName(repoId: string): string {
  if (!isRepoId(repoId)) {
    throw new NotFoundError(`${JSON.stringify(repoId)} is not a valid Hub model id`);
  }
  return ["models", ...repoId.split("/")].join("--");
}

/**
 * Checks a repo-relative path (`unet/config.json`) and returns it with
 * empty and `.` segments dropped. Absolute paths, `..`, backslashes and NUL
 * throw {@link PathEscapeError}: such a name could leave the model folder.
 *
 * @example
 * ```ts
 * import { normalizeRepoPath } from "./paths.ts";
 * console.log(normalizeRepoPath("./unet//config.json")); // unet/config.json
 * ```
 */
export function normalizeRepoPath(path: string, what = "file path"): string {
  const bad = path.startsWith("/") || path.includes("\\") || path.includes("\0") ||
    /^[A-Za-z]:/.test(path);
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  if (bad || parts.includes("..")) {
    throw new PathEscapeError(`${what} ${JSON.stringify(path)} would leave the model folder`, {
      file: path,
    });
  }
  return parts.join("/");
}

/**
 * Joins repo-relative parts with `/`, checking each ({@link normalizeRepoPath}).
 *
 * @example
 * ```ts
 * import { joinRepoPath } from "./paths.ts";
 * console.log(joinRepoPath("", "model_index.json")); // model_index.json
 * ```
 */
export function joinRepoPath(...parts: string[]): string {
  return parts.map((part) => normalizeRepoPath(part)).filter((part) => part !== "").join("/");
}

/**
 * Checks a revision (branch, tag, commit, `refs/pr/1`): it names a file
 * under `refs/`, so it follows the repo-path rules and must not be empty.
 *
 * @example
 * ```ts
 * import { checkRevision } from "./paths.ts";
 * console.log(checkRevision("refs/pr/1")); // refs/pr/1
 * ```
 */
export function checkRevision(revision: string): string {
  const clean = normalizeRepoPath(revision, "revision");
  if (clean === "" || clean !== revision) {
    throw new PathEscapeError(`revision ${JSON.stringify(revision)} is not a valid git ref`);
  }
  return revision;
}

/**
 * The relative symlink target from `snapshots/<commit>/<path>` to
 * `blobs/<etag>`, as huggingface_hub writes it (`../../blobs/<etag>` for a
 * top-level file, one more `../` per folder).
 *
 * @example
 * ```ts
 * import { blobLinkTarget } from "./paths.ts";
 * console.log(blobLinkTarget("unet/config.json", "abc")); // ../../../blobs/abc
 * ```
 */
export function blobLinkTarget(path: string, etag: string): string {
  const depth = path.split("/").length + 1;
  return `${"../".repeat(depth)}blobs/${etag}`;
}

/**
 * Checks an etag used as a blob name: a git sha1 (40 hex) or an LFS
 * sha256 (64 hex), as the Hub sends; anything else could name a path.
 *
 * @example
 * ```ts
 * import { checkEtag } from "./paths.ts";
 * console.log(checkEtag("a".repeat(64)).length); // 64
 * ```
 */
export function checkEtag(etag: string): string {
  if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(etag)) {
    throw new PathEscapeError(`etag ${JSON.stringify(etag)} is not a git or sha256 hash`);
  }
  return etag;
}

/**
 * Checks a commit hash used as a snapshot folder name.
 *
 * @example
 * ```ts
 * import { checkCommit } from "./paths.ts";
 * console.log(checkCommit("0".repeat(40)).length); // 40
 * ```
 */
export function checkCommit(commit: string): string {
  if (!COMMIT_HASH.test(commit)) {
    throw new PathEscapeError(`commit ${JSON.stringify(commit)} is not a 40-hex git hash`);
  }
  return commit;
}
