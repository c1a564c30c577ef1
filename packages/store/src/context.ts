/**
 * `StoreContext`: the little that the store's parts (`Manifest`, `Shard`, `ManifestWriter`, the
 * delete, download and compaction wiring) need of a store, so that none of them depends on
 * `S3ExchangeStore` itself: the core context for a call, the fence of destructive calls, how ids
 * are inferred, and the archive index cache. `S3ExchangeStore` is one.
 *
 * @example
 * ```ts
 * import { Manifest, S3ExchangeStore } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client, bucket: 'my-bucket' })
 * const manifest = Manifest.fromKey(store, 'ds/manifest.jsonl') // a store is a StoreContext
 * ```
 */
import type { ArchiveIndexCache, ManifestEntry, RangedReadOptions, S3Context } from '@s3exchange/core'

/** What a store's parts need of it; see the module comment. */
export interface StoreContext {
  /** The fence of destructive calls when they do not give `within`. */
  readonly basePrefix: string
  /** Derives an entry's `id` from its key when none is given. */
  readonly inferId: (key: string) => string
  /** The archive indexes kept between reads of single members, if any. */
  readonly archiveIndexes: ArchiveIndexCache | undefined
  /**
   * The core context of one call: the client, the bucket, the limits, the call's signal, and its
   * ranged reads (the call's `rangeSize` / `rangeConcurrency` over the store's; new slots per call).
   */
  context(signal?: AbortSignal, reads?: RangedReadOptions): S3Context
}

/** Options every call that talks to S3 takes. */
export interface CallOptions {
  /** Cancels the call (and the iteration). */
  signal?: AbortSignal
}

/** Options of the calls that read objects: the call's own ranged reads (default: the store's). */
export interface ReadCallOptions extends CallOptions, RangedReadOptions {}

/** A manifest as the delete and compaction wiring read it: its key, when it is stored, and its entries. */
export interface EntrySource {
  /** The S3 key, or undefined for a manifest in memory or inside a shard. */
  readonly key: string | undefined
  /** The entries, refs resolved unless `resolveRefs: false`. */
  iterEntries(options: CallOptions & { resolveRefs?: boolean }): AsyncIterable<ManifestEntry>
}
