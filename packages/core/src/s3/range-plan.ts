/**
 * Planning parallel ranged reads of one large object (pure logic, no I/O): the options, their
 * defaults and checks, when a read is split, and the consecutive ranges after its first answer. A
 * read whose answer is no larger than `2 × rangeSize` stays one GET; a larger one is read on, after
 * its first `rangeSize` bytes, as ranges of `rangeSize` bytes, several at once, delivered in order
 * (`ordered-ranges.ts`).
 *
 * @example
 * ```ts
 * import { planRanges, rangedReadsOf, worthSplitting } from '@s3exchange/core/internals'
 *
 * const reads = rangedReadsOf({ rangeSize: 8 * 2 ** 20 })             // { rangeSize: 8 MiB, rangeConcurrency: 4 }
 * worthSplitting(40 * 2 ** 20, reads)                                  // true
 * const rest = planRanges(8 * 2 ** 20, 40 * 2 ** 20 - 1, reads.rangeSize) // 8–16, 16–24, 24–32, 32–40 MiB
 * ```
 */
import { ConfigurationError } from '../format/errors.js'

/** Default size of one ranged GET of a large object: 8 MiB. */
export const DEFAULT_RANGE_SIZE = 8 * 1024 * 1024

/** Default number of ranged GETs a call runs at once beside each object's own GET: 4. */
export const DEFAULT_RANGE_CONCURRENCY = 4

/** Smallest `rangeSize` accepted: 64 KiB (smaller ranges cost more in requests than they gain). */
export const MIN_RANGE_SIZE = 64 * 1024

/** Largest `rangeConcurrency` accepted. */
export const MAX_RANGE_CONCURRENCY = 64

/**
 * Parallel ranged reads of large objects. An object larger than `2 × rangeSize` is read as
 * consecutive byte ranges of `rangeSize`, its own GET plus up to `rangeConcurrency` more ranged
 * GETs at once, delivered in order as one stream; each range is pinned to the first answer's ETag
 * (`If-Match`) and resumed like any GET, and an object replaced meanwhile fails the read with
 * `ObjectChangedError`. Smaller objects stay one GET. A read holds at most `(rangeConcurrency + 1)
 * × rangeSize` bytes of one object in memory ahead of its reader, and the `rangeConcurrency` extra
 * GETs are shared by everything the call reads: a call holds at most `rangeConcurrency`
 * connections more than it would with one GET per object.
 */
export interface RangedReadOptions {
  /** Bytes per ranged GET: at least 64 KiB. Default 8 MiB. */
  rangeSize?: number
  /** Ranged GETs at once beside each object's own GET, per call: 0 to 64, 0 turns ranged reads off. Default 4. */
  rangeConcurrency?: number
}

/** {@link RangedReadOptions} with the defaults applied and checked. */
export interface RangedReads {
  rangeSize: number
  rangeConcurrency: number
}

/** One byte range of an object, both ends inclusive. */
export interface ByteRange {
  start: number
  end: number
}

/** Applies the defaults and checks the values; a bad value is a `ConfigurationError` naming the option. */
export function rangedReadsOf(options: RangedReadOptions = {}): RangedReads {
  const rangeSize = options.rangeSize ?? DEFAULT_RANGE_SIZE
  const rangeConcurrency = options.rangeConcurrency ?? DEFAULT_RANGE_CONCURRENCY
  if (!Number.isSafeInteger(rangeSize) || rangeSize < MIN_RANGE_SIZE) {
    throw new ConfigurationError(`rangeSize must be a whole number of bytes, at least ${MIN_RANGE_SIZE}; got ${String(rangeSize)}`)
  }
  if (!Number.isInteger(rangeConcurrency) || rangeConcurrency < 0 || rangeConcurrency > MAX_RANGE_CONCURRENCY) {
    throw new ConfigurationError(
      `rangeConcurrency must be a whole number from 0 to ${MAX_RANGE_CONCURRENCY}; got ${String(rangeConcurrency)}`,
    )
  }
  return { rangeSize, rangeConcurrency }
}

/** Whether a read of `length` bytes is split into ranges: when longer than two ranges, and ranged reads are on. */
export function worthSplitting(length: number, reads: RangedReads): boolean {
  return reads.rangeConcurrency > 0 && length > 2 * reads.rangeSize
}

/** The consecutive ranges that cover `[from, last]`, each `rangeSize` bytes but the last. */
export function planRanges(from: number, last: number, rangeSize: number): ByteRange[] {
  const ranges: ByteRange[] = []
  for (let start = from; start <= last; start += rangeSize) ranges.push({ start, end: Math.min(last, start + rangeSize - 1) })
  return ranges
}

/**
 * The total size of the object from a `Content-Range` header (`bytes 0-99/1234` → 1234), or
 * undefined when absent or unknown (`*`).
 */
export function totalSizeOf(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /^bytes \d+-\d+\/(\d+)$/.exec(contentRange.trim())
  return match ? Number(match[1]) : undefined
}
