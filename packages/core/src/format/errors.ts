/**
 * The typed errors of s3exchange (a declarative table of classes: over 300 lines on purpose). Every failure a caller can meet while reading or writing is an
 * {@link S3ExchangeError} subclass that names the key (and the line or member) it is about, with
 * the underlying error as `cause`. The one exception is cancellation: when the caller's
 * `AbortSignal` fires, the signal's own reason (an `AbortError`) comes out unchanged.
 *
 * @example
 * ```ts
 * import { ObjectNotFoundError, S3ExchangeError } from '@s3exchange/core'
 *
 * try {
 *   await store.getObject('missing.wav')
 * } catch (error) {
 *   if (error instanceof ObjectNotFoundError) console.log('no such key:', error.key)
 *   else if (error instanceof S3ExchangeError) console.log('s3exchange failed:', error.message)
 *   else throw error
 * }
 * ```
 */

/** Base class of every error this library throws on purpose. */
export class S3ExchangeError extends Error {
  override name = 'S3ExchangeError'
}

/** An object (or a member of a shard archive, by virtual key) does not exist. */
export class ObjectNotFoundError extends S3ExchangeError {
  override name = 'ObjectNotFoundError'
  /** The key that was asked for (a virtual key `archive#member` for archive members). */
  readonly key: string

  constructor(key: string, options?: { cause?: unknown; detail?: string }) {
    super(`S3 object not found: ${key}${options?.detail ? ` (${options.detail})` : ''}`, options)
    this.key = key
  }
}

/** A manifest (the root, or one named by a `manifest_ref`) does not exist. */
export class ManifestNotFoundError extends S3ExchangeError {
  override name = 'ManifestNotFoundError'
  /** The manifest key. */
  readonly key: string
  /** The manifest whose `manifest_ref` named this one, when it was reached through a ref. */
  readonly referencedFrom: string | undefined

  constructor(key: string, options?: { cause?: unknown; referencedFrom?: string }) {
    super(`Manifest not found: ${key}${options?.referencedFrom ? ` (referenced from ${options.referencedFrom})` : ''}`, options)
    this.key = key
    this.referencedFrom = options?.referencedFrom
  }
}

/** A key template names a placeholder for which no value was given. */
export class MissingPlaceholderError extends S3ExchangeError {
  override name = 'MissingPlaceholderError'
  /** The placeholder's name, without braces. */
  readonly placeholder: string
  /** The template that holds it. */
  readonly template: string

  constructor(placeholder: string, template: string) {
    super(`Missing placeholder '${placeholder}' in template: ${template}`)
    this.placeholder = placeholder
    this.template = template
  }
}

/** A manifest line that cannot be read: bad JSON or UTF-8, a missing or unknown field, a line too long. */
export class InvalidManifestError extends S3ExchangeError {
  override name = 'InvalidManifestError'
  /** The manifest key (for a shard's internal manifest: `archive_key#internal_manifest_path`). */
  readonly key: string | undefined
  /** 1-based line number, counting blank lines. */
  readonly lineNumber: number | undefined
  /** What is wrong with the line, without the location. */
  readonly reason: string

  constructor(reason: string, options: { key?: string; lineNumber?: number; cause?: unknown } = {}) {
    const where = [options.key, options.lineNumber === undefined ? undefined : `line ${options.lineNumber}`]
      .filter((part) => part !== undefined)
      .join(', ')
    super(where ? `Invalid manifest (${where}): ${reason}` : `Invalid manifest: ${reason}`, options)
    this.key = options.key
    this.lineNumber = options.lineNumber
    this.reason = reason
  }
}

/** A shard archive cannot be read: not a tar, truncated, corrupt, or without its internal manifest. */
export class ShardReadError extends S3ExchangeError {
  override name = 'ShardReadError'
  /** The archive's key. */
  readonly archiveKey: string
  /** The member being read when it failed, when there was one. */
  readonly memberPath: string | undefined
  /** What went wrong, without the archive and member the message starts with. */
  readonly reason: string

