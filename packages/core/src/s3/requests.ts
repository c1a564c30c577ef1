/**
 * The single S3 requests the layers above make, with errors mapped to the typed ones: a missing
 * key becomes `ObjectNotFoundError`, any other failure `S3RequestError`, and a cancellation stays
 * the caller's `AbortError`. ETags are handled here too (unquoted in results, quoted in conditions).
 *
 * @example
 * ```ts
 * import { headObject } from '@s3exchange/core'
 *
 * const head = await headObject(ctx, 'training/123/samples/file.wav') // ObjectNotFoundError when missing
 * console.log(head.ContentLength)
 * ```
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3'
import { isAbort, isNotFound, ObjectChangedError, ObjectNotFoundError, S3ExchangeError, S3RequestError } from '../format/errors.js'
import type { S3Context } from './context.js'
import { sseCustomerParams } from './write-options.js'

/** A byte range of an object, and the version it must be. */
export interface RangeOptions {
  /** First byte to read (inclusive). Default 0. */
  start?: number
  /** Last byte to read (inclusive). Default: the end. */
  end?: number
  /** Only read the object if its ETag is this one (412 → `ObjectChangedError`). */
  ifMatch?: string
}

/** Sends a GetObject (a range when asked; the context's SSE-C key, if any), with the typed errors. */
export async function requestObject(ctx: S3Context, key: string, options: RangeOptions = {}): Promise<GetObjectCommandOutput> {
  // S3 has no object under an empty key; a GET of '' would list the bucket instead.
  if (key === '') throw new ObjectNotFoundError(key, { detail: 'an empty key names no object' })
  const range =
    options.start === undefined && options.end === undefined
      ? undefined
      : `bytes=${options.start ?? 0}-${options.end === undefined ? '' : options.end}`
  const encryption = sseCustomerParams(ctx)
  try {
    return await ctx.client.send(
      new GetObjectCommand({
        Bucket: ctx.bucket,
        Key: key,
        Range: range,
        IfMatch: options.ifMatch ? quoteEtag(options.ifMatch) : undefined,
        ...encryption,
      }),
      { abortSignal: ctx.signal },
    )
  } catch (error) {
    const mapped = mapS3Error('GetObject', key, error, ctx.signal)
    if (mapped instanceof S3RequestError && mapped.statusCode === 412 && options.ifMatch) {
      throw new ObjectChangedError(key, { cause: error })
    }
    throw mapped
  }
}

/** HEADs `key` (with the context's SSE-C key, if any); a missing key throws `ObjectNotFoundError`. */
export async function headObject(ctx: S3Context, key: string): Promise<HeadObjectCommandOutput> {
  if (key === '') throw new ObjectNotFoundError(key, { detail: 'an empty key names no object' })
  const encryption = sseCustomerParams(ctx)
  try {
    return await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key, ...encryption }), { abortSignal: ctx.signal })
  } catch (error) {
    throw mapS3Error('HeadObject', key, error, ctx.signal)
  }
}

/** Whether an object exists under `key` (a HEAD). */
export async function objectExists(ctx: S3Context, key: string): Promise<boolean> {
  try {
    await headObject(ctx, key)
    return true
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return false
    throw error
  }
}

/** Deletes one object (S3 answers success for a key that does not exist). */
export async function deleteObject(ctx: S3Context, key: string): Promise<void> {
  try {
    await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }), { abortSignal: ctx.signal })
  } catch (error) {
    throw mapS3Error('DeleteObject', key, error, ctx.signal)
  }
}

/**
 * The typed error for a failed S3 call: the abort reason when the caller cancelled,
 * `ObjectNotFoundError` for a missing key, `S3RequestError` otherwise (an error that is already
 * one of this library's stays as it is).
 */
export function mapS3Error(operation: string, key: string, error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason ?? error
  if (isAbort(error) || error instanceof S3ExchangeError) return error
  if (isNotFound(error)) return new ObjectNotFoundError(key, { cause: error })
  return new S3RequestError(operation, key, error)
}

/**
 * The typed error of a failed write: as `mapS3Error`, except that a 404 (`NoSuchUpload`,
 * `NoSuchBucket`) is an `S3RequestError`: the write failed, no object was missing.
 */
export function mapWriteError(operation: string, key: string, error: unknown, signal: AbortSignal | undefined): unknown {
  const mapped = mapS3Error(operation, key, error, signal)
  return mapped instanceof ObjectNotFoundError ? new S3RequestError(operation, key, error) : mapped
}

/** How many times the SDK sent the request that failed with `sdkError` (its retries included; 1 when unknown). */
export function timesSent(sdkError: unknown): number {
  return (sdkError as { $metadata?: { attempts?: number } } | undefined)?.$metadata?.attempts ?? 1
}

/** An ETag without its surrounding quotes. */
export function unquoteEtag(etag: string): string
export function unquoteEtag(etag: string | undefined): string | undefined
export function unquoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined
  return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag
}

/**
 * The ETag a server answered, unquoted; undefined when it answered none or an empty one (Ceph RGW
 * 16 answers CompleteMultipartUpload with `<ETag></ETag>`): an ETag is never empty, so the caller
 * asks again (a HEAD) or records none, never `""`.
 */
export function answeredEtag(etag: string | undefined): string | undefined {
  const unquoted = unquoteEtag(etag)
  return unquoted === undefined || unquoted === '' ? undefined : unquoted
}

/** An ETag in quotes, as HTTP conditions write it (left as it is when already quoted). */
export function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`
}
