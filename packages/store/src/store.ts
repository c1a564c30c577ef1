/**
 * `S3ExchangeStore`: the Python s3exchange API over the streaming operators of
 * `@s3exchange/core`. Keys are full bucket keys everywhere; `basePrefix` and `defaultVars` only
 * shape the keys that `resolveKey` and `scope` build. Entries are snake_case (the wire format);
 * options and reports are camelCase.
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
import { type HeadObjectCommandOutput, paginateListObjectsV2, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import {
  type ArchiveIndex,
  type ArchiveIndexCache,
  type CommitResult,
  ConfigurationError,
  type DataSource,
  type EntryWithBody,
  effectiveLimits,
  type FileEntry,
  fetchBodies,
  headObject,
  inferId as inferIdFromKey,
  isArchiveKey,
  isLocated,
  isManifestKey,
  LruCache,
  type ManifestEntry,
  type ManifestPartsOptions,
  type Meta,
  mapS3Error,
  normalizeKey,
  type ObjectBody,
  ObjectNotFoundError,
  openObject,
  putObject as putObjectCore,
  type ReadLimits,
  resolveTemplate,
  type S3Context,
  type ShardEntry,
  type ShardItem,
  ShardReadError,
  ShardWriteError,
  ShardWriter,
  scanArchive,
  splitVirtualKey,
  type TemplateVars,
  type WrittenManifest,
  writeAll,
  writeManifestObject,
  writeManifestParts,
} from '@s3exchange/core'
import { type CompactOptions, type CompactReport, compactManifest } from './compact.js'
import {
  type DeleteManifestOptions,
  type DeletePrefixOptions,
  type DeleteReport,
  deleteKey,
  deleteManifest,
  deletePrefix,
  type FenceOptions,
} from './delete.js'
import { type DownloadOptions, downloadManifest, downloadObject, downloadObjects } from './download.js'
import { clientConfigFor, type EnvSource, settingsFromEnv } from './env.js'
import {
  type CallOptions,
  type GetKeysOptions,
  type IterEntriesOptions,
  type IterObjectsOptions,
  type ListFilesOptions,
  Manifest,
  type ManifestRef,
} from './manifest.js'
import { ManifestWriter, type ManifestWriterOptions } from './manifest-writer.js'
import { ScopedStore } from './scoped-store.js'
import { Shard } from './shard.js'

/** Options for the {@link S3ExchangeStore} constructor. */
export interface S3ExchangeStoreOptions {
  /** Your S3 client; the store never reconfigures it. */
  client: S3Client
  /** The bucket every key is in. */
  bucket: string
  /** Prefix that `resolveKey` and `scope` put before the keys they build. Never added to keys you pass. */
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
  /**
   * Limits on what reads accept, for every call of this store: `maxLineBytes` (16 MiB),
   * `maxRefDepth` (64), `maxManifests` (100,000), `maxInternalManifestBytes` (512 MiB),
   * `maxMemberBytes` (1 TiB); see `ReadLimits`. Past one, a typed error names the key and the limit.
   */
  limits?: ReadLimits
}

/** Options for {@link S3ExchangeStore.fromEnv}. */
export interface FromEnvOptions extends EnvSource, Omit<Partial<S3ExchangeStoreOptions>, 'client'> {
  /** Extra configuration for the S3 client that is built (retries, timeouts, checksums, ...). */
  clientConfig?: S3ClientConfig
}

/** Options for {@link S3ExchangeStore.iterObjectsFromKeys}. */
export interface IterObjectsFromKeysOptions extends CallOptions {
  /** Yield at most this many objects. */
  limit?: number
  /** Loose objects fetched at once. Default 16. */
  concurrency?: number
  /** A key that names nothing: throw `ObjectNotFoundError` (default) or skip it, as Python does. */
  onMissing?: 'throw' | 'skip'
  /**
   * Check each shard member against its archive's internal manifest entry as it is read (length
   * and SHA-256, where listed); a mismatch fails the read with `IntegrityError`. Loose keys have no
   * entry to check against. Default false.
   */
  verify?: boolean
}