  constructor(message: string, options: { archiveKey: string; memberPath?: string; cause?: unknown }) {
    const where = options.memberPath === undefined ? options.archiveKey : `${options.archiveKey}#${options.memberPath}`
    super(`Shard read failed (${where}): ${message}`, options)
    this.archiveKey = options.archiveKey
    this.memberPath = options.memberPath
    this.reason = message
  }
}

/**
 * A shard archive is compressed with a codec this process cannot decompress: bzip2 or xz (never
 * supported), or zstd on a Node whose `node:zlib` has no `createZstdDecompress` (before 22.15).
 * Only reading such an archive fails; everything else works on that Node.
 */
export class UnsupportedCompressionError extends ShardReadError {
  override name = 'UnsupportedCompressionError'
  /** The compression found in the archive's first bytes: `'zstd'`, `'bzip2'` or `'xz'`. */
  readonly compression: string

  constructor(message: string, options: { archiveKey: string; compression: string }) {
    super(message, options)
    this.compression = options.compression
  }
}

/**
 * The object changed while it was being read: a read resumed after a broken connection found a
 * different version (its ETag no longer matched), so the bytes would have been spliced from two.
 */
export class ObjectChangedError extends S3ExchangeError {
  override name = 'ObjectChangedError'
  /** The key that changed. */
  readonly key: string

  constructor(key: string, options?: { cause?: unknown }) {
    super(`S3 object changed while it was read: ${key}`, options)
    this.key = key
  }
}

/**
 * An S3 request failed for a reason other than a missing key (access denied, a server error
 * after the client's retries, a connection cut mid-body, ...).
 */
export class S3RequestError extends S3ExchangeError {
  override name = 'S3RequestError'
  /** The key the request was about (or the prefix, for listings). */
  readonly key: string
  /** The S3 operation, e.g. `GetObject`. */
  readonly operation: string
  /** HTTP status of the response, when there was one. */
  readonly statusCode: number | undefined

  constructor(operation: string, key: string, cause: unknown) {
    const statusCode = httpStatusOf(cause)
    const detail = cause instanceof Error ? describeSdkError(cause, statusCode) : String(cause)
    super(`${operation} ${key} failed${statusCode ? ` (HTTP ${statusCode})` : ''}: ${detail}`, { cause })
    this.key = key
    this.operation = operation
    this.statusCode = statusCode
  }
}

/**
 * A shard archive cannot be written: a member path that is empty, absolute, contains `..` or is
 * used twice; a source whose size differs from the size given; a source that cannot be read;
 * zstd asked of a Node whose `node:zlib` has none (before 22.15).
 */
export class ShardWriteError extends S3ExchangeError {
  override name = 'ShardWriteError'
  /** The archive being written. */
  readonly archiveKey: string
  /** The member at fault, when there is one. */
  readonly memberPath: string | undefined

  constructor(message: string, options: { archiveKey: string; memberPath?: string; cause?: unknown }) {
    const where = options.memberPath === undefined ? options.archiveKey : `${options.archiveKey}#${options.memberPath}`
    super(`Shard write failed (${where}): ${message}`, options)
    this.archiveKey = options.archiveKey
    this.memberPath = options.memberPath
  }
}

/** Data to upload that cannot be used: a size that does not match, an unreadable file, too large to buffer. */
export class InvalidSourceError extends S3ExchangeError {
  override name = 'InvalidSourceError'
  /** The key (or virtual key) the data was meant for. */
  readonly key: string

  constructor(message: string, options: { key: string; cause?: unknown }) {
    super(`Invalid data for ${options.key}: ${message}`, options)
    this.key = options.key
  }
}

/**
 * A write failed before it was published: the manifest at `key` was left as it was. Objects that
 * were uploaded on the way (parts, shards, objects) are listed in `uploadedKeys`: nothing
 * references them, delete them or publish them yourself.
 */
export class PublishError extends S3ExchangeError {
  override name = 'PublishError'
  /** The manifest that was not updated. */
  readonly key: string
  /** Objects uploaded but not referenced by the manifest. */
  readonly uploadedKeys: string[]

