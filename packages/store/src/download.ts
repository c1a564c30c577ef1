/**
 * Downloading to local disk, safely: loose objects are written under their key's basename (as
 * Python does), archive members under their path in the archive; absolute paths, paths with `..`
 * and two objects that map to one file are refused with `UnsafePathError`, nothing is ever written
 * outside the folder, links are never created or followed out of it, and every file is written to
 * a temporary name and renamed when complete. Each call resolves to a map of key to local path.
 *
 * @example
 * ```ts
 * const paths = await store.downloadManifest('ds/manifest.jsonl', '/data/ds', { concurrency: 16 })
 * for (const [key, path] of paths) console.log(key, '→', path)
 * ```
 */
import { dirname, posix, resolve } from 'node:path'
import { type EntryWithBody, type ManifestEntry, safeLocalPath, UnsafePathError, writeFileAtomically } from '@s3exchange/core'
import type { CallOptions, ManifestRef } from './manifest.js'
import type { S3ExchangeStore } from './store.js'

/** Options for the downloads of many objects. */
export interface DownloadOptions extends CallOptions {
  /** Objects fetched at once. Default 16. */
  concurrency?: number
}

/** Writes one object (or archive member, by virtual key) to `localPath`. Resolves to the absolute path. */
export async function downloadObject(store: S3ExchangeStore, key: string, localPath: string, options: CallOptions = {}): Promise<string> {
  const target = resolve(localPath)
  const body = await store.getObject(key, options)
  try {
    await writeFileAtomically(body, target, { root: dirname(target), key })
  } finally {
    body.destroy()
  }
  return target
}

/** The relative local path of an object: an archive member's path, or a loose key's basename. */
function relativePathOf(entry: ManifestEntry): string {
  if (entry.kind === 'file' && typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') return entry.member_path
  const key = entry.kind === 'shard' ? entry.archive_key : entry.key
  return posix.basename(key)
}

/** Writes every object of an iteration under `dir`; see the module comment. */
export async function downloadAll(items: AsyncIterable<EntryWithBody>, dir: string): Promise<Map<string, string>> {
  const root = resolve(dir)
  const written = new Map<string, string>()
  const owners = new Map<string, string>()
  for await (const { entry, body } of items) {
    const key = entry.kind === 'shard' ? entry.archive_key : entry.key
    try {
      const target = safeLocalPath(root, relativePathOf(entry), key)
      const owner = owners.get(target)
      if (owner !== undefined && owner !== key) {
        throw new UnsafePathError(`${owner} is written to the same file`, { key, path: relativePathOf(entry) })
      }
      owners.set(target, key)
      await writeFileAtomically(body, target, { root, key })
      written.set(key, target)
    } finally {
      body.destroy()
    }
  }
  return written
}

/** Downloads keys and virtual keys under `dir` (each archive read once). */
export function downloadObjects(
  store: S3ExchangeStore,
  keys: Iterable<string> | AsyncIterable<string>,
  dir: string,
  options: DownloadOptions = {},
): Promise<Map<string, string>> {
  return downloadAll(store.iterObjectsFromKeys(keys, options), dir)
}

/** Downloads everything a manifest references (refs resolved, shards expanded) under `dir`. */
export function downloadManifest(
  store: S3ExchangeStore,
  manifest: ManifestRef,
  dir: string,
  options: DownloadOptions = {},
): Promise<Map<string, string>> {
  return downloadAll(store.iterObjects(manifest, options), dir)
}
