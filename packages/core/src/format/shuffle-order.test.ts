/**
 * The order of a shuffled epoch, on arrays: the generator and permutation reproduce the values an
 * independent Python implementation of docs/FORMAT.md's specification gives; permutations and the
 * shuffle buffer give every item exactly once, deterministically per (seed, epoch), differently
 * across epochs; the buffer never holds more than its size; bad options are ConfigurationErrors
 * naming the field.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConfigurationError } from './errors.js'
import { checkShuffle, permute, randomBelow, ShuffleBuffer, shuffleRandom } from './shuffle-order.js'

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** The buffer's whole output for `items`, checking its size after every push. */
function mixAll<T>(items: T[], bufferSize: number, random = shuffleRandom(1, 0, 'buffer')): T[] {
  const buffer = new ShuffleBuffer<T>(bufferSize, random)
  const out: T[] = []
  for (const item of items) {
    const pushed = buffer.push(item)
    expect(buffer.size).toBeLessThanOrEqual(bufferSize)
    if (pushed.emitted) out.push(pushed.item)
    expect(buffer.emitted).toBe(out.length)
  }
  out.push(...buffer.drain())
  expect(buffer.size).toBe(0)
  expect(buffer.emitted).toBe(items.length)
  return out
}

const seedArb = fc.oneof(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.string({ minLength: 1, maxLength: 12 }))
const epochArb = fc.nat({ max: 10_000 })

describe('the specified order (docs/FORMAT.md), as an independent Python implementation computes it', () => {
  it('sfc32 seeded from SHA-256 of (seed, epoch, stream)', () => {
    const random = shuffleRandom(42, 0, 'units')
    expect([random(), random(), random(), random()]).toStrictEqual([3831478337, 2949115976, 4277708303, 1636393997])
  })

  it('Fisher–Yates and the buffer', () => {
    expect(permute(range(10), shuffleRandom(42, 0, 'units'))).toStrictEqual([4, 6, 5, 3, 2, 1, 0, 9, 8, 7])
    expect(permute(range(10), shuffleRandom('run-7', 3, 'units'))).toStrictEqual([0, 7, 8, 1, 4, 5, 9, 6, 3, 2])
    expect(mixAll(range(10), 3, shuffleRandom(42, 0, 'buffer'))).toStrictEqual([1, 0, 4, 5, 3, 6, 2, 8, 7, 9])
  })

  it('a number and its decimal string are the same seed; the streams differ', () => {
    expect(permute(range(50), shuffleRandom(7, 2, 'units'))).toStrictEqual(permute(range(50), shuffleRandom('7', 2, 'units')))
    expect(permute(range(50), shuffleRandom(7, 2, 'units'))).not.toStrictEqual(permute(range(50), shuffleRandom(7, 2, 'buffer')))
  })
})

describe('randomBelow', () => {
  it('stays in [0, n) for n from 1 to 2^32', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 32 }), seedArb, (n, seed) => {
        const random = shuffleRandom(seed, 0, 'units')
        for (let i = 0; i < 20; i++) {
          const r = randomBelow(random, n)
          expect(Number.isInteger(r) && r >= 0 && r < n).toBe(true)
        }
      }),
    )
  })

  it('is not biased to low values (rejection, not a bare modulo): n = 3 × 2^30', () => {
    const n = 3 * 2 ** 30
    const random = shuffleRandom('bias', 0, 'units')
    let low = 0
    const draws = 6000
    for (let i = 0; i < draws; i++) if (randomBelow(random, n) < 2 ** 30) low++
    // Uniform: a third below 2^30. A bare modulo (u % n) would put half of the draws there.
    expect(low / draws).toBeGreaterThan(0.3)
    expect(low / draws).toBeLessThan(0.37)
  })
})

