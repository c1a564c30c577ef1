/**
 * The one rollover rule: when a batch (a shard archive, a manifest part, a batch of items) is
 * closed and the next one started. `shardInto`, `Shard.splitItems`, the manifest parts writer and
 * the ManifestWriter's shards all ask it, with their own limits.
 *
 * - A batch holds at most `maxEntries` items.
 * - `maxBytes`, with `rollover: 'before-overflow'` (the default; Python's `Shard.split_items`):
 *   the batch is closed before an item that would take it past `maxBytes`, so no batch is larger
 *   unless a single item is (it then gets a batch of its own). An item of unknown size is not
 *   counted and never closes a batch by size.
 * - `maxBytes`, with `rollover: 'at-limit'` (Python's `ManifestWriter` for its shards): the batch
 *   is closed once it has reached `maxBytes`, after the item that reached it, which may take it past.
 *
 * @example
 * ```ts
 * import { closesBefore, isFull } from '@s3exchange/core/internals'
 *
 * const limits = { maxEntries: 3, maxBytes: 10 }
 * closesBefore(limits, { count: 2, bytes: 8 }, 4) // true: 12 bytes would be past maxBytes
 * isFull(limits, { count: 3, bytes: 3 })          // true: maxEntries reached
 * ```
 */

/** Limits of a batch (a shard, a manifest part), and how `maxBytes` closes it. */
export interface RolloverLimits {
  /** Most items per batch. Default: no limit. */
  maxEntries?: number
  /** Most bytes per batch (for shards: member data, uncompressed, headers not counted). Default: no limit. */
  maxBytes?: number
  /**
   * How `maxBytes` closes a batch: `'before-overflow'`, before an item that would take it past the
   * limit (Python's `Shard.split_items`; no batch exceeds `maxBytes` but one whose single item
   * does), or `'at-limit'`, after the item that makes it reach the limit (Python's `ManifestWriter`;
   * that item may take it past). Default `'before-overflow'`, except for `ManifestWriter` shards.
   */
  rollover?: 'before-overflow' | 'at-limit'
}

/** What a batch holds so far. */
export interface BatchSize {
  /** Items in it. */
  count: number
  /** Bytes in it. */
  bytes: number
}

/**
 * Whether the open batch must be closed before an item of `size` bytes (undefined: unknown, not
 * counted) is added to it: the rule itself. An empty batch is never closed.
 */
export function closesBefore(limits: RolloverLimits, batch: BatchSize, size: number | undefined): boolean {
  if (batch.count === 0) return false
  if (limits.maxEntries !== undefined && batch.count >= limits.maxEntries) return true
  if (limits.maxBytes === undefined) return false
  if (limits.rollover === 'at-limit') return batch.bytes >= limits.maxBytes
  return size !== undefined && batch.bytes + size > limits.maxBytes
}

/**
 * Whether the batch can take no further item, whatever its size: a writer that closes a batch as
 * soon as it is full (rather than when the next item comes) asks this after each item. The
 * batches are the same either way.
 */
export function isFull(limits: RolloverLimits, batch: BatchSize): boolean {
  if (limits.maxEntries !== undefined && batch.count >= limits.maxEntries) return true
  return limits.rollover === 'at-limit' && limits.maxBytes !== undefined && batch.bytes >= limits.maxBytes
}

/**
 * Splits items into batches by the rule above, lazily: a batch is yielded when the item after it
 * comes (or the input ends), so an endless input works. `sizeOf` gives an item's size in bytes,
 * or undefined when it is unknown.
 */
export function* batches<T>(items: Iterable<T>, sizeOf: (item: T) => number | undefined, limits: RolloverLimits): Generator<T[]> {
  let batch: T[] = []
  let bytes = 0
  for (const item of items) {
    const size = sizeOf(item)
    if (closesBefore(limits, { count: batch.length, bytes }, size)) {
      yield batch
      batch = []
      bytes = 0
    }
    batch.push(item)
    bytes += size ?? 0
  }
  if (batch.length > 0) yield batch
}
