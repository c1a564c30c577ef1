/**
 * Opening the bytes that a key or an entry names: loose objects, and archive members by virtual
 * key (`archive_key#member_path`). As in Python, a key with `#` whose part before the `#` is not
 * an existing object is read as an ordinary key (keys may contain `#`).
 *
 * @example
 * ```ts
 * import { openObject } from '@s3exchange/core'
 *
 * const member = await openObject(ctx, 'ds/shards/shard-00000.tar.gz#0001.wav') // one member
 * const loose = await openObject(ctx, 'ds/notes#1.txt')                          // no archive 'ds/notes'
 * ```
 */

import type { ManifestEntry } from '../format/entries.js'
import { ObjectChangedError, ObjectNotFoundError, S3RequestError, ShardReadError } from '../format/errors.js'
import { emitEvent } from '../format/events.js'
import { splitVirtualKey } from '../format/keys.js'
import type { ObjectBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { type OpenMemberOptions, openArchiveMember } from './random-access.js'

/**
 * Opens an object by key; a virtual key opens one archive member. A key with `#` that names no
 * member (no archive before the `#`, an archive without that member, or an object there that is no
 * archive) is read as an ordinary key; when no object has that key either, the member's error
 * stands (`ObjectNotFoundError` with the whole key, or `ShardReadError`).
 */
export async function openObject(ctx: S3Context, key: string, options: OpenMemberOptions = {}): Promise<ObjectBody> {
  const virtual = splitVirtualKey(key)
  if (virtual) {
    let member: ObjectBody | undefined
    try {
      member = await openArchiveMember(ctx, virtual.archiveKey, virtual.memberPath, options)
    } catch (error) {
      if (!(error instanceof ObjectNotFoundError || isUnreadableArchive(error))) throw error
      emitEvent(ctx, { type: 'fallback', key, fallback: 'ordinary-key', reason: `no archive member: ${(error as Error).message}` })
      return getObjectBody(ctx, key).catch((ordinary: unknown) => {
        throw ordinary instanceof ObjectNotFoundError ? error : ordinary
      })
    }
    if (member) return member
    emitEvent(ctx, { type: 'fallback', key, fallback: 'ordinary-key', reason: `no archive ${virtual.archiveKey}` })
  }
  return getObjectBody(ctx, key)
}

/** A `ShardReadError` about the archive itself (not a tar, truncated, corrupt), not a cancellation or a failed request. */
function isUnreadableArchive(error: unknown): boolean {
  return error instanceof ShardReadError && !(error.cause instanceof S3RequestError) && !(error.cause instanceof ObjectChangedError)
}

/**
 * Opens the object an entry names: a file's `key` (its archive member, when it has
 * `archive_key` and `member_path`), a shard's archive, a ref's manifest.
 */
export async function openEntryObject(ctx: S3Context, entry: ManifestEntry, options: OpenMemberOptions = {}): Promise<ObjectBody> {
  if (entry.kind === 'shard') return getObjectBody(ctx, entry.archive_key)
  if (entry.kind === 'file' && typeof entry.archive_key === 'string' && typeof entry.member_path === 'string') {
    const member = await openArchiveMember(ctx, entry.archive_key, entry.member_path, options)
    if (member) return member
    throw new ObjectNotFoundError(entry.key, { detail: `the archive ${entry.archive_key} does not exist` })
  }
  return openObject(ctx, entry.key, options)
}
