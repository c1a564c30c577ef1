/**
 * The options of the store's calls. Each is derived from the core option it passes on (`Pick`,
 * `extends`), so that an option is documented once, where it takes effect; what is said here is
 * only what the store adds: its defaults, the Python names, the call's own switches.
 *
 * @example
 * ```ts
 * import type { IterObjectsOptions } from 's3exchange'
 *
 * const options: IterObjectsOptions = { concurrency: 32, shardConcurrency: 4, verify: true, limit: 1000 }
 * for await (const { entry, body } of store.iterObjects('ds/manifest.jsonl', options)) console.log(entry.key)
 * ```
 *
 * (Over 300 lines on purpose: declarative option interfaces, a few lines of documentation each.)
 */

import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3'
import type {
  CommitResult,
  ContextWriteOptions,
  EnvSource,
  EventOptions,
  ExpandShardsOptions,
  FetchBodiesOptions,
  FetchKeysOptions,
  ManifestPartsOptions,
  PartitionOptions,
  PositionedEntriesOptions,
  ProgressOptions,
  PutObjectOptions,
  RangedReadOptions,
  ReadLimits,
  RolloverLimits,
  ShardWriterOptions,
  ShuffleOptions,
  SseCustomerKey,
  TemplateVars,
  WriteOptions,
  WrittenManifest,
} from '@s3exchange/core'
import type { CallOptions, ReadOptions } from './context.js'

/** Options for the {@link S3ExchangeStore} constructor. */
export interface S3ExchangeStoreOptions extends RangedReadOptions, EventOptions {
  /** Your S3 client; the store never reconfigures it. */
  client: S3Client
  /** The bucket every key is in. */
  bucket: string
  /** Prefix that `resolveKey` and `scope` put before the keys they build, and the fence of destructive calls. Never added to keys you pass. */
  basePrefix?: string
  /** Template variables available to every `resolveKey` and `scope`. */
  defaultVars?: TemplateVars
  /** Derives an entry's `id` from its key when none is given. Default: the basename without its last extension. */
  inferId?: (key: string) => string
  /**
   * How many archive indexes (internal manifests, for one-GET reads of single members) to keep.
   * Default 256; 0 keeps none. Indexes assume archives are not rewritten in place; one that was is
   * noticed (its ETag) on the next member read and read again.
   */
  archiveIndexCacheSize?: number
  /** Limits on what reads accept, for every call of this store (see `ReadLimits` for each and its default). */
  limits?: ReadLimits
  /**
   * Write options for every object this store writes (objects, shards, manifests, parts, roots,
   * compactions): storage class, SSE-S3 / SSE-KMS, metadata, tags, Cache-Control,
   * Content-Encoding, ACL (see `WriteOptions` for each). A call's own options override them field by
   * field. Checked here: a bad one is a `ConfigurationError` naming it.
   */
  writeOptions?: ContextWriteOptions
  /**
   * SSE-C: the key of your own that every object this store writes is encrypted with, and that
   * every read of this store (GET, ranged GET, HEAD) sends, since the server needs it to read such
   * objects back (see `WriteOptions.sseCustomerKey`). A call's `sseCustomerKey` overrides it
   * (`null`: none, for objects that are not SSE-C).
   */
  sseCustomerKey?: SseCustomerKey
}

/** Options for {@link S3ExchangeStore.fromEnv}. */
export interface FromEnvOptions extends EnvSource, Omit<Partial<S3ExchangeStoreOptions>, 'client'> {
  /** Extra configuration for the S3 client that is built (retries, timeouts, checksums, ...). */
  clientConfig?: S3ClientConfig
}

/** The `limit` option of the store's iterations. */
export interface LimitOptions {
  /**
   * Yield at most this many items (entries, objects or keys; a shard member counts as one; with
   * `partition`, counted within this worker's share). Nothing past it is read.
   */
  limit?: number
}

/** The `resolveRefs` option of the store's reads of entries. */
export interface ResolveRefsOptions {
  /**
   * Inline `manifest_ref` entries, recursively (depth first, each manifest read once). Default
   * true. When false, a ref is an entry like the others: `getKeys` yields the key of its manifest,
   * a compaction drops it (counted in `resolvedRefs`), as Python does.
   */
  resolveRefs?: boolean
}

