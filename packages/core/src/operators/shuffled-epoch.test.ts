/**
 * `shuffledEpoch` on entries in memory (shard expansion by a pure stand-in that names each shard's
 * members; some shards "unlocated", mixed whole): it gives exactly the order of shuffleUnits →
 * partition → expand → mixEntries; for random manifests, shuffles, partitions and cut points k,
 * the items before k and those resumed after item k's cursor are the whole epoch, each once, in
 * order, also from inside a shard mixed whole; a resumed epoch expands only the units from the
 * cursor's `low` on (those before are wholly out); cursors do not fit another epoch, other options,
 * changed or appended entries, and forged counts are caught.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor, isShuffledPosition, type ShuffledCursorPosition } from '../format/cursor.js'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { CursorMismatchError, InvalidCursorError } from '../format/errors.js'
import type { ShuffleOptions } from '../format/shuffle-order.js'
import type { S3Context } from '../s3/context.js'
import { positionedEntries } from './cursors.js'
import { partition } from './partition.js'
import { cursorOf, positionOf } from './positions.js'
import { mixEntries, shuffleUnits } from './shuffle.js'
import { shuffledEpoch } from './shuffled-epoch.js'

type Unit = FileEntry | ShardEntry
interface Spec {
  shard: boolean
  members: number
  whole: boolean
  size?: number | undefined
}

/** Loose files and shards; shard `i` has `count` members; a `whole` one is "unlocated" (mixed whole). */
function manifest(specs: Spec[]): Unit[] {
  return specs.map(({ shard, members, whole, size }, i) =>
    shard
      ? {
          kind: 'shard',
          archive_key: `ds/shards/${i}.tar`,
          count: members,
          ...(whole ? { meta: { whole: true } } : {}),
          ...(size === undefined ? {} : { size_bytes: size }),
        }
      : { kind: 'file', key: `ds/loose/${i}.bin`, ...(size === undefined ? {} : { size_bytes: size }) },
  )
}

/** A pure stand-in for expandShards with keepUnlocated: a shard's members, or the shard itself when "unlocated". */
function expandUnit(unit: ManifestEntry): ManifestEntry[] {
  if (unit.kind !== 'shard' || unit.meta?.whole) return [unit]
  return Array.from({ length: unit.count ?? 0 }, (_, m) => ({
    kind: 'file',
    key: `${unit.archive_key}#${m}`,
    archive_key: unit.archive_key,
    member_path: String(m),
  }))
}

const keyOf = (entry: ManifestEntry) => (entry.kind === 'shard' ? entry.archive_key : entry.key)

/** The same epoch through the four separate stages. */
async function reference(units: Unit[], shuffle: ShuffleOptions, index: number, count: number): Promise<string[]> {
  const share = partition({ index, count })(shuffleUnits(shuffle)(units))
  async function* expanded() {
    for await (const unit of share) yield* expandUnit(unit)
  }
  return (await Array.fromAsync(mixEntries(shuffle)(expanded()))).map(keyOf)
}

function epoch(
  units: ManifestEntry[],
  shuffle: ShuffleOptions,
  part: { index: number; count: number },
  after?: string,
  seen?: ManifestEntry[],
) {
  return shuffledEpoch({
    shuffle,
    partition: part,
    after,
    root: 'ds/manifest.jsonl',
    expandUnit: (unit) => {
      seen?.push(unit)
      return expandUnit(unit)
    },
  })(units)
}

const specArb = fc.record({
  shard: fc.boolean(),
  members: fc.nat({ max: 9 }),
  whole: fc.boolean(),
  size: fc.option(fc.nat({ max: 1 << 20 }), { nil: undefined }),
})
const unitsArb = fc.array(specArb, { maxLength: 40 }).map(manifest)
const shuffleArb = fc.record({
  seed: fc.oneof(fc.integer(), fc.string({ minLength: 1, maxLength: 8 })),
  epoch: fc.nat({ max: 1000 }),
  bufferSize: fc.integer({ min: 1, max: 30 }),
})
const partArb = fc.integer({ min: 1, max: 4 }).chain((count) => fc.record({ index: fc.nat({ max: count - 1 }), count: fc.constant(count) }))