  constructor(key: string, uploadedKeys: string[], cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause)
    const listed = uploadedKeys.length === 0 ? 'nothing was left behind' : `uploaded but not published: ${uploadedKeys.join(', ')}`
    super(`Nothing was published to ${key} (${detail}); ${listed}`, { cause })
    this.key = key
    this.uploadedKeys = uploadedKeys
  }
}

/** A conditional update of a manifest lost the race to other writers more times than allowed. */
export class ManifestConflictError extends S3ExchangeError {
  override name = 'ManifestConflictError'
  /** The manifest. */
  readonly key: string
  /** Attempts made. */
  readonly attempts: number

  constructor(key: string, attempts: number, cause?: unknown) {
    super(`Manifest ${key} was changed by other writers during each of ${attempts} attempts to update it`, { cause })
    this.key = key
    this.attempts = attempts
  }
}

/**
 * A conditional write (`ifMatch` / `ifNoneMatch`) was refused before anything was sent, or after
 * the server showed it cannot keep the condition: writing it anyway could overwrite a concurrent
 * writer's object unnoticed, so nothing was written. `capability` names what the server lacks, as
 * a field of `ServerCapabilities` (what `probeServer` and `s3x doctor` measure):
 *
 * - `conditionalComplete`: the write needs a multipart upload (larger than `partSize` when
 *   streamed, or than the largest single PUT the server takes), and the server ignores conditions
 *   on CompleteMultipartUpload (`known: true`, measured) or is not known to honour them
 *   (`known: false`). Raise `partSize` so that the object goes up in one conditional PutObject, or,
 *   where the server does honour them (AWS S3, MinIO from RELEASE.2024-05-27, R2), say so with
 *   `rememberServerCapabilities(client, { conditionalComplete: true })` or `probeServerOnce(ctx)`.
 * - `conditionalPut`: the server refused `If-Match` in both ETag forms (quoted and bare) although
 *   the object's ETag was the one sent: it does not do conditional PutObject.
 */
export class ConditionalWriteUnsupportedError extends S3ExchangeError {
  override name = 'ConditionalWriteUnsupportedError'
  /** The key that was not written. */
  readonly key: string
  /** What the server lacks: `conditionalComplete` or `conditionalPut`. */
  readonly capability: 'conditionalComplete' | 'conditionalPut'
  /** True when the server was measured (or stated) to lack it; false when it is only not known to have it. */
  readonly known: boolean

  constructor(
    message: string,
    options: { key: string; capability: 'conditionalComplete' | 'conditionalPut'; known: boolean; cause?: unknown },
  ) {
    super(`Refused to write ${options.key}: ${message}`, options)
    this.key = options.key
    this.capability = options.capability
    this.known = options.known
  }
}

/**
 * A destructive call was refused: an empty prefix, or a key or prefix outside the fence (the
 * store's `basePrefix`, or the call's `within`). Nothing was deleted.
 */
export class DeleteRefusedError extends S3ExchangeError {
  override name = 'DeleteRefusedError'
  /** The key or prefix that was refused. */
  readonly key: string
  /** The fence it had to be inside, if that was the reason. */
  readonly fence: string | undefined

  constructor(message: string, options: { key: string; fence?: string }) {
    super(`Refused to delete ${JSON.stringify(options.key)}: ${message}`)
    this.key = options.key
    this.fence = options.fence
  }
}

/** Some deletions failed; the others went through. `errors` is keyed by S3 key. */
export class PartialDeleteError extends S3ExchangeError {
  override name = 'PartialDeleteError'
  /** Keys deleted before and despite the failures. */
  readonly deletedCount: number
  /** The message of each key's failure. */
  readonly errors: Record<string, string>

  constructor(deletedCount: number, errors: Record<string, string>) {
    const keys = Object.keys(errors)
    super(
      `${keys.length} deletion(s) failed (${deletedCount} succeeded): ${keys
        .slice(0, 5)
        .map((k) => `${k}: ${errors[k]}`)
        .join('; ')}${keys.length > 5 ? '; …' : ''}`,
    )
    this.deletedCount = deletedCount
    this.errors = errors
  }
}