/** The `partition` option: one worker's share of a manifest. */
export interface PartitionOption {
  /**
   * Yield only worker `index`'s share of the dataset, out of `count` workers, for data loaders
   * spread across processes or machines (see `PartitionOptions` and the `partition` operator): the
   * shares are disjoint and together make the whole dataset, each in manifest order, made of whole
   * shards and loose files, and every worker computes the same ones from the same manifest with no
   * coordination. Every worker reads the manifest (refs included) but fetches only its own
   * objects; applied after refs are resolved (with `resolveRefs: false`, a `manifest_ref` is
   * assigned whole). For a manifest backed by one shard's internal manifest, the members are
   * shared out instead (each worker streams the archive and skips the others' members). Keep the
   * manifest unchanged while workers read it. A bad index or count throws `ConfigurationError`.
   */
  partition?: PartitionOptions | undefined
}

/** The `shuffle` option: a shuffled epoch. */
export interface ShuffleOption {
  /**
   * Yield the items in a shuffled order, deterministic per `(seed, epoch)` (see `ShuffleOptions`
   * and the `shuffleUnits` / `mixEntries` stages): the whole shards and loose files are permuted
   * first, identically on every worker, before `partition` shares them out; then each worker's
   * items (shard members, for `iterObjects`) are mixed through a buffer of `bufferSize` entries.
   * Every item comes exactly once per epoch. Bodies are fetched after the mix: a shard member is
   * one ranged GET (shards this library writes), not a pass over its archive, so the buffer holds
   * entries, never bodies or connections; a shard without member offsets (written by another
   * tool, Python s3exchange's included) is mixed whole and streamed once, its members together in
   * archive order. `iterManifestEntries` mixes the manifest's entries (a shard as one entry).
   * The manifest's entries (not the members) are held in memory: all are read before the first
   * item comes. A bad field throws `ConfigurationError` naming it. Items have cursors: `after`
   * with the same `shuffle` and `partition` resumes the epoch after one (see `shuffledEpoch`); a
   * cursor of another epoch, of a read without shuffle, or of a manifest appended to or rewritten
   * since is a `CursorMismatchError`.
   */
  shuffle?: ShuffleOptions
}

/**
 * Options that keep the default of expanding shards (`expandShards` or `includeShards` left out or
 * `true`): the calls taking them yield file entries only, loose objects and shard members alike,
 * whose `key` is a `string` (a member's virtual key `archive_key#member_path`, with `archive_key`
 * and `member_path` set). Passing `false` widens what they yield to include `ShardEntry`.
 */
export type ShardsExpanded<O, Flag extends 'expandShards' | 'includeShards' = 'expandShards'> = O & { [F in Flag]?: true }

/** Options that keep the default of resolving refs: the entries yielded are files and shards, no `manifest_ref`. */
export type RefsResolved<O> = O & { resolveRefs?: true }

/** Options for {@link Manifest.iterEntries} and `iterManifestEntries`. */

/** The `after` option of the resumable iterations: a cursor (see `PositionedEntriesOptions.after`). With `limit`, counted from there. */
export type AfterOption = Pick<PositionedEntriesOptions, 'after'>

/** Options for {@link Manifest.iterEntries} and `iterManifestEntries`. */
export interface IterEntriesOptions extends ReadOptions, ResolveRefsOptions, LimitOptions, PartitionOption, ShuffleOption, AfterOption {
  /**
   * Yield `{ entry, cursor }` instead of entries: `cursor` resumes right after the entry (pass it
   * as `after`). Cursors of entries and of `iterObjects`' items are the same kind: an entry's
   * cursor given to `iterObjects` resumes after that whole shard or file (and a cursor of a shard
   * member given here yields that shard again: it was not done). Not under `shuffle`: there
   * `iterObjects` mixes shards' members and this mixes whole entries, two orders, so a cursor of
   * one does not fit the other (`CursorMismatchError`). Default false.
   */
  cursors?: boolean
}

