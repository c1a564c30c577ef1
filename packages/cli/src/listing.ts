/**
 * Objects with their size, date and ETag, as `s3x ls -l` and `--json` print them: `listObjects`
 * lists a prefix page by page (ListObjectsV2, every page), `headListing` reads one key's the same
 * way (HeadObject, for the entries of a manifest), `longLine` formats one, and `--json` prints it
as it is:
 *
 * ```
 * 2026-12-04T10:11:12Z        3120  jobs/123/samples/a.wav          (ls -l)
 * 2026-12-04T10:11:12Z     3.0 KiB  jobs/123/samples/a.wav          (ls -l --human-readable)
 * {"key":"jobs/123/samples/a.wav","size":3120,"lastModified":"2026-12-04T10:11:12.000Z","etag":"9e10…","storageClass":"STANDARD"}
 * ```
 *
 * Dates are in UTC (ISO 8601), ETags without their quotes, as manifests hold them.
 *
 * @example
 * ```ts
 * import { listObjects, longLine } from '@s3exchange/cli'
 *
 * for await (const object of listObjects(store.context(), 'jobs/123/')) console.log(longLine(object, { human: true }))
 * ```
 */
import { paginateListObjectsV2 } from '@aws-sdk/client-s3'
import { headObject, ObjectNotFoundError, type S3Context } from 's3exchange'
import { mapS3Error, unquoteEtag } from 's3exchange/internals'
import { formatBytes } from './output.js'

/** One object as listed (or, for an object a manifest names, as a HEAD found it). */
export interface ListedObject {
  key: string
  /** Bytes; null when unknown (a missing object). */
  size: number | null
  /** When it was last written, ISO 8601 in UTC; null when unknown. */
  lastModified: string | null
  /** The ETag without quotes; null when unknown. */
  etag: string | null
  /** `STANDARD`, `GLACIER`, ... as a listing gives it (a HEAD leaves it out for STANDARD, so HEADs do not say). */
  storageClass?: string | null
}

/** Every object under `prefix`, in key order, across all pages. */
export async function* listObjects(ctx: S3Context, prefix: string): AsyncGenerator<ListedObject> {
  const pages = paginateListObjectsV2({ client: ctx.client }, { Bucket: ctx.bucket, Prefix: prefix })
  const iterator = pages[Symbol.asyncIterator]()
  for (;;) {
    let page: Awaited<ReturnType<typeof iterator.next>>
    try {
      page = await iterator.next()
    } catch (error) {
      throw mapS3Error('ListObjectsV2', prefix, error, ctx.signal)
    }
    if (page.done) return
    for (const object of page.value.Contents ?? []) {
      if (object.Key === undefined) continue
      yield {
        key: object.Key,
        size: object.Size ?? null,
        lastModified: object.LastModified?.toISOString() ?? null,
        etag: unquoteEtag(object.ETag) ?? null,
        storageClass: object.StorageClass ?? null,
      }
    }
  }
}

/** One key's size, date and ETag from a HEAD; undefined when there is no such object. */
export async function headListing(ctx: S3Context, key: string): Promise<ListedObject | undefined> {
  try {
    const head = await headObject(ctx, key)
    return {
      key,
      size: head.ContentLength ?? null,
      lastModified: head.LastModified?.toISOString() ?? null,
      etag: unquoteEtag(head.ETag) ?? null,
    }
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined
    throw error
  }
}

/** Options for {@link longLine}. */
export interface LongLineOptions {
  /** Sizes as `3.0 KiB` rather than bytes. */
  human?: boolean
  /** A first column, e.g. the entry's kind. */
  prefix?: string
  /** What the date column says when there is no date (default `-`). */
  noDate?: string
}

/** `date  size  key`, aligned; see the module comment. */
export function longLine(object: Pick<ListedObject, 'key' | 'size' | 'lastModified'>, options: LongLineOptions = {}): string {
  const date = object.lastModified === null ? (options.noDate ?? '-') : `${object.lastModified.slice(0, 19)}Z`
  const size = object.size === null ? '-' : options.human ? formatBytes(object.size) : String(object.size)
  const columns = [date.padEnd(20), size.padStart(options.human ? 10 : 12), object.key]
  return (options.prefix === undefined ? columns : [options.prefix, ...columns]).join('  ')
}
