/**
 * Typed errors. Every failure caused by bad input (a malformed file, a config
 * of the wrong shape, a missing file, an unknown name) is one of these, so
 * callers can tell "your input is wrong" from "the library has a bug".
 *
 * @example
 * ```ts
 * import { DiffusersError, SafetensorsError } from "./errors.ts";
 * try {
 *   throw new SafetensorsError("header length 9e18 exceeds file size 12", { file: "x.safetensors" });
 * } catch (e) {
 *   if (e instanceof DiffusersError) console.error(e.message);
 * }
 * ```
 *
 * @module
 */

/** Where an error was found: the file and, for structured data, the key. */
export interface ErrorContext {
  /** The file (path or URL) that holds the bad input. */
  file?: string;
  /** The key, tensor or field name inside that file. */
  key?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** The base class of every error this library throws for bad input. */
export class DiffusersError extends Error {
  /** The file the error is about, if any. */
  readonly file?: string;
  /** The key, tensor or field name the error is about, if any. */
  readonly key?: string;

  /** Builds the message as `file: key: message` from the parts that are known. */
  constructor(message: string, context: ErrorContext = {}) {
    const where = [context.file, context.key].filter((p) => p !== undefined).join(": ");
    super(where ? `${where}: ${message}` : message, { cause: context.cause });
    this.name = new.target.name;
    if (context.file !== undefined) this.file = context.file;
    if (context.key !== undefined) this.key = context.key;
  }
}

/** A config file or config value that is missing, malformed or of the wrong type. */
export class ConfigError extends DiffusersError {}

/** A weights file (safetensors, PyTorch checkpoint) that cannot be read safely. */
export class WeightsError extends DiffusersError {}

/** A malformed safetensors file. */
export class SafetensorsError extends WeightsError {}

/** A PyTorch checkpoint that is malformed or would need code execution to load. */
export class PickleError extends WeightsError {}

/** A file or model that cannot be found locally or on the Hub. */
export class NotFoundError extends DiffusersError {}

/** A path (component, subfolder, shard) that would escape the model folder. */
export class PathEscapeError extends DiffusersError {}

/** A Hub request that failed (HTTP status, dropped connection, offline mode). */
export class HubError extends DiffusersError {
  /** The HTTP status, when the server answered. */
  readonly status?: number;

  /** `status` is the HTTP status code when there was a response. */
  constructor(message: string, context: ErrorContext & { status?: number } = {}) {
    super(message, context);
    if (context.status !== undefined) this.status = context.status;
  }
}

/** A gated or private Hub repo that needs a token (HTTP 401/403); the message says to set HF_TOKEN. */
export class GatedRepoError extends HubError {}

/** A model or file that offline mode (`HF_HUB_OFFLINE=1`, `localFilesOnly`) cannot find in the cache. */
export class NotInCacheError extends NotFoundError {}

/** A name (scheduler, pipeline, model class, backend) that is not known; lists the valid ones. */
export class UnknownNameError extends DiffusersError {
  /** The names that would have been accepted. */
  readonly validNames: readonly string[];

  /** `kind` is what was looked up ("scheduler"), `name` the bad value. */
  constructor(
    kind: string,
    name: string,
    validNames: readonly string[],
    context: ErrorContext = {},
  ) {
    super(
      `unknown ${kind} ${JSON.stringify(name)}; valid names: ${validNames.join(", ")}`,
      context,
    );
    this.validNames = validNames;
  }
}

/** Arguments to a public function that are out of range or inconsistent. */
export class ArgumentError extends DiffusersError {}