/** Options for {@link Manifest.follow} and `follow`. */
export interface FollowOptions extends ReadOptions, AfterOption {
  /** Pause between two polls of the root, in milliseconds. Default 1000. */
  pollIntervalMs?: number
}

/**
 * Options for {@link Manifest.iterObjects} and `iterObjects`. `onProgress`: each object as it is
 * handed to you (`loadedObjects`), with its body's size when known (`loadedBytes`: the server's
 * Content-Length, a member's tar header); no totals (the manifest is read as it goes).
 */
export interface IterObjectsOptions
  extends ReadOptions,
    ProgressOptions,
    LimitOptions,
    PartitionOption,
    ShuffleOption,
    AfterOption,
    Pick<FetchBodiesOptions, 'concurrency' | 'verify'>,
    Pick<ExpandShardsOptions, 'shardConcurrency'> {
  /**
   * Yield each shard's members (streamed out of one GET per archive). When false, yield the
   * shard entry with the whole archive as its body. Default true.
   */
  expandShards?: boolean
  /**
   * Bytes held in memory ahead of the consumer, for loose objects fetched ahead and, separately,
   * for members of shards read ahead. Default 64 MiB each.
   */
  maxBufferedBytes?: number
}

/** Options for {@link Manifest.getKeys} and `getKeys`. */
export interface GetKeysOptions extends ReadOptions, ResolveRefsOptions, LimitOptions {
  /** Yield the virtual keys of shard members instead of the archive key. Default true. */
  expandShards?: boolean
}

/** Options for {@link Manifest.listFiles} and `listManifestFiles`. */
export interface ListFilesOptions extends ReadOptions {
  /** Replace shard entries by their internal manifest's entries. Default true. */
  includeShards?: boolean
}

/** Options for {@link Shard.iterEntries}, {@link Shard.iterObjects} and {@link Shard.iterArchiveMembers}. */
export interface ShardIterOptions extends ReadOptions, LimitOptions {}

/** Options for {@link S3ExchangeStore.iterObjectsFromKeys}. */
export interface IterObjectsFromKeysOptions
  extends ReadOptions,
    ProgressOptions,
    LimitOptions,
    Pick<FetchKeysOptions, 'concurrency' | 'onMissing' | 'verify'> {}

/**
 * Options for the downloads of many objects. `onProgress`: each file once written in place, with
 * its bytes, out of the files planned (`totalObjects`: the keys given, or the files the manifest lists).
 */
export interface DownloadOptions extends ReadOptions, ProgressOptions, Pick<FetchBodiesOptions, 'concurrency'> {}

/**
 * Options for {@link S3ExchangeStore.downloadObject}. `onProgress`: bytes as they are written to the
 * file (out of the object's size when known), then the object.
 */
export interface DownloadObjectCallOptions extends ReadOptions, ProgressOptions {}

/**
 * The write options of one call (see `WriteOptions`): over the store's `writeOptions`, field by
 * field; a call that chooses an encryption replaces the store's. Its `sseCustomerKey` is also used
 * for whatever the call reads (the root of an `append_parts` write).
 */
export interface WriteCallOptions extends CallOptions, WriteOptions {}

/**
 * Options for {@link S3ExchangeStore.putObject}. `onProgress`: after each part of a multipart
 * upload and once the object is written, out of the data's size when known (bytes, a file).
 */
export interface PutObjectCallOptions extends WriteCallOptions, EntryFields, ProgressOptions {}

/** Options for {@link S3ExchangeStore.writeManifest}: the write options apply to the manifest, its parts and its root. */
export interface WriteManifestOptions
  extends WriteCallOptions,
    Pick<ManifestPartsOptions, 'partMaxEntries' | 'partMaxBytes' | 'maxAttempts'> {
  /**
   * `overwrite` (default): the manifest is replaced, all at once. `append_parts`: the entries go to
   * a new part (more than one past `partMaxEntries` / `partMaxBytes`) and the root gains a ref to
   * each, in one conditional write.
   */
  mode?: 'overwrite' | 'append_parts'
}

