import { pipe } from 'it-pipe'
import { describe, expect, it } from 'vitest'
import { BatchedStream, batchesOf } from '../format/batches.js'
import { ConfigurationError } from '../format/errors.js'
import { take } from './take.js'

/** An endless source that records how many items were pulled and whether it was closed. */
function counting() {
  const state = { pulled: 0, closed: false }
  async function* source(): AsyncGenerator<number> {
    try {
      for (let i = 0; ; i++) {
        state.pulled++
        yield i
      }
    } finally {
      state.closed = true
    }
  }
  return { state, source: source() }
}

describe('take', () => {
  it('passes the first `limit` items', async () => {
    expect(await Array.fromAsync(take<number>(3)([1, 2, 3, 4, 5]))).toStrictEqual([1, 2, 3])
  })

  it('passes everything when the input is shorter than the limit', async () => {
    expect(await Array.fromAsync(take<number>(10)([1, 2]))).toStrictEqual([1, 2])
  })

  it('undefined passes everything', async () => {
    expect(await Array.fromAsync(take<number>(undefined)([1, 2, 3]))).toStrictEqual([1, 2, 3])
  })

  it('limit 0 yields nothing and pulls nothing', async () => {
    const { state, source } = counting()
    expect(await Array.fromAsync(take<number>(0)(source))).toStrictEqual([])
    expect(state.pulled).toBe(0)
  })

  it.each([-1, Number.NaN, 1.5, Number.POSITIVE_INFINITY, '3' as unknown as number])(
    'limit %s is a ConfigurationError naming the option, thrown when the stage is made',
    (limit) => {
      let error: unknown
      try {
        take<number>(limit)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(ConfigurationError)
      expect(error).toMatchObject({ option: 'limit', call: 'take' })
    },
  )

  it('stops pulling from the input at the limit, and closes it', async () => {
    const { state, source } = counting()
    expect(await Array.fromAsync(pipe(source, take<number>(4)))).toStrictEqual([0, 1, 2, 3])
    expect(state.pulled).toBe(4)
    expect(state.closed).toBe(true)
  })

  it('closes the input when the consumer stops first', async () => {
    const { state, source } = counting()
    for await (const item of take<number>(100)(source)) if (item === 1) break
    expect(state.pulled).toBe(2)
    expect(state.closed).toBe(true)
  })

  it('items in arrays: cuts the array that reaches the limit, hands on arrays, and closes the input', async () => {
    const state = { pulled: 0, closed: false }
    const input = new BatchedStream(async function* () {
      try {
        for (const batch of [[0, 1], [2, 3, 4], [5]]) {
          state.pulled++
          yield batch
        }
      } finally {
        state.closed = true
      }
    })
    expect(await Array.fromAsync(batchesOf(take<number>(3)(input)))).toStrictEqual([[0, 1], [2]])
    expect(state).toStrictEqual({ pulled: 2, closed: true })
  })

  it('with undefined, pulls only what the consumer asks for', async () => {
    const { state, source } = counting()
    for await (const item of take<number>(undefined)(source)) if (item === 2) break
    expect(state.pulled).toBe(3)
    expect(state.closed).toBe(true)
  })
})
