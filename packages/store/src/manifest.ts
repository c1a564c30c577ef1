/**
 * `Manifest`: a manifest backed by an S3 key, by entries in memory, or by a shard's internal
 * manifest, with Python s3exchange's read methods. Iteration is lazy: nothing is read until a
 * method is iterated, and every method streams.
 *
 * @example
 * ```ts
 * import { S3ExchangeStore } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client, bucket: 'my-bucket' })
 * const manifest = store.getManifest('training/123/samples/manifest.jsonl')
 * for await (const entry of manifest.iterEntries({ resolveRefs: false })) console.log(entry.kind)
 * for await (const { entry, body } of manifest.iterObjects({ concurrency: 16 })) {
 *   console.log(entry.key, (await body.bytes()).byteLength)
 * }
 * ```
 *
 * (Over 300 lines on purpose: one method per method of Python's `Manifest`, each documented; the
 * logic behind them is core's.)
 */

import type { CompactReport, DeleteReport } from '@s3exchange/core'
import {
  ConfigurationError,
  DEFAULT_SHARD_CONCURRENCY,
  type EntryWithBody,
  type EntryWithCursor,
  entriesWithCursor,
  expandRefs,
  expandShards,
  type FileEntry,
  fetchBodies,
  LruCache,
  type ManifestEntry,
  type ObjectWithCursor,
  objectKeys,
  type PipelineItem,
  type PositionedEntriesOptions,
  parseEntry,
  partition,
  partKeyFor,
  positionedEntries,
  readInternalEntries,
  readManifest,
  readPositionedMembers,
  readShardEntries,
  reportProgress,
  type S3Context,
  type ShardEntry,
  type ShuffleOptions,
  serializeEntry,
  shuffledEpoch,
  take,
  withCursor,
  withKeyPrefix,
  writeManifestObject,
} from '@s3exchange/core'
import { type ArchiveIndex, asyncIterableOf, checkOptions, IN_MEMORY_ROOT } from '@s3exchange/core/internals'
import { pipe } from 'it-pipe'
import { type CompactOptions, compactManifest } from './compact.js'
import { type EntrySource, type ReadOptions, type StoreContext, writeContext } from './context.js'
import { type DeleteManifestOptions, deleteManifest } from './delete.js'
import type {
  FollowOptions,
  GetKeysOptions,
  IterEntriesOptions,
  IterObjectsOptions,
  ListFilesOptions,
  RefsResolved,
  ShardsExpanded,
  WriteCallOptions,
  WriteManifestOptions,
  WriteManifestResult,
} from './options.js'
import { writeManifest } from './write.js'

/** A manifest argument: a key, a `Manifest`, or entries (an array, or any iterable). */
export type ManifestRef = string | Manifest | Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>

type Backing =
  | { kind: 'key'; key: string }
  | { kind: 'entries'; entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry> }
  | { kind: 'shard'; shard: ShardEntry }

/** Indexes a shuffled read keeps for itself when the store keeps none (`archiveIndexCacheSize: 0`). */
const CALL_INDEX_CACHE_SIZE = 256

type Stage<T> = (items: AsyncIterable<T>) => AsyncIterable<T>

/** `stage` when it is asked for, else a stage that passes everything. */
function optional<T>(stage: Stage<T> | false | undefined): Stage<T> {
  return stage || ((items) => items)
}

/** A manifest; see the module comment. */
export class Manifest implements EntrySource {
  readonly store: StoreContext
  readonly #backing: Backing

  private constructor(store: StoreContext, backing: Backing) {
    this.store = store
    this.#backing = backing
  }

  /** A manifest stored at `key`. */
  static fromKey(store: StoreContext, key: string): Manifest {
    return new Manifest(store, { kind: 'key', key })
  }

  /**
   * A manifest made of entries in memory. An array (or any re-iterable) can be iterated many
   * times; a one-shot iterable only once.
   */
  static fromEntries(store: StoreContext, entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>): Manifest {
    return new Manifest(store, { kind: 'entries', entries })
  }

