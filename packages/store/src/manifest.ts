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
 */
import {
  ConfigurationError,
  type EntryWithBody,
  expandRefs,
  expandShards,
  type FileEntry,
  fetchBodies,
  type ManifestEntry,
  type PartitionOptions,
  type PipelineItem,
  parseEntry,
  partition,
  partKeyFor,
  readInternalManifest,
  readManifest,
  readShardMembers,
  type S3Context,
  type ShardEntry,
  serializeEntry,
  take,
  virtualKey,
  writeManifestObject,
} from '@s3exchange/core'
import type { CompactOptions, CompactReport } from './compact.js'
import type { DeleteManifestOptions, DeleteReport } from './delete.js'
import type { S3ExchangeStore, WriteManifestOptions, WriteManifestResult } from './store.js'

/** A manifest argument: a key, a `Manifest`, or entries (an array, or any iterable). */
export type ManifestRef = string | Manifest | Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>

/** Options every call that talks to S3 takes. */
export interface CallOptions {
  /** Cancels the call (and the iteration). */
  signal?: AbortSignal
}

/** Options for {@link Manifest.iterEntries}. */
export interface IterEntriesOptions extends CallOptions {
  /** Inline `manifest_ref` entries, recursively (each manifest read once). Default true. */
  resolveRefs?: boolean
  /** Yield at most this many entries (of this worker's share, with `partition`). */
  limit?: number
  /**
   * Yield only worker `index`'s share of the entries, out of `count` workers; see
   * {@link IterObjectsOptions.partition}. Applied after refs are resolved (with
   * `resolveRefs: false`, a `manifest_ref` is assigned whole). With refs resolved, worker
   * `index` lists the very loose files and shards whose objects `iterObjects` gives it.
   */
  partition?: PartitionOptions
}

/** Options for {@link Manifest.iterObjects}. */
export interface IterObjectsOptions extends CallOptions {
  /**
   * Yield each shard's members (streamed out of one GET per archive). When false, yield the
   * shard entry with the whole archive as its body. Default true.
   */
  expandShards?: boolean
  /** Yield at most this many objects (a shard member counts as one), counted within this worker's share. */
  limit?: number
  /**
   * Yield only worker `index`'s share of the dataset, out of `count` workers, for data loaders
   * spread across processes or machines:
   *
   * - `index`: this worker's number, an integer from 0 to `count - 1`.
   * - `count`: how many workers share the dataset, an integer ≥ 1.
   *
   * The shares are disjoint and together make the whole dataset, each in manifest order, and
   * every worker computes the same ones from the same manifest with no coordination. They are
   * made of whole shards and loose files (a shard is never split), balanced by size where
   * entries have `size_bytes` and by count where they do not. Every worker reads the manifest
   * (refs included) but fetches only its own objects. For a manifest backed by one shard's
   * internal manifest, the members are shared out instead (each worker streams the archive and
   * skips the others' members). Keep the manifest unchanged while workers read it: entries
   * appended at its end do not move earlier ones, but workers that see different manifests do
   * not get complementary shares. A bad index or count throws `ConfigurationError`.
   */
  partition?: PartitionOptions
  /** Loose objects fetched at once, ahead of the consumer; output stays in manifest order. Default 16. */
  concurrency?: number
  /**
   * Bytes held in memory ahead of the consumer, for loose objects fetched ahead and, separately,
   * for members of shards read ahead. Default 64 MiB each.
   */
  maxBufferedBytes?: number
  /**
   * Shard archives read at once: the one being consumed and the next ones, whose members are
   * buffered within `maxBufferedBytes`. Output stays in manifest order. Default 2; 1 reads one
   * archive at a time.
   */
  shardConcurrency?: number
  /**
   * Check every object against its entry as it is read: its length against `size_bytes` and its
   * SHA-256 against `sha256`, where the entry has them (this library's writers record both; Python
   * records the size only). A mismatch fails the read with `IntegrityError` naming the key.
   * Default false: hashing costs CPU (about 1.5 GiB/s per core).
   */
  verify?: boolean
}

