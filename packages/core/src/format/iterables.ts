/**
 * Iterating what may be sync or async the same way: `iteratorOf` gives an async iterator over
 * either (its `return` passed through, so that leaving early closes the source).
 *
 * @example
 * ```ts
 * import { iteratorOf } from '@s3exchange/core/internals'
 *
 * const it = iteratorOf([1, 2, 3])
 * await it.next() // { value: 1, done: false }
 * ```
 */

/** An async iterator over a sync or async iterable. */
export function iteratorOf<T>(items: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> {
  if (Symbol.asyncIterator in items) return items[Symbol.asyncIterator]()
  const iterator = items[Symbol.iterator]()
  return {
    next: async () => iterator.next(),
    return: async () => iterator.return?.() ?? { done: true, value: undefined },
  }
}

/** A sync or async iterable as an async one. */
export function asyncIterableOf<T>(items: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> {
  return Symbol.asyncIterator in items ? items : { [Symbol.asyncIterator]: () => iteratorOf(items) }
}
