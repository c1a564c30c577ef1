/**
 * The rollover rule on arrays, without S3: Python's `Shard.split_items` rule ('before-overflow'),
 * Python's ManifestWriter rule ('at-limit'), and that closing a batch as soon as it is full
 * (`isFull`, as the parts writer does) gives the very batches the lazy rule (`closesBefore`) gives.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type BatchSize, batches, closesBefore, isFull, type RolloverLimits } from './rollover.js'

/** The batches of items of these sizes, as lists of indices (null: an unknown size). */
function split(sizes: (number | null)[], limits: RolloverLimits): number[][] {
  return [
    ...batches(
      sizes.map((size, i) => ({ i, size })),
      (item) => item.size ?? undefined,
      limits,
    ),
  ].map((batch) => batch.map((item) => item.i))
}

/** The same split, closing each batch as soon as `isFull` says so (a writer that flushes eagerly). */
function splitEagerly(sizes: (number | null)[], limits: RolloverLimits): number[][] {
  const out: number[][] = []
  let batch: number[] = []
  let bytes = 0
  const size = (): BatchSize => ({ count: batch.length, bytes })
  for (const [i, s] of sizes.entries()) {
    if (closesBefore(limits, size(), s ?? undefined)) {
      out.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(i)
    bytes += s ?? 0
    if (isFull(limits, size())) {
      out.push(batch)
      batch = []
      bytes = 0
    }
  }
  if (batch.length > 0) out.push(batch)
  return out
}

describe("'before-overflow' (the default: Python's split_items)", () => {
  it('maxEntries: batches of at most that many', () => {
    expect(split([1, 1, 1, 1, 1, 1, 1], { maxEntries: 3 })).toEqual([[0, 1, 2], [3, 4, 5], [6]])
    expect(split([5, 0, 5], { maxEntries: 1 })).toEqual([[0], [1], [2]])
  })

  it('maxBytes: cut before the item that would pass it; exactly the limit fits; an empty item still joins a full batch', () => {
    expect(split([4, 6, 1, 5, 5, 5], { maxBytes: 10 })).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ])
    expect(split([10, 0, 1], { maxBytes: 10 })).toEqual([[0, 1], [2]])
  })

  it('an item larger than maxBytes gets a batch of its own; unknown sizes are not counted and never cut', () => {
    expect(split([2, 25, 3], { maxBytes: 10 })).toEqual([[0], [1], [2]])
    expect(split([9, null, 100, null], { maxBytes: 10 })).toEqual([
      [0, 1],
      [2, 3],
    ])
  })

  it('both limits: whichever is reached first', () => {
    expect(split([1, 1, 1, 8, 2, 1, 1, 1, 1], { maxEntries: 3, maxBytes: 10 })).toEqual([[0, 1, 2], [3, 4], [5, 6, 7], [8]])
  })

  it('no limits: one batch; no items: no batch', () => {
    expect(split([1, 2, 3], {})).toEqual([[0, 1, 2]])
    expect(split([], { maxEntries: 2 })).toEqual([])
  })

  it('an empty batch is never closed', () => {
    expect(closesBefore({ maxEntries: 0, maxBytes: 0 }, { count: 0, bytes: 0 }, 5)).toBe(false)
  })
})

describe("'at-limit' (Python's ManifestWriter)", () => {
  it('a batch is closed once it has reached maxBytes, after the item that reached it', () => {
    expect(split([4, 4, 4, 4], { maxBytes: 10, rollover: 'at-limit' })).toEqual([[0, 1, 2], [3]])
    expect(split([10, 1, 25, 1], { maxBytes: 10, rollover: 'at-limit' })).toEqual([[0], [1, 2], [3]])
    expect(isFull({ maxBytes: 10, rollover: 'at-limit' }, { count: 1, bytes: 10 })).toBe(true)
    expect(isFull({ maxBytes: 10 }, { count: 1, bytes: 10 })).toBe(false)
  })

  it('maxEntries works the same in both modes', () => {
    expect(split([1, 1, 1, 1, 1], { maxEntries: 2, rollover: 'at-limit' })).toEqual([[0, 1], [2, 3], [4]])
  })
})

describe('closing eagerly (isFull) or lazily (closesBefore) gives the same batches', () => {
  it('for any sizes and limits, in both modes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.nat(40), { nil: null }), { maxLength: 40 }),
        fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
        fc.option(fc.nat(60), { nil: undefined }),
        fc.constantFrom<RolloverLimits['rollover']>('before-overflow', 'at-limit', undefined),
        (sizes, maxEntries, maxBytes, rollover) => {
          const limits: RolloverLimits = { maxEntries, maxBytes, rollover }
          const lazy = split(sizes, limits)
          expect(splitEagerly(sizes, limits)).toEqual(lazy)
          // Every item once, in order; no batch over maxEntries.
          expect(lazy.flat()).toEqual(sizes.map((_, i) => i))
          for (const batch of lazy) expect(batch.length).toBeLessThanOrEqual(maxEntries ?? Number.POSITIVE_INFINITY)
        },
      ),
      { seed: 7, numRuns: 500 },
    )
  })
})
