/**
 * The planning of fetchKeys on arrays, without S3: keys grouped into loose keys and members per
 * archive, and when an archive's index makes ranged GETs the better read (every member located,
 * and few of them or a small part of the archive), in archive order. Reading through S3 is tested
 * through the store (packages/store/src/random-access.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { makeIndex } from '../archive/archive-index.js'
import type { FileEntry } from '../format/entries.js'
import { groupKeys, planRangedReads } from './fetch-keys.js'

describe('groupKeys', () => {
  it('loose keys in order; members by archive, archives in order of first mention, the key asked for kept', async () => {
    async function* keys() {
      yield* ['a.wav', 's/x.tar#1.wav', 'b.wav', 's/y.tar#m/2.wav', 's/x.tar#0.wav', 's/x.tar#1.wav', 'c#d#e']
    }
    const { loose, byArchive } = await groupKeys(keys())
    expect(loose).toEqual(['a.wav', 'b.wav'])
    expect([...byArchive.keys()]).toEqual(['s/x.tar', 's/y.tar', 'c'])
    expect([...(byArchive.get('s/x.tar') ?? [])]).toEqual([
      ['1.wav', 's/x.tar#1.wav'],
      ['0.wav', 's/x.tar#0.wav'],
    ])
    expect([...(byArchive.get('c') ?? [])]).toEqual([['d#e', 'c#d#e']])
  })
})

/** The internal manifest of a plain tar of `count` members of `size` bytes each, with offsets. */
function tarIndex(count: number, size: number, located = true) {
  const entries: FileEntry[] = Array.from({ length: count }, (_, i) => ({
    kind: 'file',
    key: `s.tar#${i}.bin`,
    member_path: `${i}.bin`,
    size_bytes: size,
    ...(located ? { offset: 1024 + i * (512 + size) } : {}),
  }))
  return makeIndex('s.tar', 'etag', null, 1024 + count * (512 + size), entries)
}

const asked = (...paths: string[]) => new Map(paths.map((path) => [path, `s.tar#${path}`]))

describe('planRangedReads', () => {
  it('few located members: ranged reads, in archive order, entries with the key asked for', () => {
    const plan = planRangedReads(tarIndex(100, 1000), asked('7.bin', '2.bin', '50.bin'))
    expect(plan?.map((entry) => entry.member_path)).toEqual(['2.bin', '7.bin', '50.bin'])
    expect(plan?.[0]).toMatchObject({ key: 's.tar#2.bin', archive_key: 's.tar', member_path: '2.bin', offset: 1024 + 2 * 1512 })
  })

  it('many members: ranged reads only while they are a quarter of the archive at most', () => {
    const nine = Array.from({ length: 9 }, (_, i) => `${i}.bin`)
    expect(planRangedReads(tarIndex(100, 1000), asked(...nine))).toHaveLength(9)
    const half = Array.from({ length: 50 }, (_, i) => `${i}.bin`)
    expect(planRangedReads(tarIndex(100, 1000), asked(...half))).toBeUndefined()
    expect(planRangedReads(tarIndex(100, 1000), asked(...half.slice(0, 8)))).toHaveLength(8)
  })

  it('a member the index does not locate, or does not list: stream the archive', () => {
    expect(planRangedReads(tarIndex(10, 100, false), asked('1.bin'))).toBeUndefined()
    expect(planRangedReads(tarIndex(10, 100), asked('1.bin', 'absent.bin'))).toBeUndefined()
  })
})
