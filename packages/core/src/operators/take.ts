/**
 * `take(limit)`: passes the first `limit` items through and stops pulling from its input, so
 * that nothing beyond the limit is read or fetched. `undefined` passes everything. Items that
 * arrive in arrays (see `BatchedStream`) are passed on in arrays.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { type ManifestEntry, readManifest, take } from '@s3exchange/core'
 *
 * for await (const entry of pipe(readManifest(ctx, 'ds/manifest.jsonl'), take<ManifestEntry>(10))) console.log(entry)
 * ```
 */
import { BatchedStream, batchesOf } from '../format/batches.js'
import { checkOption } from '../format/options.js'

/** Yields at most `limit` items (an integer ≥ 0; undefined: no limit). Another value is a `ConfigurationError`, thrown at once. */
export function take<T>(limit: number | undefined): (items: AsyncIterable<T> | Iterable<T>) => AsyncGenerator<T, void, undefined> {
  checkOption('take', 'limit', limit)
  return function takeStage(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T, void, undefined> {
    return new BatchedStream(() => (limit === undefined ? batchesOf(items) : firstBatches(items, limit)))
  }
}

async function* firstBatches<T>(items: AsyncIterable<T> | Iterable<T>, limit: number): AsyncGenerator<T[], void, undefined> {
  let left = limit
  if (left <= 0) return
  for await (const batch of batchesOf(items)) {
    if (batch.length < left) {
      left -= batch.length
      yield batch
      continue
    }
    yield batch.length === left ? batch : batch.slice(0, left)
    return
  }
}
