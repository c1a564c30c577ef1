/**
 * `shardInto(ctx, opts)`: packs `ShardItem`s into tar, tar.gz or tar.zst shard archives under `prefix`,
 * streamed straight into S3 (see `ShardWriter`), and yields each archive's `ShardEntry` as Python
 * writes it once the archive is complete. A new archive starts when the next item would exceed
 * `maxEntries` or `maxBytes` (Python's `Shard.split_items` rule; an item larger than `maxBytes`
 * gets an archive of its own). Items are streamed in as they come; an item whose source is a
 * stream without `size_bytes` is first read into memory (up to `maxUnsizedItemBytes`) to learn its
 * size, because a tar header holds the size before the data.
 *
 * A failure, or leaving the loop early, aborts the archive being written; archives already
 * yielded are complete (and not referenced by any manifest until you write one).
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { shardInto, writeManifestParts } from '@s3exchange/core'
 *
 * const result = await pipe(
 *   files.map((path, i) => ({ source: path, member_path: `${i}.wav`, id: String(i) })),
 *   shardInto(ctx, { prefix: 'training/124/samples/shards', maxEntries: 10_000, maxBytes: 1 << 30 }),
 *   writeManifestParts(ctx, 'training/124/samples/manifest.jsonl'),
 * )
 * ```
 */
import { prepareShardItem, type ShardItem } from '../archive/shard-items.js'
import { ShardWriter, type ShardWriterOptions } from '../archive/shard-writer.js'
import type { ShardEntry } from '../format/entries.js'
import { ConfigurationError } from '../format/errors.js'
import { DEFAULT_SHARD_COMPRESSION, runId, shardArchiveName } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { progressCounter } from '../format/progress.js'
import { closesBefore, type RolloverLimits } from '../format/rollover.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { withWriteOptions } from '../s3/write-options.js'

/** Options for {@link shardInto}. */
export interface ShardIntoOptions extends ShardWriterOptions, RolloverLimits {
  /** Key prefix of the archives (no trailing slash needed). */
  prefix: string
  /**
   * Name of the archive with this index (0, 1, …), relative to `prefix`; its extension sets the
   * compression (see `ShardWriterOptions.compression`). Default
   * `shard-<YYYYMMDD-HHMMSS>-<6 hex>-<index, 5 digits>.tar.gz` (`.tar` with `compression: null`,
   * `.tar.zst` with `'zstd'`),
   * unique per run of the stage so that a second run never overwrites the archives of a first one
   * (`shardArchiveName`, as the `ManifestWriter` and `s3x pack` name theirs).
   */
  archiveName?: (index: number) => string
}

/** Packs items into shard archives; see the module comment. */
export function shardInto(ctx: S3Context, options: ShardIntoOptions) {
  checkContext('shardInto', ctx)
  checkOptions('shardInto', options)
  if (typeof options.prefix !== 'string' || options.prefix.includes('#')) {
    throw new ConfigurationError(
      `shardInto: prefix must be a string without '#' (archive keys with '#' cannot be read by virtual key), got ${JSON.stringify(options.prefix)}`,
      { call: 'shardInto', option: 'prefix' },
    )
  }
  const compression = options.compression === undefined ? DEFAULT_SHARD_COMPRESSION : options.compression
  const prefix = options.prefix.replace(/\/+$/, '')
  ctx = withWriteOptions(ctx, options) // bad write options fail here, before the pipeline runs

  return async function* shardIntoStage(
    items: AsyncIterable<ShardItem> | Iterable<ShardItem>,
  ): AsyncGenerator<ShardEntry, void, undefined> {
    // A new run id for each run of the stage, so that reusing the stage never overwrites archives.
    const id = runId()
    const archiveName = options.archiveName ?? ((index: number) => shardArchiveName(id, index, compression))
    const archiveKey = (index: number) => (prefix ? `${prefix}/${archiveName(index)}` : archiveName(index))
    let index = 0
    let writer: ShardWriter | undefined
    // Progress of the whole run: members packed, archive bytes uploaded (see `ShardWriter`).
    const progress = progressCounter(options)
    try {
      for await (const item of items) {
        const prepared = await prepareShardItem(item, writer?.archiveKey ?? archiveKey(index), options)
        if (writer && closesBefore(options, { count: writer.count, bytes: writer.dataBytes }, prepared.source.size)) {
          const done = writer
          writer = undefined
          yield await done.finish()
        }
        writer ??= new ShardWriter(ctx, archiveKey(index++), options, progress)
        await writer.add(prepared)
      }
      if (writer && writer.count > 0) {
        const done = writer
        writer = undefined
        yield await done.finish()
      }
    } finally {
      await writer?.abort()
    }
  }
}
