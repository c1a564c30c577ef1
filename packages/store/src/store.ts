/**
 * `S3ExchangeStore`: the Python s3exchange API over the streaming operators of
 * `@s3exchange/core`. Keys are full bucket keys everywhere; `basePrefix` and `defaultVars` only
 * shape the keys that `resolveKey` and `scope` build. Entries are snake_case (the wire format);
 * options and reports are camelCase. Every method is wiring: its arguments checked and passed to
 * core's operators (composed with it-pipe's `pipe`) or to the store's parts; the class is long
 * (over 300 lines) only because it has one method per entry of Python's API, each documented.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { S3ExchangeStore } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client: new S3Client({}), bucket: 'my-bucket' })
 * for await (const { entry, body } of store.iterObjects('training/123/samples/manifest.jsonl')) {
 *   console.log(entry.key, (await body.bytes()).byteLength)
 * }
 * ```
 */
import type { HeadObjectCommandOutput, S3Client } from '@aws-sdk/client-s3'
import {
  type ArchiveIndexCache,
  type CompactReport,
  ConfigurationError,
  type ContextWriteOptions,
  checkWriteOptions,
  createClient,
  type DataSource,
  type DeleteReport,
  downloadInto,
  downloadObject,
  type EntryWithBody,
  type EntryWithCursor,
  effectiveLimits,
  type FileEntry,
  fetchKeys,
  headObject,
  inferId as inferIdFromKey,
  isArchiveKey,
  isManifestKey,
  LruCache,
  listKeys,
  type ManifestEntry,
  normalizeKey,
  normalizeSseCustomerKey,
  type ObjectBody,
  type ObjectWithCursor,
  type OnEvent,
  objectExists,
  objectKeyOf,
  openObject,
  putObject,
  type ReadLimits,
  reportProgress,
  resolveTemplate,
  type S3Context,
  type ShardEntry,
  type ShardItem,
  type SseCustomerKey,
  settingsFromEnv,
  splitVirtualKey,
  type TemplateVars,
  take,
} from '@s3exchange/core'

import {
  type ArchiveIndex,
  checkKey,
  checkOptions,
  DownloadPlan,
  localPathOf,
  type RangedReads,
  rangedReadsOf,
} from '@s3exchange/core/internals'
import { pipe } from 'it-pipe'
import { type CompactOptions, compactManifest } from './compact.js'
import { type CallOptions, type ContextOptions, type ReadOptions, type StoreContext, writeContext } from './context.js'
import {
  type DeleteManifestOptions,
  type DeletePrefixOptions,
  deleteKey,
  deleteManifest,
  deletePrefix,
  type FenceOptions,
} from './delete.js'
import { Manifest, type ManifestRef } from './manifest.js'
import { ManifestWriter } from './manifest-writer.js'
import type {
  DownloadObjectCallOptions,
  DownloadOptions,
  FollowOptions,
  FromEnvOptions,
  GetKeysOptions,
  IterEntriesOptions,
  IterObjectsFromKeysOptions,
  IterObjectsOptions,
  ListFilesOptions,
  ManifestWriterOptions,
  PutObjectCallOptions,
  PutShardArchiveOptions,
  PutShardedOptions,
  RefsResolved,
  S3ExchangeStoreOptions,
  ShardsExpanded,
  WriteManifestOptions,
  WriteManifestResult,
} from './options.js'
import { ScopedStore } from './scoped-store.js'
import { Shard } from './shard.js'
import { putShardArchive, writeManifest } from './write.js'

