/**
 * partition: shares are disjoint, complete and in input order for counts 1 to 16 (property
 * tests over random mixes of files and shards with and without sizes); the same on every run;
 * balanced by count with equal weights and by size within one item's weight; streaming; typed
 * errors for a bad index or count.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { FileEntry, ShardEntry } from '../format/entries.js'
import { ConfigurationError } from '../format/errors.js'
import type { EntryWithBody } from '../s3/body.js'
import { ObjectBody } from '../s3/body.js'
import { partition } from './partition.js'

type Item = FileEntry | ShardEntry

/** Every worker's share, computed as each worker would: its own pass over the same input. */
async function shares(items: Item[], count: number): Promise<Item[][]> {
  const out: Item[][] = []
  for (let index = 0; index < count; index++) out.push(await Array.fromAsync(partition({ index, count })(items)))
  return out
}

/** Entries from (kind, size) pairs, each with a unique key; `undefined` sizes are left out, `null` ones written. */
function entries(specs: { kind: 'file' | 'shard'; size: number | null | undefined }[]): Item[] {
  return specs.map(({ kind, size }, i) => {
    const sized = size === undefined ? {} : { size_bytes: size }
    return kind === 'file'
      ? { kind: 'file', key: `ds/${i}.bin`, ...sized }
      : { kind: 'shard', archive_key: `ds/shards/${i}.tar`, compression: null, ...sized }
  })
}

const keyOf = (item: Item) => (item.kind === 'shard' ? item.archive_key : item.key)
const weightOf = (item: Item) => item.size_bytes as number

const specArb = fc.record({
  kind: fc.constantFrom<'file' | 'shard'>('file', 'shard'),
  size: fc.oneof(fc.nat({ max: 1 << 20 }), fc.constant(undefined), fc.constant(null)),
})
const itemsArb = fc.array(specArb, { maxLength: 60 }).map(entries)
const countArb = fc.integer({ min: 1, max: 16 })

describe('partition: disjoint, complete, in order', () => {
  it('every item is in exactly one share, and each share keeps input order (counts 1 to 16)', async () => {
    await fc.assert(
      fc.asyncProperty(itemsArb, countArb, async (items, count) => {
        const position = new Map(items.map((item, i) => [item, i]))
        const seen = new Set<number>()
        for (const share of await shares(items, count)) {
          let last = -1
          for (const item of share) {
            const at = position.get(item)
            expect(at).toBeDefined() // the item itself, unchanged, not a copy
            expect(seen.has(at as number)).toBe(false)
            expect(at as number).toBeGreaterThan(last)
            seen.add(at as number)
            last = at as number
          }
        }
        expect(seen.size).toBe(items.length)
      }),
      { numRuns: 150 },
    )
  })

  it('count 1 keeps everything', async () => {
    await fc.assert(
      fc.asyncProperty(itemsArb, async (items) => {
        expect(await Array.fromAsync(partition({ index: 0, count: 1 })(items))).toStrictEqual(items)
      }),
      { numRuns: 30 },
    )
  })

  it('every count from 1 to 16 over one input', async () => {
    const items = entries(
      Array.from({ length: 100 }, (_, i) => ({ kind: i % 7 === 0 ? 'shard' : 'file', size: i % 3 === 0 ? undefined : i * 37 })),
    )
    for (let count = 1; count <= 16; count++) {
      const all = (await shares(items, count)).flat().map(keyOf).sort()
      expect(all).toStrictEqual(items.map(keyOf).sort())
    }
  })
})

describe('partition: the same on every run', () => {
  it('two runs, and a sync and an async input, give identical shares', async () => {
    await fc.assert(
      fc.asyncProperty(itemsArb, countArb, async (items, count) => {
        const first = (await shares(items, count)).map((share) => share.map(keyOf))
        const second = (await shares(structuredClone(items), count)).map((share) => share.map(keyOf))
        expect(second).toStrictEqual(first)
        async function* streamed() {
          yield* structuredClone(items)
        }
        for (let index = 0; index < count; index++) {
          expect((await Array.fromAsync(partition({ index, count })(streamed()))).map(keyOf)).toStrictEqual(first[index])
        }
      }),
      { numRuns: 60 },
    )
  })

  it('an item’s worker depends only on the items before it: a prefix is assigned as in the whole', async () => {
    await fc.assert(
      fc.asyncProperty(itemsArb, countArb, fc.nat(), async (items, count, cut) => {
        const prefix = items.slice(0, items.length === 0 ? 0 : cut % (items.length + 1))
        const whole = await shares(items, count)
        const head = await shares(prefix, count)
        const inPrefix = new Set(prefix)
        expect(head).toStrictEqual(whole.map((share) => share.filter((item) => inPrefix.has(item))))
      }),
      { numRuns: 60 },
    )
  })

  it('pins the assignment of a small input (a change to the rule is a format change for running jobs)', async () => {
    // weights: 10, 4, 1, mean(10,4,1)=5, 8 (shard), mean(10,4,1,8)=5.75 (null size)
    const items = entries([
      { kind: 'file', size: 10 },
      { kind: 'file', size: 4 },
      { kind: 'file', size: 1 },
      { kind: 'file', size: undefined },
      { kind: 'shard', size: 8 },
      { kind: 'file', size: null },
    ])
    // 10 → w0 (all empty: lowest index); 4 → w1; 1 → w2; 5 → w2 (load 1); 8 → w1 (load 4); 5.75 → w2 (load 6)
    expect((await shares(items, 3)).map((share) => share.map(keyOf))).toStrictEqual([
      ['ds/0.bin'],
      ['ds/1.bin', 'ds/shards/4.tar'],
      ['ds/2.bin', 'ds/3.bin', 'ds/5.bin'],
    ])
  })
})

