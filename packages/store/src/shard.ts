/**
 * `Shard`: a shard archive in S3 (a tar or tar.gz with an internal manifest), with Python
 * s3exchange's read methods. Unlike Python, nothing is downloaded whole: members stream out of
 * one GET, and reading the internal manifest reads only the head of the archive.
 *
 * @example
 * ```ts
 * import { S3ExchangeStore } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client, bucket: 'my-bucket' })
 * const shard = store.getShard('training/123/samples/shards/shard-00000.tar.gz')
 * for await (const entry of shard.iterEntries()) console.log(entry.key) // as Manifest.iterEntries: entries
 * for await (const { entry, body } of shard.iterObjects()) console.log(entry.member_path, (await body.bytes()).byteLength)
 * const one = await shard.getMember('0001.wav')
 * ```
 */
import {
  type ArchiveFormat,
  type EntryWithBody,
  type FileEntry,
  inferArchiveFormat,
  internalManifestPath,
  type ObjectBody,
  openShardMember,
  type RolloverLimits,
  readArchiveMembers,
  type ShardEntry,
  type ShardItem,
  shardCompression,
  splitShardItems,
  take,
} from '@s3exchange/core'
import { checkOptions } from '@s3exchange/core/internals'
import type { ReadOptions, StoreContext } from './context.js'
import { deleteKey, type FenceOptions } from './delete.js'
import { Manifest } from './manifest.js'
import type { ShardIterOptions } from './options.js'

/** A shard archive; see the module comment. */
export class Shard {
  readonly store: StoreContext
  /** The shard's manifest entry. */
  readonly entry: ShardEntry

  constructor(store: StoreContext, entry: ShardEntry) {
    this.store = store
    this.entry = entry
  }

  /** A shard for an archive key, its format and compression inferred from the extension. */
  static fromKey(store: StoreContext, key: string): Shard {
    const { format, compression } = inferArchiveFormat(key)
    return new Shard(store, { kind: 'shard', archive_key: key, format, compression })
  }

  /** A shard for a manifest entry. */
  static fromEntry(store: StoreContext, entry: ShardEntry): Shard {
    return new Shard(store, entry)
  }

  /** Splits items into batches for shards, as Python's `Shard.split_items`; see `splitShardItems`. */
  static splitItems(items: Iterable<ShardItem>, options: RolloverLimits = {}): Generator<ShardItem[]> {
    return splitShardItems(items, options)
  }

  /** `(format, compression)` from an archive key's extension, as Python infers it. */
  static inferArchiveFormat(archiveKey: string): ArchiveFormat {
    return inferArchiveFormat(archiveKey)
  }

  get archiveKey(): string {
    return this.entry.archive_key
  }

  get format(): string {
    return this.entry.format ?? 'tar'
  }

  /** `"gzip"` when the entry does not say (as Python reads it), `null` for a plain tar. */
  get compression(): string | null {
    return shardCompression(this.entry)
  }

  get internalManifestPath(): string {
    return internalManifestPath(this.entry)
  }

  /** The internal manifest, read from the head of the archive when iterated. */
  getManifest(): Manifest {
    return Manifest.fromShard(this.store, this.entry)
  }

  /**
   * The shard's entries, what `Manifest.iterEntries` yields for it (`getManifest()`): its internal
   * manifest's, read from the head of the archive only, no member data.
   */
  iterEntries(options: ShardIterOptions = {}): AsyncIterable<FileEntry> {
    checkOptions('Shard.iterEntries', options)
    // A manifest backed by a shard reads its internal manifest, which holds file entries only.
    return this.getManifest().iterEntries(options) as AsyncIterable<FileEntry>
  }

  /**
   * The data members (all but the internal manifest), in archive order, `{ entry, body }` as the
   * store's `iterObjects` yields them: entries enriched (`archive_key`, `member_path`, virtual
   * `key`), bodies out of one streaming GET. Read each body inside the loop. (Python's
   * `Shard.iter_entries`.)
   */
  iterObjects(options: ShardIterOptions = {}): AsyncIterable<EntryWithBody<FileEntry>> {
    checkOptions('Shard.iterObjects', options)
    return this.getManifest().iterObjects(options)
  }

  /**
   * Every regular member, the internal manifest included, with a minimal entry
   * (`kind`, `key`, `member_path`, `size_bytes`), in archive order. (Python's `Shard.iter_objects`.)
   */
  iterArchiveMembers(options: ShardIterOptions = {}): AsyncGenerator<EntryWithBody<FileEntry>, void, undefined> {
    checkOptions('Shard.iterArchiveMembers', options)
    return take<EntryWithBody<FileEntry>>(options.limit)(readArchiveMembers(this.store.context(options), this.archiveKey))
  }

  /** One member's body, streamed out of the archive. A missing member is `ObjectNotFoundError`. */
  async getMember(memberPath: string, options: ReadOptions = {}): Promise<ObjectBody> {
    checkOptions('Shard.getMember', options)
    return openShardMember(this.store.context(options), this.archiveKey, memberPath, {
      indexCache: this.store.archiveIndexes,
      internalManifestPath: this.internalManifestPath,
    })
  }

  /** Deletes the archive (within the store's fence; see `S3ExchangeStore.deleteKey`). */
  async delete(options: FenceOptions = {}): Promise<void> {
    checkOptions('Shard.delete', options)
    return deleteKey(this.store, this.archiveKey, options)
  }

  toString(): string {
    return `Shard(archive_key=${this.archiveKey})`
  }
}
