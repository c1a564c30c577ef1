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
  ShardWriter,
  writeAll,
  writeManifestObject,
  writeManifestParts,
} from '@s3exchange/core'
import { type StoreContext, writeContext } from './context.js'
import type { PutShardArchiveOptions, WriteManifestOptions, WriteManifestResult } from './options.js'

/** Writes entries to a manifest: `overwrite` replaces it, `append_parts` adds parts and refs to them. */
export async function writeManifest(
  store: StoreContext,
  key: string,
  entries: Iterable<ManifestEntry> | AsyncIterable<ManifestEntry>,
  options: WriteManifestOptions = {},
): Promise<WriteManifestResult> {
  const mode = options.mode ?? 'overwrite'
  if (mode !== 'overwrite' && mode !== 'append_parts') {
    throw new ConfigurationError(`invalid mode: ${String(mode)} (overwrite or append_parts)`, { option: 'mode', key })
  }
  const ctx = writeContext(store, options)
  if (mode === 'overwrite') return writeManifestObject(ctx, key, entries)
  return writeManifestParts(ctx, key, options)(entries)
}

/**
 * Writes one shard archive of `items`; resolves to its entry. Its compression follows the key's
 * extension (see `archiveCompressionFor`): a `compression` option that contradicts it, or an
 * unknown `format`, is a `ConfigurationError` naming the key and the option, before anything is
 * written.
 */
export async function putShardArchive(
  store: StoreContext,
  archiveKey: string,
  items: Iterable<ShardItem> | AsyncIterable<ShardItem>,
  options: PutShardArchiveOptions = {},
): Promise<ShardEntry> {
  if ((options.format ?? 'tar') !== 'tar') {
    throw new ConfigurationError(`unsupported archive format: ${String(options.format)} (only tar) for ${archiveKey}`, {
      option: 'format',
      key: archiveKey,
    })
  }
  const { signal, format, ...writerOptions } = options
  const writer = new ShardWriter(writeContext(store, options), archiveKey, writerOptions)
  return writeAll(writer, items)
}
