/**
 * `expandShards(ctx, opts)`: replaces each `shard` entry with its members; other items pass
 * through unchanged.
 *
 * - `{ bodies: false }` (default): the entries of each shard's internal manifest, in its order,
 *   as Python's `list_manifest_files` gives them. Only the head of each archive is read. With an
 *   `indexCache`, the head is read as an archive index (one small ranged GET) and kept there, so
 *   that `fetchBodies` given the same cache reads each member with one ranged GET and no head read.
 *   With `keepUnlocated` too, a shard whose index does not locate every member (no offsets: an
 *   archive another tool wrote, whose members could only be read by streaming it from the start,
 *   one pass per member) passes through whole, for a later `expandShards({ bodies: true })` to
 *   stream once (the shuffled read does this).
 * - `{ bodies: true }`: `{ entry, body }` for every regular member, in archive order, as Python's
 *   `iter_objects` gives them, streamed out of one GET per archive (gzip through node:zlib);
 *   memory stays flat whatever the archive size. A body not read by the time the next item is
 *   asked for is skipped (drained), so read it inside the loop.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, expandShards, readManifest } from '@s3exchange/core'
 *
 * const items = pipe(readManifest(ctx, 'ds/manifest.jsonl'), expandRefs(ctx), expandShards(ctx, { bodies: true }))
 * for await (const item of items) {
 *   if ('body' in item) console.log(item.entry.key, (await item.body.bytes()).byteLength) // a shard member
 *   else console.log('loose:', item.key)                                              // fetch with fetchBodies
 * }
 * ```
 */

import { type ArchiveIndex, type ArchiveIndexCache, isLocated, readArchiveHead } from '../archive/archive-index.js'
import { listedMemberEntry } from '../archive/internal-manifest.js'
import type { OpenMemberOptions } from '../archive/random-access.js'
import { readShardEntries, readShardMembers, type ShardReadOptions } from '../archive/scan-archive.js'
import { type FileEntry, internalManifestPath, type ShardEntry } from '../format/entries.js'
import { checkOptions } from '../format/options.js'
import { type EntryWithBody, hasBody, type PipelineItem } from '../s3/body.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { DEFAULT_MAX_BUFFERED_BYTES } from './fetch-bodies.js'
import { prefetchShards, type ReadMembers } from './prefetch-shards.js'

/**
 * Archives `iterObjects` reads at once (its `shardConcurrency`), the one consumed and those read
 * ahead within `maxBufferedBytes`. 2: more reads many small shards faster through a distant S3
 * (8: 1.3–2× at 20–50 ms), but big gzip shards slower and in more memory where inflating is the
 * bound (8: 45% slower, 375 MB peak instead of 216); docs/DESIGN-NOTES.md has the figures.
 */
export const DEFAULT_SHARD_CONCURRENCY = 2

/** Options for {@link expandShards}. */
export interface ExpandShardsOptions extends ShardReadOptions, Pick<OpenMemberOptions, 'indexCache'> {
  /** Yield `{ entry, body }` for each member (one streaming GET per archive) instead of entries only. Default false. */
  bodies?: boolean
  /**
   * With `bodies`: archives read at once, the one being consumed and the ones after it, whose
   * members are held in memory within `maxBufferedBytes` (see `prefetch-shards.ts`); output stays
   * in manifest order. Default 1: one at a time (the store's `iterObjects` passes
   * `DEFAULT_SHARD_CONCURRENCY`, 2).
   */
  shardConcurrency?: number
  /** With `shardConcurrency` > 1: bytes of prefetched members held at once. Default 64 MiB. */
  maxBufferedBytes?: number
  /** With `bodies`: how a shard's members are read. Default `readShardMembers` (a resumed traversal passes its own). */
  readMembers?: ReadMembers | undefined
  /**
   * Without `bodies`, with `indexCache`: pass a shard through unexpanded when its index does not
   * locate every member (see the module comment). Default false.
   */
  keepUnlocated?: boolean
}

/** Expands shard entries into their members; see the module comment. */
export function expandShards(
  ctx: S3Context,
  options: ExpandShardsOptions & { bodies: true },
): <I extends PipelineItem>(
  items: AsyncIterable<I> | Iterable<I>,
) => AsyncGenerator<Exclude<I, { kind: 'shard' }> | EntryWithBody<FileEntry>, void, undefined>
export function expandShards(
  ctx: S3Context,
  options?: ExpandShardsOptions & { bodies?: false },
): <I extends PipelineItem>(
  items: AsyncIterable<I> | Iterable<I>,
) => AsyncGenerator<Exclude<I, { kind: 'shard' }> | FileEntry, void, undefined>
export function expandShards(ctx: S3Context, options: ExpandShardsOptions = {}) {
  checkContext('expandShards', ctx)
  checkOptions('expandShards', options)
  const shardConcurrency = options.shardConcurrency ?? 1
  if (options.bodies && shardConcurrency > 1) {
    return prefetchShards(ctx, { ...options, shardConcurrency, maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES })
  }
  return async function* expandShardsStage(items: AsyncIterable<PipelineItem> | Iterable<PipelineItem>) {
    for await (const item of items) {
      if (hasBody(item) || item.kind !== 'shard') {
        yield item
        continue
      }
      if (options.bodies) yield* (options.readMembers ?? readShardMembers)(ctx, item, options)
      else if (options.indexCache) {
        const index = await archiveIndex(ctx, item, options.indexCache)
        if (index === undefined || (options.keepUnlocated && !index.entries.every((entry) => isLocated(index, entry)))) {
          if (options.keepUnlocated) yield item
          else yield* readShardEntries(ctx, item, options)
        } else for (const entry of index.entries) yield listedMemberEntry(entry, item.archive_key)
      } else yield* readShardEntries(ctx, item, options)
    }
  }
}

/** A shard's archive index, from the cache or read from the archive's head (and cached); undefined when its head holds none. */
async function archiveIndex(ctx: S3Context, shard: ShardEntry, cache: ArchiveIndexCache): Promise<ArchiveIndex | undefined> {
  const archiveKey = shard.archive_key
  const cached = cache.get(archiveKey)
  if (cached !== undefined) return cached
  const head = await readArchiveHead(ctx, archiveKey, { internalManifestPath: internalManifestPath(shard) })
  if (!head?.index) return undefined
  cache.set(archiveKey, head.index)
  return head.index
}