describe('partition: balance', () => {
  it('equal weights (all the same size, all unknown, or all zero): share sizes differ by at most 1', async () => {
    const sameArb = fc.oneof(fc.nat({ max: 1 << 20 }), fc.constant(undefined), fc.constant(0))
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<'file' | 'shard'>('file', 'shard'), { maxLength: 80 }),
        sameArb,
        countArb,
        async (kinds, size, count) => {
          const lengths = (await shares(entries(kinds.map((kind) => ({ kind, size }))), count)).map((share) => share.length)
          expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThanOrEqual(1)
        },
      ),
      { numRuns: 100 },
    )
  })

  it('known sizes: the heaviest share outweighs the lightest by at most the largest item', async () => {
    const knownArb = fc.array(fc.record({ kind: fc.constantFrom<'file' | 'shard'>('file', 'shard'), size: fc.nat({ max: 1 << 20 }) }), {
      maxLength: 80,
    })
    await fc.assert(
      fc.asyncProperty(knownArb, countArb, async (specs, count) => {
        const items = entries(specs)
        const loads = (await shares(items, count)).map((share) => share.reduce((sum, item) => sum + weightOf(item), 0))
        const largest = Math.max(0, ...items.map(weightOf))
        expect(Math.max(...loads)).toBeLessThanOrEqual(Math.min(...loads) + largest)
      }),
      { numRuns: 100 },
    )
  })

  it('a large shard does not drag the small files along with it', async () => {
    const items = entries([{ kind: 'shard', size: 1000 }, ...Array.from({ length: 10 }, () => ({ kind: 'file' as const, size: 100 }))])
    const [first, second] = await shares(items, 2)
    expect(first?.map(keyOf)).toStrictEqual(['ds/shards/0.tar'])
    expect(second).toHaveLength(10)
  })
})

describe('partition: streaming', () => {
  it('pulls only as far as the consumer needs, and closes its input', async () => {
    const state = { pulled: 0, closed: false }
    async function* endless(): AsyncGenerator<FileEntry> {
      try {
        for (let i = 0; ; i++) {
          state.pulled++
          yield { kind: 'file', key: `k${i}`, size_bytes: 1 }
        }
      } finally {
        state.closed = true
      }
    }
    const got: string[] = []
    for await (const item of partition({ index: 2, count: 4 })(endless())) {
      got.push(item.key)
      if (got.length === 3) break
    }
    expect(got).toStrictEqual(['k2', 'k6', 'k10'])
    expect(state.pulled).toBe(11)
    expect(state.closed).toBe(true)
  })

  it('items with a body: this worker’s pass through, the others’ bodies are released', async () => {
    const items: EntryWithBody<FileEntry>[] = Array.from({ length: 4 }, (_, i) => ({
      entry: { kind: 'file', key: `m${i}`, size_bytes: 3 },
      body: ObjectBody.fromBytes({ key: `m${i}` }, new Uint8Array([i, i, i])),
    }))
    const mine = await Array.fromAsync(partition({ index: 1, count: 2 })(items))
    expect(mine.map((item) => item.entry.key)).toStrictEqual(['m1', 'm3'])
    expect(items.map((item) => item.body.destroyed)).toStrictEqual([true, false, true, false])
    expect(Array.from(await (mine[0] as EntryWithBody).body.bytes())).toStrictEqual([1, 1, 1])
  })
})

describe('partition: bad options', () => {
  it.each([
    [{ index: 0, count: 0 }, 'count'],
    [{ index: 0, count: -2 }, 'count'],
    [{ index: 0, count: 1.5 }, 'count'],
    [{ index: 0, count: Number.NaN }, 'count'],
    [{ index: 0, count: Number.POSITIVE_INFINITY }, 'count'],
    [{ index: -1, count: 4 }, 'index'],
    [{ index: 4, count: 4 }, 'index'],
    [{ index: 0.5, count: 4 }, 'index'],
    [{ index: Number.NaN, count: 4 }, 'index'],
    [{ count: 4 } as { index: number; count: number }, 'index'],
  ])('%o is a ConfigurationError about the %s, thrown at once', (options, field) => {
    let error: unknown
    try {
      partition(options)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as Error).message).toContain(`partition.${field}`)
  })

  it('valid edges are accepted', () => {
    expect(() => partition({ index: 0, count: 1 })).not.toThrow()
    expect(() => partition({ index: 15, count: 16 })).not.toThrow()
  })
})
