/** Range planning as pure logic: defaults and checks, when to split, the ranges after the first answer, Content-Range totals. */
import { describe, expect, it } from 'vitest'
import { ConfigurationError } from '../format/errors.js'
import { DEFAULT_RANGE_CONCURRENCY, DEFAULT_RANGE_SIZE, planRanges, rangedReadsOf, totalSizeOf, worthSplitting } from './range-plan.js'

const MiB = 1024 * 1024

describe('rangedReadsOf', () => {
  it('applies the defaults: 8 MiB ranges, 4 at once', () => {
    expect(rangedReadsOf()).toEqual({ rangeSize: 8 * MiB, rangeConcurrency: 4 })
    expect(rangedReadsOf({})).toEqual({ rangeSize: DEFAULT_RANGE_SIZE, rangeConcurrency: DEFAULT_RANGE_CONCURRENCY })
    expect(rangedReadsOf({ rangeSize: 64 * 1024, rangeConcurrency: 0 })).toEqual({ rangeSize: 64 * 1024, rangeConcurrency: 0 })
  })

  it.each([
    [{ rangeSize: 1000 }, /rangeSize.*65536; got 1000/],
    [{ rangeSize: 1.5 * MiB + 0.5 }, /rangeSize/],
    [{ rangeSize: Number.NaN }, /rangeSize/],
    [{ rangeConcurrency: -1 }, /rangeConcurrency.*0 to 64; got -1/],
    [{ rangeConcurrency: 65 }, /rangeConcurrency/],
    [{ rangeConcurrency: 2.5 }, /rangeConcurrency/],
    [{ rangeConcurrency: '4' as unknown as number }, /rangeConcurrency/],
  ])('refuses %o with a ConfigurationError naming the option', (options, message) => {
    expect(() => rangedReadsOf(options)).toThrow(ConfigurationError)
    expect(() => rangedReadsOf(options)).toThrow(message)
  })
})

describe('worthSplitting', () => {
  const reads = { rangeSize: MiB, rangeConcurrency: 4 }
  it('splits what is larger than two ranges, never with rangeConcurrency 0', () => {
    expect(worthSplitting(2 * MiB + 1, reads)).toBe(true)
    expect(worthSplitting(2 * MiB, reads)).toBe(false)
    expect(worthSplitting(0, reads)).toBe(false)
    expect(worthSplitting(100 * MiB, { ...reads, rangeConcurrency: 0 })).toBe(false)
  })
})

describe('planRanges', () => {
  it('covers [from, last] with consecutive ranges of rangeSize, the last one shorter', () => {
    expect(planRanges(10, 39, 10)).toEqual([
      { start: 10, end: 19 },
      { start: 20, end: 29 },
      { start: 30, end: 39 },
    ])
    expect(planRanges(10, 42, 10).at(-1)).toEqual({ start: 40, end: 42 })
    expect(planRanges(5, 5, 10)).toEqual([{ start: 5, end: 5 }])
    expect(planRanges(6, 5, 10)).toEqual([])
  })

  it('leaves no gap and no overlap on a large object', () => {
    const ranges = planRanges(16 * MiB, 256 * MiB + 12_345 - 1, 8 * MiB)
    expect(ranges).toHaveLength(31)
    let next = 16 * MiB
    for (const range of ranges) {
      expect(range.start).toBe(next)
      expect(range.end - range.start + 1).toBeLessThanOrEqual(8 * MiB)
      next = range.end + 1
    }
    expect(next).toBe(256 * MiB + 12_345)
  })
})

describe('totalSizeOf', () => {
  it('reads the total of a Content-Range', () => {
    expect(totalSizeOf('bytes 0-99/1234')).toBe(1234)
    expect(totalSizeOf('bytes 0-0/1')).toBe(1)
    expect(totalSizeOf('bytes 0-99/*')).toBeUndefined()
    expect(totalSizeOf(undefined)).toBeUndefined()
    expect(totalSizeOf('nonsense')).toBeUndefined()
  })
})
