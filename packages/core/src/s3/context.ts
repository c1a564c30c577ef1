/**
 * `S3Context`: what every operator takes, `{ client, bucket, signal?, limits?, writeOptions?,
 * sseCustomerKey?, ranges?, onEvent? }`. Core keeps no state between calls: a pipeline passes one context to each of
 * its stages (or a context of their own: `withWriteOptions(ctx, { storageClass: 'GLACIER_IR' })` for
 * the shards of a pipeline, say).
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { readManifest, type S3Context } from '@s3exchange/core'
 *
 * const ctx: S3Context = { client: new S3Client({}), bucket: 'my-bucket', limits: { maxRefDepth: 8 } }
 * for await (const entry of readManifest(ctx, 'training/123/samples/manifest.jsonl')) console.log(entry.kind)
 * ```
 */
import type { S3Client } from '@aws-sdk/client-s3'
import { ConfigurationError } from '../format/errors.js'
import type { EventOptions } from '../format/events.js'
import type { ReadLimits } from '../format/limits.js'
import { checkOptions } from '../format/options.js'
import type { RangedReadOptions } from './range-plan.js'
import type { WriteContext } from './write-options.js'

/**
 * What every operator needs: a client, a bucket, and optionally a signal to cancel with, read
 * limits, write options and an SSE-C key (see `WriteContext`), and an event hook (`onEvent`, see
 * `format/events.ts`: resumed reads, retried writes, fallbacks, server capabilities learned).
 */
export interface S3Context extends WriteContext, EventOptions {
  /** The caller's S3 client; the library never configures it. */
  client: S3Client
  /** The bucket every key is in. */
  bucket: string
  /** Cancels every request the operator makes, and the iteration itself. */
  signal?: AbortSignal | undefined
  /** Limits on what readers accept, for every call made with this context (see `ReadLimits`). */
  limits?: ReadLimits | undefined
  /**
   * Parallel ranged reads of large objects for every read made with this context (see
   * `RangedReadOptions`; `{}` takes the defaults). Absent: each object is read with one GET. The
   * extra GETs' slots belong to this object: contexts that share it share them (the store makes a
   * new one for each call).
   */
  ranges?: RangedReadOptions | undefined
}

/**
 * Checks a context as a call receives it: a client and a bucket, and its `limits` and `signal`
 * by the option rules (see `format/options.ts`); throws `ConfigurationError` naming the call.
 */
export function checkContext(call: string, ctx: S3Context): void {
  if (ctx === null || typeof ctx !== 'object' || !ctx.client || typeof ctx.bucket !== 'string' || ctx.bucket === '') {
    throw new ConfigurationError(`${call}: the context needs a client and a bucket`, { call })
  }
  checkOptions(call, { limits: ctx.limits, signal: ctx.signal, onEvent: ctx.onEvent })
}
