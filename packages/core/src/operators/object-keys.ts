/**
 * Keys of entries, as stages: `objectKeys()` turns entries into the keys of the objects they name
 * (a file's key, a shard's archive key, a ref's manifest key); `withKeyPrefix(prefix)` keeps the
 * file and shard entries whose key, or virtual key, starts with `prefix` (Python's
 * `list_by_manifest_prefix`).
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, expandShards, objectKeys, readManifest, withKeyPrefix } from '@s3exchange/core'
 *
 * const keys = pipe(readManifest(ctx, 'ds/manifest.jsonl'), expandRefs(ctx), expandShards(ctx), withKeyPrefix('ds/shards/'), objectKeys())
 * ```
 */
import { type FileEntry, type ManifestEntry, objectKeyOf, type ShardEntry } from '../format/entries.js'
import { virtualKey } from '../format/keys.js'

/** Yields the key of the object each entry names. */
export function objectKeys() {
  return async function* objectKeysStage(
    entries: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>,
  ): AsyncGenerator<string, void, undefined> {
    for await (const entry of entries) yield objectKeyOf(entry)
  }
}

/** Keeps the entries whose key (for a shard, `archive_key#`) starts with `prefix`. */
export function withKeyPrefix(prefix: string) {
  return async function* withKeyPrefixStage<E extends FileEntry | ShardEntry>(
    entries: AsyncIterable<E> | Iterable<E>,
  ): AsyncGenerator<E, void, undefined> {
    for await (const entry of entries) {
      const key =
        entry.kind === 'file'
          ? entry.key || virtualKey(entry.archive_key ?? '', entry.member_path ?? '')
          : virtualKey((entry as ShardEntry).archive_key, '')
      if (key.startsWith(prefix)) yield entry
    }
  }
}