describe('shuffledEpoch', () => {
  it('gives the order of shuffleUnits → partition → expand → mixEntries, each output with a shuffled cursor', async () => {
    await fc.assert(
      fc.asyncProperty(unitsArb, shuffleArb, partArb, async (units, shuffle, part) => {
        const got = await Array.fromAsync(epoch(units, shuffle, part))
        expect(got.map(keyOf)).toStrictEqual(await reference(units, shuffle, part.index, part.count))
        for (const entry of got) expect(isShuffledPosition(decodeCursor(cursorOf(entry) as string))).toBe(true)
      }),
      { numRuns: 80 },
    )
  })

  it('items before k ++ items after the cursor of item k = the whole epoch, each once, in order; only units from low on are expanded', async () => {
    await fc.assert(
      fc.asyncProperty(unitsArb, shuffleArb, partArb, fc.double({ min: 0, max: 1, noNaN: true }), async (units, shuffle, part, cut) => {
        const whole = await Array.fromAsync(epoch(units, shuffle, part))
        const k = Math.min(whole.length - 1, Math.floor(cut * whole.length))
        if (k < 0) return
        const cursor = cursorOf(whole[k] as ManifestEntry) as string
        const expanded: ManifestEntry[] = []
        const rest = await Array.fromAsync(epoch(units, shuffle, part, cursor, expanded))
        expect([...whole.slice(0, k + 1), ...rest].map(keyOf)).toStrictEqual(whole.map(keyOf))
        // The worker's units before `low` are not expanded again; all from it on are.
        const position = decodeCursor(cursor) as ShuffledCursorPosition
        const share = await Array.fromAsync(partition(part)(shuffleUnits(shuffle)(units)))
        expect(expanded).toStrictEqual(share.slice(position.low.unit))
        // And the cursors of the resumed items are those of the whole run.
        expect(rest.map((entry) => cursorOf(entry))).toStrictEqual(whole.slice(k + 1).map((entry) => cursorOf(entry)))
      }),
      { numRuns: 120 },
    )
  })

  it('a member of a shard mixed whole: resuming yields that shard again, to be read after that member', async () => {
    await fc.assert(
      fc.asyncProperty(unitsArb, shuffleArb, partArb, fc.nat(), async (units, shuffle, part, pick) => {
        const whole = await Array.fromAsync(epoch(units, shuffle, part))
        const shards = whole.flatMap((entry, i) => (entry.kind === 'shard' && (entry.count ?? 0) > 0 ? [i] : []))
        if (shards.length === 0) return
        const i = shards[pick % shards.length] as number
        const shard = whole[i] as ShardEntry
        const at = positionOf(shard)?.membersAt as ShuffledCursorPosition
        const member = { index: pick % (shard.count as number), path: String(pick % (shard.count as number)) }
        const rest = await Array.fromAsync(epoch(units, shuffle, part, encodeCursor({ ...at, member })))
        expect(rest.map(keyOf)).toStrictEqual(whole.slice(i).map(keyOf))
        expect(positionOf(rest[0] as ManifestEntry)?.resumeAfter).toStrictEqual(member)
        // Its members' cursors are made from the position within it.
        expect(positionOf(rest[0] as ManifestEntry)?.membersAt).toStrictEqual(at)
      }),
      { numRuns: 80 },
    )
  })

  it('a long epoch resumed late expands only the few units still in the buffer', async () => {
    const units = manifest(Array.from({ length: 200 }, (_, i) => ({ shard: i % 4 !== 0, members: 5, whole: false })))
    const shuffle = { seed: 'late', epoch: 1, bufferSize: 6 }
    const whole = await Array.fromAsync(epoch(units, shuffle, { index: 0, count: 1 }))
    expect(whole).toHaveLength(150 * 5 + 50)
    const expanded: ManifestEntry[] = []
    const cursor = cursorOf(whole[700] as ManifestEntry) as string
    const rest = await Array.fromAsync(epoch(units, shuffle, { index: 0, count: 1 }, cursor, expanded))
    expect(rest.map(keyOf)).toStrictEqual(whole.slice(701).map(keyOf))
    expect(expanded.length).toBeLessThan(40) // of 200: the units before low are skipped unread
    expect((decodeCursor(cursor) as ShuffledCursorPosition).low.unit).toBe(200 - expanded.length)
  })

  it('the same entry object twice (entries in memory): each output has its own cursor', async () => {
    const a: FileEntry = { kind: 'file', key: 'a' }
    const units = [a, a, { kind: 'file', key: 'b' } as FileEntry, a]
    const shuffle = { seed: 3, epoch: 0, bufferSize: 2 }
    const whole = await Array.fromAsync(shuffledEpoch({ shuffle })(units))
    const cursors = whole.map((entry) => cursorOf(entry))
    expect(new Set(cursors).size).toBe(4)
    for (let k = 0; k < 4; k++) {
      const rest = await Array.fromAsync(shuffledEpoch({ shuffle, after: cursors[k] })(units))
      expect(rest.map(keyOf)).toStrictEqual(whole.slice(k + 1).map(keyOf))
    }
  })
})