/** The store; see the module comment. */
export class S3ExchangeStore implements StoreContext {
  readonly client: S3Client
  readonly bucket: string
  readonly basePrefix: string
  readonly defaultVars: TemplateVars
  readonly inferId: (key: string) => string
  /** The archive indexes this store keeps (see `archiveIndexCacheSize`). */
  readonly archiveIndexes: ArchiveIndexCache | undefined
  /** The limits this store's reads enforce (see `S3ExchangeStoreOptions.limits`). */
  readonly limits: Readonly<Required<ReadLimits>>
  /** The ranged reads of every call that does not set its own (`rangeSize`, `rangeConcurrency`). */
  readonly ranges: Readonly<RangedReads>
  /** The write options of every write of this store (see `S3ExchangeStoreOptions.writeOptions`). */
  readonly writeOptions: Readonly<ContextWriteOptions>
  /** The event hook of every call of this store (see `S3ExchangeStoreOptions.onEvent`), if any. */
  readonly onEvent: OnEvent | undefined
  /** The SSE-C key (held so that it never prints), if the store has one. */
  readonly #sseCustomerKey: SseCustomerKey | undefined

  constructor(options: S3ExchangeStoreOptions) {
    if (!options?.client) throw new ConfigurationError('S3ExchangeStore needs a client')
    checkOptions('S3ExchangeStore', options)
    if (typeof options.bucket !== 'string' || options.bucket === '') {
      throw new ConfigurationError('S3ExchangeStore needs a bucket name')
    }
    this.client = options.client
    this.bucket = options.bucket
    this.basePrefix = options.basePrefix ?? ''
    this.defaultVars = options.defaultVars ?? {}
    this.inferId = options.inferId ?? inferIdFromKey
    const cacheSize = options.archiveIndexCacheSize ?? 256
    this.archiveIndexes = cacheSize > 0 ? new LruCache<ArchiveIndex>(cacheSize) : undefined
    this.limits = Object.freeze(effectiveLimits(options.limits))
    this.ranges = Object.freeze(rangedReadsOf(options))
    checkWriteOptions({ ...options.writeOptions, sseCustomerKey: options.sseCustomerKey })
    this.writeOptions = Object.freeze({ ...options.writeOptions })
    this.onEvent = options.onEvent
    this.#sseCustomerKey = options.sseCustomerKey === undefined ? undefined : normalizeSseCustomerKey(options.sseCustomerKey)
  }

  /**
   * A store configured from the environment: `S3_*` variables (Python s3exchange's names),
   * `AWS_*` ones, and a `.env` file when present (see `settingsFromEnv`). The bucket comes from
   * `options.bucket` or `S3_BUCKET`.
   */
  static fromEnv(options: FromEnvOptions = {}): S3ExchangeStore {
    checkOptions('S3ExchangeStore.fromEnv', options)
    const settings = settingsFromEnv(options)
    const bucket = options.bucket ?? settings.bucket
    if (!bucket) throw new ConfigurationError('no bucket: set S3_BUCKET or pass { bucket }')
    return new S3ExchangeStore({ ...options, client: createClient(settings, options.clientConfig), bucket })
  }

  /**
   * The context the core operators take, for composing your own pipelines: the client, the bucket,
   * the limits, the store's write options and SSE-C key, and ranged reads; `options` adds a signal,
   * an SSE-C key for this context instead of the store's (`null`: none), and its own `rangeSize` /
   * `rangeConcurrency` (a new `ranges` object each time: each context has slots of its own).
   */
  context(options: ContextOptions = {}): S3Context {
    const key = options.sseCustomerKey === undefined ? this.#sseCustomerKey : (options.sseCustomerKey ?? undefined)
    // A new ranges object per call: the call's slots for ranged reads are its own.
    const ranges = rangedReadsOf({
      rangeSize: options.rangeSize ?? this.ranges.rangeSize,
      rangeConcurrency: options.rangeConcurrency ?? this.ranges.rangeConcurrency,
    })
    return {
      client: this.client,
      bucket: this.bucket,
      signal: options.signal,
      limits: this.limits,
      writeOptions: this.writeOptions,
      sseCustomerKey: key === undefined ? undefined : normalizeSseCustomerKey(key),
      ranges,
      onEvent: this.onEvent,
    }
  }

