/**
 * Resumable iteration: the stages that give every item of a manifest's traversal a cursor and
 * start a traversal right after one (see `format/cursor.ts` for what a cursor holds, and
 * `traverse.ts` for how manifests are skipped and checked).
 *
 * - `positionedEntries(ctx, root, opts)`: the manifest's entries (refs inlined), each with its
 *   position; with `after`, only those after the cursor; with `partition`, this worker's share,
 *   assigned as the whole traversal would have (the assignment state is in the cursor); with
 *   `follow`, then what is appended to the root, as it appears.
 * - `readPositionedMembers`: a shard's members, each with its position; for the shard a cursor
 *   points into, only the members after the cursor's (see `archive/resume-members.ts`). Pass it
 *   as `expandShards`' `readMembers`.
 * - `withCursor()`: `{ entry, body }` → `{ entry, body, cursor }`; `entriesWithCursor()`: entry → `{ entry, cursor }`.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandShards, fetchBodies, positionedEntries, readPositionedMembers, withCursor } from '@s3exchange/core'
 *
 * const saved = await loadCursor() // a string, or undefined the first time
 * for await (const { entry, body, cursor } of pipe(
 *   positionedEntries(ctx, 'ds/manifest.jsonl', { after: saved }),
 *   expandShards(ctx, { bodies: true, readMembers: readPositionedMembers }),
 *   fetchBodies(ctx, { concurrency: 16 }),
 *   withCursor(),
 * )) {
 *   await handle(entry, await body.bytes())
 *   await saveCursor(cursor) // a restart resumes right after this item
 * }
 * ```
 */
