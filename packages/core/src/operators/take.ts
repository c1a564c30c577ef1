/**
 * `take(limit)`: passes the first `limit` items through and stops pulling from its input, so
 * that nothing beyond the limit is read or fetched. `undefined` passes everything.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { type ManifestEntry, readManifest, take } from '@s3exchange/core'
 *
 * for await (const entry of pipe(readManifest(ctx, 'ds/manifest.jsonl'), take<ManifestEntry>(10))) console.log(entry)
 * ```
 */
import { checkOption } from '../format/options.js'

/** Yields at most `limit` items (an integer ≥ 0; undefined: no limit). Another value is a `ConfigurationError`, thrown at once. */
export function take<T>(limit: number | undefined): (items: AsyncIterable<T> | Iterable<T>) => AsyncGenerator<T, void, undefined> {
  checkOption('take', 'limit', limit)
  return async function* takeStage(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T, void, undefined> {
    if (limit === undefined) {
      yield* items
      return
    }
    if (limit <= 0) return
    let count = 0
    for await (const item of items) {
      yield item
      if (++count >= limit) return
    }
  }
}