  // ---------------------------------------------------------------- keys

  /**
   * Resolves `{placeholder}`s in `template` with `defaultVars` and `vars` (which win), normalizes
   * it and puts `basePrefix` before it. A placeholder without a value throws `MissingPlaceholderError`.
   */
  resolveKey(template: string, vars: TemplateVars = {}): string {
    const resolved = resolveTemplate(template, { ...this.defaultVars, ...vars })
    return this.basePrefix ? normalizeKey(`${this.basePrefix}/${resolved}`) : resolved
  }

  /** Key resolution with some variables pre-filled. */
  scope(vars: TemplateVars): ScopedStore {
    return new ScopedStore(this, vars)
  }

  /** True for a key that looks like a manifest (`.jsonl`). */
  isManifest(key: string): boolean {
    return isManifestKey(key)
  }

  /** True for a key that looks like a shard archive (`.tar`, `.tar.gz`, `.tgz`, ...). */
  isShard(key: string): boolean {
    return isArchiveKey(key)
  }

  // ---------------------------------------------------------------- objects

  /** A manifest by key; for an archive key, the shard's internal manifest. */
  getManifest(key: string): Manifest {
    checkKey('getManifest', 'key', key)
    return this.isShard(key) ? this.getShard(key).getManifest() : Manifest.fromKey(this, key)
  }

  /** A shard by archive key. */
  getShard(key: string): Shard {
    checkKey('getShard', 'key', key)
    return Shard.fromKey(this, key)
  }

  /**
   * Opens an object. A virtual key `archive#member` opens one member of an archive; when no
   * object exists under the part before the `#`, the whole key is read as an ordinary key.
   * Missing: `ObjectNotFoundError`.
   */
  async getObject(key: string, options: ReadOptions = {}): Promise<ObjectBody> {
    checkOptions('getObject', options)
    checkKey('getObject', 'key', key)
    return openObject(this.context(options), key, { indexCache: this.archiveIndexes })
  }

  /** The object's metadata (a HEAD). Missing: `ObjectNotFoundError`. */
  async getObjectMetadata(key: string, options: ReadOptions = {}): Promise<HeadObjectCommandOutput> {
    checkOptions('getObjectMetadata', options)
    checkKey('getObjectMetadata', 'key', key)
    return headObject(this.context(options), key)
  }

  /** Whether an object exists under `key`. */
  async exists(key: string, options: ReadOptions = {}): Promise<boolean> {
    checkOptions('exists', options)
    checkKey('exists', 'key', key)
    return objectExists(this.context(options), key)
  }

  /** Every key under `prefix`, across all pages of the listing. */
  listKeys(prefix: string, options: CallOptions = {}): AsyncGenerator<string, void, undefined> {
    checkOptions('listKeys', options)
    checkKey('listKeys', 'prefix', prefix)
    return listKeys(this.context(options), prefix)
  }

  /**
   * Uploads `data` (bytes, a local file path, a Readable or an async iterable of bytes) to `key`
   * and returns its entry `{ kind, key, id, meta, content_type, size_bytes, etag, sha256 }` as
   * Python does. Large or unsized data goes up as a multipart upload; size and ETag come from the
   * upload (no HEAD). Write options (`storageClass`, `serverSideEncryption`, `metadata`, …) override
   * the store's.
   */
  async putObject(key: string, data: DataSource, options: PutObjectCallOptions = {}): Promise<FileEntry> {
    checkOptions('putObject', options)
    checkKey('putObject', 'key', key)
    const { signal, ...fields } = options
    return putObject(writeContext(this, options), key, data, { ...fields, inferId: this.inferId })
  }

  // ---------------------------------------------------------------- manifests