/** Options for {@link S3ExchangeStore.putObject}. */
export interface PutObjectOptions extends CallOptions {
  /** The entry's id. Default: inferred from the key. */
  id?: string | null
  /** The entry's metadata. */
  meta?: Meta | null
  /** Content-Type of the object, recorded in the entry too. */
  contentType?: string | null
}

/** Options for {@link S3ExchangeStore.writeManifest}. */
export interface WriteManifestOptions extends CallOptions, Pick<ManifestPartsOptions, 'partMaxEntries' | 'partMaxBytes' | 'maxAttempts'> {
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
export interface PutShardArchiveOptions extends CallOptions {
  /** Only `tar`. */
  format?: 'tar'
  /** `'gzip'` (default, as Python) or `null` for a plain tar. */
  compression?: 'gzip' | null
  /** Default `__manifest__.jsonl`. */
  internalManifestPath?: string
}

/** Options for {@link S3ExchangeStore.putSharded}. */
export interface PutShardedOptions extends Omit<WriteManifestOptions, 'mode'> {
  /** Default `append_parts`, as Python. */
  updateMode?: 'overwrite' | 'append_parts'
}

/** The store; see the module comment. */
export class S3ExchangeStore {
  readonly client: S3Client
  readonly bucket: string
  readonly basePrefix: string
  readonly defaultVars: TemplateVars
  readonly inferId: (key: string) => string
  /** The archive indexes this store keeps (see `archiveIndexCacheSize`). */
  readonly archiveIndexes: ArchiveIndexCache | undefined
  /** The limits this store's reads enforce (see `S3ExchangeStoreOptions.limits`). */
  readonly limits: Readonly<Required<ReadLimits>>

  constructor(options: S3ExchangeStoreOptions) {
    if (!options?.client) throw new ConfigurationError('S3ExchangeStore needs a client')
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
  }

  /**
   * A store configured from the environment: `S3_*` variables (Python s3exchange's names),
   * `AWS_*` ones, and a `.env` file when present (see `settingsFromEnv`). The bucket comes from
   * `options.bucket` or `S3_BUCKET`.
   */
  static fromEnv(options: FromEnvOptions = {}): S3ExchangeStore {
    const settings = settingsFromEnv(options)
    const bucket = options.bucket ?? settings.bucket
    if (!bucket) throw new ConfigurationError('no bucket: set S3_BUCKET or pass { bucket }')
    const client = new S3Client({ ...clientConfigFor(settings), ...options.clientConfig })
    return new S3ExchangeStore({ ...options, client, bucket })
  }

  /** The context the core operators take, for composing your own pipelines. */
  context(signal?: AbortSignal): S3Context {
    return { client: this.client, bucket: this.bucket, signal, limits: this.limits }
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
    return this.isShard(key) ? this.getShard(key).getManifest() : Manifest.fromKey(this, key)
  }

  /** A shard by archive key. */
  getShard(key: string): Shard {
    return Shard.fromKey(this, key)
  }

  /**
   * Opens an object. A virtual key `archive#member` opens one member of an archive; when no
   * object exists under the part before the `#`, the whole key is read as an ordinary key.
   * Missing: `ObjectNotFoundError`.
   */
  getObject(key: string, options: CallOptions = {}): Promise<ObjectBody> {
    return openObject(this.context(options.signal), key, { indexCache: this.archiveIndexes })
  }

  /** The object's metadata (a HEAD). Missing: `ObjectNotFoundError`. */
  getObjectMetadata(key: string, options: CallOptions = {}): Promise<HeadObjectCommandOutput> {
    return headObject(this.context(options.signal), key)
  }

  /** Whether an object exists under `key`. */
  async exists(key: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.getObjectMetadata(key, options)
      return true
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return false
      throw error
    }
  }

