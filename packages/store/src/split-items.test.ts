/**
 * Shard.splitItems: Python's `Shard.split_items` rule. A new batch starts when the current one
 * already has `maxEntries` items, or when the next item would take it past `maxBytes`; an item
 * larger than `maxBytes` gets a batch of its own; sizes come from `size_bytes`, the length of
 * bytes, or a file's size; without limits everything is one batch. No S3 involved.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ShardItem } from './index.js'
import { Shard } from './shard.js'

/** Items of the given sizes (bytes sources), named 0, 1, 2, … */
function items(...sizes: number[]): ShardItem[] {
  return sizes.map((size, i) => ({ source: new Uint8Array(size), member_path: String(i) }))
}

/** The batches as lists of member paths. */
function split(input: Iterable<ShardItem>, options?: { maxEntries?: number; maxBytes?: number }): string[][] {
  return [...Shard.splitItems(input, options)].map((batch) => batch.map((item) => item.member_path))
}

describe('Shard.splitItems', () => {
  let dir: string

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 's3x-split-'))
  })

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('without limits: one batch with every item, in order, the same objects', () => {
    const input = items(1, 1_000_000, 0, 5)
    const batches = [...Shard.splitItems(input)]
    expect(batches).toHaveLength(1)
    expect(batches[0]).toHaveLength(4)
    for (const [i, item] of input.entries()) expect(batches[0]?.[i]).toBe(item)
    expect(split(input, {})).toEqual([['0', '1', '2', '3']])
  })

  it('no items: one empty batch without limits (as Python), no batch with limits', () => {
    expect(split([])).toEqual([[]])
    expect(split([], { maxEntries: 3, maxBytes: 10 })).toEqual([])
  })

  it('maxEntries: batches of at most that many, the last one with the rest', () => {
    expect(split(items(1, 1, 1, 1, 1, 1, 1), { maxEntries: 3 })).toEqual([['0', '1', '2'], ['3', '4', '5'], ['6']])
    expect(split(items(1, 1, 1, 1, 1, 1), { maxEntries: 3 })).toEqual([
      ['0', '1', '2'],
      ['3', '4', '5'],
    ])
    expect(split(items(1, 1, 1), { maxEntries: 1 })).toEqual([['0'], ['1'], ['2']])
  })

  it('maxBytes: a batch is cut before the item that would take it past the limit; exactly the limit fits', () => {
    expect(split(items(4, 6, 1, 5, 5, 5), { maxBytes: 10 })).toEqual([
      ['0', '1'],
      ['2', '3'],
      ['4', '5'],
    ])
    expect(split(items(3, 3, 3, 3), { maxBytes: 10 })).toEqual([['0', '1', '2'], ['3']])
    expect(split(items(10, 0, 1), { maxBytes: 10 })).toEqual([['0', '1'], ['2']])
  })

  it('an item larger than maxBytes gets a batch of its own, wherever it is', () => {
    expect(split(items(25), { maxBytes: 10 })).toEqual([['0']])
    expect(split(items(2, 25, 3), { maxBytes: 10 })).toEqual([['0'], ['1'], ['2']])
    expect(split(items(25, 30, 1, 1), { maxBytes: 10 })).toEqual([['0'], ['1'], ['2', '3']])
  })

  it('both limits: whichever is reached first cuts the batch', () => {
    expect(split(items(1, 1, 1, 8, 2, 1, 1, 1, 1), { maxEntries: 3, maxBytes: 10 })).toEqual([
      ['0', '1', '2'],
      ['3', '4'],
      ['5', '6', '7'],
      ['8'],
    ])
  })

  it('size_bytes wins over the length of the data', () => {
    const input: ShardItem[] = [
      { source: new Uint8Array(1), member_path: 'a', size_bytes: 8 },
      { source: new Uint8Array(8), member_path: 'b', size_bytes: 1 },
      { source: new Uint8Array(1), member_path: 'c', size_bytes: 5 },
    ]
    // a (8) + b (1) = 9 fit; c (5) would make 14.
    expect(split(input, { maxBytes: 10 })).toEqual([['a', 'b'], ['c']])
  })

  it('a file path counts its size on disk', () => {
    const big = join(dir, 'big.bin')
    const small = join(dir, 'small.bin')
    writeFileSync(big, new Uint8Array(7))
    writeFileSync(small, new Uint8Array(2))
    const input: ShardItem[] = [
      { source: big, member_path: 'big' },
      { source: small, member_path: 'small' },
      { source: small, member_path: 'small2' },
      { source: big, member_path: 'big2' },
    ]
    expect(split(input, { maxBytes: 10 })).toEqual([
      ['big', 'small'],
      ['small2', 'big2'],
    ])
    expect(split(input, { maxBytes: 8 })).toEqual([['big'], ['small', 'small2'], ['big2']])
  })

  it('a stream without size_bytes is not counted and never starts a batch by size (as in Python); with size_bytes it is', () => {
    const stream = () => Readable.from([Buffer.alloc(100)])
    const input: ShardItem[] = [
      { source: new Uint8Array(9), member_path: 'a' },
      { source: stream(), member_path: 'b' },
      { source: stream(), member_path: 'c', size_bytes: 100 },
      { source: stream(), member_path: 'd' },
    ]
    // a (9) + b (unknown) stay together; c (100) is too big to join; d (unknown) joins c.
    expect(split(input, { maxBytes: 10 })).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ])
  })

  it('is lazy: it reads items as batches are taken, so it works on an endless generator', () => {
    let pulled = 0
    function* endless(): Generator<ShardItem> {
      for (let i = 0; ; i++) {
        pulled++
        yield { source: new Uint8Array(1), member_path: String(i) }
      }
    }
    const batches = Shard.splitItems(endless(), { maxEntries: 2 })
    expect(batches.next().value?.map((item: ShardItem) => item.member_path)).toEqual(['0', '1'])
    expect(batches.next().value?.map((item: ShardItem) => item.member_path)).toEqual(['2', '3'])
    expect(pulled).toBeLessThanOrEqual(5)
  })
})
