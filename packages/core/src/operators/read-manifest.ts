/**
 * `readManifest(ctx, key)`: a source of the entries of one manifest object, parsed line by line
 * as the object streams in; the whole manifest is never held in memory. Refs are not followed
 * (compose with `expandRefs`). While `expandRefs` reads the manifests a ref names, this one holds
 * no connection: the rest of it (up to 1 MiB) is read into memory and the connection closed; a
 * larger rest is asked for again, from where it stopped and pinned to its ETag, when its turn comes
 * (`ObjectChunks`). A missing manifest throws `ManifestNotFoundError`; a bad line
 * throws `InvalidManifestError` with the key and line number. Blank lines are skipped, `\r\n`
 * is accepted, unknown fields are kept.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { readManifest } from '@s3exchange/core'
 *
 * const ctx = { client: new S3Client({}), bucket: 'my-bucket' }
 * for await (const entry of readManifest(ctx, 'training/123/samples/manifest.jsonl')) {
 *   console.log(entry.kind, entry.kind === 'shard' ? entry.archive_key : entry.key)
 * }
 * ```
 */

import { EntryStream } from '../format/entry-stream.js'
import { ManifestNotFoundError, ObjectNotFoundError } from '../format/errors.js'
import type { ReadLimits } from '../format/limits.js'
import { checkOptions } from '../format/options.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { ObjectChunks } from '../s3/object-chunks.js'

/** Options for {@link readManifest}. */
export interface ReadManifestOptions extends Pick<ReadLimits, 'maxLineBytes'> {
  /** The manifest whose `manifest_ref` led here, named in a `ManifestNotFoundError`. */
  referencedFrom?: string
}

/** Marks a source made by `readManifest` with its key, so `expandRefs` counts it as visited. */
export const MANIFEST_KEY: unique symbol = Symbol.for('s3exchange.manifestKey')

/** What `readManifest` returns: an async generator of entries, plus the key they come from. */
export type ManifestSource = EntryStream & { readonly [MANIFEST_KEY]: string }

/** Streams and parses the manifest at `key`. */
export function readManifest(ctx: S3Context, key: string, options: ReadManifestOptions = {}): ManifestSource {
  checkContext('readManifest', ctx)
  checkOptions('readManifest', options)
  const open = async () => {
    let chunks: ObjectChunks
    try {
      chunks = await ObjectChunks.open(ctx, key)
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        throw new ManifestNotFoundError(key, { cause: error, referencedFrom: options.referencedFrom })
      }
      throw error
    }
    return { source: chunks, close: () => chunks.close(), detach: () => chunks.detach() }
  }
  return Object.assign(new EntryStream(open, { key, maxLineBytes: options.maxLineBytes ?? ctx.limits?.maxLineBytes }), {
    [MANIFEST_KEY]: key,
  })
}