  /**
   * Writes entries to a manifest: `overwrite` replaces it (streamed, multipart when large, appears
   * whole); `append_parts` writes a part and appends its ref to the root with a conditional write
   * that retries on conflicts, so concurrent appenders lose nothing on servers that enforce them.
   */
  async writeManifest(
    key: string,
    entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
    options: WriteManifestOptions = {},
  ): Promise<WriteManifestResult> {
    checkOptions('writeManifest', options)
    checkKey('writeManifest', 'key', key)
    return writeManifest(this, key, entries, options)
  }

  /**
   * Writes one shard archive of `items` (streamed, internal manifest first with member offsets)
   * and returns it as a `Shard`, whose `entry` goes into a manifest.
   */
  async putShardArchive(
    archiveKey: string,
    items: Iterable<ShardItem> | AsyncIterable<ShardItem>,
    options: PutShardArchiveOptions = {},
  ): Promise<Shard> {
    checkOptions('putShardArchive', options)
    checkKey('putShardArchive', 'archiveKey', archiveKey)
    return new Shard(this, await putShardArchive(this, archiveKey, items, options))
  }

  /** Writes shard entries to a manifest (`updateMode` `append_parts` by default, as Python). */
  async putSharded(
    manifestKey: string,
    shardEntries: Iterable<ShardEntry> | AsyncIterable<ShardEntry>,
    options: PutShardedOptions = {},
  ): Promise<WriteManifestResult> {
    checkOptions('putSharded', options)
    checkKey('putSharded', 'manifestKey', manifestKey)
    return this.writeManifest(manifestKey, shardEntries, { ...options, mode: options.updateMode ?? 'append_parts' })
  }

  /** A `ManifestWriter` for incremental writing with parts and shard buffering. */
  openManifestWriter(manifestKey: string, options: ManifestWriterOptions = {}): ManifestWriter {
    checkOptions('openManifestWriter', options)
    checkKey('openManifestWriter', 'manifestKey', manifestKey)
    return new ManifestWriter(this, manifestKey, options)
  }

  /**
   * A manifest's entries, refs inlined (each manifest read once) unless `resolveRefs: false`.
   * With `cursors: true`, `{ entry, cursor }`; with `after: cursor`, only the entries after it.
   */
  iterManifestEntries(manifest: ManifestRef, options: IterEntriesOptions & { cursors: true }): AsyncIterable<EntryWithCursor>
  iterManifestEntries(
    manifest: ManifestRef,
    options?: RefsResolved<IterEntriesOptions> & { cursors?: false },
  ): AsyncIterable<FileEntry | ShardEntry>
  iterManifestEntries(manifest: ManifestRef, options?: IterEntriesOptions & { cursors?: false }): AsyncIterable<ManifestEntry>
  iterManifestEntries(
    manifest: ManifestRef,
    options: IterEntriesOptions = {},
  ): AsyncIterable<ManifestEntry> | AsyncIterable<EntryWithCursor> {
    checkOptions('iterManifestEntries', options)
    return Manifest.fromRef(this, manifest).iterEntries(options)
  }

  /**
   * Every object a manifest names, `{ entry, body, cursor }`, in manifest order: loose files
   * fetched `concurrency` at a time ahead of you, shard members streamed out of one GET per
   * archive. Read each body inside the loop. Save `cursor` once an item is processed, and pass it
   * as `after` to resume right after that item (see `Manifest.iterObjects`). Each `entry` is a
   * `FileEntry` (a member's has `archive_key` and `member_path`); with `expandShards: false`,
   * shards come whole, as `ShardEntry`.
   */
  iterObjects(manifest: ManifestRef, options?: ShardsExpanded<IterObjectsOptions>): AsyncIterable<ObjectWithCursor<FileEntry>>
  iterObjects(manifest: ManifestRef, options: IterObjectsOptions): AsyncIterable<ObjectWithCursor<FileEntry | ShardEntry>>
  iterObjects(manifest: ManifestRef, options: IterObjectsOptions = {}): AsyncIterable<ObjectWithCursor> {
    checkOptions('iterObjects', options)
    return Manifest.fromRef(this, manifest).iterObjects(options)
  }

