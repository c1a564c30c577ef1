/**
 * `ManifestWriter`: builds a manifest incrementally, as Python's `ManifestWriter`: entries, files
 * uploaded on the way, and items packed into shards as they come, published to the root manifest
 * only by `close()`. In `append_parts` mode (the default) entries stream into part manifests and
 * `close()` appends all their refs to the root in one conditional write; in `overwrite` mode they
 * stream into the root itself, which appears whole at `close()`. It is built of core's writers
 * (`ManifestPartsWriter` or `ManifestObjectWriter`, `ShardWriter`, `putObject`) and the rollover
 * rule; what it adds is Python's object: one queue of calls, one state, publishing once. (Over 300
 * lines on purpose: that state machine reads best whole.)
 *
 * On an error nothing is published (unless `publishOnError`), open multipart uploads are aborted,
 * and the `PublishError` thrown lists what was uploaded but not published: every object the writer
 * left, those of `putObject` calls still uploading when it failed included (it waits for them).
 * Every later call, and every call queued behind the failed one, rejects with that same error. `await using` is
 * supported as a safety net: leaving the scope without `close()` (an exception, a forgotten call)
 * publishes nothing (or, with `publishOnError`, what was written) and aborts open uploads. Publish
 * with `close()`.
 *
 * @example
 * ```ts
 * import { S3ExchangeStore } from 's3exchange'
 *
 * await using writer = store.openManifestWriter('training/123/samples/manifest.jsonl', {
 *   shardSize: { maxEntries: 1000, maxBytes: 256 * 1024 * 1024 },
 * })
 * await writer.putObject('training/123/samples/readme.txt', 'README.txt')   // a loose file
 * for (const clip of clips) await writer.addToShard(`${clip.id}.wav`, clip.bytes, { id: clip.id })
 * await writer.close()                                                     // publish
 * ```
 */
import {
  type CommitResult,
  ConfigurationError,
  type DataSource,
  DEFAULT_SHARD_COMPRESSION,
  type FileEntry,
  type ManifestEntry,
  type ManifestRefEntry,
  type Meta,
  type ProgressCounter,
  PublishError,
  putObject,
  type RolloverLimits,
  type S3Context,
  type ShardEntry,
  type ShardItem,
  ShardWriter,
  type WrittenManifest,
} from '@s3exchange/core'
import {
  checkOptions,
  closesBefore,
  isAbort,
  isFull,
  ManifestObjectWriter,
  ManifestPartsWriter,
  prepareShardItem,
  progressCounter,
  runId,
  shardArchiveName,
} from '@s3exchange/core/internals'
import { type StoreContext, writeContext } from './context.js'
import type { AddFileOptions, AddToShardOptions, ManifestWriterOptions, ManifestWriterStats, WriterPutObjectOptions } from './options.js'

/** Builds and publishes a manifest incrementally; see the module comment. */
export class ManifestWriter implements AsyncDisposable {
  readonly store: StoreContext
  readonly key: string
  readonly mode: 'overwrite' | 'append_parts'
  readonly shardPrefix: string
  readonly #options: ManifestWriterOptions
  /** The store's context with the writer's signal and write options: every write of the writer uses it. */
  readonly #ctx: S3Context
  readonly #runId = runId()
  readonly #parts: ManifestPartsWriter | undefined
  readonly #root: ManifestObjectWriter | undefined
  /** Objects and shards this writer uploaded (parts are tracked by #parts). */
  readonly #uploaded: string[] = []
  #shard: ShardWriter | undefined
  #shardSequence = 0
  #shardsCreated = 0
  #partsUploaded = 0
  #state: 'open' | 'closed' | 'failed' = 'open'
  #queue: Promise<unknown> = Promise.resolve()
  /** Uploads started by `putObject`, with their keys: a failure waits for them, to list what they left. */
  readonly #uploads: { key: string; upload: Promise<FileEntry> }[] = []
  /** What the writer failed with, once it has: every later call rejects with it. */
  #failure: Promise<unknown> | undefined
  /** Progress: objects uploaded by `putObject` and shard members added (objects), their bytes and the shards' as uploaded. */
  readonly #progress: ProgressCounter | undefined