/**
 * A download would write outside its folder, or somewhere it must not: an absolute path, a path
 * with `..`, an empty name, a link in the way, or two objects mapping to one file. Nothing was
 * written for it.
 */
export class UnsafePathError extends S3ExchangeError {
  override name = 'UnsafePathError'
  /** The key (or virtual key) whose local path was refused. */
  readonly key: string
  /** The relative path it mapped to. */
  readonly path: string

  constructor(message: string, options: { key: string; path: string }) {
    super(`Refused to write ${JSON.stringify(options.path)} for ${options.key}: ${message}`)
    this.key = options.key
    this.path = options.path
  }
}

/**
 * Bytes read do not match what their entry promised: a different length than `size_bytes`, or a
 * different SHA-256 than `sha256` (checked when reading with `verify: true`).
 */
export class IntegrityError extends S3ExchangeError {
  override name = 'IntegrityError'
  /** The key (or virtual key) read. */
  readonly key: string
  /** The entry field that disagrees: `size_bytes` or `sha256`. */
  readonly field: 'size_bytes' | 'sha256'
  readonly expected: string | number
  readonly actual: string | number

  constructor(key: string, field: 'size_bytes' | 'sha256', expected: string | number, actual: string | number) {
    super(`Integrity check failed for ${key}: ${field} is ${actual}, the entry says ${expected}`)
    this.key = key
    this.field = field
    this.expected = expected
    this.actual = actual
  }
}

/**
 * A limit was reached: a manifest refers to manifests nested too deep or too many of them, an
 * archive member or an internal manifest is larger than allowed. The limit's name and value say
 * which; they can be raised in the call's options.
 */
export class LimitExceededError extends S3ExchangeError {
  override name = 'LimitExceededError'
  /** The key being read when the limit was reached. */
  readonly key: string
  /** The option that sets the limit, e.g. `maxRefDepth`. */
  readonly limit: string
  /** Its value. */
  readonly value: number

  constructor(message: string, options: { key: string; limit: string; value: number }) {
    super(`${message} (${options.limit} is ${options.value}) while reading ${options.key}`)
    this.key = options.key
    this.limit = options.limit
    this.value = options.value
  }
}

/** A cursor string that is not one: not base64url JSON, an unknown version, fields missing or of the wrong type. */
export class InvalidCursorError extends S3ExchangeError {
  override name = 'InvalidCursorError'
  /** What is wrong with it. */
  readonly reason: string

  constructor(reason: string, options?: { cause?: unknown }) {
    super(`Invalid cursor: ${reason}`, options)
    this.reason = reason
  }
}

/**
 * A cursor that does not fit the traversal it was given to: it was made for another manifest or
 * other options (`partition`, `resolveRefs`, `shuffle`), or the manifest was rewritten (not only
 * appended to) since, or a part or shard it points into changed. Never a silent restart: start
 * again without the cursor if that is what you want.
 */
export class CursorMismatchError extends S3ExchangeError {
  override name = 'CursorMismatchError'
  /** The manifest (or archive) where the mismatch was found. */
  readonly key: string
  /**
   * Why: `manifest` (another root), `options`, `rewritten`, `missing` (a part or archive is gone),
   * `shard` (an archive changed), `appended` (a shuffled epoch's manifest was appended to since: its
   * order depends on every entry).
   */
  readonly reason: 'manifest' | 'options' | 'rewritten' | 'missing' | 'shard' | 'appended'

  constructor(key: string, reason: CursorMismatchError['reason'], detail: string, options?: { cause?: unknown }) {
    super(`Cursor does not fit ${key}: ${detail}`, options)
    this.key = key
    this.reason = reason
  }
}

/**
 * Configuration is missing or inconsistent: `fromEnv()` without a bucket or with half a key pair,
 * an option out of its range (`option` and `call` then say which option of which call), or options
 * that contradict each other or the key (`sseKmsKeyId` without `serverSideEncryption: 'aws:kms'`, a
 * compression the archive key's extension contradicts); thrown before anything is read or written.
 */