  /** Python's alias of `iterObjects`. */
  getObjects(manifest: ManifestRef, options?: ShardsExpanded<IterObjectsOptions>): AsyncIterable<ObjectWithCursor<FileEntry>>
  getObjects(manifest: ManifestRef, options: IterObjectsOptions): AsyncIterable<ObjectWithCursor<FileEntry | ShardEntry>>
  getObjects(manifest: ManifestRef, options: IterObjectsOptions = {}): AsyncIterable<ObjectWithCursor> {
    checkOptions('getObjects', options)
    return this.iterObjects(manifest, options)
  }

  /**
   * Follows a manifest as producers append to it: `{ entry, cursor }` for every entry after
   * `after` (from the start without it), then for every entry appended, as it appears, until
   * `signal` fires. See `Manifest.follow`.
   *
   * ```ts
   * const stop = new AbortController()
   * for await (const { entry, cursor } of store.follow('ds/manifest.jsonl', { after: saved, signal: stop.signal })) {
   *   await handle(entry)
   *   saved = cursor
   * }
   * ```
   */
  follow(manifest: string | Manifest, options: FollowOptions = {}): AsyncIterable<EntryWithCursor> {
    checkOptions('follow', options)
    return Manifest.fromRef(this, manifest).follow(options)
  }

  /** The keys a manifest names (virtual keys for shard members). */
  getKeys(manifest: ManifestRef, options: GetKeysOptions = {}): AsyncIterable<string> {
    checkOptions('getKeys', options)
    return Manifest.fromRef(this, manifest).getKeys(options)
  }

  /** A manifest's file entries, shards replaced by their internal manifest's entries (unless `includeShards: false`). */
  listManifestFiles(manifest: ManifestRef, options?: ShardsExpanded<ListFilesOptions, 'includeShards'>): AsyncIterable<FileEntry>
  listManifestFiles(manifest: ManifestRef, options: ListFilesOptions): AsyncIterable<FileEntry | ShardEntry>
  listManifestFiles(manifest: ManifestRef, options: ListFilesOptions = {}): AsyncIterable<FileEntry | ShardEntry> {
    checkOptions('listManifestFiles', options)
    return Manifest.fromRef(this, manifest).listFiles(options)
  }

  /** A manifest's file entries (shard members included) whose key starts with `prefixFilter`. */
  listByManifestPrefix(manifest: ManifestRef, prefixFilter: string, options: ReadOptions = {}): AsyncIterable<FileEntry> {
    checkOptions('listByManifestPrefix', options)
    return Manifest.fromRef(this, manifest).filterByPrefix(prefixFilter, options)
  }

  /**
   * The objects of a list of keys and virtual keys: loose keys first, then each archive read once
   * for all the members asked of it (see `fetchKeys`). A key that names nothing throws
   * `ObjectNotFoundError` unless `onMissing: 'skip'`.
   */
  iterObjectsFromKeys(
    keys: Iterable<string> | AsyncIterable<string>,
    options: IterObjectsFromKeysOptions = {},
  ): AsyncGenerator<EntryWithBody<FileEntry>, void, undefined> {
    checkOptions('iterObjectsFromKeys', options)
    const fetch = fetchKeys(this.context(options), { ...options, indexCache: this.archiveIndexes, inferId: this.inferId })
    const fetched = pipe(keys, fetch, take<EntryWithBody<FileEntry>>(options.limit))
    const report = reportProgress(options)
    return report ? report(fetched) : fetched
  }

  // ---------------------------------------------------------------- lifecycle

  /** Deletes one object. Refuses an empty key, and a key outside the fence (`within`, default `basePrefix`). */
  async deleteKey(key: string, options: FenceOptions = {}): Promise<void> {
    checkOptions('deleteKey', options)
    checkKey('deleteKey', 'key', key)
    return deleteKey(this, key, options)
  }