/** What `writeManifest` did. */
export type WriteManifestResult = WrittenManifest | CommitResult

/** Options for {@link S3ExchangeStore.putShardArchive}. */
export interface PutShardArchiveOptions
  extends WriteCallOptions,
    Pick<ShardWriterOptions, 'compression' | 'internalManifestPath' | 'onProgress'> {
  /** Only `tar`. */
  format?: 'tar'
}

/** Options for {@link S3ExchangeStore.putSharded}. */
export interface PutShardedOptions extends Omit<WriteManifestOptions, 'mode'> {
  /** Default `append_parts`, as Python. */
  updateMode?: 'overwrite' | 'append_parts'
}

/**
 * How big a shard of a `ManifestWriter` gets before it is written out: at least one limit. By
 * default a shard is written out once it has reached a limit, after the member that reached it
 * (`rollover: 'at-limit'`, as Python's writer; a shard may then exceed `maxBytes` by its last
 * member); `'before-overflow'` writes it out before a member that would take it past `maxBytes`.
 */
export type ShardSizePolicy = RolloverLimits

/**
 * Options for {@link ManifestWriter}, as Python's `open_manifest_writer`; the write options apply
 * to everything it writes: loose objects, shards, parts and the root. `onProgress`: each object
 * `putObject` uploaded (with its bytes) and each shard member added (`loadedObjects`), and the
 * shards' bytes as their parts are uploaded; no totals.
 */
export interface ManifestWriterOptions
  extends WriteCallOptions,
    ProgressOptions,
    Pick<ManifestPartsOptions, 'partMaxEntries' | 'partMaxBytes'>,
    Pick<ShardWriterOptions, 'internalManifestPath'> {
  /** `append_parts` (default): parts + refs appended to the root. `overwrite`: the root is replaced. */
  mode?: 'overwrite' | 'append_parts'
  /** Enables `addShardItem` / `addToShard`: a shard is written out when it reaches a limit. */
  shardSize?: ShardSizePolicy
  /** Where shards go. Default `<directory of the manifest key>/shards`. */
  shardPrefix?: string
  /** Archive format; only `tar`. */
  shardFormat?: 'tar'
  /**
   * `'gzip'` (default, as every shard the library names: `.tar.gz`), `null` (`.tar`), `'zstd'`
   * (`.tar.zst`; see `ShardWriterOptions.compression`). Python's writer defaults to `null`.
   */
  shardCompression?: ShardWriterOptions['compression']
  /** On an error, publish what was written before it (Python's `publish_on_error`). Default false. */
  publishOnError?: boolean
  /** `maxAttempts` of the conditional root update (see `AppendOptions`), under Python's name for it. */
  maxCommitAttempts?: number
}

/** The entry fields of an object (`id`, `meta`, `contentType`): see `PutObjectOptions`. */
export type EntryFields = Pick<PutObjectOptions, 'id' | 'meta' | 'contentType'>

/** Options for {@link ManifestWriter.putObject}: the entry's fields, and write options of its own over the writer's. */
export interface WriterPutObjectOptions extends EntryFields, WriteOptions {}

/** Options for {@link ManifestWriter.addFile}: the entry's fields. */
export interface AddFileOptions extends EntryFields {
  sizeBytes?: number | null
  etag?: string | null
}

/** Options for {@link ManifestWriter.addToShard}. */
export interface AddToShardOptions extends Pick<EntryFields, 'id' | 'meta'> {
  /** Size of the data; needed for streams (else the stream is read into memory first). */
  sizeBytes?: number | null
  /** Stored in the member's `meta.content_type`, as Python does. */
  contentType?: string | null
}

/** Counters of a writer, as Python's `stats()` (camelCased). */
export interface ManifestWriterStats {
  /** Entries in the part being written (overwrite mode: in the root). */
  partEntries: number
  /** Bytes in the part being written. */
  partBytes: number
  /** Parts uploaded so far. */
  partsUploaded: number
  /** Members in the shard being written. */
  shardEntries: number
  /** Member bytes in the shard being written. */
  shardBytes: number
  /** Shards written so far. */
  shardsCreated: number
  isClosed: boolean
}