  /** The internal manifest of a shard, read from its archive when iterated. */
  static fromShard(store: StoreContext, shard: ShardEntry): Manifest {
    return new Manifest(store, { kind: 'shard', shard })
  }

  /**
   * A manifest from a key, a `Manifest`, or entries. A `Manifest` is used with the store it belongs
   * to: one made with another store of the same client and bucket is rebound to `store` (its reads,
   * deletes and limits are then `store`'s); one of another client or bucket is refused with
   * `ConfigurationError` (pass it to its own store, or pass its key).
   */
  static fromRef(store: StoreContext, ref: ManifestRef): Manifest {
    const iterable = ref as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null
    const usable =
      typeof ref === 'string' ||
      (iterable !== null &&
        typeof iterable === 'object' &&
        (typeof iterable[Symbol.iterator] === 'function' || typeof iterable[Symbol.asyncIterator] === 'function'))
    if (!usable) {
      throw new ConfigurationError(
        `a manifest must be a key, a Manifest or an iterable of entries, got ${ref === null ? 'null' : typeof ref}`,
        {
          option: 'manifest',
        },
      )
    }
    if (ref instanceof Manifest) {
      if (ref.store === store) return ref
      const mine = store.context()
      const theirs = ref.store.context()
      if (mine.client === theirs.client && mine.bucket === theirs.bucket) return new Manifest(store, ref.#backing)
      throw new ConfigurationError(
        `${ref} belongs to another store (bucket ${theirs.bucket}${mine.client === theirs.client ? '' : ', another client'}) than the one it was passed to (bucket ${mine.bucket}): pass it to its own store, or pass its key`,
      )
    }
    if (typeof ref === 'string') return Manifest.fromKey(store, ref)
    return Manifest.fromEntries(store, ref)
  }

  /** The S3 key, or undefined for a manifest in memory or inside a shard. */
  get key(): string | undefined {
    return this.#backing.kind === 'key' ? this.#backing.key : undefined
  }

  /**
   * Whether it can be iterated more than once: true for one backed by a key, a shard or an array
   * of entries; false for one made of a one-shot iterable (a generator, a stream of entries).
   */
  get replayable(): boolean {
    return this.#backing.kind !== 'entries' || Array.isArray(this.#backing.entries)
  }

  /** The entries as stored, refs not followed. */
  #raw(ctx: S3Context): AsyncIterable<ManifestEntry> | Iterable<ManifestEntry> {
    const backing = this.#backing
    if (backing.kind === 'key') return readManifest(ctx, backing.key)
    if (backing.kind === 'entries') return backing.entries
    return readInternalEntries(ctx, backing.shard)
  }

  #entries(ctx: S3Context, resolveRefs: boolean): AsyncIterable<ManifestEntry> {
    return pipe(asyncIterableOf(this.#raw(ctx)), optional<ManifestEntry>(resolveRefs && expandRefs(ctx)))
  }

  /** How cursors name this manifest: its key, or `(entries in memory)` (the entries then tell). */
  get #cursorRoot(): string {
    return this.#backing.kind === 'key' ? this.#backing.key : IN_MEMORY_ROOT
  }

