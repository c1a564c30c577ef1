/**
 * `writeManifestParts(ctx, root, opts)`: the sink of a pipeline. Writes the entries it receives to
 * new part manifests next to `root` (`partMaxEntries` 50,000 and `partMaxBytes` 50 MiB each, streamed
 * as they come), then publishes them all with one conditional write that appends their refs to the
 * root: the root gains every new part or none, and concurrent writers lose nothing on servers that
 * enforce conditional writes. Resolves to what was committed.
 *
 * On failure nothing is published: it throws `PublishError`, whose `uploadedKeys` lists the parts
 * that were uploaded but are not referenced (the open part's multipart upload is aborted). A
 * cancellation by the caller's signal comes out as the signal's `AbortError`.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { writeManifestParts } from '@s3exchange/core'
 *
 * const { parts, entries } = await pipe(
 *   [{ kind: 'file', key: 'training/123/samples/file3.wav', id: '003' }],
 *   writeManifestParts(ctx, 'training/123/samples/manifest.jsonl'),
 * )
 * ```
 */
import type { ManifestEntry } from '../format/entries.js'
import { isAbort, PublishError } from '../format/errors.js'
import { checkOptions } from '../format/options.js'
import { writeAll } from '../format/writer.js'
import { type CommitResult, type ManifestPartsOptions, ManifestPartsWriter } from '../manifest/parts-writer.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { withWriteOptions } from '../s3/write-options.js'

/** Options for {@link writeManifestParts}. */
export type WriteManifestPartsOptions = ManifestPartsOptions

/** Writes entries as parts of `root` and commits them; see the module comment. */
export function writeManifestParts(ctx: S3Context, root: string, options: WriteManifestPartsOptions = {}) {
  checkContext('writeManifestParts', ctx)
  checkOptions('writeManifestParts', options)
  ctx = withWriteOptions(ctx, options) // bad write options fail here, before the pipeline runs
  return async function writeManifestPartsSink(entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>): Promise<CommitResult> {
    const writer = new ManifestPartsWriter(ctx, root, options)
    try {
      return await writeAll(writer, entries)
    } catch (error) {
      if (isAbort(error)) throw error
      throw new PublishError(root, [...writer.parts], error)
    }
  }
}
