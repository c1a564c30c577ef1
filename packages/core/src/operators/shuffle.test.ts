/**
 * shuffleUnits → partition → (shards expanded) → mixEntries, on entries in memory (the shard
 * expansion is a pure stand-in that names each shard's members): for 1 to 8 workers, the shares
 * are disjoint and together every item exactly once per epoch; every worker sees the same unit
 * order; the same (seed, epoch) gives the same shares, another epoch another order; the buffer never
 * holds more than bufferSize entries (counted on the stream: pulled minus yielded); `skip` resumes
 * the mixed order; items with bodies and bad options are refused.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { ConfigurationError } from '../format/errors.js'
import type { ShuffleOptions } from '../format/shuffle-order.js'
import { ObjectBody } from '../s3/body.js'
import { partition } from './partition.js'
import { mixEntries, shuffleUnits } from './shuffle.js'

type Unit = FileEntry | ShardEntry

/** Loose files and shards; shard `i` has `members[i]` members. */
function manifest(specs: { shard: boolean; members: number; size?: number }[]): Unit[] {
  return specs.map(({ shard, members, size }, i) =>
    shard
      ? { kind: 'shard', archive_key: `ds/shards/${i}.tar`, count: members, ...(size === undefined ? {} : { size_bytes: size }) }
      : { kind: 'file', key: `ds/loose/${i}.bin`, ...(size === undefined ? {} : { size_bytes: size }) },
  )
}

/** A pure stand-in for expandShards: a shard's members, named by archive and index. */
async function* expand(items: AsyncIterable<Unit>): AsyncGenerator<FileEntry> {
  for await (const item of items) {
    if (item.kind === 'file') yield item
    else {
      for (let m = 0; m < (item.count ?? 0); m++) {
        yield { kind: 'file', key: `${item.archive_key}#${m}`, archive_key: item.archive_key, member_path: String(m) }
      }
    }
  }
}

/** Every item's key the whole manifest holds, in manifest order. */
async function everything(units: Unit[]): Promise<string[]> {
  return (await Array.fromAsync(expand(toAsync(units)))).map((entry) => entry.key)
}

async function* toAsync<T>(items: T[]): AsyncGenerator<T> {
  yield* items
}

/** One worker's epoch, keys in order. */
async function epochOf(units: Unit[], shuffle: ShuffleOptions, index: number, count: number): Promise<string[]> {
  const permuted = shuffleUnits(shuffle)(units)
  const share = partition({ index, count })(permuted)
  const mixed = mixEntries(shuffle)(expand(share as AsyncIterable<Unit>))
  return (await Array.fromAsync(mixed)).map((entry) => (entry as FileEntry).key)
}

const unitsArb = fc
  .array(fc.record({ shard: fc.boolean(), members: fc.nat({ max: 12 }), size: fc.option(fc.nat({ max: 1 << 20 }), { nil: undefined }) }), {
    maxLength: 40,
  })
  .map(manifest)
const shuffleArb = fc.record({
  seed: fc.oneof(fc.integer(), fc.string({ minLength: 1, maxLength: 8 })),
  epoch: fc.nat({ max: 1000 }),
  bufferSize: fc.integer({ min: 1, max: 50 }),
})

