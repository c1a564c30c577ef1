/**
 * Shuffled epochs, as two stages around `partition`: `shuffleUnits(opts)` permutes the whole
 * shards and loose files of the manifest per `(seed, epoch)`, so every worker computes the same
 * order and `partition` splits it the same way; `mixEntries(opts)` then mixes each worker's entries
 * (shard members once shards are expanded) through a bounded buffer. Both take entries, never
 * bodies: bodies are fetched after the mix (`fetchBodies`: one ranged GET per member of shards this
 * library writes), so the buffer holds `bufferSize` entries and no connection. A shard whose
 * members have no offsets (written by another tool) cannot be read member by member without
 * streaming it from the start each time: `expandShards(ctx, { indexCache, keepUnlocated: true })`
 * leaves it whole, it is mixed as one entry, and `expandShards(ctx, { bodies: true })` after the
 * mix streams it once (its members together, in archive order).
 *
 * Every item comes out exactly once per epoch, in an order that depends only on `(seed, epoch)`,
 * the manifest, the partition and `bufferSize` (the algorithm, for other implementations:
 * docs/FORMAT.md, "Shuffled epochs"). `shuffleUnits` holds the manifest's entries (not the shards'
 * members) in memory: it must see them all before the first comes out.
 *
 * Resuming: the mixed order is a pure function of those inputs, so the n-th item of the mix is
 * the same in every run. `mixEntries({ ..., skip: n })` recomputes the first n (entries only: the
 * internal manifests of the shards they come from are read, no body is fetched) and yields from
 * the (n+1)-th on. `shuffledEpoch` (`shuffled-epoch.ts`) does the work of these stages and
 * `partition` in one, gives every item a cursor, and resumes after one without expanding the units
 * wholly handed over.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, expandShards, fetchBodies, LruCache, mixEntries, partition, partitionFromEnv, readManifest, shuffleUnits } from '@s3exchange/core'
 *
 * const indexCache = new LruCache(256)
 * const shuffle = { seed: 'run-7', epoch: 3, bufferSize: 5000 }
 * for await (const { entry, body } of pipe(
 *   readManifest(ctx, 'ds/manifest.jsonl'),
 *   expandRefs(ctx),
 *   shuffleUnits(shuffle),                          // the same order of shards and files on every worker
 *   partition(partitionFromEnv() ?? { index: 0, count: 1 }),
 *   expandShards(ctx, { indexCache, keepUnlocated: true }), // members' entries, from each archive's index
 *   mixEntries(shuffle),                            // members of neighbouring shards mixed
 *   expandShards(ctx, { bodies: true }),            // shards without offsets: streamed whole
 *   fetchBodies(ctx, { concurrency: 16, indexCache }), // the bodies: one ranged GET per member
 * )) {
 *   console.log(entry.key, (await body.bytes()).byteLength)
 * }
 * ```
 */
import type { ManifestEntry } from '../format/entries.js'
import { ConfigurationError } from '../format/errors.js'
import { checkShuffle, permute, ShuffleBuffer, type ShuffleOptions, shuffleRandom } from '../format/shuffle-order.js'
import { hasBody, type PipelineItem } from '../s3/body.js'

/** Options for {@link mixEntries}: the shuffle, and where to resume. */
export interface MixEntriesOptions extends ShuffleOptions {
  /**
   * Items of the mixed order to leave out from the start: those a previous run of the same
   * epoch already handed over. They are computed again (entries only) and not yielded. Default 0.
   */
  skip?: number
}

/** Permutes all its input (whole shards and loose files) per `(seed, epoch)`; see the module comment. */
export function shuffleUnits(
  options: ShuffleOptions,
): <E extends ManifestEntry>(items: AsyncIterable<E> | Iterable<E>) => AsyncGenerator<E, void, undefined> {
  const { seed, epoch } = checkShuffle(options)
  return async function* shuffleUnitsStage<E extends ManifestEntry>(items: AsyncIterable<E> | Iterable<E>) {
    const units: E[] = []
    for await (const item of items) units.push(entryOnly(item, 'shuffleUnits'))
    yield* permute(units, shuffleRandom(seed, epoch, 'units'))
  }
}

/** Mixes its input through a buffer of `bufferSize` entries; see the module comment. */
export function mixEntries(
  options: MixEntriesOptions,
): <E extends ManifestEntry>(items: AsyncIterable<E> | Iterable<E>) => AsyncGenerator<E, void, undefined> {
  const { skip = 0, ...shuffle } = options ?? ({} as MixEntriesOptions)
  const { seed, epoch, bufferSize } = checkShuffle(shuffle)
  if (!Number.isSafeInteger(skip) || skip < 0) throw new ConfigurationError(`skip must be an integer ≥ 0, got ${String(skip)}`)
  return async function* mixEntriesStage<E extends ManifestEntry>(items: AsyncIterable<E> | Iterable<E>) {
    const buffer = new ShuffleBuffer<E>(bufferSize, shuffleRandom(seed, epoch, 'buffer'))
    for await (const item of items) {
      const out = buffer.push(entryOnly(item, 'mixEntries'))
      if (out.emitted && buffer.emitted > skip) yield out.item
    }
    for (const item of buffer.drain()) if (buffer.emitted > skip) yield item
  }
}

/** The entry itself; an item with a body is refused (its body released): a buffer of bodies would hold connections. */
export function entryOnly<E extends ManifestEntry>(item: E, stage: string): E {
  const candidate = item as PipelineItem
  if (hasBody(candidate)) {
    candidate.body.destroy()
    throw new ConfigurationError(
      `${stage} takes entries, not items with bodies: place it before expandShards({ bodies: true }) and fetchBodies, which fetch the bodies after the shuffle`,
    )
  }
  return item
}
