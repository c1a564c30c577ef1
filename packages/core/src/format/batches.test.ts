/** Pure tests of batches inside iterations: `BatchedStream` and `batchesOf`. */
import { describe, expect, it } from 'vitest'
import { BATCHES, BatchedStream, batchesOf, hasBatches } from './batches.js'

/** A source of arrays that records what was pulled and whether it was closed. */
function recording<T>(batches: T[][], failAfter?: Error) {
  const state = { pulled: 0, closed: false }
  async function* source(): AsyncGenerator<T[]> {
    try {
      for (const batch of batches) {
        state.pulled++
        yield batch
      }
      if (failAfter) throw failAfter
    } finally {
      state.closed = true
    }
  }
  return { state, open: () => source() }
}

describe('BatchedStream', () => {
  it('yields the items of its arrays one at a time, in order, skipping empty arrays', async () => {
    const { open } = recording([[1, 2], [], [3], [4, 5, 6]])
    expect(await Array.fromAsync(new BatchedStream(open))).toStrictEqual([1, 2, 3, 4, 5, 6])
  })

  it('opens its source at the first pull and pulls an array only when the last one is used up', async () => {
    let opened = 0
    const { state, open } = recording([[1, 2], [3]])
    const stream = new BatchedStream(() => {
      opened++
      return open()
    })
    expect(opened).toBe(0)
    expect(await stream.next()).toStrictEqual({ value: 1, done: false })
    expect(await stream.next()).toStrictEqual({ value: 2, done: false })
    expect(state.pulled).toBe(1)
    expect(await stream.next()).toStrictEqual({ value: 3, done: false })
    expect(state.pulled).toBe(2)
    expect(opened).toBe(1)
  })

  it('serves calls of next() made before the earlier ones settle, in order', async () => {
    const { open } = recording([[1], [2, 3], [4]])
    const stream = new BatchedStream(open)
    const results = await Promise.all([stream.next(), stream.next(), stream.next(), stream.next(), stream.next()])
    expect(results.map((r) => r.value)).toStrictEqual([1, 2, 3, 4, undefined])
    expect(results.at(-1)?.done).toBe(true)
  })

  it('an error of the source comes after the items before it, then the stream is done', async () => {
    const { state, open } = recording([[1, 2]], new Error('broken'))
    const stream = new BatchedStream(open)
    const seen: number[] = []
    const error = await (async () => {
      for await (const item of stream) seen.push(item)
    })().catch((e: unknown) => e)
    expect(seen).toStrictEqual([1, 2])
    expect((error as Error).message).toBe('broken')
    expect(state.closed).toBe(true)
    expect(await stream.next()).toStrictEqual({ value: undefined, done: true })
  })

  it('leaving early closes the source and ends the stream', async () => {
    const { state, open } = recording([[1, 2], [3]])
    const stream = new BatchedStream(open)
    for await (const item of stream) if (item === 1) break
    expect(state).toStrictEqual({ pulled: 1, closed: true })
    expect(await stream.next()).toStrictEqual({ value: undefined, done: true })
  })

  it('hands the rest over in arrays: what is left of the current array, then the source', async () => {
    const { state, open } = recording([[1, 2, 3], [4]])
    const stream = new BatchedStream(open)
    expect((await stream.next()).value).toBe(1)
    const batches = stream[BATCHES]()
    expect(await batches.next()).toStrictEqual({ value: [2, 3], done: false })
    expect(await batches.next()).toStrictEqual({ value: [4], done: false })
    expect(await batches.next()).toStrictEqual({ value: undefined, done: true })
    expect(state.closed).toBe(true)
  })
})

describe('batchesOf', () => {
  it("uses the source's own arrays when it offers them", async () => {
    const stream = new BatchedStream(recording([[1, 2], [3]]).open)
    expect(hasBatches(stream)).toBe(true)
    expect(await Array.fromAsync(batchesOf(stream))).toStrictEqual([[1, 2], [3]])
  })

  it('otherwise gives one array per item, pulled one at a time, and closes the source when left', async () => {
    // An endless sync iterator that counts its pulls and records being closed.
    const state = { pulled: 0, closed: false }
    const endless: IterableIterator<number> = {
      next: () => ({ value: state.pulled++, done: false }),
      return: () => {
        state.closed = true
        return { value: undefined, done: true }
      },
      [Symbol.iterator]: () => endless,
    }
    expect(hasBatches(endless)).toBe(false)
    for await (const batch of batchesOf(endless)) if (batch[0] === 2) break
    expect(state).toStrictEqual({ pulled: 3, closed: true })
    expect(await Array.fromAsync(batchesOf(['a', 'b']))).toStrictEqual([['a'], ['b']])
  })
})