  /**
   * Deletes every key under `prefix` that `regex` matches; resolves to the number deleted. Refuses
   * `''` and `'/'`, and a prefix outside the fence. `dryRun` counts without deleting.
   */
  async deletePrefix(prefix: string, options: DeletePrefixOptions = {}): Promise<number> {
    checkOptions('deletePrefix', options)
    checkKey('deletePrefix', 'prefix', prefix)
    return deletePrefix(this, prefix, options)
  }

  /**
   * Deletes what a manifest references and the manifest itself, in DeleteObjects batches, counted
   * as Python counts. Keys outside the fence are left alone and listed in `outsideFence`;
   * failures are reported in `errors`, not thrown.
   */
  async deleteManifest(manifest: ManifestRef, options: DeleteManifestOptions = {}): Promise<DeleteReport> {
    checkOptions('deleteManifest', options)
    return deleteManifest(this, Manifest.fromRef(this, manifest), options)
  }

  /** Writes a flat copy of `src` (refs resolved, shards optionally expanded) to `dst`. */
  async compactManifest(src: ManifestRef, dst: string, options: CompactOptions = {}): Promise<CompactReport> {
    checkOptions('compactManifest', options)
    checkKey('compactManifest', 'dst', dst)
    return compactManifest(this, Manifest.fromRef(this, src), dst, options)
  }

  /** Downloads one object (or archive member) to `localPath`, atomically. Resolves to the absolute path. */
  async downloadObject(key: string, localPath: string, options: DownloadObjectCallOptions = {}): Promise<string> {
    checkOptions('downloadObject', options)
    checkKey('downloadObject', 'key', key)
    checkKey('downloadObject', 'localPath', localPath)
    return downloadObject(this.context(options), key, localPath, { indexCache: this.archiveIndexes, onProgress: options.onProgress })
  }

  /**
   * Downloads keys and virtual keys into `dir`; resolves to a map of key to local path. Every path
   * is checked before anything is written (a key with `#` is planned as the archive member it
   * names): a name too long, two keys for one file, or a file where another key needs a folder is
   * `UnsafePathError`, and nothing is written.
   */
  async downloadObjects(
    keys: Iterable<string> | AsyncIterable<string>,
    dir: string,
    options: DownloadOptions = {},
  ): Promise<Map<string, string>> {
    checkOptions('downloadObjects', options)
    checkKey('downloadObjects', 'dir', dir)
    const list = await Array.fromAsync(keys)
    const plan = new DownloadPlan(dir)
    for (const key of list) {
      const virtual = splitVirtualKey(key)
      plan.add(key, virtual ? virtual.memberPath : localPathOf({ kind: 'file', key }))
    }
    const { onProgress, ...reading } = options
    return downloadInto(dir, { plan, onProgress })(this.iterObjectsFromKeys(list, reading))
  }

  /**
   * Downloads everything a manifest references into `dir`; resolves to a map of key to local path.
   * Every path the manifest and its shards' internal manifests list is checked before anything is
   * written (see `downloadObjects`); members an internal manifest does not list, before their own.
   */
  async downloadManifest(manifest: ManifestRef, dir: string, options: DownloadOptions = {}): Promise<Map<string, string>> {
    checkOptions('downloadManifest', options)
    checkKey('downloadManifest', 'dir', dir)
    // Read twice (its listing, then its objects): entries of a one-shot iterable are kept in memory.
    const given = Manifest.fromRef(this, manifest)
    const source = given.replayable ? given : await Array.fromAsync(given.iterEntries({ resolveRefs: false, signal: options.signal }))
    const plan = new DownloadPlan(dir)
    for await (const entry of this.listManifestFiles(source, { signal: options.signal })) plan.add(objectKeyOf(entry), localPathOf(entry))
    const { onProgress, ...reading } = options
    return downloadInto(dir, { plan, onProgress })(this.iterObjects(source, reading))
  }
}
