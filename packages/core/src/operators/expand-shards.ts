/**
 * `expandShards(ctx, opts)`: replaces each `shard` entry with its members; other items pass
 * through unchanged.
 *
 * - `{ bodies: false }` (default): the entries of each shard's internal manifest, in its order,
 *   as Python's `list_manifest_files` gives them. Only the head of each archive is read. With an
 *   `indexCache`, the head is read as an archive index (one small ranged GET) and kept there, so
 *   that `fetchBodies` given the same cache reads each member with one ranged GET and no head read.
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

import { readArchiveHead } from '../archive/archive-index.js'
import { listedMemberEntry } from '../archive/internal-manifest.js'
import type { OpenMemberOptions } from '../archive/random-access.js'
import { readShardEntries, readShardMembers, type ShardReadOptions } from '../archive/scan-archive.js'
import { type FileEntry, internalManifestPath, type ShardEntry } from '../format/entries.js'
import { type EntryWithBody, hasBody, type PipelineItem } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { DEFAULT_MAX_BUFFERED_BYTES } from './fetch-bodies.js'
import { prefetchShards } from './prefetch-shards.js'

/** Options for {@link expandShards}. */
export interface ExpandShardsOptions extends ShardReadOptions, Pick<OpenMemberOptions, 'indexCache'> {
  /** Yield `{ entry, body }` for each member (one streaming GET per archive) instead of entries only. Default false. */
  bodies?: boolean
  /**
   * With `bodies`: archives read at once, the one being consumed and the ones after it, whose
   * members are held in memory within `maxBufferedBytes` (see `prefetch-shards.ts`); output stays
   * in manifest order. Default 1: one at a time (the store's `iterObjects` passes 2).
   */
  shardConcurrency?: number
  /** With `shardConcurrency` > 1: bytes of prefetched members held at once. Default 64 MiB. */
  maxBufferedBytes?: number
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
      if (options.bodies) yield* readShardMembers(ctx, item, options)
      else if (options.indexCache) yield* indexedShardEntries(ctx, item, options)
      else yield* readShardEntries(ctx, item, options)
    }
  }
}

/**
 * A shard's member entries from its archive index (cached, or read from the archive's head and
 * cached); from its internal manifest wherever it is when the archive has no index at its head.
 */
async function* indexedShardEntries(ctx: S3Context, shard: ShardEntry, options: ExpandShardsOptions): AsyncGenerator<FileEntry> {
  const cache = options.indexCache
  const archiveKey = shard.archive_key
  let index = cache?.get(archiveKey)
  if (index === undefined) {
    const head = await readArchiveHead(ctx, archiveKey, { internalManifestPath: internalManifestPath(shard) })
    if (head?.index) {
      index = head.index
      cache?.set(archiveKey, index)
    }
  }
  if (index === undefined) {
    yield* readShardEntries(ctx, shard, options)
    return
  }
  for (const entry of index.entries) yield listedMemberEntry(entry, archiveKey)
}
