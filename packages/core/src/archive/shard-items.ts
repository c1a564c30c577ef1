/**
 * The items of a shard (Python's `ShardItem`, field for field): checking a member path, learning
 * an item's size before it is written (a tar header holds the size before the data), and splitting
 * items into batches for shards by the rollover rule (`Shard.splitItems`).
 *
 * @example
 * ```ts
 * import { splitShardItems } from '@s3exchange/core'
 *
 * for (const batch of splitShardItems(items, { maxEntries: 1000, maxBytes: 1 << 30 })) console.log(batch.length)
 * ```
 */
import { statSync } from 'node:fs'
import { checkJsonValue, type Meta } from '../format/entries.js'
import { InvalidEntryError, InvalidSourceError, S3ExchangeError, ShardWriteError } from '../format/errors.js'
import { memberPathProblem, virtualKey } from '../format/keys.js'
import { checkOptions } from '../format/options.js'
import { batches, type RolloverLimits } from '../format/rollover.js'
import { type DataSource, type PreparedSource, prepareSource } from '../s3/data-source.js'

/** One member to put in a shard: Python's `ShardItem`, field for field. */
export interface ShardItem {
  /** The data: bytes, a local file path, or a stream (then give `size_bytes`, or it is read into memory first). */
  source: DataSource
  /** Path inside the archive: relative, without `..`, unique in the shard. */
  member_path: string
  id?: string | null
  meta?: Meta | null
  /** Size of the data in bytes; checked against bytes and files, required (or buffered) for streams. */
  size_bytes?: number | null
}

/** An item whose size is known, ready to be added. */
export interface PreparedShardItem {
  readonly item: ShardItem
  readonly source: PreparedSource & { size: number }
}

/** Works out the size of an item's data (reading a sizeless stream into memory) and checks its path. */
export async function prepareShardItem(
  item: ShardItem,
  archiveKey: string,
  options: { maxUnsizedItemBytes?: number } = {},
): Promise<PreparedShardItem> {
  const problem = memberPathProblem(item?.member_path)
  if (problem) throw new ShardWriteError(problem, { archiveKey, memberPath: item?.member_path })
  checkItemFields(item, archiveKey)
  try {
    const source = await prepareSource(item.source, {
      key: virtualKey(archiveKey, item.member_path),
      sizeHint: item.size_bytes,
      requireSize: true,
      maxBufferedBytes: options.maxUnsizedItemBytes,
    })
    return { item, source: source as PreparedSource & { size: number } }
  } catch (error) {
    throw asShardWriteError(error, archiveKey, item.member_path)
  }
}

/**
 * Throws `InvalidEntryError` (naming the member's virtual key and the field) for an item's `meta`
 * that JSON cannot hold as it is, or a `size_bytes` that is not a non-negative integer.
 */
export function checkItemFields(item: ShardItem, archiveKey: string): void {
  const key = virtualKey(archiveKey, item.member_path)
  checkJsonValue(key, 'meta', item.meta)
  const size = item.size_bytes
  if (size !== undefined && size !== null && !(typeof size === 'number' && Number.isSafeInteger(size) && size >= 0)) {
    throw new InvalidEntryError(`must be a non-negative integer or null, got ${String(size)}`, { key, field: 'size_bytes' })
  }
}

export function asShardWriteError(error: unknown, archiveKey: string, memberPath?: string): unknown {
  if (error instanceof ShardWriteError || !(error instanceof S3ExchangeError)) return error
  if (error instanceof InvalidSourceError) {
    return new ShardWriteError(error.message.replace(/^Invalid data for [^:]*: /, ''), { archiveKey, memberPath, cause: error })
  }
  return error
}

export function isPrepared(item: object): item is PreparedShardItem {
  const source = (item as { source?: unknown }).source
  return typeof source === 'object' && source !== null && 'open' in source && 'size' in source && 'item' in item
}

/**
 * Splits items into batches for shards, as Python's `Shard.split_items`: by the rollover rule
 * (`rollover.ts`), `'before-overflow'` unless told otherwise. Sizes come from `size_bytes`, the
 * length of bytes, or the size of a file path; a stream without `size_bytes` is not counted. With
 * neither limit, everything is one batch (an empty one for no items, as Python). Unlike Python,
 * bytes count by their length when `size_bytes` is absent, so no batch exceeds `maxBytes`.
 */
export function splitShardItems(items: Iterable<ShardItem>, limits: RolloverLimits = {}): Generator<ShardItem[]> {
  checkOptions('splitShardItems', limits)
  if (limits.maxEntries === undefined && limits.maxBytes === undefined)
    return (function* () {
      yield [...items]
    })()
  return batches(items, itemSize, limits)
}

/** The size an item declares or has: `size_bytes`, the length of bytes, a file's size; else undefined. */
function itemSize(item: ShardItem): number | undefined {
  if (typeof item.size_bytes === 'number') return item.size_bytes
  if (item.source instanceof Uint8Array) return item.source.byteLength
  if (typeof item.source === 'string') {
    try {
      return statSync(item.source).size
    } catch {
      return undefined
    }
  }
  return undefined
}
