/**
 * The S3 calls the operators make, with errors mapped to the typed ones: a missing key becomes
 * `ObjectNotFoundError`, any other failure `S3RequestError`, and a cancellation stays the
 * caller's `AbortError`. Every operator takes an {@link S3Context}.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { getObjectBody } from '@s3exchange/core'
 *
 * const ctx = { client: new S3Client({}), bucket: 'my-bucket' }
 * const body = await getObjectBody(ctx, 'training/123/samples/file.wav')
 * const bytes = await body.bytes()
 * ```
 */

import { HeadObjectCommand, type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3'
import { isAbort, isNotFound, ObjectNotFoundError, S3ExchangeError, S3RequestError } from '../format/errors.js'
import type { ReadLimits } from '../format/limits.js'
import { ObjectBody, type ObjectInfo } from './body.js'
import { type ObjectSourceOptions, openObjectSource, type ResumableSource } from './object-source.js'

/** What every operator needs: a client, a bucket, and optionally a signal to cancel with. */
export interface S3Context {
  /** The caller's S3 client; the library never configures it. */
  client: S3Client
  /** The bucket every key is in. */
  bucket: string
  /** Cancels every request the operator makes, and the iteration itself. */
  signal?: AbortSignal | undefined
  /** Limits on what readers accept, for every call made with this context (see `ReadLimits`). */
  limits?: ReadLimits | undefined
}

/** Options for {@link getObjectBody}: a byte range, an ETag to insist on, resumption. */
export type GetObjectBodyOptions = ObjectSourceOptions

/**
 * Opens a GET of `key` and returns its body as an {@link ObjectBody}. A body cut mid-way is
 * resumed (see `openObjectSource`); a body that still fails is an `S3RequestError`.
 */
export async function getObjectBody(ctx: S3Context, key: string, options: GetObjectBodyOptions = {}): Promise<ObjectBody> {
  const { info, source } = await openObjectSource(ctx, key, options)
  return objectBodyFrom(ctx, info, source)
}

/** The `ObjectBody` over an opened GET, with its errors typed. */
export function objectBodyFrom(ctx: S3Context, info: ObjectInfo, source: ResumableSource): ObjectBody {
  const key = info.key
  return ObjectBody.fromSource(info, source, {
    wrapError: (error) => {
      // A body cut by the caller's signal fails with a plain 'aborted' error: give the signal's reason.
      if (ctx.signal?.aborted) return ctx.signal.reason ?? error
      return error instanceof S3ExchangeError ? error : new S3RequestError('GetObject', key, error)
    },
    release: (complete) => {
      if (!complete) source.destroy()
    },
  })
}

/** HEADs `key`; a missing key throws `ObjectNotFoundError`. */
export async function headObject(ctx: S3Context, key: string): Promise<HeadObjectCommandOutput> {
  try {
    return await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }), { abortSignal: ctx.signal })
  } catch (error) {
    throw mapS3Error('HeadObject', key, error, ctx.signal)
  }
}

/**
 * The typed error for a failed S3 call: the abort reason when the caller cancelled,
 * `ObjectNotFoundError` for a missing key, `S3RequestError` otherwise.
 */
export function mapS3Error(operation: string, key: string, error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason ?? error
  if (isAbort(error)) return error
  if (isNotFound(error)) return new ObjectNotFoundError(key, { cause: error })
  return new S3RequestError(operation, key, error)
}

/** How many times the SDK sent the request that failed with `sdkError` (its retries included; 1 when unknown). */
export function timesSent(sdkError: unknown): number {
  return (sdkError as { $metadata?: { attempts?: number } } | undefined)?.$metadata?.attempts ?? 1
}

/** An ETag without its surrounding quotes. */
export function unquoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined
  return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag
}

/** Throws the signal's reason when it has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted()
}