  /** The entries, positioned (each can give its cursor), after `after` when given. */
  #positioned(ctx: S3Context, options: PositionedEntriesOptions): AsyncGenerator<ManifestEntry, void, undefined> {
    const backing = this.#backing
    const source = backing.kind === 'key' ? backing.key : backing.kind === 'entries' ? backing.entries : [backing.shard]
    return positionedEntries(ctx, source, options)
  }

  /**
   * The entries, refs inlined (depth first, each manifest once) unless `resolveRefs: false`. With
   * `cursors: true`, `{ entry, cursor }`; with `after`, only the entries after that cursor.
   */
  iterEntries(options: IterEntriesOptions & { cursors: true }): AsyncIterable<EntryWithCursor>
  iterEntries(options?: RefsResolved<IterEntriesOptions> & { cursors?: false }): AsyncIterable<FileEntry | ShardEntry>
  iterEntries(options?: IterEntriesOptions & { cursors?: false }): AsyncIterable<ManifestEntry>
  iterEntries(options?: IterEntriesOptions): AsyncIterable<ManifestEntry> | AsyncIterable<EntryWithCursor>
  iterEntries(options: IterEntriesOptions = {}): AsyncIterable<ManifestEntry> | AsyncIterable<EntryWithCursor> {
    checkOptions('Manifest.iterEntries', options)
    const ctx = this.store.context(options)
    const { shuffle } = options
    if (shuffle) {
      const resolveRefs = options.resolveRefs ?? true
      const entries = pipe(
        this.#entries(ctx, resolveRefs),
        shuffledEpoch({ shuffle, partition: options.partition, after: options.after, root: this.#cursorRoot, resolveRefs }),
        take<ManifestEntry>(options.limit),
      )
      return options.cursors ? pipe(entries, entriesWithCursor()) : entries
    }
    if (options.cursors || options.after !== undefined) {
      const entries = pipe(
        this.#positioned(ctx, { after: options.after, resolveRefs: options.resolveRefs, partition: options.partition }),
        take<ManifestEntry>(options.limit),
      )
      return options.cursors ? pipe(entries, entriesWithCursor()) : entries
    }
    return pipe(
      this.#entries(ctx, options.resolveRefs ?? true),
      optional<ManifestEntry>(options.partition && partition(options.partition)),
      take<ManifestEntry>(options.limit),
    )
  }

  /**
   * Every object the manifest names, `{ entry, body, cursor }`, in manifest order: loose files
   * fetched `concurrency` at a time ahead of the consumer, shard members streamed out of one GET
   * per archive. Read each body inside the loop: a shard member's body is skipped once the loop
   * moves on. `cursor` resumes right after the item: pass it as `after` (a restarted consumer skips
   * the manifests and shards before it without reading them, and reads a partly consumed shard
   * from the next member on).
   */
  iterObjects(options?: ShardsExpanded<IterObjectsOptions>): AsyncIterable<ObjectWithCursor<FileEntry>>
  iterObjects(options: IterObjectsOptions): AsyncIterable<ObjectWithCursor<FileEntry | ShardEntry>>
  iterObjects(options: IterObjectsOptions = {}): AsyncIterable<ObjectWithCursor> {
    checkOptions('Manifest.iterObjects', options)
    const ctx = this.store.context(options)
    const backing = this.#backing
    if (options.shuffle) {
      return pipe(this.#iterShuffled(ctx, options.shuffle, options), optional<EntryWithBody>(reportProgress(options)), withCursor())
    }
    const shards = expandShards(ctx, {
      bodies: true,
      shardConcurrency: options.shardConcurrency ?? DEFAULT_SHARD_CONCURRENCY,
      maxBufferedBytes: options.maxBufferedBytes,
      verify: options.verify,
      readMembers: readPositionedMembers,
    })
    if (backing.kind === 'shard') {
      // The members of one archive, shared out one by one: a cursor cannot hold that sharing.
      if (options.partition && options.after !== undefined) {
        throw new ConfigurationError(
          `a shard's members shared out by partition cannot resume after a cursor (${backing.shard.archive_key})`,
        )
      }
      // A one-shard manifest: every item is a member.
      const members = shards as (entries: AsyncIterable<ManifestEntry>) => AsyncIterable<EntryWithBody>
      return pipe(
        this.#positioned(ctx, { after: options.after }),
        members,
        optional<EntryWithBody>(options.partition && partition(options.partition)),
        take<EntryWithBody>(options.limit),
        optional<EntryWithBody>(reportProgress(options)),
        withCursor(),
      )
    }
    return pipe(
      // Whole shards and loose files are shared out before shards are expanded: a shard stays with one worker.
      this.#positioned(ctx, { after: options.after, partition: options.partition }),
      optional<PipelineItem>((options.expandShards ?? true) && shards),
      take<PipelineItem>(options.limit),
      fetchBodies(ctx, {
        concurrency: options.concurrency,
        maxBufferedBytes: options.maxBufferedBytes,
        indexCache: this.store.archiveIndexes,
        verify: options.verify,
      }),
      optional<EntryWithBody>(reportProgress(options)),
      withCursor(),
    )
  }

  /**
   * The entries after `after` (all of them without it), refs inlined, then those appended to the
   * root as they appear (`append_parts`), each `{ entry, cursor }`: the root is polled every
   * `pollIntervalMs` with a conditional GET (304 while unchanged), and only its new bytes and the
   * new parts they name are read. Ends when `signal` fires (the iteration simply stops). A root
   * rewritten rather than appended to (a compaction) is a `CursorMismatchError`.
   */
  async *follow(options: FollowOptions = {}): AsyncGenerator<EntryWithCursor, void, undefined> {
    const key = this.key
    checkOptions('Manifest.follow', options)
    if (key === undefined) throw new ConfigurationError('only a manifest stored in S3 can be followed')
    const signal = options.signal
    const ctx = this.store.context(options)
    const entries = positionedEntries(ctx, key, { after: options.after, follow: { pollIntervalMs: options.pollIntervalMs ?? 1000 } })
    try {
      yield* pipe(entries, entriesWithCursor())
    } catch (error) {
      if (signal?.aborted) return
      throw error
    }
  }

  /**
   * `iterObjects` with `shuffle`: entries first (whole shards and loose files permuted, shared
   * out, shards expanded to their members' entries, mixed), bodies last, so that the mixing
   * buffer holds entries and no connection, and each member is read by itself with one ranged
   * GET. A shard whose members cannot be located (no offsets: written by another tool) is mixed
   * whole and streamed once, its members in archive order, rather than read again per member.
   * Every item has a cursor; with `after`, the epoch resumes after it (see `shuffledEpoch`): the
   * units wholly handed over are not expanded, no body handed over is fetched again.
   */
  #iterShuffled(ctx: S3Context, shuffle: ShuffleOptions, options: IterObjectsOptions): AsyncIterable<EntryWithBody> {
    const backing = this.#backing
    const indexCache = this.store.archiveIndexes ?? new LruCache<ArchiveIndex>(CALL_INDEX_CACHE_SIZE)
    const units: AsyncIterable<ManifestEntry> =
      backing.kind === 'shard' ? readShardEntries(ctx, backing.shard, { verify: options.verify }) : this.#entries(ctx, true)
    const expand = backing.kind !== 'shard' && (options.expandShards ?? true)
    const members = expandShards(ctx, { verify: options.verify, indexCache, keepUnlocated: true })
    return pipe(
      units,
      shuffledEpoch({
        shuffle,
        partition: options.partition,
        after: options.after,
        root: this.#cursorRoot,
        expandUnit: expand ? (unit) => (unit.kind === 'shard' ? members([unit]) : [unit]) : undefined,
      }),
      optional<PipelineItem>(expand && expandShards(ctx, { bodies: true, verify: options.verify, readMembers: readPositionedMembers })),
      take<PipelineItem>(options.limit),
      fetchBodies(ctx, {
        concurrency: options.concurrency,
        maxBufferedBytes: options.maxBufferedBytes,
        indexCache,
        verify: options.verify,
      }),
    )
  }

  /**
   * The keys of the objects the manifest names: a file's key, a shard's members' virtual keys
   * (or its archive key, with `expandShards: false`), a ref's key when refs are not resolved.
   */
  getKeys(options: GetKeysOptions = {}): AsyncIterable<string> {
    checkOptions('Manifest.getKeys', options)
    const ctx = this.store.context(options)
    const entries = this.#entries(ctx, options.resolveRefs ?? true)
    return pipe(
      entries,
      optional<ManifestEntry>((options.expandShards ?? true) && expandShards(ctx)),
      objectKeys(),
      take<string>(options.limit),
    )
  }

  /** File entries, with each shard replaced by its internal manifest's entries (unless `includeShards: false`). */
  listFiles(options?: ShardsExpanded<ListFilesOptions, 'includeShards'>): AsyncIterable<FileEntry>
  listFiles(options: ListFilesOptions): AsyncIterable<FileEntry | ShardEntry>
  listFiles(options: ListFilesOptions = {}): AsyncIterable<FileEntry | ShardEntry> {
    checkOptions('Manifest.listFiles', options)
    const ctx = this.store.context(options)
    const entries = this.#entries(ctx, true) as AsyncIterable<FileEntry | ShardEntry>
    return pipe(entries, optional<FileEntry | ShardEntry>((options.includeShards ?? true) && expandShards(ctx)))
  }

  /** File entries (shard members included) whose key, or virtual key, starts with `prefix`. */
  filterByPrefix(prefix: string, options: ReadOptions = {}): AsyncIterable<FileEntry> {
    checkOptions('Manifest.filterByPrefix', options)
    const expanded: ShardsExpanded<ListFilesOptions, 'includeShards'> = { ...options, includeShards: true }
    return withKeyPrefix(prefix)(this.listFiles(expanded))
  }

  /**
   * Writes entries to this manifest's key (`overwrite` by default, or `append_parts`). Without
   * `entries`, a manifest made from entries writes those; one made from a key refuses (Python
   * would overwrite it with an empty manifest).
   */
  async save(
    entries?: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
    options: WriteManifestOptions = {},
  ): Promise<WriteManifestResult> {
    checkOptions('Manifest.save', options)
    const key = this.key
    if (key === undefined) throw new ConfigurationError('cannot save a manifest that has no key')
    if (entries === undefined && this.#backing.kind !== 'entries') {
      throw new ConfigurationError(`no entries to save to ${key}: pass them (saving nothing would empty the manifest)`)
    }
    const source = entries ?? (this.#backing as { entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry> }).entries
    return writeManifest(this.store, key, source, options)
  }

  /** Deletes what this manifest references, and itself; see `S3ExchangeStore.deleteManifest`. */
  async delete(options: DeleteManifestOptions = {}): Promise<DeleteReport> {
    checkOptions('Manifest.delete', options)
    return deleteManifest(this.store, this, options)
  }

  /** Writes a flat copy of this manifest to `dst`; see `S3ExchangeStore.compactManifest`. */
  async compact(dst: string, options: CompactOptions = {}): Promise<CompactReport> {
    checkOptions('Manifest.compact', options)
    return compactManifest(this.store, this, dst, options)
  }

  /** Parses one manifest line (Python's `Manifest.parse_line`). */
  static parseLine(line: string, lineNumber?: number, key?: string): ManifestEntry {
    return parseEntry(line, { key, lineNumber })
  }

  /** One compact JSON line, as Python writes it (Python's `Manifest.serialize_entry`). */
  static serializeEntry(entry: ManifestEntry): string {
    return serializeEntry(entry)
  }

  /** A new part key beside a root (Python's `Manifest.generate_part_key`). */
  static generatePartKey(rootKey: string): string {
    return partKeyFor(rootKey)
  }

  /** The entries of the manifest object at `key`, streamed (Python's `Manifest.read_from_s3`). */
  static readFromS3(store: StoreContext, key: string, options: ReadOptions = {}): AsyncIterable<ManifestEntry> {
    checkOptions('Manifest.readFromS3', options)
    return readManifest(store.context(options), key)
  }

  /** Writes entries as the manifest object at `key` (Python's `Manifest.write_to_s3`), with the store's write options and the call's over them. */
  static async writeToS3(
    store: StoreContext,
    key: string,
    entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
    options: WriteCallOptions = {},
  ): Promise<void> {
    checkOptions('Manifest.writeToS3', options)
    await writeManifestObject(writeContext(store, options), key, entries)
  }

  /** Iterating a manifest iterates its entries, refs resolved. */
  [Symbol.asyncIterator](): AsyncIterator<FileEntry | ShardEntry> {
    return this.iterEntries()[Symbol.asyncIterator]()
  }

  toString(): string {
    const backing = this.#backing
    if (backing.kind === 'key') return `Manifest(key=${backing.key})`
    if (backing.kind === 'shard') return `Manifest(shard=${backing.shard.archive_key})`
    return 'Manifest(entries)'
  }
}
