/**
 * walkRefs, the ref traversal of expandRefs and `s3x stat` / `s3x verify`, on manifests held in
 * memory (no S3): depth first in file order, each manifest opened at most once (cycles, diamonds,
 * self refs, the same ref twice), refs yielded before what they lead to, with their manifest and
 * depth; the limits, a missing manifest, and a shared visited set.
 */
import { describe, expect, it } from 'vitest'
import { BatchedStream } from '../format/batches.js'
import type { ManifestEntry } from '../format/entries.js'
import { LimitExceededError, ManifestNotFoundError } from '../format/errors.js'
import { type OpenManifest, type WalkedEntry, type WalkRefsOptions, walkRefs } from './expand-refs.js'

/**
 * Manifests in memory: name → items, where `@x` is a ref to manifest x and other strings are file
 * keys. `inArrays`: each manifest opened is a `BatchedStream` of one array (as `readManifest`
 * gives a chunk's entries), refs in the middle of it.
 */
function library(
  spec: Record<string, string[]>,
  inArrays = false,
): { open: OpenManifest; opened: string[]; entriesOf: (name: string) => ManifestEntry[] } {
  const entriesOf = (name: string): ManifestEntry[] => {
    const items = spec[name]
    if (items === undefined) throw new ManifestNotFoundError(name)
    return items.map(
      (item): ManifestEntry => (item.startsWith('@') ? { kind: 'manifest_ref', key: item.slice(1) } : { kind: 'file', key: item }),
    )
  }
  const opened: string[] = []
  const open: OpenManifest = (key, referencedFrom) => {
    opened.push(key)
    if (inArrays) {
      return new BatchedStream(async function* () {
        if (spec[key] === undefined) throw new ManifestNotFoundError(key, { referencedFrom })
        yield entriesOf(key)
      })
    }
    return (async function* () {
      if (spec[key] === undefined) throw new ManifestNotFoundError(key, { referencedFrom })
      yield* entriesOf(key)
    })()
  }
  return { open, opened, entriesOf }
}

/** The walk of manifest `root`, as `key@depth` (refs as `->key@depth`), with the manifests opened. */
async function walk(
  spec: Record<string, string[]>,
  root: string,
  options: WalkRefsOptions = {},
  inArrays = false,
): Promise<{ seen: string[]; opened: string[]; walked: WalkedEntry[] }> {
  const { open, opened, entriesOf } = library(spec, inArrays)
  const source = inArrays ? open(root, undefined, 0) : entriesOf(root)
  if (inArrays) opened.shift()
  const walked = await Array.fromAsync(walkRefs(source, root, open, options))
  const seen = walked.map(({ entry, depth }) => `${entry.kind === 'manifest_ref' ? '->' : ''}${(entry as { key: string }).key}@${depth}`)
  return { seen, opened, walked }
}

