/**
 * The store's writes, wired from core: a manifest replaced (`writeManifestObject`) or appended to
 * in parts (`writeManifestParts`), and one shard archive (`ShardWriter`, drained by `writeAll`).
 * `S3ExchangeStore` and `Manifest.save` call these with their arguments checked.
 *
 * @example
 * ```ts
 * await store.writeManifest('ds/manifest.jsonl', entries, { mode: 'append_parts' })
 * const shard = await store.putShardArchive('ds/shards/s-0.tar.gz', items)
 * ```
 */
import {
  ConfigurationError,
  type ManifestEntry,
  type ShardEntry,
  type ShardItem,
  ShardWriteError,
  ShardWriter,
  writeAll,
  writeManifestObject,
  writeManifestParts,
} from '@s3exchange/core'
import type { StoreContext } from './context.js'
import type { PutShardArchiveOptions, WriteManifestOptions, WriteManifestResult } from './options.js'

/** Writes entries to a manifest: `overwrite` replaces it, `append_parts` adds parts and refs to them. */
export async function writeManifest(
  store: StoreContext,
  key: string,
  entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
  options: WriteManifestOptions = {},
): Promise<WriteManifestResult> {
  const ctx = store.context(options.signal)
  const mode = options.mode ?? 'overwrite'
  if (mode === 'overwrite') return writeManifestObject(ctx, key, entries)
  if (mode === 'append_parts') return writeManifestParts(ctx, key, options)(entries)
  throw new ConfigurationError(`invalid mode: ${String(mode)}`)
}

/** Writes one shard archive of `items`; resolves to its entry. */
export async function putShardArchive(
  store: StoreContext,
  archiveKey: string,
  items: Iterable<ShardItem> | AsyncIterable<ShardItem>,
  options: PutShardArchiveOptions = {},
): Promise<ShardEntry> {
  if ((options.format ?? 'tar') !== 'tar') throw new ShardWriteError(`unsupported archive format: ${options.format}`, { archiveKey })
  const compression = options.compression
  if (compression !== undefined && compression !== 'gzip' && compression !== 'zstd' && compression !== null) {
    throw new ShardWriteError(`unsupported compression: ${String(compression)} (gzip, zstd or null)`, { archiveKey })
  }
  // Default: zstd for a .tar.zst key, else gzip; a contradiction is a ConfigurationError (see ShardWriter).
  const writer = new ShardWriter(store.context(options.signal), archiveKey, {
    compression,
    internalManifestPath: options.internalManifestPath,
  })
  return writeAll(writer, items)
}