export class ConfigurationError extends S3ExchangeError {
  override name = 'ConfigurationError'
  /** The option at fault (`concurrency`, `limits.maxRefDepth`, …), when one is. */
  readonly option: string | undefined
  /** The call it was given to (`iterObjects`, `fetchBodies`, …), when known. */
  readonly call: string | undefined
  /** The key the call was about (an archive key, …), when there was one. */
  readonly key: string | undefined

  constructor(message: string, options: { option?: string; call?: string; key?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.option = options.option
    this.call = options.call
    this.key = options.key
  }
}

/**
 * A body cannot be read (any more): it was read already (a body is read once, by `bytes()`,
 * `text()` or as a stream), it was released because the iteration that gave it moved on to the
 * next item before it was read, or it was destroyed. The same for every kind of body: loose
 * objects, prefetched ones, archive members.
 */
export class BodyConsumedError extends S3ExchangeError {
  override name = 'BodyConsumedError'
  /** The key (a virtual key `archive#member` for archive members). */
  readonly key: string
  /** Why: `read` (read before), `released` (the iteration moved on), `destroyed` (by `destroy()`). */
  readonly reason: 'read' | 'released' | 'destroyed'

  constructor(key: string, reason: 'read' | 'released' | 'destroyed') {
    super(
      reason === 'read'
        ? `the body of ${key} was already read (a body is read once: by bytes(), text() or as a stream)`
        : reason === 'released'
          ? `the body of ${key} was not read before the iteration moved on to the next item, and was released; read it inside the loop (e.g. await body.bytes())`
          : `the body of ${key} was destroyed before it was read`,
    )
    this.key = key
    this.reason = reason
  }
}

/**
 * An entry (or the fields given for one: `meta`, `size_bytes`, …) that cannot be written as a
 * manifest line: a value JSON cannot hold (a BigInt, a cycle, NaN or Infinity), a size that is not
 * a non-negative integer, an archive key with `#`. Nothing was written for it.
 */
export class InvalidEntryError extends S3ExchangeError {
  override name = 'InvalidEntryError'
  /** The entry's key (`archive_key` for a shard). */
  readonly key: string
  /** The field at fault, e.g. `meta` or `size_bytes`. */
  readonly field: string

  constructor(reason: string, options: { key: string; field: string; cause?: unknown }) {
    super(
      `Invalid entry ${options.key}: field '${options.field}' ${reason}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    )
    this.key = options.key
    this.field = options.field
  }
}

/**
 * What an SDK error says: its message, unless that is the SDK's `UnknownError` (an error answer
 * whose body it could not parse, such as Ceph RGW's to a failed condition): then its code, or the
 * status's name (`PreconditionFailed` for 412).
 */
function describeSdkError(error: Error, statusCode: number | undefined): string {
  const message = error.message
  if (message && message !== 'UnknownError') return message
  const code = error.name
  if (code && code !== 'Error' && code !== 'Unknown' && code !== 'UnknownError') return code
  return (statusCode !== undefined && STATUS_CODES[statusCode]) || message || code
}

/** S3's error code for the statuses whose answer body a server may leave unreadable. */
const STATUS_CODES: Record<number, string> = {
  304: 'NotModified',
  400: 'BadRequest',
  403: 'AccessDenied',
  404: 'NotFound',
  409: 'Conflict',
  412: 'PreconditionFailed',
  413: 'EntityTooLarge',
  416: 'InvalidRange',
  429: 'TooManyRequests',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'SlowDown',
}

/** The HTTP status code carried by an AWS SDK error, if any. */
export function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode
}

/** True for the SDK's "no such key" answers (GetObject's `NoSuchKey`, HeadObject's bare 404). */
export function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name
  if (name === 'NoSuchBucket') return false
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatusOf(error) === 404
}

/** True when the error is a cancellation by an `AbortSignal`. */
export function isAbort(error: unknown): boolean {
  // Not 'TimeoutError': the AWS SDK gives that name to connection failures ("socket hang up"),
  // which are failures of the request, not cancellations.
  return (error as { name?: string } | undefined)?.name === 'AbortError'
}