import { readShardMembersAfter } from '../archive/resume-members.js'
import { type ScanArchiveOptions, shardMembers } from '../archive/scan-archive.js'
import { type CursorPosition, checkCursorFits, decodeCursor, orderFingerprint } from '../format/cursor.js'
import { type FileEntry, type ManifestEntry, type ShardEntry, serializeEntry } from '../format/entries.js'
import { ConfigurationError, InvalidCursorError, S3ExchangeError } from '../format/errors.js'
import type { EntryWithBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { checkPartition, PartitionAssigner, type PartitionOptions } from './partition.js'
import { cursorOf, positionOf, setPosition } from './positions.js'
import { type TraverseOptions, traverseManifest } from './traverse.js'

/** Options for {@link positionedEntries}. */
export interface PositionedEntriesOptions extends Pick<TraverseOptions, 'maxLineBytes' | 'maxRefDepth' | 'maxManifests' | 'follow'> {
  /**
   * Start right after the item this cursor was taken from (an item's `cursor`). It must come from
   * a read of the same manifest with the same options (`partition`, `resolveRefs`, `shuffle`), else
   * `CursorMismatchError` naming what differs; a string that is not a cursor is `InvalidCursorError`.
   * Without `shuffle`, the manifest may have been appended to since (`append_parts`); one rewritten
   * since is `CursorMismatchError`. With `shuffle` (see `shuffledEpoch`), the epoch is defined over
   * the manifest as it was: one appended to since is a `CursorMismatchError` too (`reason: 'appended'`).
   */
  after?: string | undefined
  /** Inline refs (default true); when false, a ref is an item like the others. */
  resolveRefs?: boolean | undefined
  /** This worker's share (see `partition`). */
  partition?: PartitionOptions | undefined
}

/** A manifest entry with the cursor to resume after it. */
export interface EntryWithCursor<E extends ManifestEntry = ManifestEntry> {
  entry: E
  cursor: string
}

/** An object with the cursor to resume after it. */
export interface ObjectWithCursor<E extends ManifestEntry = ManifestEntry> extends EntryWithBody<E> {
  cursor: string
}

/** How a manifest of entries in memory is named in its cursors. */
export const IN_MEMORY_ROOT = '(entries in memory)'

/**
 * The entries of a manifest (a key, or entries in memory, whose cursors hold their positions in
 * the sequence as if it were the manifest's bytes), positioned and resumable; see the module comment.
 */
export function positionedEntries(
  ctx: S3Context,
  manifest: string | Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
  options: PositionedEntriesOptions = {},
): AsyncGenerator<ManifestEntry, void, undefined> {
  // Bad options and cursors that do not fit are thrown here, before anything is read.
  const root = typeof manifest === 'string' ? manifest : IN_MEMORY_ROOT
  if (typeof manifest !== 'string' && options.follow) throw new ConfigurationError('only a manifest stored in S3 can be followed')
  const partition = options.partition ? checkPartition(options.partition) : undefined
  const fingerprint = orderFingerprint({ partition, resolveRefs: options.resolveRefs })
  const decoded = options.after === undefined ? undefined : decodeCursor(options.after)
  if (decoded) checkCursorFits(decoded, root, fingerprint)
  // A shuffled epoch's cursor records its shuffle in its options: it never fits here.
  const after = decoded as CursorPosition | undefined
  if (after?.partition && partition && after.partition.loads.length !== partition.count) {
    throw new InvalidCursorError(`its partition state is for ${after.partition.loads.length} workers, not ${partition.count}`)
  }
  return positioned(ctx, manifest, root, fingerprint, after, partition, options)
}

async function* positioned(
  ctx: S3Context,
  manifest: string | Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
  root: string,
  fingerprint: string,
  after: CursorPosition | undefined,
  partition: PartitionOptions | undefined,
  options: PositionedEntriesOptions,
): AsyncGenerator<ManifestEntry, void, undefined> {
  const entries = traverseManifest(ctx, root, {
    after,
    resolveRefs: options.resolveRefs,
    orderFingerprint: fingerprint,
    follow: options.follow,
    rootBytes: typeof manifest === 'string' ? undefined : () => entryLines(manifest),
    maxLineBytes: options.maxLineBytes,
    maxRefDepth: options.maxRefDepth,
    maxManifests: options.maxManifests,
  })
  if (!partition || partition.count === 1) {
    yield* entries
    return
  }
  const assigner = new PartitionAssigner(partition.count, after?.partition)
  for await (const entry of entries) {
    const at = positionOf(entry)
    // A traversal's positions (this generator's own).
    const position = at?.position as CursorPosition | undefined
    if (position && at?.resumeAfter) {
      // The shard the cursor points into: already this worker's, assigned before the cursor was taken.
      position.partition = after?.partition
      yield entry
      continue
    }
    if (assigner.assign(entry) !== partition.index) continue
    if (position) position.partition = assigner.snapshot()
    yield entry
  }
}

/**
 * A shard's members, positioned; for the shard a cursor points into, only those after it (see the
 * module comment). Takes the scan's options as `shardMembers` does: `skip` members more (a
 * prefetcher reading a shard again from where it stopped), `ifMatch`, `onOpen`.
 */
export async function* readPositionedMembers(
  ctx: S3Context,
  shard: ShardEntry,
  options: Omit<ScanArchiveOptions, 'internalManifestPath'> = {},
): AsyncGenerator<EntryWithBody<FileEntry>> {
  const at = positionOf(shard)
  if (!at) {
    yield* shardMembers(ctx, shard, options)
    return
  }
  const after = at.resumeAfter
  const skip = options.skip ?? 0
  let index = (after ? after.index + 1 : 0) + skip
  const members =
    after && skip === 0 ? readShardMembersAfter(ctx, shard, after, options) : shardMembers(ctx, shard, { ...options, skip: index })
  const base = at.membersAt ?? at.position
  for await (const item of members) {
    const path = item.body.memberPath ?? item.entry.member_path ?? item.entry.key
    setPosition(item.entry, { position: { ...base, member: { index: index++, path } } })
    yield item
  }
}

/** `{ entry, body }` → `{ entry, body, cursor }`, for items of a positioned traversal. */
export function withCursor() {
  return async function* withCursorStage<E extends ManifestEntry>(
    items: AsyncIterable<EntryWithBody<E>> | Iterable<EntryWithBody<E>>,
  ): AsyncGenerator<ObjectWithCursor<E>, void, undefined> {
    // The cursor string is made when asked for: most items are never resumed after.
    for await (const { entry, body } of items) {
      let cursor: string | undefined
      yield {
        entry,
        body,
        get cursor() {
          cursor ??= requireCursor(entry)
          return cursor
        },
      }
    }
  }
}

/** entry → `{ entry, cursor }`, for entries of a positioned traversal. */
export function entriesWithCursor() {
  return async function* entriesWithCursorStage<E extends ManifestEntry>(
    entries: AsyncIterable<E> | Iterable<E>,
  ): AsyncGenerator<EntryWithCursor<E>, void, undefined> {
    for await (const entry of entries) yield { entry, cursor: requireCursor(entry) }
  }
}

/** Entries as manifest lines, as this library writes them. */
async function* entryLines(entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) yield Buffer.from(`${serializeEntry(entry)}\n`)
}

function requireCursor(entry: ManifestEntry): string {
  const cursor = cursorOf(entry)
  if (cursor === undefined)
    throw new S3ExchangeError(`no position for ${'key' in entry ? entry.key : entry.archive_key}: it did not come from positionedEntries`)
  return cursor
}