/** Options for {@link Manifest.getKeys}. */
export interface GetKeysOptions extends CallOptions {
  /** Yield the virtual keys of shard members instead of the archive key. Default true. */
  expandShards?: boolean
  /** Inline refs; when false, a ref yields the referenced manifest's key. Default true. */
  resolveRefs?: boolean
  /** Yield at most this many keys. */
  limit?: number
}

/** Options for {@link Manifest.listFiles}. */
export interface ListFilesOptions extends CallOptions {
  /** Replace shard entries by their internal manifest's entries. Default true. */
  includeShards?: boolean
}

type Backing =
  | { kind: 'key'; key: string }
  | { kind: 'entries'; entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry> }
  | { kind: 'shard'; shard: ShardEntry }

/** A manifest; see the module comment. */
export class Manifest {
  readonly store: S3ExchangeStore
  readonly #backing: Backing

  private constructor(store: S3ExchangeStore, backing: Backing) {
    this.store = store
    this.#backing = backing
  }

  /** A manifest stored at `key`. */
  static fromKey(store: S3ExchangeStore, key: string): Manifest {
    return new Manifest(store, { kind: 'key', key })
  }

  /**
   * A manifest made of entries in memory. An array (or any re-iterable) can be iterated many
   * times; a one-shot iterable only once.
   */
  static fromEntries(store: S3ExchangeStore, entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>): Manifest {
    return new Manifest(store, { kind: 'entries', entries })
  }

  /** The internal manifest of a shard, read from its archive when iterated. */
  static fromShard(store: S3ExchangeStore, shard: ShardEntry): Manifest {
    return new Manifest(store, { kind: 'shard', shard })
  }

  /** A manifest from a key, a `Manifest`, or entries. */
  static fromRef(store: S3ExchangeStore, ref: ManifestRef): Manifest {
    if (ref instanceof Manifest) return ref
    if (typeof ref === 'string') return Manifest.fromKey(store, ref)
    return Manifest.fromEntries(store, ref)
  }

  /** The S3 key, or undefined for a manifest in memory or inside a shard. */
  get key(): string | undefined {
    return this.#backing.kind === 'key' ? this.#backing.key : undefined
  }

