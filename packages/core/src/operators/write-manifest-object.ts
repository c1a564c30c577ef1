/**
 * `writeManifestObject(ctx, key, entries)`: writes entries as one manifest object, replacing what
 * was there (Python's `mode="overwrite"`), streamed (see `ManifestObjectWriter`); the object
 * appears whole when complete, and on failure the old one is untouched. `writeManifestObjectTo` is
 * the same as the sink of a pipeline.
 *
 * @example
 * ```ts
 * import { writeManifestObject } from '@s3exchange/core'
 *
 * await writeManifestObject(ctx, 'training/123/samples/manifest.jsonl', [
 *   { kind: 'file', key: 'training/123/samples/file1.wav', id: '001' },
 * ])
 * ```
 */
import type { ManifestEntry } from '../format/entries.js'
import { checkOptions } from '../format/options.js'
import { writeAll } from '../format/writer.js'
import { ManifestObjectWriter, type WriteManifestObjectOptions, type WrittenManifest } from '../manifest/manifest-object.js'
import { checkContext, type S3Context } from '../s3/context.js'

/** Writes entries as one manifest object; see the module comment. */
export async function writeManifestObject(
  ctx: S3Context,
  key: string,
  entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  options: WriteManifestObjectOptions = {},
): Promise<WrittenManifest> {
  checkContext('writeManifestObject', ctx)
  checkOptions('writeManifestObject', options)
  return writeAll(new ManifestObjectWriter(ctx, key, options), entries)
}