describe('shuffled cursors that do not fit', () => {
  const units = manifest(Array.from({ length: 12 }, (_, i) => ({ shard: i % 2 === 0, members: 3, whole: i === 4 })))
  const shuffle = { seed: 9, epoch: 2, bufferSize: 4 }
  const one = { index: 0, count: 1 }
  const cursorAt = async (k: number) => cursorOf((await Array.fromAsync(epoch(units, shuffle, one)))[k] as ManifestEntry) as string
  const mismatch = async (run: () => AsyncGenerator<ManifestEntry> | Promise<unknown>) => {
    try {
      const out = run()
      if (Symbol.asyncIterator in out) await Array.fromAsync(out)
      else await out
    } catch (error) {
      return error as CursorMismatchError
    }
    throw new Error('expected a CursorMismatchError')
  }

  it('other seed, epoch, bufferSize or partition: CursorMismatchError naming what differs, thrown when the stage is made', async () => {
    const cursor = await cursorAt(5)
    expect(() => epoch(units, { ...shuffle, epoch: 3 }, one, cursor)).toThrow(/\(shuffle differs\)/)
    expect(() => epoch(units, { ...shuffle, bufferSize: 5 }, one, cursor)).toThrow(CursorMismatchError)
    expect(() => epoch(units, shuffle, { index: 0, count: 2 }, cursor)).toThrow(/\(partition differs\)/)
    // The same shuffle written otherwise fits: the seed as a string.
    expect(() => epoch(units, { ...shuffle, seed: '9' }, one, cursor)).not.toThrow()
    // The default bufferSize spelt out fits the default left out.
    const byDefault = cursorOf(
      (await Array.fromAsync(shuffledEpoch({ shuffle: { seed: 9, epoch: 2 }, root: 'ds/manifest.jsonl' })(units)))[3] as ManifestEntry,
    ) as string
    expect(() =>
      shuffledEpoch({ shuffle: { seed: '9', epoch: 2, bufferSize: 10_000 }, root: 'ds/manifest.jsonl', after: byDefault }),
    ).not.toThrow()
    // Members mixed (iterObjects) or entries mixed (iterManifestEntries): not the same order.
    expect(() => shuffledEpoch({ shuffle, root: 'ds/manifest.jsonl', after: cursor })).toThrow(/\(shuffle differs\)/)
    expect(() => shuffledEpoch({ shuffle, root: 'other.jsonl', after: cursor, expandUnit })).toThrow(
      /made for the manifest ds\/manifest\.jsonl/,
    )
  })

  it('a traversal cursor with shuffle, a shuffled cursor without: CursorMismatchError', async () => {
    // Both named as entries in memory.
    const cursor = cursorOf((await Array.fromAsync(shuffledEpoch({ shuffle, expandUnit })(units)))[2] as ManifestEntry) as string
    const ctx = {} as S3Context
    expect(() => positionedEntries(ctx, units, { after: cursor })).toThrow(/made with shuffle=.*resumed with none \(shuffle differs\)/)
    const plain = cursorOf((await Array.fromAsync(positionedEntries(ctx, units)))[0] as ManifestEntry) as string
    expect(() => shuffledEpoch({ shuffle, after: plain, expandUnit })).toThrow(/made with no partition or shuffle, resumed with shuffle=/)
  })

  it('entries changed since: rewritten; entries appended since: appended (the order of n + 1 entries is another one)', async () => {
    const cursor = await cursorAt(6)
    const changed = units.map((unit, i) => (i === 3 ? { ...unit, size_bytes: 1 } : unit))
    const rewritten = await mismatch(() => epoch(changed, shuffle, one, cursor))
    expect(rewritten).toMatchObject({ reason: 'rewritten', key: 'ds/manifest.jsonl' })
    expect(rewritten.message).toMatch(/12 entries then, 12 now/)
    expect(await mismatch(() => epoch(units.slice(1), shuffle, one, cursor))).toMatchObject({ reason: 'rewritten' })
    const appended = await mismatch(() => epoch([...units, { kind: 'file', key: 'new' }], shuffle, one, cursor))
    expect(appended).toMatchObject({ reason: 'appended' })
    expect(appended.message).toMatch(/made over 12 entries and 1 were appended since/)
  })

  it('forged counts are caught: a placeholder out after the cursor, more outputs than the epoch has', async () => {
    const position = decodeCursor(await cursorAt(6)) as ShuffledCursorPosition
    const tooMany = { ...position, emitted: 10_000 }
    expect(await mismatch(() => epoch(units, shuffle, one, encodeCursor(tooMany)))).toMatchObject({ reason: 'rewritten' })
    const early = { ...position, emitted: 0, low: { unit: 1, input: 1 } }
    const out = await mismatch(() => epoch(units, shuffle, one, encodeCursor(early)))
    expect(out.message).toMatch(/counted as handed over comes out at 1 of the mixed order/)
    const pastUnits = { ...position, low: { unit: 12, input: position.low.input } }
    expect(await mismatch(() => epoch(units, shuffle, one, encodeCursor(pastUnits)))).toBeInstanceOf(CursorMismatchError)
    expect(() => epoch(units, shuffle, one, 'garbage!')).toThrow(InvalidCursorError)
  })
})
