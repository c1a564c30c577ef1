/**
 * `listKeys(ctx, prefix)`: a source of every key under a prefix, across all pages of the listing
 * (ListObjectsV2), in the server's order; a failed page is an `S3RequestError` naming the prefix.
 *
 * @example
 * ```ts
 * import { listKeys } from '@s3exchange/core'
 *
 * for await (const key of listKeys(ctx, 'training/123/samples/')) console.log(key)
 * ```
 */
import { paginateListObjectsV2 } from '@aws-sdk/client-s3'
import type { S3Context } from './context.js'
import { mapS3Error } from './requests.js'

/** Every key under `prefix`; see the module comment. */
export async function* listKeys(ctx: S3Context, prefix: string): AsyncGenerator<string, void, undefined> {
  const pages = paginateListObjectsV2({ client: ctx.client }, { Bucket: ctx.bucket, Prefix: prefix })
  const iterator = pages[Symbol.asyncIterator]()
  for (;;) {
    let page: Awaited<ReturnType<typeof iterator.next>>
    try {
      ctx.signal?.throwIfAborted()
      page = await iterator.next()
    } catch (error) {
      throw mapS3Error('ListObjectsV2', prefix, error, ctx.signal)
    }
    if (page.done) return
    for (const object of page.value.Contents ?? []) if (object.Key !== undefined) yield object.Key
  }
}