describe('walkRefs', () => {
  it.each([
    ['one at a time', false],
    ['in arrays, refs in the middle of them', true],
  ])('depth first, in file order; each ref just before the entries it leads to (entries %s)', async (_how, inArrays) => {
    const { seen, opened, walked } = await walk(
      { root: ['r1', '@a', 'r2', '@b', 'r3'], a: ['a1', '@c', 'a2'], b: ['b1'], c: ['c1', 'c2'] },
      'root',
      {},
      inArrays,
    )
    expect(seen).toEqual(['r1@0', '->a@0', 'a1@1', '->c@1', 'c1@2', 'c2@2', 'a2@1', 'r2@0', '->b@0', 'b1@1', 'r3@0'])
    expect(opened).toEqual(['a', 'c', 'b'])
    expect(walked.map((w) => w.manifest)).toEqual(['root', 'root', 'a', 'a', 'c', 'c', 'a', 'root', 'root', 'b', 'root'])
  })

  it('each manifest once: a cycle, a self ref, a diamond, the same ref twice; the root counts as visited', async () => {
    expect((await walk({ a: ['a1', '@b', 'a2'], b: ['b1', '@a', 'b2'] }, 'a')).opened).toEqual(['b'])
    expect((await walk({ self: ['s1', '@self', 's2'] }, 'self')).seen).toEqual(['s1@0', '->self@0', 's2@0'])
    const diamond = await walk({ root: ['@a', '@b'], a: ['a1', '@c'], b: ['b1', '@c', 'b2'], c: ['c1'] }, 'root')
    expect(diamond.seen.filter((s) => !s.startsWith('->'))).toEqual(['a1@1', 'c1@2', 'b1@1', 'b2@1'])
    expect(diamond.opened).toEqual(['a', 'c', 'b'])
    expect((await walk({ root: ['@a', 'x', '@a'], a: ['a1'] }, 'root')).opened).toEqual(['a'])
  })

  it('a shared visited set spans calls and is updated; an input without a key adds none', async () => {
    const visited = new Set(['b'])
    const { opened } = await walk({ a: ['a1', '@b', '@c'], b: ['b1'], c: ['c1'] }, 'a', { visited })
    expect(opened).toEqual(['c'])
    expect([...visited].sort()).toEqual(['a', 'b', 'c'])
    const { open, opened: fromArray } = library({ a: ['a1', '@a'] })
    const seen = await Array.fromAsync(walkRefs([{ kind: 'manifest_ref', key: 'a' }], undefined, open))
    expect(seen.map((w) => `${w.entry.kind}@${w.depth}:${w.manifest}`)).toEqual([
      'manifest_ref@0:undefined',
      'file@1:a',
      'manifest_ref@1:a',
    ])
    expect(fromArray).toEqual(['a'])
  })

  it('maxRefDepth and maxManifests: LimitExceededError naming the manifest that holds the ref, after what came before', async () => {
    const chain = { m0: ['f0', '@m1'], m1: ['f1', '@m2'], m2: ['f2', '@m3'], m3: ['f3'] }
    for (const [options, limit, value] of [
      [{ maxRefDepth: 2 }, 'maxRefDepth', 2],
      [{ maxManifests: 3 }, 'maxManifests', 3],
    ] as const) {
      const { open, entriesOf } = library(chain)
      const seen: string[] = []
      const error = await (async () => {
        for await (const { entry } of walkRefs(entriesOf('m0'), 'm0', open, options)) seen.push((entry as { key: string }).key)
      })().catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(LimitExceededError)
      expect(error).toMatchObject({ key: 'm2', limit, value })
      expect(seen).toEqual(['f0', 'm1', 'f1', 'm2', 'f2', 'm3'])
    }
    expect((await walk(chain, 'm0', { maxRefDepth: 3, maxManifests: 4 })).opened).toEqual(['m1', 'm2', 'm3'])
  })

  it('a missing manifest is thrown by default, or told to onMissingRef and skipped', async () => {
    const spec = { root: ['r1', '@a', 'r2'], a: ['a1', '@gone', 'a2'] }
    const error = await walk(spec, 'root').catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ManifestNotFoundError)
    expect(error).toMatchObject({ key: 'gone', referencedFrom: 'a' })
    const missing: string[] = []
    const { seen } = await walk(spec, 'root', { onMissingRef: (e) => missing.push(`${e.key} from ${e.referencedFrom}`) })
    expect(missing).toEqual(['gone from a'])
    expect(seen).toEqual(['r1@0', '->a@0', 'a1@1', '->gone@1', 'a2@1', 'r2@0'])
  })

  it("entries in arrays: a ref's manifest is opened only when the entry after the ref is asked for", async () => {
    const { open, opened } = library({ root: ['r1', '@a', 'r2', '@b'], a: ['a1'], b: ['b1'] }, true)
    const walk = walkRefs(open('root', undefined, 0), 'root', open)
    const keys: string[] = []
    for await (const { entry } of walk) {
      keys.push(`${(entry as { key: string }).key}:${opened.join(',')}`)
      if (entry.kind === 'manifest_ref' && entry.key === 'b') break
    }
    expect(keys).toEqual(['r1:root', 'a:root', 'a1:root,a', 'r2:root,a', 'b:root,a'])
    expect(opened).toEqual(['root', 'a'])
  })

  it('stops opening manifests when the consumer stops', async () => {
    const { open, opened, entriesOf } = library({ root: ['r1', '@a', '@b'], a: ['a1', 'a2'], b: ['b1'] })
    for await (const { entry } of walkRefs(entriesOf('root'), 'root', open)) if (entry.kind === 'file' && entry.key === 'a1') break
    expect(opened).toEqual(['a'])
  })
})
