/**
 * `s3://bucket/key` URIs, as `aws s3` and rclone users type them. `parseS3Uri` splits one into
 * its bucket and key (`s3://data/jobs/1/` → bucket `data`, key `jobs/1/`; `s3://data` → the
 * whole bucket, key `''`), returns undefined for anything else (a plain key), and refuses what
 * looks like a URI but is not one (`s3:/data/x`, `S3://data/x`, `s3a://data/x`, `s3:///x`, a
 * bucket name with spaces) with an {@link InvalidS3UriError} naming the argument: a mistyped URI
 * never silently becomes a key of the configured bucket. The key is taken as written (no
 * percent-decoding, `#` kept: `s3://data/a.tar#m/1.wav` is a virtual key, as `aws s3` keeps keys).
 *
 * @example
 * ```ts
 * import { parseS3Uri } from '@s3exchange/cli'
 *
 * parseS3Uri('s3://datasets/jobs/123/manifest.jsonl', '<manifest>') // { bucket: 'datasets', key: 'jobs/123/manifest.jsonl' }
 * parseS3Uri('jobs/123/manifest.jsonl', '<manifest>')               // undefined: a plain key
 * parseS3Uri('s3:/datasets/x', '<manifest>')                        // throws InvalidS3UriError
 * ```
 */
import { UsageError } from './args.js'

/** A bucket and a key in it (`''` for the whole bucket). */
export interface S3Location {
  bucket: string
  key: string
}

/** An argument that looks like an S3 URI but is not a valid one; a usage error (exit 2). */
export class InvalidS3UriError extends UsageError {
  override name = 'InvalidS3UriError'
  /** The argument or flag it was given as, e.g. `<prefix>` or `--manifest`. */
  readonly argument: string
  /** The text given. */
  readonly uri: string

  constructor(uri: string, argument: string, reason: string, command?: string) {
    super(`${argument}: '${uri}' is not a valid S3 URI: ${reason}`, command)
    this.argument = argument
    this.uri = uri
  }
}

const SCHEME = 's3://'
/** What a user may have meant as a URI: `s3:`, `S3:`, `s3a:`, `s3n:` followed by anything. */
const LOOKS_LIKE_URI = /^s3[an]?:/i
/** Any bucket name an S3 server accepts, legacy names (upper case, `_`, up to 255) included. */
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/

/** True when `text` is written as an `s3://` URI (valid or not). */
export function isS3Uri(text: string): boolean {
  return LOOKS_LIKE_URI.test(text)
}

/** Parses `text`; see the module comment. `argument` names it in errors. */
export function parseS3Uri(text: string, argument: string, command?: string): S3Location | undefined {
  if (!LOOKS_LIKE_URI.test(text)) return undefined
  const fail = (reason: string) => new InvalidS3UriError(text, argument, reason, command)
  if (!text.startsWith(SCHEME)) throw fail('write it as s3://bucket/key (lower-case s3, two slashes)')
  const rest = text.slice(SCHEME.length)
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  const key = slash === -1 ? '' : rest.slice(slash + 1)
  if (bucket === '') throw fail('no bucket name after s3://')
  if (!BUCKET.test(bucket)) throw fail(`'${bucket}' is not a bucket name (3 to 255 letters, digits, dots, hyphens, underscores)`)
  return { bucket, key }
}