  /** The entries as stored, refs not followed. */
  #raw(ctx: S3Context): AsyncIterable<ManifestEntry> | Iterable<ManifestEntry> {
    const backing = this.#backing
    if (backing.kind === 'key') return readManifest(ctx, backing.key)
    if (backing.kind === 'entries') return backing.entries
    return (async function* () {
      yield* await readInternalManifest(ctx, backing.shard)
    })()
  }

  #entries(ctx: S3Context, resolveRefs: boolean): AsyncIterable<ManifestEntry> {
    const raw = this.#raw(ctx)
    return resolveRefs ? expandRefs(ctx)(raw) : toAsync(raw)
  }

  /** The entries, refs inlined (depth first, each manifest once) unless `resolveRefs: false`. */
  iterEntries(options: IterEntriesOptions = {}): AsyncIterable<ManifestEntry> {
    const ctx = this.store.context(options.signal)
    const entries = this.#entries(ctx, options.resolveRefs ?? true)
    return take<ManifestEntry>(options.limit)(options.partition ? partition(options.partition)(entries) : entries)
  }

  /**
   * Every object the manifest names, with its body, in manifest order: loose files fetched
   * `concurrency` at a time ahead of the consumer, shard members streamed out of one GET per
   * archive. Read each body inside the loop: a shard member's body is skipped once the loop moves on.
   */
  iterObjects(options: IterObjectsOptions = {}): AsyncIterable<EntryWithBody> {
    const ctx = this.store.context(options.signal)
    const backing = this.#backing
    if (backing.kind === 'shard') {
      // The members of one archive: one streaming pass, not one archive read per member.
      const members = readShardMembers(ctx, backing.shard, { verify: options.verify })
      return take<EntryWithBody>(options.limit)(options.partition ? partition(options.partition)(members) : members)
    }
    const all = this.#entries(ctx, true)
    // Whole shards and loose files are shared out before shards are expanded: a shard stays with one worker.
    const entries = options.partition ? partition(options.partition)(all) : all
    const fetch = fetchBodies(ctx, {
      concurrency: options.concurrency,
      maxBufferedBytes: options.maxBufferedBytes,
      indexCache: this.store.archiveIndexes,
      verify: options.verify,
    })
    const shards = expandShards(ctx, {
      bodies: true,
      shardConcurrency: options.shardConcurrency ?? 2,
      maxBufferedBytes: options.maxBufferedBytes,
      verify: options.verify,
    })
    const items = (options.expandShards ?? true) ? shards(entries) : entries
    return fetch(take<PipelineItem>(options.limit)(items))
  }

  /**
   * The keys of the objects the manifest names: a file's key, a shard's members' virtual keys
   * (or its archive key, with `expandShards: false`), a ref's key when refs are not resolved.
   */
  getKeys(options: GetKeysOptions = {}): AsyncIterable<string> {
    const ctx = this.store.context(options.signal)
    const entries = this.#entries(ctx, options.resolveRefs ?? true)
    const expanded = (options.expandShards ?? true) ? expandShards(ctx)(entries) : entries
    return take<string>(options.limit)(keysOf(expanded))
  }

  /** File entries, with each shard replaced by its internal manifest's entries (unless `includeShards: false`). */
  listFiles(options: ListFilesOptions = {}): AsyncIterable<FileEntry | ShardEntry> {
    const ctx = this.store.context(options.signal)
    const entries = this.#entries(ctx, true) as AsyncIterable<FileEntry | ShardEntry>
    return (options.includeShards ?? true) ? expandShards(ctx)(entries) : entries
  }

  /** File entries (shard members included) whose key, or virtual key, starts with `prefix`. */
  async *filterByPrefix(prefix: string, options: CallOptions = {}): AsyncGenerator<FileEntry | ShardEntry> {
    for await (const entry of this.listFiles({ ...options, includeShards: true })) {
      const key =
        entry.kind === 'file'
          ? entry.key || virtualKey(entry.archive_key ?? '', entry.member_path ?? '')
          : virtualKey(entry.archive_key, '')
      if (key.startsWith(prefix)) yield entry
    }
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
    const key = this.key
    if (key === undefined) throw new ConfigurationError('cannot save a manifest that has no key')
    if (entries === undefined && this.#backing.kind !== 'entries') {
      throw new ConfigurationError(`no entries to save to ${key}: pass them (saving nothing would empty the manifest)`)
    }
    const source = entries ?? (this.#backing as { entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry> }).entries
    return this.store.writeManifest(key, source, options)
  }

  /** Deletes what this manifest references, and itself; see `S3ExchangeStore.deleteManifest`. */
  delete(options: DeleteManifestOptions = {}): Promise<DeleteReport> {
    return this.store.deleteManifest(this, options)
  }

  /** Writes a flat copy of this manifest to `dst`; see `S3ExchangeStore.compactManifest`. */
  compact(dst: string, options: CompactOptions = {}): Promise<CompactReport> {
    return this.store.compactManifest(this, dst, options)
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
  static readFromS3(store: S3ExchangeStore, key: string, options: CallOptions = {}): AsyncIterable<ManifestEntry> {
    return readManifest(store.context(options.signal), key)
  }

  /** Writes entries as the manifest object at `key` (Python's `Manifest.write_to_s3`). */
  static async writeToS3(
    store: S3ExchangeStore,
    key: string,
    entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
    options: CallOptions = {},
  ): Promise<void> {
    await writeManifestObject(store.context(options.signal), key, entries)
  }

  /** Iterating a manifest iterates its entries, refs resolved. */
  [Symbol.asyncIterator](): AsyncIterator<ManifestEntry> {
    return this.iterEntries()[Symbol.asyncIterator]()
  }

  toString(): string {
    const backing = this.#backing
    if (backing.kind === 'key') return `Manifest(key=${backing.key})`
    if (backing.kind === 'shard') return `Manifest(shard=${backing.shard.archive_key})`
    return 'Manifest(entries)'
  }
}

async function* keysOf(entries: AsyncIterable<ManifestEntry>): AsyncGenerator<string> {
  for await (const entry of entries) yield entry.kind === 'shard' ? entry.archive_key : entry.key
}

async function* toAsync<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  yield* items
}