describe('permute', () => {
  it('every item exactly once, the same for the same (seed, epoch)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), seedArb, epochArb, (items, seed, epoch) => {
        const once = permute([...items], shuffleRandom(seed, epoch, 'units'))
        expect([...once].sort((a, b) => a - b)).toStrictEqual([...items].sort((a, b) => a - b))
        expect(permute([...items], shuffleRandom(seed, epoch, 'units'))).toStrictEqual(once)
      }),
    )
  })

  it('different epochs give different orders (20 items or more)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 200 }), seedArb, epochArb, (n, seed, epoch) => {
        const a = permute(range(n), shuffleRandom(seed, epoch, 'units'))
        const b = permute(range(n), shuffleRandom(seed, epoch + 1, 'units'))
        expect(a).not.toStrictEqual(b)
      }),
    )
  })

  it('each item lands in each place about equally often', () => {
    const n = 5
    const counts = new Array<number>(n * n).fill(0)
    const epochs = 5000
    for (let epoch = 0; epoch < epochs; epoch++) {
      permute(range(n), shuffleRandom('uniform', epoch, 'units')).forEach((item, place) => {
        counts[item * n + place] = (counts[item * n + place] as number) + 1
      })
    }
    for (const count of counts) expect(Math.abs(count / epochs - 1 / n)).toBeLessThan(0.03)
  })
})

describe('ShuffleBuffer', () => {
  it('every item exactly once; never more than bufferSize held; deterministic', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer(), { maxLength: 300 }),
        fc.integer({ min: 1, max: 64 }),
        seedArb,
        epochArb,
        (items, size, seed, epoch) => {
          const out = mixAll(items, size, shuffleRandom(seed, epoch, 'buffer'))
          expect([...out].sort((a, b) => a - b)).toStrictEqual([...items].sort((a, b) => a - b))
          expect(mixAll(items, size, shuffleRandom(seed, epoch, 'buffer'))).toStrictEqual(out)
        },
      ),
    )
  })

  it('moves an item at most bufferSize - 1 places earlier than its input position', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 40 }), seedArb, (n, size, seed) => {
        mixAll(range(n), size, shuffleRandom(seed, 0, 'buffer')).forEach((item, place) => {
          expect(place).toBeGreaterThanOrEqual(item - (size - 1))
        })
      }),
    )
  })

  it('with bufferSize 1, keeps the input order', () => {
    expect(mixAll(range(30), 1)).toStrictEqual(range(30))
  })
})

describe('checkShuffle', () => {
  it('fills in bufferSize and accepts numbers and strings as seeds', () => {
    expect(checkShuffle({ seed: 3, epoch: 0 })).toStrictEqual({ seed: 3, epoch: 0, bufferSize: 10_000 })
    expect(checkShuffle({ seed: 'run', epoch: 5, bufferSize: 1 })).toStrictEqual({ seed: 'run', epoch: 5, bufferSize: 1 })
  })

  it.each([
    [{ seed: 1.5, epoch: 0 }, /shuffle\.seed must be a safe integer or a non-empty string, got 1\.5/],
    [{ seed: '', epoch: 0 }, /shuffle\.seed .* got ""/],
    [{ seed: undefined, epoch: 0 }, /shuffle\.seed .* got undefined/],
    [{ seed: 1, epoch: -1 }, /shuffle\.epoch must be an integer ≥ 0, got -1/],
    [{ seed: 1 }, /shuffle\.epoch .* got undefined/],
    [{ seed: 1, epoch: Number.NaN }, /shuffle\.epoch .* got NaN/],
    [{ seed: 1, epoch: 0, bufferSize: 0 }, /shuffle\.bufferSize must be an integer ≥ 1, got 0/],
    [{ seed: 1, epoch: 0, bufferSize: 2.5 }, /shuffle\.bufferSize .* got 2\.5/],
    [{ seed: 1, epoch: 0, buffer_size: 10 }, /shuffle\.buffer_size is not an option of shuffle/],
    [null, /shuffle must be an object/],
  ])('refuses %j', (options, message) => {
    expect(() => checkShuffle(options as never)).toThrow(ConfigurationError)
    expect(() => checkShuffle(options as never)).toThrow(message)
  })
})
