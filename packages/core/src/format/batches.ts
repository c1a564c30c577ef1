/**
 * Items in arrays, inside an iteration that still yields them one at a time. A source that holds
 * many items at once (the entries of one parsed chunk of a manifest) hands whole arrays to the
 * stages after it, which work on them in plain loops; only the last stage pays for one item per
 * `next()`, served from memory without the async generator machinery. A stage that knows nothing
 * of batches iterates item by item as before.
 *
 * - `BatchedStream`: an async generator of items made from a source of arrays; it offers those
 *   arrays to the next stage under the `BATCHES` symbol.
 * - `batchesOf(items)`: the arrays of any iterable: the source's own when it offers them, else
 *   one array per item (pulled one at a time, so that laziness is unchanged).
 *
 * @example
 * ```ts
 * import { BatchedStream, batchesOf } from '@s3exchange/core/internals'
 *
 * async function* evens(items: AsyncIterable<number>) {
 *   for await (const batch of batchesOf(items)) yield batch.filter((n) => n % 2 === 0)
 * }
 * const stream = new BatchedStream(() => evens(source))   // for await (const n of stream) …, or batchesOf(stream)
 * ```
 */
import { iteratorOf } from './iterables.js'

/** The method under which an iterable offers its items in arrays: `items[BATCHES]()`. */
export const BATCHES: unique symbol = Symbol.for('s3exchange.batches')

/** An async iterator of arrays that is its own iterable (so that `for await` closes it when left). */
export type BatchIterator<T> = AsyncIterableIterator<T[]> & { return(): Promise<IteratorResult<T[], void>> }

/** An iterable that offers its items in arrays. */
export interface BatchSource<T> {
  [BATCHES](): BatchIterator<T>
}

/** True when `items` offers its items in arrays. */
export function hasBatches<T>(items: AsyncIterable<T> | Iterable<T>): items is (AsyncIterable<T> | Iterable<T>) & BatchSource<T> {
  return typeof (items as Partial<BatchSource<T>>)[BATCHES] === 'function'
}

/**
 * The items of `items` in arrays, none empty: the source's own arrays when it offers them, else one
 * array per item, each pulled only when asked for. Leaving early (`return`) closes the source.
 */
export function batchesOf<T>(items: AsyncIterable<T> | Iterable<T>): BatchIterator<T> {
  if (hasBatches(items)) return items[BATCHES]()
  const iterator = iteratorOf(items)
  const batches: BatchIterator<T> = {
    async next() {
      const result = await iterator.next()
      return result.done ? { value: undefined, done: true } : { value: [result.value], done: false }
    },
    async return() {
      await iterator.return?.()
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator]: () => batches,
  }
  return batches
}

/**
 * An async generator of the items of a source of arrays (made when first pulled by `open`). Its
 * `next()` hands over the next item already in memory without awaiting anything; a new array is
 * pulled only when the last one is used up. `next()` may be called again before the previous call
 * settles: the calls are served in order. `return()` closes the source.
 */
export class BatchedStream<T> implements AsyncGenerator<T, void, undefined>, BatchSource<T> {
  readonly #open: () => AsyncIterator<T[]>
  #batches: AsyncIterator<T[]> | undefined
  #items: T[] = []
  #index = 0
  #done = false
  #busy: Promise<unknown> = Promise.resolve()
  #pulling = 0

  constructor(open: () => AsyncIterator<T[]>) {
    this.#open = open
  }

  next(): Promise<IteratorResult<T, void>> {
    // The common case: the next item is already in memory (and no pull is in flight before it).
    if (this.#pulling === 0 && this.#index < this.#items.length) {
      return Promise.resolve({ value: this.#items[this.#index++] as T, done: false })
    }
    this.#pulling++
    const result = this.#busy.then(() => this.#pull()).finally(() => this.#pulling--)
    this.#busy = result.catch(() => {})
    return result
  }

  async return(): Promise<IteratorResult<T, void>> {
    this.#finish()
    await this.#batches?.return?.()
    return { value: undefined, done: true }
  }

  async throw(error: unknown): Promise<IteratorResult<T, void>> {
    await this.return()
    throw error
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return()
  }

  /** Resolves when no pull is in flight (the calls of `next()` made so far have settled). */
  protected async settled(): Promise<void> {
    await this.#busy
  }

  /** The items not handed over yet, in arrays: what is left of the current one, then the source's. */
  [BATCHES](): BatchIterator<T> {
    const nextBatch = async (): Promise<IteratorResult<T[], void>> => {
      await this.#busy
      if (this.#index < this.#items.length) {
        const rest = this.#index === 0 ? this.#items : this.#items.slice(this.#index)
        this.#items = []
        this.#index = 0
        return { value: rest, done: false }
      }
      const batch = await this.#nextBatch()
      if (batch === undefined) return { value: undefined, done: true }
      this.#items = []
      return { value: batch, done: false }
    }
    const batches: BatchIterator<T> = {
      next: () => {
        // In line with next(): a pull in flight is what `settled()` waits for.
        const result = nextBatch()
        this.#busy = result.catch(() => {})
        return result
      },
      return: async () => {
        await this.return()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]: () => batches,
    }
    return batches
  }

  async #pull(): Promise<IteratorResult<T, void>> {
    for (;;) {
      if (this.#index < this.#items.length) return { value: this.#items[this.#index++] as T, done: false }
      const batch = await this.#nextBatch()
      if (batch === undefined) return { value: undefined, done: true }
      this.#items = batch
      this.#index = 0
    }
  }

  /** The source's next non-empty array, or undefined at its end (or once closed). */
  async #nextBatch(): Promise<T[] | undefined> {
    try {
      for (;;) {
        if (this.#done) return undefined
        this.#batches ??= this.#open()
        const result = await this.#batches.next()
        if (result.done) {
          this.#finish()
          return undefined
        }
        if (result.value.length > 0) return result.value
      }
    } catch (error) {
      this.#finish()
      throw error
    }
  }

  #finish(): void {
    this.#done = true
    this.#items = []
    this.#index = 0
  }
}
