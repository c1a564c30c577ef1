/**
 * `StoreContext`: the little that the store's parts (`Manifest`, `Shard`, `ManifestWriter`, the
 * delete, download and compaction wiring) need of a store, so that none of them depends on
 * `S3ExchangeStore` itself: the core context for a call (the store's write options and SSE-C key,
 * the call's signal and SSE-C key over them), the fence of destructive calls, how ids are inferred,
 * and the archive index cache. `S3ExchangeStore` is one.
 *
 * @example
 * ```ts
 * import { Manifest, S3ExchangeStore } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client, bucket: 'my-bucket' })
 * const manifest = Manifest.fromKey(store, 'ds/manifest.jsonl') // a store is a StoreContext
 * ```
 */
import {
  type ArchiveIndexCache,
  type ManifestEntry,
  type S3Context,
  type SseCustomerKeyOption,
  type WriteOptions,
  withWriteOptions,
} from '@s3exchange/core'

/** What a store's parts need of it; see the module comment. */
export interface StoreContext {
  /** The fence of destructive calls when they do not give `within`. */
  readonly basePrefix: string
  /** Derives an entry's `id` from its key when none is given. */
  readonly inferId: (key: string) => string
  /** The archive indexes kept between reads of single members, if any. */
  readonly archiveIndexes: ArchiveIndexCache | undefined
  /**
   * The core context of one call: the client, the bucket, the limits, the store's write options
   * and SSE-C key, and the call's signal and SSE-C key (`null`: none) over the store's.
   */
  context(options?: ContextOptions): S3Context
}

/** Options every call that talks to S3 takes. */
export interface CallOptions {
  /** Cancels the call (and the iteration). */
  signal?: AbortSignal | undefined
}

/** What a call's context is made of: its signal, and an SSE-C key of its own (see `SseCustomerKeyOption`). */
export interface ContextOptions extends CallOptions, SseCustomerKeyOption {}

/**
 * Options of calls that read objects: the signal, and the SSE-C key of the objects read when it is
 * not the store's (`null` for objects that are not SSE-C, in a store that has a key).
 */
export interface ReadOptions extends ContextOptions {}

/**
 * The context of a call that writes: the store's, with the call's signal, and its write options
 * over the store's (checked: a bad one throws `ConfigurationError` before anything is written).
 */
export function writeContext(store: StoreContext, options: ContextOptions & WriteOptions): S3Context {
  return withWriteOptions(store.context(options), options)
}

/** A manifest as the delete and compaction wiring read it: its key, when it is stored, and its entries. */
export interface EntrySource {
  /** The S3 key, or undefined for a manifest in memory or inside a shard. */
  readonly key: string | undefined
  /** The entries, refs resolved unless `resolveRefs: false`. */
  iterEntries(options: ReadOptions & { resolveRefs?: boolean }): AsyncIterable<ManifestEntry>
}