  /** Every key under `prefix`, across all pages of the listing. */
  async *listKeys(prefix: string, options: CallOptions = {}): AsyncGenerator<string> {
    const pages = paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: prefix })
    const iterator = pages[Symbol.asyncIterator]()
    for (;;) {
      let page: Awaited<ReturnType<typeof iterator.next>>
      try {
        options.signal?.throwIfAborted()
        page = await iterator.next()
      } catch (error) {
        throw mapS3Error('ListObjectsV2', prefix, error, options.signal)
      }
      if (page.done) return
      for (const object of page.value.Contents ?? []) if (object.Key !== undefined) yield object.Key
    }
  }

  /**
   * Uploads `data` (bytes, a local file path, a Readable or an async iterable of bytes) to `key`
   * and returns its entry `{ kind, key, id, meta, content_type, size_bytes, etag }` as Python does.
   * Large or unsized data goes up as a multipart upload; size and ETag come from the upload (no HEAD).
   */
  putObject(key: string, data: DataSource, options: PutObjectOptions = {}): Promise<FileEntry> {
    return putObjectCore(this.context(options.signal), key, data, {
      id: options.id,
      meta: options.meta,
      contentType: options.contentType,
      inferId: this.inferId,
    })
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
    const ctx = this.context(options.signal)
    const mode = options.mode ?? 'overwrite'
    if (mode === 'overwrite') return writeManifestObject(ctx, key, entries)
    if (mode === 'append_parts') return writeManifestParts(ctx, key, options)(entries)
    throw new ConfigurationError(`invalid mode: ${String(mode)}`)
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
    if ((options.format ?? 'tar') !== 'tar') throw new ShardWriteError(`unsupported archive format: ${options.format}`, { archiveKey })
    const compression = options.compression === undefined ? 'gzip' : options.compression
    if (compression !== 'gzip' && compression !== null) {
      throw new ShardWriteError(`unsupported compression: ${String(compression)} (gzip or null)`, { archiveKey })
    }
    const writer = new ShardWriter(this.context(options.signal), archiveKey, {
      compression,
      internalManifestPath: options.internalManifestPath,
    })
    return new Shard(this, await writeAll(writer, items))
  }

  /** Writes shard entries to a manifest (`updateMode` `append_parts` by default, as Python). */
  putSharded(
    manifestKey: string,
    shardEntries: Iterable<ShardEntry> | AsyncIterable<ShardEntry>,
    options: PutShardedOptions = {},
  ): Promise<WriteManifestResult> {
    return this.writeManifest(manifestKey, shardEntries, { ...options, mode: options.updateMode ?? 'append_parts' })
  }

  /** A `ManifestWriter` for incremental writing with parts and shard buffering. */
  openManifestWriter(manifestKey: string, options: ManifestWriterOptions = {}): ManifestWriter {
    return new ManifestWriter(this, manifestKey, options)
  }

  /** A manifest's entries, refs inlined (each manifest read once) unless `resolveRefs: false`. */
  iterManifestEntries(manifest: ManifestRef, options: IterEntriesOptions = {}): AsyncIterable<ManifestEntry> {
    return Manifest.fromRef(this, manifest).iterEntries(options)
  }

  /**
   * Every object a manifest names, `{ entry, body }`, in manifest order: loose files fetched
   * `concurrency` at a time ahead of you, shard members streamed out of one GET per archive.
   * Read each body inside the loop.
   */
  iterObjects(manifest: ManifestRef, options: IterObjectsOptions = {}): AsyncIterable<EntryWithBody> {
    return Manifest.fromRef(this, manifest).iterObjects(options)
  }

  /** Python's alias of `iterObjects`. */
  getObjects(manifest: ManifestRef, options: IterObjectsOptions = {}): AsyncIterable<EntryWithBody> {
    return this.iterObjects(manifest, options)
  }

  /** The keys a manifest names (virtual keys for shard members). */
  getKeys(manifest: ManifestRef, options: GetKeysOptions = {}): AsyncIterable<string> {
    return Manifest.fromRef(this, manifest).getKeys(options)
  }

  /** A manifest's file entries, shards replaced by their internal manifest's entries (unless `includeShards: false`). */
  listManifestFiles(manifest: ManifestRef, options: ListFilesOptions = {}): AsyncIterable<FileEntry | ShardEntry> {
    return Manifest.fromRef(this, manifest).listFiles(options)
  }

  /** A manifest's file entries (shard members included) whose key starts with `prefixFilter`. */
  listByManifestPrefix(manifest: ManifestRef, prefixFilter: string, options: CallOptions = {}): AsyncIterable<FileEntry | ShardEntry> {
    return Manifest.fromRef(this, manifest).filterByPrefix(prefixFilter, options)
  }

  /**
   * The objects of a list of keys and virtual keys. Loose keys come first, in order, fetched
   * `concurrency` at a time; then each archive is read once for all the members asked of it,
   * in archive order. Entries are built as Python builds them. A key that names nothing throws
   * `ObjectNotFoundError` (after the rest of its archive, for members) unless `onMissing: 'skip'`.
   */
  async *iterObjectsFromKeys(
    keys: Iterable<string> | AsyncIterable<string>,
    options: IterObjectsFromKeysOptions = {},
  ): AsyncGenerator<EntryWithBody<FileEntry>> {
    const ctx = this.context(options.signal)
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    const looseKeys: string[] = []
    const byArchive = new Map<string, Map<string, string>>()
    for await (const key of keys) {
      const virtual = splitVirtualKey(key)
      if (virtual === undefined) looseKeys.push(key)
      else {
        const members = byArchive.get(virtual.archiveKey) ?? new Map<string, string>()
        byArchive.set(virtual.archiveKey, members)
        members.set(virtual.memberPath, key)
      }
    }
    let count = 0
    if (limit <= 0) return
    for await (const item of this.#fetchLoose(ctx, looseKeys, options)) {
      yield item
      if (++count >= limit) return
    }
    // Without the store's cache, one for this call: the ranged reads below need the index just read.
    const indexes = this.archiveIndexes ?? new LruCache<ArchiveIndex>(1)
    for (const [archiveKey, members] of byArchive) {
      const cached = indexes.get(archiveKey)
      let ranged = cached ? this.#rangedEntries(cached, archiveKey, members) : undefined
      if (ranged === undefined) {
        // Stream the archive once for all its members; but if its index (read first) locates
        // them and they are few, stop there and read them with ranged GETs instead.
        const found = new Set<string>()
        const onIndex = (index: ArchiveIndex) => {
          indexes.set(archiveKey, index)
          ranged = this.#rangedEntries(index, archiveKey, members)
          return ranged === undefined
        }
        try {
          for await (const member of scanArchive(ctx, archiveKey, {
            only: new Set(members.keys()),
            requireManifest: false,
            onIndex,
            verify: options.verify,
          })) {
            const key = members.get(member.name) as string
            found.add(member.name)
            const entry: FileEntry = member.listed
              ? { ...member.listed, archive_key: archiveKey, member_path: member.name, key }
              : { kind: 'file', key, archive_key: archiveKey, member_path: member.name, id: this.inferId(member.name) }
            yield { entry, body: member.body }
            if (++count >= limit) return
          }
        } catch (error) {
          const archiveMissing = error instanceof ShardReadError && error.cause instanceof ObjectNotFoundError && found.size === 0
          if (!archiveMissing) throw error
          // No such archive: the keys are ordinary keys that contain '#'.
          for await (const item of this.#fetchLoose(ctx, [...members.values()], options)) {
            yield item
            if (++count >= limit) return
          }
          continue
        }
        if (ranged === undefined) {
          if (options.onMissing !== 'skip') {
            for (const [memberPath, key] of members) {
              if (!found.has(memberPath)) throw new ObjectNotFoundError(key, { detail: 'the archive has no such member' })
            }
          }
          continue
        }
      }
      // One ranged GET per member, fetched ahead like loose objects.
      const fetch = fetchBodies(ctx, {
        concurrency: options.concurrency,
        onMissing: options.onMissing,
        indexCache: indexes,
        verify: options.verify,
      })
      for await (const item of fetch(ranged as FileEntry[])) {
        yield item as EntryWithBody<FileEntry>
        if (++count >= limit) return
      }
    }
  }

  /**
   * The entries to read with ranged GETs, when that beats streaming the archive: every member
   * asked for is located by the index, and they are few (at most 8) or a small part of the archive
   * (a quarter of its bytes at most). In archive order, as when the archive is streamed.
   * Undefined: stream the archive.
   */
  #rangedEntries(index: ArchiveIndex, archiveKey: string, members: Map<string, string>): FileEntry[] | undefined {
    const entries: FileEntry[] = []
    let bytes = 0
    for (const [memberPath, key] of members) {
      const listed = index.byPath.get(memberPath)
      if (!listed || !isLocated(index, listed)) return undefined
      bytes += listed.size_bytes ?? 0
      entries.push({ ...listed, archive_key: archiveKey, member_path: memberPath, key })
    }
    const few = entries.length <= 8 || (index.size !== undefined && bytes * 4 <= index.size)
    if (!few) return undefined
    const position = new Map(index.entries.map((entry, i) => [entry, i]))
    const at = (entry: FileEntry) => position.get(index.byPath.get(entry.member_path as string) as FileEntry) as number
    return entries.sort((a, b) => at(a) - at(b))
  }

  // ---------------------------------------------------------------- lifecycle

  /** Deletes one object. Refuses an empty key, and a key outside the fence (`within`, default `basePrefix`). */
  deleteKey(key: string, options: FenceOptions = {}): Promise<void> {
    return deleteKey(this, key, options)
  }

  /**
   * Deletes every key under `prefix` that `regex` matches; resolves to the number deleted. Refuses
   * `''` and `'/'`, and a prefix outside the fence. `dryRun` counts without deleting.
   */
  deletePrefix(prefix: string, options: DeletePrefixOptions = {}): Promise<number> {
    return deletePrefix(this, prefix, options)
  }

  /**
   * Deletes what a manifest references and the manifest itself, in DeleteObjects batches, counted
   * as Python counts. Keys outside the fence are left alone and listed in `outsideFence`;
   * failures are reported in `errors`, not thrown.
   */
  deleteManifest(manifest: ManifestRef, options: DeleteManifestOptions = {}): Promise<DeleteReport> {
    return deleteManifest(this, manifest, options)
  }

  /** Writes a flat copy of `src` (refs resolved, shards optionally expanded) to `dst`. */
  compactManifest(src: ManifestRef, dst: string, options: CompactOptions = {}): Promise<CompactReport> {
    return compactManifest(this, src, dst, options)
  }

  /** Downloads one object (or archive member) to `localPath`, atomically. Resolves to the absolute path. */
  downloadObject(key: string, localPath: string, options: CallOptions = {}): Promise<string> {
    return downloadObject(this, key, localPath, options)
  }

  /** Downloads keys and virtual keys into `dir`; resolves to a map of key to local path. */
  downloadObjects(
    keys: Iterable<string> | AsyncIterable<string>,
    dir: string,
    options: DownloadOptions = {},
  ): Promise<Map<string, string>> {
    return downloadObjects(this, keys, dir, options)
  }

  /** Downloads everything a manifest references into `dir`; resolves to a map of key to local path. */
  downloadManifest(manifest: ManifestRef, dir: string, options: DownloadOptions = {}): Promise<Map<string, string>> {
    return downloadManifest(this, manifest, dir, options)
  }

  async *#fetchLoose(ctx: S3Context, keys: string[], options: IterObjectsFromKeysOptions): AsyncGenerator<EntryWithBody<FileEntry>> {
    if (keys.length === 0) return
    const entries = keys.map((key): FileEntry => ({ kind: 'file', key }))
    const fetch = fetchBodies(ctx, { concurrency: options.concurrency, onMissing: options.onMissing })
    for await (const { entry, body } of fetch(entries)) {
      yield {
        entry: {
          kind: 'file',
          key: entry.key,
          id: this.inferId(entry.key),
          size_bytes: body.size ?? null,
          etag: body.etag ?? null,
          content_type: body.contentType ?? null,
        },
        body,
      }
    }
  }
}