  constructor(store: StoreContext, key: string, options: ManifestWriterOptions = {}) {
    checkOptions('openManifestWriter', options)
    const shardSize = options.shardSize
    if (shardSize && shardSize.maxEntries === undefined && shardSize.maxBytes === undefined) {
      throw new ConfigurationError('shardSize needs maxEntries or maxBytes')
    }
    if ((options.shardFormat ?? 'tar') !== 'tar') {
      throw new ConfigurationError(`unsupported shard format: ${options.shardFormat}`, { option: 'shardFormat', key })
    }
    if (![undefined, null, 'gzip', 'zstd'].includes(options.shardCompression)) {
      throw new ConfigurationError(
        `shardCompression must be 'gzip', 'zstd' or null (a plain tar), not ${JSON.stringify(options.shardCompression)}`,
        {
          option: 'shardCompression',
          key,
        },
      )
    }
    this.store = store
    this.key = key
    this.mode = options.mode ?? 'append_parts'
    this.#options = options
    this.#progress = progressCounter(options)
    const slash = key.lastIndexOf('/')
    this.shardPrefix = (options.shardPrefix ?? (slash === -1 ? 'shards' : `${key.slice(0, slash)}/shards`)).replace(/\/+$/, '')
    if (shardSize && this.shardPrefix.includes('#')) {
      throw new ConfigurationError(
        `openManifestWriter: the shard prefix ${JSON.stringify(this.shardPrefix)} contains '#': archive keys with '#' cannot be read by virtual key; pass another shardPrefix`,
        { call: 'openManifestWriter', option: 'shardPrefix' },
      )
    }
    // Bad write options fail here, before anything is written.
    const ctx = writeContext(store, options)
    this.#ctx = ctx
    if (this.mode === 'append_parts') {
      this.#parts = new ManifestPartsWriter(ctx, key, {
        partMaxEntries: options.partMaxEntries,
        partMaxBytes: options.partMaxBytes,
        maxAttempts: options.maxCommitAttempts,
      })
    } else if (this.mode === 'overwrite') {
      this.#root = new ManifestObjectWriter(ctx, key)
    } else {
      throw new ConfigurationError(`invalid mode: ${String(this.mode)}`)
    }
  }

  /** True once `close()` (or `abort()`) has run, or after a failure. */
  get isClosed(): boolean {
    return this.#state !== 'open'
  }

  /** Adds an entry to the manifest. */
  addEntry(entry: ManifestEntry): Promise<void> {
    return this.#run(() => this.#add(entry))
  }

  /** Adds the entry of an object that is already in S3 (nothing is checked or uploaded). */
  async addFile(key: string, options: AddFileOptions = {}): Promise<FileEntry> {
    const entry: FileEntry = {
      kind: 'file',
      key,
      id: options.id ?? this.store.inferId(key),
      meta: options.meta ?? null,
      content_type: options.contentType ?? null,
      size_bytes: options.sizeBytes ?? null,
      etag: options.etag ?? null,
    }
    await this.addEntry(entry)
    return entry
  }

  /** Adds a reference to another manifest. */
  async addManifest(key: string): Promise<ManifestRefEntry> {
    const entry: ManifestRefEntry = { kind: 'manifest_ref', key }
    await this.addEntry(entry)
    return entry
  }

  /**
   * Uploads an object and adds its entry. Uploads of calls made without awaiting run in
   * parallel; their entries are added in call order. Write options given here override the
   * writer's for this object.
   */
  putObject(key: string, data: DataSource, options: WriterPutObjectOptions = {}): Promise<FileEntry> {
    // Checked and queued at once, so that calls land in call order (and close() after them).
    if (this.#state !== 'open') return this.#checkOpen() as Promise<never>
    const uploading = putObject(this.#ctx, key, data, { ...options, inferId: this.store.inferId })
    uploading.catch(() => {}) // handled in its turn below
    this.#uploads.push({ key, upload: uploading })
    return this.#run(async () => {
      // Queued behind earlier calls; a failed upload fails the writer like any other error.
      const entry = await uploading
      this.#addUploaded(key)
      this.#progress?.addObjects(1, entry.size_bytes ?? 0, key)
      await this.#add(entry)
      return entry
    })
  }

  /** Streams an item into the current shard; the shard is written out when it reaches `shardSize`. */
  addShardItem(item: ShardItem): Promise<FileEntry> {
    const policy = this.#options.shardSize
    // A usage error, refused before it can fail the writer (Python raises without closing it).
    if (!policy) return Promise.reject(new ConfigurationError('shard buffering is not enabled: pass shardSize to openManifestWriter'))
    return this.#run(async () => {
      this.#shard ??= this.#newShard()
      const rule: RolloverLimits = { rollover: 'at-limit', ...policy }
      const prepared = await prepareShardItem(item, this.#shard.archiveKey)
      if (closesBefore(rule, { count: this.#shard.count, bytes: this.#shard.dataBytes }, prepared.source.size)) {
        await this.#flushShard()
        this.#shard = this.#newShard()
      }
      const shard = this.#shard
      const member = await shard.add(prepared)
      if (isFull(rule, { count: shard.count, bytes: shard.dataBytes })) await this.#flushShard()
      return member
    })
  }

  /** Adds data to the current shard as the member `memberPath` (Python's `add_to_shard`). */
  addToShard(memberPath: string, source: DataSource, options: AddToShardOptions = {}): Promise<FileEntry> {
    // As Python: contentType joins meta, and an empty meta is written as null.
    const merged: Meta = options.contentType ? { ...(options.meta ?? {}), content_type: options.contentType } : { ...(options.meta ?? {}) }
    const meta = Object.keys(merged).length > 0 ? merged : null
    return this.addShardItem({ source, member_path: memberPath, id: options.id ?? null, meta, size_bytes: options.sizeBytes ?? null })
  }

  /** Uploads the current part now (append mode; overwrite mode has none). Resolves to its key. */
  flushPart(): Promise<string | undefined> {
    return this.#run(async () => {
      const key = await this.#parts?.flushPart()
      if (key) this.#partsUploaded++
      return key
    })
  }

  /** Writes out the current shard now and adds its entry. Resolves to the entry, if there was a shard. */
  flushShard(): Promise<ShardEntry | undefined> {
    return this.#run(() => this.#flushShard())
  }

  /** Writes out what is pending and publishes the manifest. */
  close(): Promise<CommitResult | WrittenManifest> {
    return this.#run(async () => {
      await this.#flushShard()
      let result: CommitResult | WrittenManifest
      if (this.#parts) {
        if (await this.#parts.flushPart()) this.#partsUploaded++
        result = await this.#parts.finish()
      } else {
        const root = this.#root as ManifestObjectWriter
        // As Python's writer: an overwrite with no entries leaves the root as it was.
        if (root.entries === 0) {
          await root.abort()
          result = { key: this.key, etag: undefined, size: 0, entries: 0 }
        } else {
          result = await root.finish()
        }
      }
      this.#state = 'closed'
      return result
    })
  }

  /**
   * Discards the writer: nothing is published, open uploads are aborted. Resolves to the keys of
   * objects it uploaded that nothing references now.
   */
  abort(): Promise<string[]> {
    const run = this.#queue.then(async () => {
      if (this.#state === 'open') {
        this.#state = 'closed'
        await this.#abortOpen()
      }
      await this.#settleUploads()
      return this.#unpublished()
    })
    this.#queue = run.catch(() => {})
    return run
  }

  /** Counters, as Python's `stats()`. */
  stats(): ManifestWriterStats {
    const pending = this.#parts ? this.#parts.pending : { entries: this.#root?.entries ?? 0, bytes: this.#root?.bytes ?? 0 }
    return {
      partEntries: pending.entries,
      partBytes: pending.bytes,
      partsUploaded: this.#partsUploaded,
      shardEntries: this.#shard?.count ?? 0,
      shardBytes: this.#shard?.dataBytes ?? 0,
      shardsCreated: this.#shardsCreated,
      isClosed: this.isClosed,
    }
  }

  /** `await using`: without `close()`, publish nothing (or what was written, with `publishOnError`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#queue
    if (this.#state !== 'open') return
    if (this.#options.publishOnError) {
      await this.close()
      return
    }
    const pending = this.stats()
    const unpublished = await this.abort()
    if (pending.partEntries + pending.partsUploaded + pending.shardEntries + unpublished.length > 0) {
      process.emitWarning(
        `ManifestWriter for ${this.key} was disposed without close(): nothing was published` +
          (unpublished.length ? `; uploaded but not published: ${unpublished.join(', ')}` : ''),
        { code: 'S3X_WRITER_NOT_CLOSED' },
      )
    }
  }

  #newShard(): ShardWriter {
    const compression = this.#options.shardCompression === undefined ? DEFAULT_SHARD_COMPRESSION : this.#options.shardCompression
    const archiveKey = `${this.shardPrefix}/${shardArchiveName(this.#runId, this.#shardSequence++, compression)}`
    return new ShardWriter(this.#ctx, archiveKey, { internalManifestPath: this.#options.internalManifestPath }, this.#progress)
  }

  async #add(entry: ManifestEntry): Promise<void> {
    if (this.#parts) {
      const before = this.#parts.parts.length
      await this.#parts.add(entry)
      if (this.#parts.parts.length > before) this.#partsUploaded++
    } else await (this.#root as ManifestObjectWriter).add(entry)
  }

  async #flushShard(): Promise<ShardEntry | undefined> {
    const shard = this.#shard
    if (shard === undefined) return undefined
    this.#shard = undefined
    if (shard.count === 0) {
      await shard.abort()
      return undefined
    }
    const entry = await shard.finish()
    this.#shardsCreated++
    this.#addUploaded(entry.archive_key)
    await this.#add(entry)
    return entry
  }

  /** Throws unless the writer is open: a failed writer's failure, or `ConfigurationError` once it is closed. */
  async #checkOpen(): Promise<void> {
    if (this.#state === 'failed') throw await this.#failure
    if (this.#state !== 'open') throw new ConfigurationError(`ManifestWriter for ${this.key} is closed`)
  }

  #addUploaded(key: string): void {
    if (!this.#uploaded.includes(key)) this.#uploaded.push(key)
  }

  /** Waits for the uploads `putObject` started; those that completed are listed as uploaded. */
  async #settleUploads(): Promise<void> {
    const uploads = this.#uploads.splice(0)
    const settled = await Promise.allSettled(uploads.map(({ upload }) => upload))
    settled.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') this.#addUploaded((uploads[i] as { key: string }).key)
    })
  }

  /** Runs `fn` after the calls before it; on failure, fails the writer (see the module comment). */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(async () => {
      await this.#checkOpen()
      try {
        return await fn()
      } catch (error) {
        throw await this.#fail(error)
      }
    })
    this.#queue = run.catch(() => {})
    return run
  }

  #fail(error: unknown): Promise<unknown> {
    this.#state = 'failed'
    this.#failure = this.#failWith(error)
    return this.#failure
  }

  async #failWith(error: unknown): Promise<unknown> {
    // Uploads of calls made before the failure (queued behind it, or running alongside) finish on
    // their own: wait for them, so that what they left is known.
    await this.#settleUploads()
    if (this.#options.publishOnError) {
      try {
        await this.#shard?.abort()
        this.#shard = undefined
        if (this.#parts) await this.#parts.finish()
        else if (this.#root && this.#root.entries > 0) await this.#root.finish()
        return error
      } catch {
        // Could not publish either: fall through and report what is left behind.
      }
    }
    await this.#abortOpen()
    return isAbort(error) ? error : new PublishError(this.key, this.#unpublished(), error)
  }

  async #abortOpen(): Promise<void> {
    await this.#shard?.abort()
    this.#shard = undefined
    await this.#parts?.abort()
    await this.#root?.abort()
  }

  #unpublished(): string[] {
    return [...this.#uploaded, ...(this.#parts?.parts ?? [])]
  }
}