describe('a shuffled epoch across workers', () => {
  it('1 to 8 workers: disjoint shares, together every item exactly once; the same again for the same (seed, epoch)', async () => {
    await fc.assert(
      fc.asyncProperty(unitsArb, shuffleArb, fc.integer({ min: 1, max: 8 }), async (units, shuffle, count) => {
        const all = await everything(units)
        const shares: string[][] = []
        for (let index = 0; index < count; index++) shares.push(await epochOf(units, shuffle, index, count))
        const union = shares.flat()
        expect(new Set(union).size).toBe(union.length) // disjoint, and nothing twice
        expect([...union].sort()).toStrictEqual([...all].sort()) // the whole set
        // Shards are never split: a member's archive belongs to one worker.
        const owner = new Map<string, number>()
        shares.forEach((share, index) => {
          for (const key of share) {
            const archive = key.includes('#') ? key.slice(0, key.indexOf('#')) : undefined
            if (archive === undefined) continue
            expect(owner.get(archive) ?? index).toBe(index)
            owner.set(archive, index)
          }
        })
        for (let index = 0; index < count; index++) expect(await epochOf(units, shuffle, index, count)).toStrictEqual(shares[index])
      }),
      { numRuns: 60 },
    )
  })

  it('every worker sees the same unit order, whatever the worker count: the split is of one global order', async () => {
    await fc.assert(
      fc.asyncProperty(unitsArb, shuffleArb, async (units, shuffle) => {
        const order = await Array.fromAsync(shuffleUnits(shuffle)(units))
        for (let count = 1; count <= 8; count++) {
          // Each share is the global order filtered: partition keeps its input's order.
          for (let index = 0; index < count; index++) {
            const share = await Array.fromAsync(partition({ index, count })(shuffleUnits(shuffle)(units)))
            const positions = share.map((unit) => order.indexOf(unit))
            expect(positions.every((p) => p >= 0)).toBe(true)
            expect(positions).toStrictEqual([...positions].sort((a, b) => a - b))
          }
        }
      }),
      { numRuns: 40 },
    )
  })

  it('another epoch, another order (of units and of members)', async () => {
    await fc.assert(
      fc.asyncProperty(shuffleArb, async (shuffle) => {
        const units = manifest(Array.from({ length: 30 }, (_, i) => ({ shard: i % 3 === 0, members: 4 })))
        const a = await epochOf(units, shuffle, 0, 1)
        const b = await epochOf(units, { ...shuffle, epoch: shuffle.epoch + 1 }, 0, 1)
        expect([...a].sort()).toStrictEqual([...b].sort())
        expect(a).not.toStrictEqual(b)
        expect(await Array.fromAsync(shuffleUnits(shuffle)(units))).not.toStrictEqual(
          await Array.fromAsync(shuffleUnits({ ...shuffle, epoch: shuffle.epoch + 1 })(units)),
        )
      }),
      { numRuns: 40 },
    )
  })

  it('members of different shards are mixed when the buffer is larger than a shard', async () => {
    const units = manifest(Array.from({ length: 10 }, () => ({ shard: true, members: 8 })))
    const mixed = await epochOf(units, { seed: 1, epoch: 0, bufferSize: 32 }, 0, 1)
    const archives = mixed.slice(0, 16).map((key) => key.slice(0, key.indexOf('#')))
    expect(new Set(archives).size).toBeGreaterThan(2)
  })
})

describe('mixEntries', () => {
  it('never holds more than bufferSize entries: pulled minus yielded, at every step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 200 }), shuffleArb, async (n, shuffle) => {
        let pulled = 0
        async function* source(): AsyncGenerator<FileEntry> {
          for (let i = 0; i < n; i++) {
            pulled++
            yield { kind: 'file', key: `k${i}` }
          }
        }
        let yielded = 0
        for await (const _ of mixEntries(shuffle)(source())) {
          yielded++
          expect(pulled - yielded).toBeLessThanOrEqual(shuffle.bufferSize)
        }
        expect(yielded).toBe(n)
      }),
      { numRuns: 60 },
    )
  })

  it('skip: n resumes the same mixed order after its n-th item', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 120 }), shuffleArb, fc.nat({ max: 130 }), async (n, shuffle, skip) => {
        const entries: FileEntry[] = Array.from({ length: n }, (_, i) => ({ kind: 'file', key: `k${i}` }))
        const whole = await Array.fromAsync(mixEntries(shuffle)(entries))
        expect(await Array.fromAsync(mixEntries({ ...shuffle, skip })(entries))).toStrictEqual(whole.slice(skip))
      }),
      { numRuns: 60 },
    )
  })

  it('refuses an item with a body, and releases that body', async () => {
    const body = ObjectBody.fromBytes({ key: 'k' }, new Uint8Array(4))
    const stage = mixEntries({ seed: 1, epoch: 0 })([{ entry: { kind: 'file', key: 'k' }, body }] as unknown as ManifestEntry[])
    await expect(Array.fromAsync(stage)).rejects.toThrow(/mixEntries takes entries, not items with bodies/)
    expect(body.destroyed).toBe(true)
    await expect(
      Array.fromAsync(shuffleUnits({ seed: 1, epoch: 0 })([{ entry: { kind: 'file', key: 'k' }, body }] as never)),
    ).rejects.toThrow(ConfigurationError)
  })

  it('bad options are ConfigurationErrors naming them, thrown when the stage is made', () => {
    expect(() => mixEntries({ seed: 1, epoch: 0, skip: -1 })).toThrow(/skip must be an integer ≥ 0, got -1/)
    expect(() => mixEntries({ seed: 1, epoch: 0.5 })).toThrow(/shuffle\.epoch/)
    expect(() => shuffleUnits({ seed: {} as never, epoch: 0 })).toThrow(/shuffle\.seed/)
  })
})
