/**
 * `LruCache`: a small least-recently-used map, the store's cache of archive indexes.
 *
 * @example
 * ```ts
 * import { LruCache } from '@s3exchange/core'
 *
 * const cache = new LruCache<number>(2)
 * cache.set('a', 1); cache.set('b', 2); cache.get('a'); cache.set('c', 3) // 'b' is dropped
 * ```
 */
import { checkOption } from './options.js'

/** A small least-recently-used map: at most `max` entries, the oldest used dropped first. */
export class LruCache<V> {
  readonly #max: number
  readonly #map = new Map<string, V>()

  /** `max`: an integer ≥ 0 (0 keeps one entry; another value is a `ConfigurationError`). */
  constructor(max: number) {
    checkOption('LruCache', 'capacity', max)
    this.#max = Math.max(1, max)
  }

  get(key: string): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined) {
      this.#map.delete(key)
      this.#map.set(key, value)
    }
    return value
  }

  set(key: string, value: V): void {
    this.#map.delete(key)
    this.#map.set(key, value)
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string)
  }

  delete(key: string): void {
    this.#map.delete(key)
  }

  get size(): number {
    return this.#map.size
  }
}
